from __future__ import annotations

from ..analysis import ScriptModel
from ..analysis.events import BACKWARD, OPAQUE_USE, OPT_STEP, ZERO_GRAD, Event, LoopFrame
from ..analysis.order import exclusive
from ..analysis.roles import MODEL, OPTIMIZER
from ..fixes import Fix, InsertBefore, statement
from .base import FIX_SAFE, Rule, Violation
from .common import first_statement, optimizer_models, same_scope


class MissingZeroGrad(Rule):
    """
    ## What it does
    Checks for training loops that call `backward()` and an optimizer's `step()` on every iteration
    but never clear that optimizer's gradients.

    ## Why is this bad?
    PyTorch *adds* each `backward()` into `.grad`. Without `optimizer.zero_grad()` (or
    `model.zero_grad()`, or `p.grad = None`), every step uses the sum of all gradients so far:
    the updates grow with every batch and training drifts or diverges without any error.
    Gradient accumulation is fine: clearing inside the same `if` as the step is recognised.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Fix safety
    The fix inserts `optimizer.zero_grad()` as the first statement of the loop's body (or right
    before the `backward()` when the loop lives in another function). It is safe: the only
    behaviour it changes is the accumulation the rule reports.
    """

    code = "TL001"
    name = "missing-zero-grad"
    summary = "Training loop never clears the optimizer's gradients"
    fix = FIX_SAFE
    requires = (("backward",), ("step",))  # a backward() and an optimizer step in one loop

    def check(self, model: ScriptModel, options):
        for frame in model.loops:
            events = model.events_in(frame)
            if not any(e.kind == BACKWARD for e in events):
                continue
            for step in _uncleared_steps(model, frame, events):
                backwards = [e for e in events if e.kind == BACKWARD and not exclusive(e, step)]
                before = [e for e in backwards if e.index < step.index]
                backward = before[-1] if before else backwards[0]
                name = step.spelled
                yield Violation(
                    backward.node,
                    f"`{name}`'s gradients are never cleared in this loop: every `backward()` adds to the "
                    f"previous iterations' gradients before `{_step_text(step)}` (line {model.line(step.node)})",
                    _fix(frame, step, backward),
                )


def _uncleared_steps(model: ScriptModel, frame: LoopFrame, events: list[Event]) -> list[Event]:
    """Per optimizer, the first step of the iteration that a backward reaches and nothing clears: a zero_grad
    in another arm of the same `if` (the bf16 arm, when the step is in the fp32 arm) does not clear it."""
    inner = _inner_steps(model, frame)
    found: dict[str, Event] = {}
    for step in events:
        if (step.kind != OPT_STEP or step.subject is None or not step.context.grad_enabled
                or step.subject in found or step.subject in inner):
            continue
        if not any(e.kind == BACKWARD and not exclusive(e, step) for e in events):
            continue
        if step.role is not None and model.optimisation.made_anew_in(step.role.call, frame.node):
            continue  # a new optimizer over new tensors in each iteration: no gradient carries over
        if not _clears(model, [e for e in events if not exclusive(e, step)], step):
            found[step.subject] = step
    return list(found.values())


def _inner_steps(model: ScriptModel, frame: LoopFrame) -> set[str]:
    """The optimizers stepped by nested loops that run backward and step on their own: those loops are the
    iterations to judge, not this one."""
    stepped = set()
    for inner in model.inner_loops(frame):
        events = model.events_in(inner)
        if any(e.kind == BACKWARD for e in events):
            stepped.update(e.subject for e in events if e.kind == OPT_STEP and e.subject)
    return stepped


def _clears(model: ScriptModel, events: list[Event], step: Event) -> bool:
    """Could anything in the iteration clear the gradients of the stepped optimizer? Unsure means yes."""
    models = optimizer_models(model, step)
    for event in events:
        if event.kind == OPAQUE_USE and event.subject == step.subject:
            return True
        if event.kind != ZERO_GRAD:
            continue
        if event.detail.get("everything") or event.subject == step.subject:
            return True
        if event.subject is not None and step.subject is not None and event.subject.startswith(step.subject + "."):
            return True  # a wrapper's zero_grad() clearing the optimizer it wraps (`self.optimizer.zero_grad()`)
        kind = event.role.kind if event.role else None
        if kind == OPTIMIZER:
            continue  # another optimizer's zero_grad (a GAN's other half)
        if kind == MODEL and models is not None and event.spelled is not None:
            names = {event.spelled, _plain(event.subject)}  # as written in the helper, and in the caller
            if any(m == name or m.startswith(name + ".") for m in models for name in names if name):
                return True
            continue  # the zero_grad of a model this optimizer does not train
        return True
    return False


def _plain(identity: str | None) -> str | None:
    """An identity without a helper's local prefix (`train#2::qa_model` -> `qa_model`)."""
    return identity.rsplit("::", 1)[-1] if identity else None


def _step_text(step: Event) -> str:
    scaler = step.detail.get("scaler")
    return f"{scaler}.step({step.spelled})" if scaler else f"{step.spelled}.step()"


def _fix(frame: LoopFrame, step: Event, backward: Event) -> Fix | None:
    clear = statement(f"{step.spelled}.zero_grad()")
    message = f"Call `{step.spelled}.zero_grad()` at the start of each iteration"
    if same_scope(frame, step):
        anchor = first_statement(frame.node)
        if anchor is not None:
            return Fix(message, [InsertBefore(anchor, clear)])
    if backward.context.function is step.context.function and backward.stmt is not None and backward.stmt.line:
        return Fix(f"Call `{step.spelled}.zero_grad()` before `backward()`", [InsertBefore(backward.stmt.line, clear)])
    return None
