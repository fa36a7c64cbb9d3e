from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.evaluation import EVAL_FUNCTION, HELD_OUT_FORWARD, HELD_OUT_LOOP, Phase
from ..analysis.evalmode import EvalModes, TrainModeAt, computes_metric
from ..analysis.events import FORWARD, Event
from ..analysis.layers import Held
from ..fixes import Fix, InsertAfter, InsertBefore, statement
from .base import FIX_SAFE, Rule, Violation
from .common import source_text


class MissingEvalMode(Rule):
    """
    ## What it does
    Checks for a validation or test loop (a loop over held-out data, or a function such as `evaluate()`
    or `validate()`, that computes a loss or a metric and trains nothing) calling a model that holds
    Dropout or BatchNorm while the model is still in train mode: no `model.eval()` runs between the
    training (or the model's construction) and the evaluation.

    Not reported: `model.eval()` before the evaluation (here or in the helper that evaluates); a model
    with neither Dropout nor BatchNorm (or one we cannot trace to how it is built); a `model.train()`
    written right before the evaluation with no training between (Monte Carlo dropout, test-time
    batch-norm adaptation: train mode on purpose); a model handed to code we cannot see into before the
    evaluation (it may switch the mode); phases that train.

    ## Why is this bad?
    In train mode, dropout keeps dropping units, so the validation metrics are those of a random
    sub-network and change from one evaluation of the same data to the next; batch norm normalises each
    batch with its own statistics and *updates its running statistics with the validation data*, so
    evaluating changes the model, and the numbers used for early stopping or model selection are wrong.
    Nothing raises an error.

    ## Example
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 4
    val_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 2

    for epoch in range(3):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            for x, y in val_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 4
    val_loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 2

    for epoch in range(3):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
    ```

    ## Fix safety
    The fix inserts `model.eval()` right before the statement that evaluates (the loop, or the statement
    of the evaluation function that holds it) and `model.train()` right after it, so the code that follows
    runs in the mode it ran in before and no training step is left in eval mode. It is safe: the model was
    in train mode there on every path the rule can see. No fix is offered when the evaluation can `return`
    from the middle (the `train()` after it would not run).

    ## Keras
    Keras has no counterpart: a Keras model runs its Dropout and BatchNormalization layers in inference
    mode unless it is called with `training=True`, which a validation step would have to write on purpose
    (as Monte Carlo dropout does).
    """

    code = "TL016"
    name = "missing-eval-mode"
    summary = "A validation or test loop runs a model with Dropout or BatchNorm in train mode"
    fix = FIX_SAFE
    frameworks = ("pytorch",)
    # a torch model that holds a mode-dependent layer (built here or in a module of the project), and what
    # says the loop evaluates (held-out data, or an evaluate()/validate()/test() function)
    requires = (("torch", "transformers", "timm", "lightning"),
                ("Dropout", "BatchNorm", "dropout", "batch_norm", "torchvision", "timm", "Transformer", "RReLU"),
                ("val", "test", "dev", "predict", "infer", "holdout", "train"))

    def check(self, model: ScriptModel, options):
        evaluation = model.evaluation
        holding: dict[int, Held] = {}
        for forward in model.of_kind(FORWARD):
            if evaluation.torch_module(forward):
                held = _held(model, forward)
                if held is not None:
                    holding[id(forward)] = held
        modes = None
        done: set[int] = set()
        for phase in evaluation.phases_calling([f for f in model.of_kind(FORWARD) if id(f) in holding]):
            if phase.kind not in _ORDER:
                continue
            for forward in phase.forwards:
                held = holding.get(id(forward))
                if held is None or id(forward.node) in done or not computes_metric(model, phase) \
                        or evaluation.training(phase):
                    continue
                modes = modes or EvalModes(model)
                why = modes.train_mode_at(phase, forward)
                if why is None:
                    continue
                site = evaluation.report_site(forward)
                if site is None:
                    continue
                done.update(id(f.node) for f in phase.forwards)
                yield Violation(site[0], site[1] + _message(model, phase, forward, held, why),
                                _fix(model, phase, forward))
                break


_ORDER = (EVAL_FUNCTION, HELD_OUT_LOOP, HELD_OUT_FORWARD)


def _held(model: ScriptModel, forward: Event) -> Held | None:
    if forward.spelled is None:
        return None
    return model.layers.held(forward.spelled, forward.context.function, forward.context.call_chain,
                             model.evaluation.callers)


def _where(model: ScriptModel, phase: Phase) -> str:
    line = model.line(phase.node)
    if phase.kind == HELD_OUT_LOOP:
        return f"the loop over held-out data `{phase.subject}` (line {line})"
    if phase.kind == EVAL_FUNCTION:
        return f"`{phase.subject}` (line {line})"
    return f"this evaluation on held-out data `{phase.subject}`"


def _message(model: ScriptModel, phase: Phase, forward: Event, held: Held, why: TrainModeAt) -> str:
    name = forward.spelled
    if why.since is not None:
        since = f"since `{source_text(model, why.since.node)}` (line {model.line(why.since.node)})"
        if why.trained is not None:
            since += f" and the training after it (line {model.line(why.trained.node)})"
    elif why.trained is not None:
        since = f"since it was built, through the training (line {model.line(why.trained.node)})"
    else:
        since = "since it was built"
    return (f"`{source_text(model, forward.node)}` in {_where(model, phase)} runs `{name}` in train mode: no "
            f"`{name}.eval()` runs {since}, and `{name}` holds `{held.layer}` (line {model.line(held.node)}): "
            f"dropout stays on, so the metrics are noisy, and batch norm updates its running statistics with "
            f"the held-out data")


def _fix(model: ScriptModel, phase: Phase, forward: Event) -> Fix | None:
    name = model.modes.name_in(forward.subject, phase.function, phase.chain) if forward.subject else None
    if name is None:
        return None
    anchors = [_anchor(forward, phase) for forward in phase.forwards]
    chosen = [s for s in phase.statements if any(model.contains(s, a) for a in anchors)]
    if not chosen:
        return None
    first, last = phase.statements.index(chosen[0]), phase.statements.index(chosen[-1])
    statements = phase.statements[first:last + 1]
    if any(_leaves(s) for s in statements):
        return None
    return Fix(f"Call `{name}.eval()` before the evaluation and `{name}.train()` after it",
               [InsertBefore(statements[0], statement(f"{name}.eval()")),
                InsertAfter(statements[-1], statement(f"{name}.train()"))])


def _anchor(forward: Event, phase: Phase) -> ast.AST:
    chain = forward.context.call_chain
    return chain[len(phase.chain)] if len(chain) > len(phase.chain) else forward.node


def _leaves(node: ast.stmt) -> bool:
    """Can the statement leave its function from the middle (`return`, `yield`)?"""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, (ast.Return, ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(current))
    return False
