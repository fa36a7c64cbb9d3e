from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.evaluation import AFTER_EVAL, EVAL_FUNCTION, HELD_OUT_LOOP, Phase
from ..analysis.events import FORWARD, Event
from ..analysis.names import last
from ..fixes import UNSAFE, Fix
from .base import FIX_SAFE, Rule, Violation
from .blocks import decorate, no_grad_call, wrap
from .common import source_text


class EvalWithoutNoGrad(Rule):
    """
    ## What it does
    Checks for a model called in an evaluation or inference phase with autograd on, when nothing in that
    phase backpropagates: a loop over validation or test data, a function such as `evaluate()`,
    `validate()`, `test()` or `predict()` that loops over data or calls `model.eval()`, the code that
    follows `model.eval()`, or a call of the model on held-out data (`model(X_val)`).

    Not reported: forwards under `with torch.no_grad()`, `torch.inference_mode()`,
    `torch.set_grad_enabled(False)` or a `@torch.no_grad()` decorator (here or around the call of the
    helper); autograd switched on on purpose (`torch.enable_grad()`, `set_grad_enabled(is_train)`);
    phases that compute gradients (a backward, `torch.autograd.grad`, inputs that require gradients as for
    saliency maps or adversarial examples, the model handed to an attack or explainer); outputs that a later
    backward uses; models whose parameters are all frozen.

    ## Why is this bad?
    With autograd on, every forward records the graph backward would need, and keeps the activations of
    every layer alive for it as long as the outputs live. An evaluation never runs backward, so this costs
    memory and time on every batch for nothing, and an evaluation that keeps its outputs (`preds.append(out)`)
    keeps every batch's graph: evaluation runs out of memory where training did not.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    val_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 4

    model.eval()
    losses = []
    for x, y in val_loader:
        losses.append(torch.nn.functional.mse_loss(model(x), y))
    print(torch.stack(losses).mean())
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    val_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 4

    model.eval()
    losses = []
    with torch.no_grad():
        for x, y in val_loader:
            losses.append(torch.nn.functional.mse_loss(model(x), y))
    print(torch.stack(losses).mean())
    ```

    ## Fix safety
    The fix puts the evaluation under `torch.no_grad()`: a function named to evaluate gets the
    `@torch.no_grad()` decorator; a loop over held-out data, the statements after `model.eval()` or the
    statement that calls the model on held-out data go into a `with torch.no_grad():` block. It is safe:
    nothing in the phase, nor after it in this file, differentiates its outputs. It is unsafe when the
    phase is in a function that returns its results to callers this file does not show (they could
    backpropagate through them). No fix is offered when the file does not import `torch` by name, or the
    statements hold a string spanning lines (re-indenting would change it).
    """

    code = "TL008"
    name = "eval-without-no-grad"
    summary = "A model runs with autograd on in an evaluation phase that never backpropagates"
    fix = FIX_SAFE
    frameworks = ("pytorch",)
    # a torch model (torch / transformers / timm / lightning, here or in the project modules it imports), and
    # what says the phase evaluates: held-out data (`val`, `test`, `dev`, `holdout`,
    # `train=False`, `X[n_train:]`), an evaluate()/predict()/inference() function, or model.eval()
    requires = (("torch", "transformers", "timm", "lightning"),
                ("val", "test", "dev", "predict", "infer", "holdout", "train"))

    def check(self, model: ScriptModel, options):
        evaluation = model.evaluation
        if evaluation.grad_switched_globally:
            return
        frozen = evaluation.frozen
        candidates = [f for f in model.of_kind(FORWARD) if f.context.grad_enabled and not _discarded(f)
                      and last(f.spelled or "") not in frozen and evaluation.torch_module(f)]
        done: set[int] = set()
        for phase in evaluation.phases_calling(candidates):
            chosen = {id(f) for f in candidates}
            graphs = [f for f in phase.forwards
                      if id(f) in chosen and id(f.node) not in done and not evaluation.grad_chosen(f)]
            if not graphs or evaluation.training(phase) or evaluation.feeds_backward(phase):
                continue
            site = evaluation.report_site(graphs[0])
            if site is None:
                continue
            done.update(id(f.node) for f in phase.forwards)
            yield Violation(site[0], site[1] + _message(model, phase, graphs), _fix(model, phase, graphs))


def _covering(model: ScriptModel, phase: Phase, graphs: list[Event]) -> list[ast.stmt]:
    """The fewest consecutive statements of the phase that hold every call that records a graph (after
    `model.eval()`, the statements up to the last such call, not the rest of the script)."""
    depth = len(phase.chain)
    anchors = [f.context.call_chain[depth] if len(f.context.call_chain) > depth else f.node for f in graphs]
    holding = [i for i, s in enumerate(phase.statements) if any(model.contains(s, a) for a in anchors)]
    return phase.statements[holding[0]:holding[-1] + 1] if holding else []


_SHAPE_READS = frozenset({"shape", "size", "dim", "ndim", "dtype", "device"})


def _discarded(forward: Event) -> bool:
    """`model(dummy)` as a statement of its own: a warm-up or a timing run; or a call whose output is only
    asked for its shape (`print(encoder(img).shape)`, `model(x).size()`): the tensor is dropped at once, and
    its graph with it."""
    stmt = forward.stmt
    if stmt is None:
        return False
    if isinstance(stmt.node, ast.Expr) and stmt.node.value is forward.node:
        return True
    return any(isinstance(node, ast.Attribute) and node.value is forward.node and node.attr in _SHAPE_READS
               for node in ast.walk(stmt.node))



def _where(model: ScriptModel, phase: Phase) -> str:
    line = model.line(phase.node)
    if phase.kind == HELD_OUT_LOOP:
        return f"the loop over held-out data `{phase.subject}` (line {line})"
    if phase.kind == EVAL_FUNCTION:
        return f"`{phase.subject}` (line {line})"
    if phase.kind == AFTER_EVAL:
        return f"the evaluation after `{phase.subject}` (line {line})"
    return f"this call on held-out data `{phase.subject}`"


def _message(model: ScriptModel, phase: Phase, graphs: list[Event]) -> str:
    first = graphs[0]
    more = f" (and {len(graphs) - 1} more call{'s' if len(graphs) > 2 else ''} of a model)" if len(graphs) > 1 else ""
    return (f"`{source_text(model, first.node)}`{more} runs with autograd on in {_where(model, phase)}, and nothing "
            f"there backpropagates: every call records an autograd graph that is never used, holding the "
            f"activations (memory and time), and outputs kept across batches keep their graphs alive")


def _fix(model: ScriptModel, phase: Phase, graphs: list[Event]) -> Fix | None:
    no_grad = no_grad_call(model)
    if no_grad is None:
        return None
    if phase.kind == EVAL_FUNCTION:
        edit = decorate(model, phase.node, no_grad)
        message = f"Decorate `{phase.subject}` with `@{no_grad}`"
    else:
        statements = _covering(model, phase, graphs)
        edit = wrap(model, statements, f"with {no_grad}") if statements else None
        message = f"Run the evaluation under `with {no_grad}:`"
    if edit is None:
        return None
    fix = Fix(message, [edit])
    if model.evaluation.returns_to_unseen_callers(phase.function):
        fix.applicability = UNSAFE
    return fix
