from __future__ import annotations

from ..analysis import ScriptModel
from ..analysis import knowledge as K
from ..analysis.kinds import LOG_PROBS, LOGITS, SOFTMAX, TORCH
from ..analysis.losses import LossFeed
from .activation_fixes import model_log_softmax, with_log_softmax, without_activation
from .base import FIX_SAFE, Rule, Violation
from .common import source_text


class SoftmaxBeforeCrossEntropy(Rule):
    """
    ## What it does
    Checks for softmax probabilities passed to a PyTorch loss that expects something else:
    `CrossEntropyLoss` / `F.cross_entropy` (which expect logits) and `NLLLoss` / `F.nll_loss` (which expect
    log-probabilities). The softmax may be written in the loss's argument (`F.softmax(z, dim=1)`,
    `torch.softmax`, `z.softmax(1)`), in a name the loss reads, or in the model itself: an `nn.Sequential`
    ending in `nn.Softmax`, a module whose `forward` returns a softmax, reached through `model(x)`,
    `self(x)` or a training helper's parameters.

    Not reported: `log_softmax` with `NLLLoss`, a softmax computed only for predictions or metrics while the
    loss gets the logits, a softmax passed as the *target* (soft labels, distillation), a loss computed under
    `torch.no_grad()` or turned straight into a number (a validation loss, a metric: the training loss of the
    same model carries the finding), and any value whose origin the file does not show.

    ## Why is this bad?
    `CrossEntropyLoss` applies `log_softmax` itself. Given probabilities, it takes the softmax of values that
    already lie in [0, 1]: every class gets nearly the same probability, the loss cannot fall far below
    `log(C)`, and its gradient at the logits passes through two softmax Jacobians: several times smaller from
    the first step, and vanishing wherever the model is confident, right or wrong. Training stalls or crawls,
    and nothing raises an error. `NLLLoss` given probabilities computes `-p`
    instead of `-log p`: the loss is bounded and its gradient vanishes for the confident mistakes it should
    correct.

    ## Example
    ```python
    import torch
    import torch.nn.functional as F

    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, y in [(torch.randn(16, 8), torch.randint(0, 4, (16,)))] * 10:
        optimizer.zero_grad()
        loss = F.cross_entropy(F.softmax(model(x), dim=1), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import torch
    import torch.nn.functional as F

    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, y in [(torch.randn(16, 8), torch.randint(0, 4, (16,)))] * 10:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Fix safety
    When the softmax is written in the loss's argument, the fix drops it (for `NLLLoss`: makes it
    `log_softmax`); when the loss reads a name bound to a softmax, the loss reads the softmax's input instead
    (bound to a new name first if it is an expression), and the name keeps its probabilities for everything
    else. Both are safe: only the loss changes, which is the bug. When the softmax is the model's own last
    layer or `forward`'s return, the fix turns it into a log_softmax (`nn.LogSoftmax`, `F.log_softmax`):
    `CrossEntropyLoss` of log-probabilities equals that of logits, and `NLLLoss` wants them. That fix is
    unsafe: every other use of the model's output (a probability threshold, a confidence, an exported
    model) then sees log-probabilities.
    """

    code = "TL009"
    name = "softmax-before-cross-entropy"
    summary = "Softmax probabilities fed to CrossEntropyLoss or NLLLoss"
    fix = FIX_SAFE
    frameworks = ("pytorch",)
    # a softmax (F.softmax, nn.Softmax, .softmax()) and a cross-entropy / NLL loss
    requires = (("softmax", "Softmax"), ("cross_entropy", "CrossEntropyLoss", "nll_loss", "NLLLoss"))

    def check(self, model: ScriptModel, options):
        for feed in model.loss_feeds:
            if not feed.trained:
                continue  # a validation loss or a metric: the training loss carries the finding
            if reported(feed):
                yield Violation(feed.node, _message(model, feed), _fix(model, feed))


def reported(feed: LossFeed) -> bool:
    """Softmax probabilities reaching a PyTorch softmax cross-entropy or NLL loss (TL010 takes the others)."""
    loss = feed.loss
    return (loss.framework == TORCH and loss.expects in (LOGITS, LOG_PROBS)
            and loss.qualname not in K.SIGMOID_LOSSES and feed.value.kind == SOFTMAX)


def _fix(model: ScriptModel, feed: LossFeed):
    if feed.loss.expects == LOG_PROBS:
        return with_log_softmax(model, feed) or model_log_softmax(model, feed)
    return without_activation(model, feed) or model_log_softmax(model, feed)


def _message(model: ScriptModel, feed: LossFeed) -> str:
    loss = feed.loss.qualname.rsplit(".", 1)[-1]
    where = origin_text(model, feed)
    if feed.loss.expects == LOG_PROBS:
        return (f"`{loss}` expects log-probabilities, but receives softmax probabilities {where}: it computes "
                f"-p instead of -log p, a bounded loss whose gradients vanish for confident mistakes; use "
                f"`log_softmax`")
    return (f"`{loss}` expects logits and applies log_softmax itself, but receives softmax probabilities {where}: "
            f"the softmax is applied twice, so the loss sees nearly uniform predictions and the gradient at the "
            f"logits shrinks (vanishing for confident predictions): training stalls")


def origin_text(model: ScriptModel, feed: LossFeed) -> str:
    """Where the activation the loss receives is written, for a message."""
    value = feed.value
    origin = f"`{source_text(model, value.origin)}` (line {model.line(value.origin)})"
    if feed.argument is not None and model.contains(feed.argument, value.origin):
        return f"from {origin}"
    if value.via is not None and value.model is None:
        return f"through `{source_text(model, value.via)}`, from {origin}"
    holder = value.model or (source_text(model, value.via) if value.via is not None else None)
    if holder is None:
        return f"from {origin}"
    return f"from `{holder}`, whose output is {origin}"
