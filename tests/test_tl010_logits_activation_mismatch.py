"""TL010 logits-activation-mismatch: detection (PyTorch and Keras/TensorFlow), silence on correct code, and
runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fix_is_unsafe, fixtures, lint_snippet, rows, run_both

import trainlint

TORCH_BUGS = fixtures("TL010", "bug_torch_")
KERAS_BUGS = fixtures("TL010", "bug_keras_")

codes = partial(rows, code="TL010")
TORCH = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
KERAS = "import tensorflow as tf\nfrom tensorflow import keras\nfrom tensorflow.keras import layers\n"


def lint(header: str, body: str) -> list[tuple[int, str]]:
    return codes(header + textwrap.dedent(body))


def fixed(header: str, body: str, unsafe: bool = False) -> str:
    return trainlint.fix_source(header + textwrap.dedent(body), unsafe=unsafe)[len(header):]


def test_there_are_fixtures_for_both_frameworks():
    assert len(TORCH_BUGS) >= 2 and len(KERAS_BUGS) >= 2


@pytest.mark.parametrize("path", TORCH_BUGS, ids=lambda p: p.stem)
def test_runtime_torch_training_stalls_and_the_fix_restores_it(path, tmp_path):
    buggy, repaired = run_both(path, autofixed(path, tmp_path, unsafe=fix_is_unsafe(path)))
    assert buggy["logit_gradient"] * 2.5 < repaired["logit_gradient"], "a second sigmoid must shrink the gradient"
    assert buggy["loss"] > 2 * repaired["loss"]
    assert repaired["accuracy"] > buggy["accuracy"] + 0.1


@pytest.mark.parametrize("path", KERAS_BUGS, ids=lambda p: p.stem)
def test_runtime_keras_training_goes_nowhere_and_the_fix_restores_it(path, tmp_path):
    buggy, repaired = run_both(path, autofixed(path, tmp_path, unsafe=fix_is_unsafe(path)))
    assert buggy["loss"] > 2 * repaired["loss"], "the mismatched loss must leave the model far from fitted"
    assert repaired["accuracy"] > buggy["accuracy"] + 0.1
    assert repaired["accuracy"] > 0.9


# -- PyTorch -------------------------------------------------------------------------------------------------------
def test_reports_sigmoid_in_bce_with_logits_and_fix_drops_it():
    body = """\
        criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.0))
        loss = criterion(torch.sigmoid(model(x)).squeeze(1), y)
        loss2 = F.binary_cross_entropy_with_logits(model(x).sigmoid(), y)
        """
    assert lint(TORCH, body) == [(5, "TL010"), (6, "TL010")]
    out = fixed(TORCH, body)
    assert "loss = criterion(model(x).squeeze(1), y)" in out
    assert "loss2 = F.binary_cross_entropy_with_logits(model(x), y)" in out


def test_reports_a_name_bound_to_sigmoid_and_fix_passes_the_logits():
    body = """\
        logits = model(x)
        probs = torch.sigmoid(logits)
        loss = nn.BCEWithLogitsLoss()(probs, y)
        preds = probs > 0.5
        """
    assert lint(TORCH, body) == [(6, "TL010")]
    assert "loss = nn.BCEWithLogitsLoss()(logits, y)" in fixed(TORCH, body)


def test_reports_a_model_ending_in_sigmoid_without_a_fix():
    """Remove the model's sigmoid, or use BCELoss: which one is the author's call."""
    source = TORCH + textwrap.dedent("""\
        model = nn.Sequential(nn.Linear(10, 1), nn.Sigmoid())
        criterion = nn.BCEWithLogitsLoss()
        loss = criterion(model(x), y)
        """)
    [finding] = lint_snippet(source, code="TL010")
    assert finding.location.row == 6 and finding.fix is None
    assert "`nn.Sigmoid()` (line 4)" in finding.message


def test_reports_softmax_fed_to_a_sigmoid_loss_without_a_fix():
    """BCEWithLogits on softmax outputs: dropping the softmax would change what the author computes."""
    source = TORCH + "loss = F.binary_cross_entropy_with_logits(F.softmax(model(x), dim=1), onehot)\n"
    [finding] = lint_snippet(source, code="TL010")
    assert finding.fix is None and "softmax probabilities" in finding.message


def test_reports_sigmoid_fed_to_cross_entropy():
    assert lint(TORCH, "loss = F.cross_entropy(torch.sigmoid(model(x)), y)\n") == [(4, "TL010")]


def test_quiet_when_logits_go_to_bce_with_logits_and_sigmoid_to_bce():
    assert lint(TORCH, """\
        logits = model(x)
        loss = nn.BCEWithLogitsLoss()(logits, y)
        loss2 = nn.BCELoss()(torch.sigmoid(logits), y)
        loss3 = F.binary_cross_entropy(logits.sigmoid(), y)
        probs = torch.sigmoid(logits)
        acc = ((probs > 0.5) == y).float().mean()
        """) == []


def test_quiet_when_the_sigmoid_is_the_target():
    assert lint(TORCH, "loss = F.binary_cross_entropy_with_logits(student(x), torch.sigmoid(teacher(x)))\n") == []


# -- Keras: compile() --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ['"categorical_crossentropy"', '"sparse_categorical_crossentropy"',
                                  "keras.losses.SparseCategoricalCrossentropy()",
                                  "keras.losses.CategoricalCrossentropy(from_logits=False)",
                                  "keras.losses.categorical_crossentropy", "'CategoricalCrossentropy'"])
def test_reports_a_linear_last_layer_with_a_probability_loss(loss):
    body = f"""\
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
        model.compile(optimizer="adam", loss={loss}, metrics=["accuracy"])
        """
    assert lint(KERAS, body) == [(5, "TL010")]
    out = fixed(KERAS, body)
    assert "from_logits=True)" in out
    assert lint(KERAS, out) == []


def test_fix_spells_the_loss_class_as_the_file_imports_keras():
    body = """\
        import tensorflow as tf
        from tensorflow.keras.models import Sequential
        from tensorflow.keras.layers import Dense
        model = Sequential()
        model.add(Dense(32, activation="relu"))
        model.add(Dense(1))
        model.compile(loss="binary_crossentropy", optimizer="adam")
        """
    assert lint("", body) == [(7, "TL010")]
    assert 'model.compile(loss=tf.keras.losses.BinaryCrossentropy(from_logits=True), optimizer="adam")' in fixed(
        "", body)


def test_reports_a_functional_model_built_by_a_helper():
    assert lint(KERAS, """\
        def build(classes):
            inputs = keras.Input(shape=(28, 28))
            x = layers.Flatten()(inputs)
            x = layers.Dense(128, activation="relu")(x)
            outputs = layers.Dense(classes)(x)
            return keras.Model(inputs=inputs, outputs=outputs)

        model = build(10)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        """) == [(12, "TL010")]


def test_reports_a_subclassed_model_whose_call_ends_in_a_linear_layer():
    assert lint(KERAS, """\
        class Classifier(keras.Model):
            def __init__(self):
                super().__init__()
                self.hidden = layers.Dense(64, activation="relu")
                self.out = layers.Dense(10)

            def call(self, x):
                return self.out(self.hidden(x))

        model = Classifier()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        """) == [(14, "TL010")]


@pytest.mark.parametrize("last", ['layers.Dense(10, activation="softmax")', "layers.Dense(10, activation=tf.nn.softmax)",
                                  "layers.Softmax()", 'layers.Activation("softmax")'])
def test_reports_a_softmax_last_layer_with_from_logits_true_and_fix_sets_it_false(last):
    body = f"""\
        model = keras.Sequential([layers.Dense(64, activation="relu"), {last}])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        """
    assert lint(KERAS, body) == [(5, "TL010")]
    assert "keras.losses.SparseCategoricalCrossentropy(from_logits=False)" in fixed(KERAS, body)


def test_reports_a_sigmoid_layer_added_last():
    assert lint(KERAS, """\
        model = keras.Sequential()
        model.add(layers.Dense(1))
        model.add(layers.Activation("sigmoid"))
        model.add(layers.Flatten())
        model.compile(loss=keras.losses.BinaryCrossentropy(True), optimizer="sgd")
        """) == [(8, "TL010")]


def test_quiet_when_the_loss_matches_the_last_layer():
    assert lint(KERAS, """\
        a = keras.Sequential([layers.Dense(10, activation="softmax")])
        a.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        b = keras.Sequential([layers.Dense(10)])
        b.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        c = keras.Sequential([layers.Dense(1, activation="sigmoid")])
        c.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=False))
        d = keras.Sequential([layers.Dense(1)])
        d.compile(optimizer="adam", loss="mse")
        """) == []


def test_quiet_when_the_last_layer_is_neither_linear_nor_a_probability():
    assert lint(KERAS, """\
        a = keras.Sequential([layers.Dense(10, activation="relu")])
        a.compile(optimizer="adam", loss="categorical_crossentropy")
        b = keras.Sequential([layers.Dense(10, activation=final_activation)])
        b.compile(optimizer="adam", loss="categorical_crossentropy")
        c = keras.Sequential([layers.Dense(10), custom_layer])
        c.compile(optimizer="adam", loss="categorical_crossentropy")
        """) == []


def test_quiet_when_from_logits_is_not_a_literal():
    assert lint(KERAS, """\
        model = keras.Sequential([layers.Dense(10, activation="softmax")])
        model.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=args.logits))
        """) == []


def test_quiet_when_the_model_has_several_outputs_or_losses():
    assert lint(KERAS, """\
        inputs = keras.Input((8,))
        a = layers.Dense(10)(inputs)
        b = layers.Dense(1)(inputs)
        model = keras.Model(inputs, [a, b])
        model.compile(loss=["sparse_categorical_crossentropy", "mse"])
        single = keras.Model(inputs, a)
        single.compile(loss={"a": "sparse_categorical_crossentropy"})
        """) == []


def test_quiet_when_a_helper_may_add_the_last_layer():
    assert lint(KERAS, """\
        model = keras.Sequential([layers.Dense(10)])
        add_classifier_head(model)
        model.compile(loss="categorical_crossentropy")
        """) == []


def test_quiet_when_the_model_overrides_its_training_step():
    """A custom train_step decides what the compiled loss is applied to."""
    assert lint(KERAS, """\
        class Model(keras.Model):
            def __init__(self):
                super().__init__()
                self.out = layers.Dense(10)

            def call(self, x):
                return self.out(x)

            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    loss = self.compiled_loss(y, tf.nn.softmax(self(x, training=True)))
                return {"loss": loss}

        model = Model()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        """) == []


def test_quiet_when_only_one_branch_builds_a_linear_model():
    assert lint(KERAS, """\
        if args.logits:
            model = keras.Sequential([layers.Dense(10)])
        else:
            model = keras.Sequential([layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy")
        """) == []


# -- Keras / TensorFlow: custom steps --------------------------------------------------------------------------
def test_reports_a_gradient_tape_step_with_a_loss_object():
    body = """\
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        optimizer = keras.optimizers.Adam()

        @tf.function
        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """
    assert lint(KERAS, body) == [(12, "TL010")]
    assert "loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)" in fixed(KERAS, body)


def test_fix_is_unsafe_when_the_loss_object_is_used_elsewhere():
    source = KERAS + textwrap.dedent("""\
        model = keras.Sequential([layers.Dense(10)])
        other = keras.Sequential([layers.Dense(10, activation="softmax")])
        loss_fn = keras.losses.CategoricalCrossentropy()
        loss = loss_fn(y, model(x))
        other_loss = loss_fn(y, other(x))
        """)
    [finding] = lint_snippet(source, code="TL010")
    assert finding.location.row == 7 and finding.fix.applicability == "unsafe"


def test_reports_tf_nn_losses_given_a_softmax_model_without_a_fix():
    source = KERAS + textwrap.dedent("""\
        model = keras.Sequential([layers.Dense(10, activation="softmax")])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model(x)))
        loss2 = tf.nn.softmax_cross_entropy_with_logits(onehot, model(x))
        """)
    findings = lint_snippet(source, code="TL010")
    assert [(f.location.row, f.fix) for f in findings] == [(5, None), (6, None)]


def test_reports_a_keras_function_told_from_logits_and_fix_sets_the_argument():
    body = """\
        model = keras.Sequential([layers.Dense(10, activation="softmax")])
        probs = model(x)
        loss = keras.losses.categorical_crossentropy(y, probs, from_logits=True)
        """
    assert lint(KERAS, body) == [(6, "TL010")]
    assert "keras.losses.categorical_crossentropy(y, probs, from_logits=False)" in fixed(KERAS, body)


def test_reports_softmax_applied_in_the_step_and_fix_drops_it():
    body = """\
        loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.nn.softmax(model(x)))
        """
    assert lint(KERAS, body) == [(6, "TL010")]
    assert "loss = loss_fn(y, model(x))" in fixed(KERAS, body)


def test_message_says_what_the_loss_expects_and_what_the_last_layer_is():
    [finding] = lint_snippet(KERAS + textwrap.dedent("""\
        model = keras.Sequential([layers.Dense(10)])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        """), code="TL010")
    assert '`"categorical_crossentropy"` expects probabilities' in finding.message
    assert "`model`'s last layer `layers.Dense(10)` (line 4) has no activation" in finding.message
    assert (finding.location.row, finding.location.column) == (5, 38)


def test_fix_is_unsafe_when_the_activation_does_not_match_the_loss():
    """A subclassed model ending in `Dense(2, activation='sigmoid')` compiled with
    `SparseCategoricalCrossentropy(from_logits=True)` (a Kaggle Titanic notebook): the probabilities are
    squashed again, but whether a softmax was meant is the author's call."""
    source = KERAS + textwrap.dedent("""\
        class BaseModel(tf.keras.Model):
            def __init__(self):
                super(BaseModel, self).__init__()
                self.D1 = layers.Dense(16, activation='relu')
                self.D2 = layers.Dense(2, activation='sigmoid')

            def call(self, x):
                x = self.D1(x)
                y = self.D2(x)
                return y

        model = BaseModel()
        model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        """)
    [finding] = lint_snippet(source, code="TL010")
    assert finding.location.row == 16 and finding.fix.applicability == "unsafe"
    assert "sigmoid probabilities" in finding.message


def test_an_identity_activation_after_the_softmax_is_not_a_linear_head():
    """TensorFlow's mixed-precision guide casts the softmax output to float32:
        x = layers.Dense(10, name='dense_logits')(x)
        outputs = layers.Activation('softmax', dtype='float32', name='predictions')(x)
        outputs = layers.Activation('linear', dtype='float32')(outputs)
        model.compile(loss='sparse_categorical_crossentropy', ...)"""
    assert lint(KERAS, """\
        inputs = keras.Input(shape=(784,))
        x = layers.Dense(64, activation='relu')(inputs)
        x = layers.Dense(10, name='dense_logits')(x)
        outputs = layers.Activation('softmax', dtype='float32', name='predictions')(x)
        outputs = layers.Activation('linear', dtype='float32')(outputs)
        model = keras.Model(inputs=inputs, outputs=outputs)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=keras.optimizers.RMSprop())
        """) == []
    assert lint(KERAS, """\
        inputs = keras.Input(shape=(784,))
        x = layers.Dense(10)(inputs)
        outputs = layers.Activation('linear', dtype='float32')(x)
        model = keras.Model(inputs=inputs, outputs=outputs)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=keras.optimizers.RMSprop())
        """) == [(8, "TL010")]
