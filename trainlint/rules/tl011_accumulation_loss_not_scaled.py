from __future__ import annotations

import ast

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis.accumulation import (AccumulationGuard, LossTrace, accumulation_guard, advances, loss_expression,
                                     scales_gradients)
from ..analysis.events import BACKWARD, OPT_STEP, ZERO_GRAD
from ..analysis.names import dotted
from ..analysis.order import exclusive, same_instance, settled_guard
from ..analysis.roles import MODEL, OPTIMIZER
from ..fixes import Fix, Replace
from .base import FIX_UNSAFE, Rule, Violation
from .common import optimizer_models, source_text

_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)


class AccumulationLossNotScaled(Rule):
    """
    ## What it does
    Checks for gradient accumulation — `backward()` on every micro-batch, `optimizer.step()` and
    `zero_grad()` only every N micro-batches (`if (i + 1) % N == 0:`) — where the loss is not divided
    by N before `backward()`.

    Not reported: `loss / N` (or `loss /= N`, `loss.div_(N)`, `criterion(...) / N`, a helper handed N),
    a sum-reduced loss (`reduction="sum"`: summing over the micro-batches is summing over the large
    batch), gradients divided by hand before the step (`p.grad /= N`), and `accelerator.backward(loss)`
    or a DeepSpeed engine's `backward()`, which divide by their own accumulation steps (accelerate's
    `accumulate()` needs no modulo guard at all).

    ## Why is this bad?
    `backward()` *adds* each micro-batch's gradient into `.grad`. With a mean-reduced loss, N
    micro-batches summed give N times the gradient of their average, which is what one large batch
    would give. Every step is then N times too large: the effective learning rate is N times the one
    you set (and weight decay, clipping thresholds and warmup no longer mean what they say). Training
    may still converge, or diverge, or need a learning rate N times smaller than the one you tuned
    without accumulation.

    ## Example
    ```python
    import torch

    accumulation_steps = 4
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for i, (x, y) in enumerate([(torch.randn(8, 4), torch.randn(8, 1))] * 8):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    ```

    ## Use instead
    ```python
    import torch

    accumulation_steps = 4
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for i, (x, y) in enumerate([(torch.randn(8, 4), torch.randn(8, 1))] * 8):
        loss = torch.nn.functional.mse_loss(model(x), y)
        (loss / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    ```

    ## Fix safety
    The fix divides what `backward()` runs on by N: `(loss / N).backward()`, `scaler.scale(loss / N)`
    (the logged `loss` keeps its value). It is unsafe: it divides every update by N, which is what
    accumulation means, but a learning rate tuned with the summed gradients then has to be N times
    larger to train the same way.
    """

    code = "TL011"
    name = "accumulation-loss-not-scaled"
    summary = "Gradient accumulation without dividing the loss by the number of micro-batches"
    fix = FIX_UNSAFE
    requires = (("backward",), ("step",), ("%",))  # a backward, a step, and a modulo guard

    def check(self, model: ScriptModel, options):
        reported: set[int] = set()
        for frame in model.loops:
            events = model.events_in(frame)
            for step in events:
                if step.kind != OPT_STEP or step.context.loop is not frame or step.subject is None:
                    continue
                guard = _guard(frame, step)
                if guard is None or not advances(guard.counter, frame.node, frame.loop.target_keys):
                    continue
                backward = _summed_backward(model, frame, events, step, guard)
                if backward is None or id(backward.node) in reported:
                    continue
                if not _cleared_with_the_step(model, frame, events, step) or scales_gradients(frame.node):
                    continue
                loss = loss_expression(backward)
                function = backward.context.function
                scope = function.node if function is not None else model.module
                trace = LossTrace(model.roles, function, scope, dotted(guard.divisor))
                if loss is None or trace.normalised(loss):
                    continue
                reported.add(id(backward.node))
                yield Violation(backward.node, _message(model, backward, step, guard),
                                _fix(model, frame, backward, step, guard, loss))


def _guard(frame: LoopFrame, step: Event) -> AccumulationGuard | None:
    for branch, arm in step.context.guards[frame.outer_guards:]:
        guard = accumulation_guard(branch, arm)
        if guard is not None:
            return guard
    return None


def _in_guard(event: Event, guard: AccumulationGuard) -> bool:
    return any(branch is guard.branch and arm == 0 for branch, arm in event.context.guards)


def _summed_backward(model: ScriptModel, frame: LoopFrame, events: list[Event], step: Event,
                     guard: AccumulationGuard) -> Event | None:
    """The backward that runs on every micro-batch before the guarded step (none when the guard holds a
    backward of its own: then the step does not sum micro-batches)."""
    backwards = [b for b in events if b.kind == BACKWARD and b.index < step.index and not exclusive(b, step)]
    if any(_in_guard(b, guard) for b in backwards):
        return None
    every = [b for b in backwards if all(settled_guard(model, branch)
                                         for branch, _ in b.context.guards[frame.outer_guards:])]
    return every[-1] if every else None


def _cleared_with_the_step(model: ScriptModel, frame: LoopFrame, events: list[Event], step: Event) -> bool:
    """Are the stepped optimizer's gradients cleared in the iteration only every N micro-batches (under an
    accumulation guard), and at least once?"""
    models = optimizer_models(model, step)
    clears = []
    for zero in events:
        if zero.kind != ZERO_GRAD or exclusive(zero, step):
            continue
        kind = zero.role.kind if zero.role else None
        if zero.subject != step.subject and not zero.detail.get("everything"):
            if kind == OPTIMIZER:
                continue  # another optimizer's
            if kind == MODEL and models is not None and zero.spelled is not None and not any(
                    m == zero.spelled or m.startswith(zero.spelled + ".") for m in models):
                continue  # a model this optimizer does not train
        clears.append(zero)
    return bool(clears) and all(
        any(accumulation_guard(branch, arm) for branch, arm in z.context.guards[frame.outer_guards:])
        for z in clears)


def _message(model: ScriptModel, backward: Event, step: Event, guard: AccumulationGuard) -> str:
    n = f"`{source_text(model, guard.divisor, 50)}`"
    return (f"`{source_text(model, backward.node)}` (line {model.line(backward.node)}) accumulates gradients over "
            f"{n} micro-batches before `{source_text(model, step.node)}` (line {model.line(step.node)}), but the loss "
            f"is not divided by {n}: each step applies the sum of their gradients instead of the mean, so the "
            f"effective learning rate is {n} times the one set")


def _fix(model: ScriptModel, frame: LoopFrame, backward: Event, step: Event, guard: AccumulationGuard,
         loss: ast.expr) -> Fix | None:
    """`loss.backward()` -> `(loss / N).backward()`; `scaler.scale(loss)` -> `scaler.scale(loss / N)`, when N
    reads the same in the backward's scope and does not change between iterations."""
    if not same_instance(backward, step) or model.home(backward.node) is not None:
        return None
    divisor_keys = {dotted(n) for n in ast.walk(guard.divisor) if isinstance(n, (ast.Name, ast.Attribute))}
    divisor_keys.discard(None)
    assigned = {key for key, _ in _assignments(frame.node)}
    if any(k in assigned or k.split(".")[0] in assigned for k in divisor_keys):
        return None
    n = model.code(guard.divisor)
    if not isinstance(guard.divisor, _ATOMS):
        n = f"({n})"
    code = model.code(loss)
    atom = isinstance(loss, _ATOMS)
    call = backward.site.call
    if isinstance(call.func, ast.Attribute) and call.func.value is loss:  # the receiver of .backward()
        new = f"({code} / {n})" if atom else f"({code}) / {n}"
    else:
        new = f"{code} / {n}" if atom else f"({code}) / {n}"
    return Fix(f"Divide the loss by {n} before `backward()`", [Replace(loss, new)], applicability="unsafe")


def _assignments(node: ast.AST):
    for child in ast.walk(node):
        if isinstance(child, ast.Assign):
            for target in child.targets:
                for part in ast.walk(target):
                    if dotted(part):
                        yield dotted(part), child
        elif isinstance(child, (ast.AugAssign, ast.AnnAssign, ast.For)):
            key = dotted(child.target)
            if key:
                yield key, child
