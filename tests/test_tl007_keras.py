"""TL007 missing-train-mode on Keras: a custom `tf.GradientTape` training step that calls the model without
`training=True` while the model holds Dropout / BatchNormalization. Detection, silence on correct code, and
runtime-verified fixes (the static checks on the Keras fixtures run in test_tl007_missing_train_mode.py)."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_script

import trainlint

KERAS_BUGS = fixtures("TL007", "bug_keras_")


codes = partial(rows, code="TL007")


def test_there_are_keras_fixtures():
    assert len(KERAS_BUGS) >= 2


@pytest.mark.parametrize("path", KERAS_BUGS, ids=lambda p: p.stem)
def test_runtime_dropout_is_off_in_the_training_step_and_the_fix_turns_it_on(path, tmp_path):
    buggy = run_script(path)
    assert buggy["train_forwards"] == 8
    assert buggy["dropout_active"] == 0, "without training=True no Dropout call should run in training mode"
    assert buggy["dropout_inactive"] == 8
    fixed = run_script(autofixed(path, tmp_path))
    assert fixed["train_forwards"] == 8
    assert fixed["dropout_active"] == 8, "after the fix every training step must run Dropout in training mode"
    assert fixed["dropout_inactive"] == 0


def test_fix_adds_training_true_to_the_call():
    source = textwrap.dedent("""\
        import tensorflow as tf
        import keras
        model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        optimizer = keras.optimizers.Adam()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x, mask=m) - y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """)
    fixed = trainlint.fix_source(source)
    assert "    loss = tf.reduce_mean(model(x, mask=m, training=True) - y)\n" in fixed
    assert trainlint.fix_source(fixed) == fixed


def test_message_names_the_call_the_tape_and_the_layer():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import tensorflow as tf
        from tensorflow import keras
        net = keras.Sequential([keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
        opt = keras.optimizers.SGD()
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((net(x) - y) ** 2)
            grads = tape.gradient(loss, net.trainable_weights)
            opt.apply_gradients(zip(grads, net.trainable_weights))
        """))
    assert finding.code == "TL007" and finding.location.row == 7
    assert "`net(x)` (line 7, in `train_step()`)" in finding.message
    assert "training step on line 6 without `training=True`" in finding.message
    assert "`BatchNormalization` (line 3)" in finding.message


_STEP = """
        optimizer = keras.optimizers.Adam()
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model(x) - y) ** 2)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """

DETECTED = {
    "sequential_add": """\
        import tensorflow as tf
        import keras
        from keras import layers
        model = keras.Sequential()
        model.add(layers.Dense(8))
        model.add(layers.SpatialDropout1D(0.2))
        """ + _STEP,
    "functional_model_through_a_block_helper": """\
        import tensorflow as tf
        import keras
        from keras import layers
        def block(x):
            x = layers.Dense(8)(x)
            return layers.BatchNormalization()(x)
        inputs = keras.Input((4,))
        outputs = layers.Dense(1)(block(block(inputs)))
        model = keras.Model(inputs=inputs, outputs=outputs)
        """ + _STEP,
    "subclassed_model_with_dropout_in_init": """\
        import tensorflow as tf
        import keras
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.dense = keras.layers.Dense(8)
                self.drop = keras.layers.Dropout(0.3)
            def call(self, x, training=None):
                return self.drop(self.dense(x), training=training)
        model = Net()
        """ + _STEP,
    "keras_applications_backbone": """\
        import tensorflow as tf
        import keras
        model = keras.applications.ResNet50(weights=None, classes=10)
        """ + _STEP,
    "tf_keras_spelling_and_apply": """\
        import tensorflow as tf
        model = tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.Dropout(0.5)])
        optimizer = tf.keras.optimizers.Adam()
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model(x) - y) ** 2)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
        """,
    # keras.io SimSiam / VAE shape: sub-models handed to a keras.Model subclass, trained in its train_step.
    "submodels_passed_to_a_train_step_model": """\
        import tensorflow as tf
        import keras
        from keras import layers
        def get_encoder():
            inputs = keras.Input((4,))
            return keras.Model(inputs, layers.BatchNormalization()(layers.Dense(8)(inputs)))
        class Pair(keras.Model):
            def __init__(self, encoder, head):
                super().__init__()
                self.encoder = encoder
                self.head = head
            def train_step(self, data):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(self.head(self.encoder(data, training=True), training=True)) \\
                        + tf.reduce_mean(self.encoder(data))
                params = self.encoder.trainable_variables + self.head.trainable_variables
                grads = tape.gradient(loss, params)
                self.optimizer.apply_gradients(zip(grads, params))
                return {"loss": loss}
        pair = Pair(get_encoder(), keras.Sequential([layers.Dense(2)]))
        pair.compile(optimizer="adam")
        pair.fit(data, epochs=2)
        """,
    # keras.io reptile shape: the step in the module body, inside the meta-training loop.
    "step_in_the_module_loop": """\
        import tensorflow as tf
        import keras
        from keras import layers
        inputs = layers.Input(shape=(28, 28, 1))
        x = layers.Conv2D(8, 3)(inputs)
        x = layers.BatchNormalization()(x)
        outputs = layers.Dense(5)(layers.Flatten()(x))
        model = keras.Model(inputs=inputs, outputs=outputs)
        optimizer = keras.optimizers.SGD(learning_rate=0.01)
        for meta_iter in range(10):
            for images, labels in mini_dataset:
                with tf.GradientTape() as tape:
                    preds = model(images)
                    loss = keras.losses.sparse_categorical_crossentropy(labels, preds)
                grads = tape.gradient(loss, model.trainable_weights)
                optimizer.apply_gradients(zip(grads, model.trainable_weights))
        """,
    # Keras on the torch backend with a PyTorch-style loop follows the PyTorch rule: eval() without train().
    "keras_on_torch_backend_eval_in_the_epoch_loop": """\
        import torch
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
            model.eval()
        """,
}


@pytest.mark.parametrize("source", DETECTED.values(), ids=DETECTED.keys())
def test_reports(source):
    assert len(codes(source)) == 1


QUIET = {
    # The "not flagged" shapes.
    "training_true": """\
        import tensorflow as tf
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5)])
        optimizer = keras.optimizers.Adam()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "training_forwarded_from_a_variable": """\
        import tensorflow as tf
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5)])
        optimizer = keras.optimizers.Adam()
        def step(x, training):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(x, training=training))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "test_step_and_call_forwarding_training": """\
        import tensorflow as tf
        import keras
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.drop = keras.layers.Dropout(0.3)
                self.dense = keras.layers.Dense(1)
            def call(self, x, training=None):
                return self.dense(self.drop(x, training=training))
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    loss = self.compute_loss(y=y, y_pred=self(x, training=True))
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                return {"loss": loss}
            def test_step(self, data):
                x, y = data
                return {"loss": self.compute_loss(y=y, y_pred=self(x, training=False))}
        """,
    "model_fit": """\
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, epochs=3)
        preds = model(x)
        """,
    "model_from_elsewhere": """\
        import tensorflow as tf
        import keras
        model = keras.models.load_model("model.keras")
        optimizer = keras.optimizers.Adam()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "model_is_a_parameter_nothing_binds": """\
        import tensorflow as tf
        def train_step(model, optimizer, x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "model_without_training_dependent_layers": """\
        import tensorflow as tf
        import keras
        model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        """ + _STEP,
    "vgg_application_has_no_dropout_or_batch_norm": """\
        import tensorflow as tf
        import keras
        model = keras.applications.VGG16(weights=None, include_top=False)
        """ + _STEP,
    "frozen_backbone_called_with_training_false_in_the_graph": """\
        import tensorflow as tf
        import keras
        base = keras.applications.ResNet50(include_top=False, weights=None)
        inputs = keras.Input((64, 64, 3))
        x = base(inputs, training=False)
        outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(x))
        model = keras.Model(inputs, outputs)
        """ + _STEP,
    "jax_stateless_call": """\
        import jax
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5)])
        def compute_loss(trainable, non_trainable, x, y):
            y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, y_pred), non_trainable
        grad_fn = jax.value_and_grad(compute_loss, has_aux=True)
        """,
    # keras.io DCGAN shape: the generator's step runs the discriminator (Dropout) without training=True,
    # but differentiates only the generator's variables: the discriminator is not trained in that step.
    "frozen_discriminator_in_the_generator_step": """\
        import tensorflow as tf
        import keras
        from keras import layers
        discriminator = keras.Sequential([layers.Dense(8), layers.Dropout(0.2), layers.Dense(1)])
        generator = keras.Sequential([layers.Dense(8), layers.Dense(4)])
        class GAN(keras.Model):
            def __init__(self, discriminator, generator):
                super().__init__()
                self.discriminator = discriminator
                self.generator = generator
            def train_step(self, z):
                with tf.GradientTape() as tape:
                    predictions = self.discriminator(self.generator(z, training=True))
                    g_loss = tf.reduce_mean(predictions)
                grads = tape.gradient(g_loss, self.generator.trainable_weights)
                self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
                return {"g_loss": g_loss}
        gan = GAN(discriminator=discriminator, generator=generator)
        """,
    # Two blocks reuse the name `tape`: each gradient belongs to the block just before it.
    "tape_name_reused_by_the_next_step": """\
        import tensorflow as tf
        import keras
        from keras import layers
        critic = keras.Sequential([layers.Dense(8), layers.Dropout(0.2), layers.Dense(1)])
        actor = keras.Sequential([layers.Dense(4)])
        opt = keras.optimizers.Adam()
        def step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(critic(actor(x)))
            grads = tape.gradient(loss, actor.trainable_variables)
            opt.apply_gradients(zip(grads, actor.trainable_variables))
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(critic(x, training=True))
            grads = tape.gradient(loss, critic.trainable_variables)
            opt.apply_gradients(zip(grads, critic.trainable_variables))
        """,
    # A tape used only to compute gradients w.r.t. the input (saliency, Grad-CAM): nothing is trained.
    "gradient_with_respect_to_the_input": """\
        import tensorflow as tf
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        with tf.GradientTape() as tape:
            tape.watch(images)
            preds = model(images)
        grads = tape.gradient(preds, images)
        """,
    # Keras on the torch backend: a PyTorch-style loop follows the PyTorch rule (train() is called).
    "keras_on_torch_backend": """\
        import torch
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(3):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet(source):
    assert codes(source) == []
