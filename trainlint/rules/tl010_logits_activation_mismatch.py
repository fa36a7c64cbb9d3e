from __future__ import annotations

from ..analysis import ScriptModel
from ..analysis import knowledge as K
from ..analysis.kinds import KERAS, LOGITS, PROBABILITIES, PROBS, SIGMOID, SOFTMAX
from ..analysis.losses import LossFeed
from ..fixes import UNSAFE
from .activation_fixes import keras_from_logits, without_activation
from .base import FIX_SAFE, Rule, Violation
from .tl009_softmax_before_cross_entropy import origin_text, reported as tl009_reported


class LogitsActivationMismatch(Rule):
    """
    ## What it does
    Checks for a loss that is told one thing about its input while the model gives it another:

    - probabilities (a sigmoid or softmax) passed to a loss that expects logits: `BCEWithLogitsLoss` /
      `F.binary_cross_entropy_with_logits` given `torch.sigmoid(z)`, a Keras loss built with
      `from_logits=True` (in `compile()` or a `GradientTape` step) for a model whose last layer has a
      `sigmoid` or `softmax` activation, `tf.nn.sigmoid_cross_entropy_with_logits` /
      `tf.nn.softmax_cross_entropy_with_logits` given such a model's output;
    - logits passed to a Keras loss that expects probabilities: a model whose last layer has no activation
      (`Dense(10)`) compiled with `"categorical_crossentropy"`, `"sparse_categorical_crossentropy"`,
      `"binary_crossentropy"` or a loss object without `from_logits=True`.

    Not reported: logits to `BCEWithLogitsLoss`, a sigmoid to `BCELoss`, a softmax model with
    `from_logits=False`, a last layer with another activation (`relu`, `tanh`: neither logits nor
    probabilities), multi-output models, models we cannot trace to their last layer, losses computed under
    `torch.no_grad()` or turned straight into a number (validation losses, metrics), and a softmax fed to
    `CrossEntropyLoss` (that is TL009).

    ## Why is this bad?
    A loss "with logits" applies the sigmoid (or softmax) itself. Given probabilities, it squashes them a
    second time: a sigmoid maps [0, 1] into [0.5, 0.73], so the loss can never reach its targets and its
    gradients are a fraction of what they should be. The other way round, a loss that expects probabilities
    clips logits into [1e-7, 1 - 1e-7] (and, for categorical losses, divides them by their sum): negative
    scores become certainty of the wrong class, gradients vanish where clipped, and training goes nowhere.
    Keras on TensorFlow recovers the logits of a `sigmoid`/`softmax` layer it built itself and only warns
    ("received `from_logits=True`, but the `output` argument was produced by a Sigmoid activation"), but the
    JAX and PyTorch backends, older versions and the `tf.nn` losses do not.

    ## Example
    ```python
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```

    ## Fix safety
    Keras: the fix sets the loss's `from_logits` to what the last layer outputs (a loss named by a string
    becomes the loss object with `from_logits=True`). Only the loss changes, so this is safe when the loss is
    built where it is used, and unsafe when a loss object bound to a name is also used elsewhere (those
    uses change too), or when the activation does not match the loss (a `sigmoid` layer with a categorical
    loss: a softmax may have been meant). PyTorch: a sigmoid written in the loss's argument is dropped, and a name bound to
    `torch.sigmoid(z)` is replaced in the loss by `z` (bound to a new name first if it is an expression):
    safe, nothing but the loss changes. No fix is offered when the sigmoid is the model's own last layer
    (remove it or use `BCELoss`: the author's choice), nor for a softmax fed to a sigmoid loss.
    """

    code = "TL010"
    name = "logits-activation-mismatch"
    summary = "Probabilities fed to a loss that expects logits, or logits to one that expects probabilities"
    fix = FIX_SAFE
    frameworks = ("pytorch", "keras")
    # a loss "with logits" (BCEWithLogitsLoss, tf.nn.*_with_logits, from_logits=), or a Keras cross-entropy
    requires = (("with_logits", "WithLogits", "from_logits", "crossentropy", "Crossentropy", "cross_entropy",
                 "bce", "BCE"),)

    def check(self, model: ScriptModel, options):
        for feed in model.loss_feeds:
            if not feed.trained:
                continue  # a validation loss or a metric: the training loss carries the finding
            kind = feed.value.kind
            if feed.loss.expects == LOGITS and kind in PROBABILITIES and not tl009_reported(feed):
                yield Violation(feed.node, _probabilities_message(model, feed), _probabilities_fix(model, feed))
            elif feed.loss.expects == PROBS and kind == LOGITS and feed.loss.framework == KERAS:
                yield Violation(feed.node, _logits_message(model, feed), keras_from_logits(model, feed, True))


def _family(feed: LossFeed) -> str:
    return SIGMOID if feed.loss.qualname in K.SIGMOID_LOSSES else SOFTMAX


def _probabilities_fix(model: ScriptModel, feed: LossFeed):
    local = without_activation(model, feed) if feed.value.kind == _family(feed) else None
    if local is not None:
        return local
    if feed.loss.framework == KERAS and feed.loss.from_logits is not None:
        fix = keras_from_logits(model, feed, False)
        if fix is not None and feed.value.kind != _family(feed):
            fix.applicability = UNSAFE  # a sigmoid layer with a categorical loss: which one was meant is unclear
        return fix
    return None


def _loss_text(model: ScriptModel, feed: LossFeed) -> str:
    built = feed.loss.built
    if feed.argument is None and built is not None:  # compile(loss=...)
        text = model.code(built)
        return text if len(text) <= 60 and "\n" not in text else feed.loss.qualname.rsplit(".", 1)[-1]
    return feed.loss.qualname.rsplit(".", 1)[-1]


def _probabilities_message(model: ScriptModel, feed: LossFeed) -> str:
    kind = feed.value.kind
    told = " (`from_logits=True`)" if feed.loss.from_logits is not None else ""
    squash = ("a sigmoid maps them into [0.5, 0.73]" if _family(feed) == SIGMOID
              else "a softmax of values in [0, 1] is nearly uniform")
    recovered = ""
    if feed.loss.qualname.startswith("keras.") and not (
            feed.argument is not None and model.contains(feed.argument, feed.value.origin)) and feed.value.inputs is None:
        recovered = (" (Keras on TensorFlow recovers the logits of its own activation layers and warns; the JAX "
                     "and PyTorch backends do not)")
    return (f"`{_loss_text(model, feed)}` expects logits{told} and applies the {_family(feed)} itself, but "
            f"receives {kind} probabilities {origin_text(model, feed)}: they are squashed twice ({squash}), "
            f"so the loss cannot reach its targets and its gradients shrink{recovered}")


def _logits_message(model: ScriptModel, feed: LossFeed) -> str:
    model_name = feed.model or feed.value.model
    holder = f"`{model_name}`'s last layer" if model_name else "the model's last layer"
    origin = feed.value.origin
    return (f"`{_loss_text(model, feed)}` expects probabilities (`from_logits=False`), but {holder} "
            f"`{' '.join(model.code(origin).split())[:60]}` (line {model.line(origin)}) has no activation: "
            f"its logits are clipped into [1e-7, 1 - 1e-7] as if they were probabilities, so gradients vanish "
            f"and training goes nowhere; pass `from_logits=True`")
