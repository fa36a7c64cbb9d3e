"""Keras scripts and the PyTorch rules: quiet on TensorFlow / JAX / `fit()` code, and applied as they are to
Keras 3 custom loops on the torch backend (`loss.backward()` + a torch optimizer's `step()`).

A TensorFlow or JAX step has no `zero_grad()`/`backward()`: `tape.gradient()` and `jax.grad` return fresh
gradients, `optimizer.apply_gradients()` is not a PyTorch step, and `model.fit()` / `evaluate()` / `predict()`
are neither a data scaler's fit nor a `train()`/`eval()` mode switch. The shapes below are reduced from
keras.io's guides and keras-core's examples (writing a training loop from scratch in TensorFlow, JAX and
PyTorch; customizing what happens in fit(); the demo_custom_*_workflow scripts).
"""
from __future__ import annotations

import textwrap

import pytest
from runtime import autofixed, rows, run_script

import trainlint

findings = rows


QUIET = {
    # keras.io "writing a training loop from scratch" (TensorFlow): a Keras optimizer's apply_gradients is the
    # step and there is no zero_grad; the epoch loss is summed from eager tensors that hold no graph.
    "tensorflow_gradient_tape_loop": """\
        import keras
        import tensorflow as tf
        model = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dropout(0.2),
                                  keras.layers.Dense(10)])
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
        for epoch in range(10):
            epoch_loss = 0.0
            losses = []
            for step, (x_batch, y_batch) in enumerate(train_dataset):
                with tf.GradientTape() as tape:
                    logits = model(x_batch, training=True)
                    loss_value = loss_fn(y_batch, logits)
                grads = tape.gradient(loss_value, model.trainable_weights)
                optimizer.apply_gradients(zip(grads, model.trainable_weights))
                train_acc_metric.update_state(y_batch, logits)
                epoch_loss += loss_value
                losses.append(loss_value)
            for x_batch_val, y_batch_val in val_dataset:
                val_logits = model(x_batch_val, training=False)
        """,
    # demo_custom_tf_workflow: the step is a @tf.function helper called from the loop.
    "tf_function_train_step_called_from_a_loop": """\
        import tensorflow as tf
        from keras import optimizers
        optimizer = optimizers.SGD(learning_rate=0.001)
        @tf.function(jit_compile=True)
        def train_step(data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss
        total = 0.0
        for data in dataset:
            loss = train_step(data)
            total += loss
        """,
    # Customizing what happens in fit(): a train_step override; fit() runs the loop.
    "train_step_override_run_by_fit": """\
        import keras
        import tensorflow as tf
        class CustomModel(keras.Model):
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                gradients = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
                for metric in self.metrics:
                    metric.update_state(y, y_pred)
                return {m.name: m.result() for m in self.metrics}
        model = CustomModel(inputs, outputs)
        model.compile(optimizer="adam", loss="mse")
        model.fit(x_train, y_train, epochs=3)
        """,
    # fit / evaluate / predict on named splits: a Keras model is not a data scaler and evaluate() is not eval().
    "fit_evaluate_predict_in_an_epoch_loop": """\
        import keras
        from keras import layers
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        x_train = scaler.fit_transform(x_train)
        x_val, x_test = scaler.transform(x_val), scaler.transform(x_test)
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dropout(0.5), layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        for epoch in range(5):
            history = model.fit(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
            val_loss = model.evaluate(x_val, y_val)
            preds = model.predict(x_test)
            model.train_on_batch(x_train[:32], y_train[:32])
            model.test_on_batch(x_val, y_val)
        score = model.evaluate(x_test, y_test, verbose=0)
        """,
    # A Keras GAN trained with train_on_batch: `trainable = False` is not eval().
    "gan_with_train_on_batch_and_frozen_discriminator": """\
        import keras
        discriminator = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
        discriminator.compile(optimizer=keras.optimizers.Adam(2e-4), loss="binary_crossentropy")
        discriminator.trainable = False
        gan = keras.Sequential([generator, discriminator])
        gan.compile(optimizer=keras.optimizers.Adam(2e-4), loss="binary_crossentropy")
        for step in range(1000):
            d_loss = discriminator.train_on_batch(images, labels)
            g_loss = gan.train_on_batch(noise, misleading_labels)
        """,
    # demo_custom_jax_workflow / keras.io JAX loop: stateless_apply is the step, grads come from jax.grad.
    "jax_stateless_loop": """\
        import jax
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        def compute_loss_and_updates(trainable_variables, non_trainable_variables, x, y):
            y_pred, non_trainable_variables = model.stateless_call(trainable_variables, non_trainable_variables, x)
            return loss_fn(y, y_pred), non_trainable_variables
        grad_fn = jax.value_and_grad(compute_loss_and_updates, has_aux=True)
        @jax.jit
        def train_step(state, data):
            trainable_variables, non_trainable_variables, optimizer_variables = state
            x, y = data
            (loss, non_trainable_variables), grads = grad_fn(trainable_variables, non_trainable_variables, x, y)
            trainable_variables, optimizer_variables = optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables)
            return loss, (trainable_variables, non_trainable_variables, optimizer_variables)
        state = (model.trainable_variables, model.non_trainable_variables, optimizer.variables)
        for step, data in enumerate(train_dataset):
            loss, state = train_step(state, data)
            total_loss = total_loss + loss
        """,
    # keras.io "writing a training loop from scratch in PyTorch" with a Keras optimizer: model.zero_grad(),
    # backward(), then optimizer.apply(...) under no_grad; eval()/train() around validation.
    "torch_backend_loop_with_a_keras_optimizer": """\
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        import torch
        model = keras.Sequential([keras.layers.Dense(1)])
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        loss_fn = keras.losses.MeanSquaredError()
        for epoch in range(3):
            model.train()
            for step, (inputs, targets) in enumerate(train_dataloader):
                logits = model(inputs)
                loss = loss_fn(targets, logits)
                model.zero_grad()
                loss.backward()
                trainable_weights = [v for v in model.trainable_weights]
                gradients = [v.value.grad for v in trainable_weights]
                with torch.no_grad():
                    optimizer.apply(gradients, trainable_weights)
                running = loss.item()
            model.eval()
            with torch.no_grad():
                val_logits = model(x_val)
        """,
    # demo_custom_torch_workflow: a Keras model trained by a correct torch loop (zero_grad, backward, step).
    "torch_backend_loop_with_a_torch_optimizer": """\
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import torch
        import torch.nn as nn
        import torch.optim as optim
        import keras_core
        from keras_core import layers
        model = keras_core.Sequential([layers.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10)])
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        def train(model, train_loader, num_epochs, optimizer, loss_fn):
            for epoch in range(num_epochs):
                running_loss = 0.0
                for batch_idx, (inputs, targets) in enumerate(train_loader):
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    running_loss += loss.item()
        train(model, train_loader, 1, optimizer, loss_fn)
        """,
    # Keras schedules and callbacks: nothing is stepped by hand.
    "keras_schedule_and_callbacks": """\
        import keras
        lr_schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10000, decay_rate=0.9)
        optimizer = keras.optimizers.SGD(learning_rate=lr_schedule)
        model.compile(optimizer=optimizer, loss="mse")
        callbacks = [keras.callbacks.ReduceLROnPlateau(monitor="val_loss"), keras.callbacks.EarlyStopping()]
        history = model.fit(x_train, y_train, validation_split=0.2, callbacks=callbacks)
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_keras_code(source):
    assert findings(source) == []


# -- Keras 3 on the torch backend: the PyTorch rules apply as they are ----------------------------------
TORCH_BACKEND_HEADER = """\
    import os
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import torch
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    """

DETECTED = {
    "missing_zero_grad": ("""\
        for epoch in range(3):
            for inputs, targets in train_loader:
                loss = loss_fn(model(inputs), targets)
                loss.backward()
                optimizer.step()
        """, [(11, "TL001")]),
    "step_before_backward": ("""\
        for inputs, targets in train_loader:
            optimizer.zero_grad()
            optimizer.step()
            loss_fn(model(inputs), targets).backward()
        """, [(10, "TL002")]),
    "loss_tensor_accumulated": ("""\
        running_loss = 0.0
        for inputs, targets in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            running_loss += loss
        """, [(14, "TL004")]),
}


@pytest.mark.parametrize("case", DETECTED, ids=DETECTED.keys())
def test_pytorch_rules_apply_to_keras_on_the_torch_backend(case):
    body, expected = DETECTED[case]
    assert findings(textwrap.dedent(TORCH_BACKEND_HEADER) + textwrap.dedent(body)) == expected


def test_missing_zero_grad_in_a_keras_core_train_helper():
    """demo_custom_torch_workflow without `optimizer.zero_grad()`: the helper's loop, reached through its call."""
    source = """\
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import torch.nn as nn
        import torch.optim as optim
        import keras_core
        from keras_core import layers
        model = keras_core.Sequential([layers.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10)])
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        def train(model, train_loader, num_epochs, optimizer, loss_fn):
            for epoch in range(num_epochs):
                for batch_idx, (inputs, targets) in enumerate(train_loader):
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                    loss.backward()
                    optimizer.step()
        train(model, train_loader, 1, optimizer, loss_fn)
        """
    assert findings(source) == [(15, "TL001")]
    assert "        for batch_idx, (inputs, targets) in enumerate(train_loader):\n            optimizer.zero_grad()\n" \
        in trainlint.fix_source(textwrap.dedent(source))


KERAS_TORCH_SCRIPT = '''\
"""A Keras 3 model trained by a torch loop on the torch backend, without zero_grad()."""
import os

os.environ["KERAS_BACKEND"] = "torch"
import keras
import torch
import torch.nn.functional as F
from symptoms import StaleGradientProbe, report

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
batches = [(torch.randn(8, 4), torch.randn(8, 1)) for _ in range(4)]


def batch_gradient():
    return torch.autograd.grad(F.mse_loss(model(x), y), list(model.parameters()))


probe = StaleGradientProbe(optimizer, batch_gradient)
for epoch in range(2):
    for x, y in batches:
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()

report(stale_gradient=probe.worst, steps=probe.steps)
'''


def test_runtime_keras_model_on_the_torch_backend_accumulates_and_the_tl001_fix_stops_it(tmp_path):
    buggy_dir, fixed_dir = tmp_path / "buggy", tmp_path / "fixed"
    buggy_dir.mkdir(), fixed_dir.mkdir()
    script = buggy_dir / "keras_torch_backend_loop.py"
    script.write_text(KERAS_TORCH_SCRIPT)
    assert {code for _, code in findings(KERAS_TORCH_SCRIPT)} == {"TL001"}
    buggy = run_script(script)
    assert buggy["steps"] > 1 and buggy["stale_gradient"] > 1e-4
    repaired = run_script(autofixed(script, fixed_dir))
    assert repaired["steps"] == buggy["steps"] and repaired["stale_gradient"] < 1e-6
