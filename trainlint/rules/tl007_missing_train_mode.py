from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.events import Event
from ..analysis.modes import EvalReach, TapeForward
from ..analysis.names import argument
from ..analysis.roles import OPTIMIZER
from ..fixes import Fix, InsertBefore, Replace, statement
from .base import FIX_SAFE, Rule, Violation
from .common import contains, parameters_owners


class MissingTrainMode(Rule):
    """
    ## What it does
    Checks for training steps that can run while the model is still in eval mode: `model.eval()` (or
    `model.train(False)`) is called inside the epoch loop, directly or through a helper such as
    `validate()`, or before the loop for a baseline evaluation, and on some path no `model.train()` runs
    before the model's next training step.

    Not reported: `model.train()` at the top of each epoch or inside the training helper, helpers that
    restore the previous mode (`model.train(was_training)`), `eval()` after the last training step,
    `eval()` on another object (an EMA copy, a frozen feature extractor the optimizer does not train),
    an `eval()` written into the training path itself with no evaluation between it and the
    training step (`if freeze_bn: model.eval()`: training in eval mode on purpose), an `eval()` that runs
    in the last iteration only (`if i == len(loader) - 1:`), and a model known to be built only of layers
    that ignore the mode (`nn.Linear`, `nn.ReLU`, ...: no dropout, no batch norm), where eval mode changes
    nothing.

    ## Why is this bad?
    `eval()` switches dropout off and makes batch norm use (and stop updating) its running statistics.
    Training in that mode silently removes the regularisation and freezes the normalisation statistics
    from the second epoch on (or from the first evaluation on): the model overfits or trains worse, and
    nothing raises an error. In Keras, a model called without `training=True` runs in inference mode even
    inside a `GradientTape`: the same silent loss of dropout and batch-norm statistics, on every step.

    ## Example
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def validate():
        model.eval()
        with torch.no_grad():
            return model(torch.randn(8, 4)).mean()

    model.train()
    for epoch in range(3):
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 4:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        validate()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def validate():
        model.eval()
        with torch.no_grad():
            return model(torch.randn(8, 4)).mean()

    for epoch in range(3):
        model.train()
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 4:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        validate()
    ```

    ## Fix safety
    The fix inserts `model.train()` at the start of the training phase: right before the statement of
    the loop that runs the training steps (the batch loop, or the call of the training helper). It is
    safe: `train()` only sets the mode the training steps were written for. In Keras the fix adds
    `training=True` to the model's call in the training step, which is what `fit()` passes: also safe.
    """

    code = "TL007"
    name = "missing-train-mode"
    summary = "Training steps can run while the model is still in eval mode"
    fix = FIX_SAFE
    frameworks = ("pytorch", "keras")
    # an eval() (or train(False)), or a Keras GradientTape step
    requires = (("eval", "train(False", "train(mode=False", "GradientTape"),)

    def check(self, model: ScriptModel, options):
        anchors: set[tuple[str, int]] = set()
        for reach in model.modes.eval_reaches(_owners):
            if _mode_free(model, reach):
                continue  # nothing in the model behaves differently in eval mode
            anchor, spelled = _anchor(model, reach)
            if anchor is not None:
                if (reach.model, id(anchor)) in anchors:
                    continue  # one insertion serves every eval() that reaches the same training phase
                anchors.add((reach.model, id(anchor)))
            yield Violation(reach.eval.node, _message(model, reach, spelled), _fix(anchor, spelled))
        for forward in model.tape_forwards:
            if forward.training is None and not forward.unknown_arguments and forward.layer is not None:
                yield Violation(forward.call, _keras_message(model, forward), _keras_fix(model, forward))


def _mode_free(model: ScriptModel, reach: EvalReach) -> bool:
    """Is the model known to be built of layers that ignore the mode (no dropout, no batch norm)? Asked where
    the eval() is written, and of the trained model's own name when it is a global."""
    ev = reach.eval
    if ev.spelled and model.layers.free(ev.spelled, ev.context.function):
        return True
    identity = reach.model
    return "::" not in identity and identity in model.structure.module_assignments and model.layers.free(identity, None)


def _owners(step: Event) -> list[str] | None:
    """Keys whose parameters the stepped optimizer holds; [] when it holds plain tensors (an image being
    optimised, an adversarial perturbation); None when unknown."""
    role = step.role
    if role is None or role.kind != OPTIMIZER or role.call is None:
        return None
    params = argument(role.call, 0, ("params",))
    if params is None:
        return None
    owners = parameters_owners(params)
    if owners:
        return owners
    if isinstance(params, (ast.List, ast.Tuple)) and params.elts and all(
            isinstance(e, (ast.Name, ast.Attribute)) or _is_requires_grad_call(e) for e in params.elts):
        return []
    return None


def _is_requires_grad_call(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "requires_grad_")


def _message(model: ScriptModel, reach: EvalReach, spelled: str | None) -> str:
    ev, step = reach.eval, reach.step
    name = spelled or ev.spelled
    where = f"`{model.code(ev.node)}` (line {model.line(ev.node)}"
    if ev.context.function is not None and ev.context.function is not reach.loop.function:
        where += f", in `{ev.context.function.name}()`"
    where += ")"
    step_text = f"`{model.code(step.node)}` (line {model.line(step.node)})"
    if reach.around:
        when = f"the training steps of the next iteration of the loop on line {model.line(reach.loop.node)}"
    else:
        when = f"the training loop on line {model.line(reach.loop.node)}"
    return (f"{where} leaves `{name}` in eval mode for {when}: no `{name}.train()` runs before {step_text} "
            f"on every path, so dropout is off and batch norm freezes its running statistics while training")


def _anchor(model: ScriptModel, reach: EvalReach) -> tuple[ast.stmt | None, str | None]:
    """The statement of the loop's body that starts the training phase, and the model's name there."""
    body = reach.loop.node.body
    chain = reach.first.context.call_chain
    candidates = [*chain, reach.first.node]
    for depth, node in enumerate(candidates):
        anchor = next((stmt for stmt in body if contains(stmt, node)), None)
        if anchor is None:
            continue
        if not reach.around and _reached_inside(model, reach.eval, anchor):
            return None, None  # the eval() itself runs in this statement: no single place to insert
        return anchor, model.modes.name_in(reach.model, reach.loop.function, chain[:depth])
    return None, None


def _reached_inside(model: ScriptModel, event: Event, anchor: ast.AST) -> bool:
    return any(contains(anchor, node) for node in [*event.context.call_chain, event.node])


def _fix(anchor: ast.stmt | None, spelled: str | None) -> Fix | None:
    if anchor is None or spelled is None:
        return None
    return Fix(f"Call `{spelled}.train()` at the start of the training phase",
               [InsertBefore(anchor, statement(f"{spelled}.train()"))])


def _keras_message(model: ScriptModel, forward: TapeForward) -> str:
    call = model.code(forward.call)
    if len(call) > 60 or "\n" in call:
        call = f"{forward.model}(...)"
    where = f", in `{forward.function.name}()`" if forward.function is not None else ""
    return (f"`{call}` (line {model.line(forward.call)}{where}) runs in the `tf.GradientTape` training step "
            f"on line {model.line(forward.tape)} without `training=True`, but `{forward.model}` holds "
            f"`{forward.layer}` (line {model.line(forward.layer_node)}): the step trains it in inference mode, "
            f"so dropout is off and batch norm neither uses nor updates the batch statistics")


def _keras_fix(model: ScriptModel, forward: TapeForward) -> Fix | None:
    """`model(x)` -> `model(x, training=True)`: the keyword goes right after the last argument, so a trailing
    comma and the call's layout stay as written."""
    call = forward.call
    text = model.code(call)
    arguments = [*call.args, *call.keywords]
    if arguments:
        last_end = max((a.end_lineno, a.end_col_offset) for a in arguments)
        cut = model.source.offset(*last_end) - model.source.start(call)
        new = f"{text[:cut]}, training=True{text[cut:]}"
    else:
        cut = text.rfind(")")
        if cut < 0:
            return None
        new = f"{text[:cut]}training=True{text[cut:]}"
    return Fix(f"Pass `training=True` to `{forward.model}(...)`", [Replace(call, new)])
