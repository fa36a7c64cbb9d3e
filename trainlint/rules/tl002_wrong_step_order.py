from __future__ import annotations

import ast

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis import knowledge as K
from ..analysis.events import BACKWARD, CLIP, GRAD_WRITE, OPT_STEP, SCHED_STEP, UNSCALE, ZERO_GRAD
from ..analysis.names import argument, dotted, last
from ..analysis.order import between, exclusive, reached_from, runs_with, same_instance, within_instance
from ..analysis.roles import MODEL
from ..fixes import Fix, move_after
from .base import FIX_SAFE, Rule, Violation
from .common import contains, enclosing_block, lone_statement, optimizer_models, source_text


class WrongStepOrder(Rule):
    """
    ## What it does
    Checks the order of the training calls within one iteration of a loop:

    - `optimizer.step()` before the `backward()` that produces its gradients;
    - `zero_grad()` between `backward()` and `optimizer.step()`;
    - `scheduler.step()` before `optimizer.step()` in the same iteration, including an epoch-level
      `scheduler.step()` at the start of the epoch (or of a `train(epoch)` function), before the
      batch loop that steps the optimizer.

    ## Why is this bad?
    `optimizer.step()` applies whatever is in `.grad` at that moment. Before `backward()` that is the
    previous batch's gradient (or nothing, right after `zero_grad()`); after a `zero_grad()` that
    follows `backward()` it is nothing at all. Either way the parameters are updated with stale or
    zero gradients and the loss barely moves, without any error.

    A PyTorch learning-rate scheduler's `step()` moves the schedule one value forward. Called before
    the first `optimizer.step()` (PyTorch >= 1.1 warns about it), the first value of the schedule is
    skipped and every step or epoch trains with the next one's learning rate: warmup starts too high
    and decays come one epoch early.

    Not reported: `ReduceLROnPlateau.step(metric)` after validation, `zero_grad()` after `step()` at
    the end of an iteration, steps inside a gradient-accumulation `if` after the backward, calls in
    different arms of an `if`/`else` (they never run in the same pass), and calls under a condition
    that changes between iterations (`if epoch < warmup:`, `if epoch > 0:`). A condition on a
    configuration flag (`if args.use_scheduler:`, `if scheduler is not None:`) does not hide a finding.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for epoch in range(3):
        scheduler.step()
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.zero_grad()
            optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for epoch in range(3):
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        scheduler.step()
    ```

    ## Fix safety
    The fix moves the misplaced statement to where it belongs: `optimizer.step()` to right after the
    `backward()` (after any clipping that follows it), `zero_grad()` to right after the step, and
    `scheduler.step()` to right after the statement that steps the optimizer (the batch loop, for an
    epoch-level scheduler). It is offered only when both statements sit directly in the same block,
    and it is safe: it restores the order PyTorch documents without changing anything else.
    """

    code = "TL002"
    name = "wrong-step-order"
    summary = "Optimizer, zero_grad or scheduler step called in the wrong order within an iteration"
    fix = FIX_SAFE
    # an optimizer step, and a backward, a hand-set .grad or a scheduler known by its constructor
    requires = (("step",), ("backward", ".grad", "lr_scheduler", "schedule"))

    def check(self, model: ScriptModel, options):
        for frame in model.loops:
            events = model.events_in(frame)
            if not any(e.kind in (OPT_STEP, SCHED_STEP) for e in events):
                continue
            yield from _step_before_backward(model, frame, events)
            yield from _zero_grad_between(model, frame, events)
            yield from _scheduler_first(model, frame, events)
        yield from _scheduler_outside_loops(model)


# -- optimizer.step() before backward() -------------------------------------------------------------
def _step_before_backward(model: ScriptModel, frame: LoopFrame, events: list[Event]):
    for step in events:
        if step.kind != OPT_STEP or step.context.loop is not frame or step.subject is None:
            continue
        if any(e.kind in (BACKWARD, GRAD_WRITE) and e.index < step.index and not exclusive(e, step) for e in events):
            continue  # gradients were already computed (or set by hand) in this iteration
        backward = next((e for e in events if e.kind == BACKWARD and e.index > step.index
                         and e.context.loop is frame and runs_with(step, e, model)), None)
        if backward is None:
            continue
        cleared = [z for z in events if z.kind == ZERO_GRAD and z.index < step.index and not exclusive(z, step)
                   and _clears(model, z, step)]
        if cleared:
            effect = (f"this step applies no gradient (`{source_text(model, cleared[-1].node)}` on line "
                      f"{model.line(cleared[-1].node)} has just cleared it)")
        else:
            effect = "this step applies the previous batch's gradients"
        yield Violation(
            step.node,
            f"`{source_text(model, step.node)}` (line {model.line(step.node)}) runs before "
            f"`{source_text(model, backward.node)}` (line {model.line(backward.node)}) in the same iteration: {effect}",
            _fix_step(model, events, step, backward),
        )


def _fix_step(model: ScriptModel, events: list[Event], step: Event, backward: Event) -> Fix | None:
    """Move the step (with the `scaler.update()` right after it) to after the backward and its clipping."""
    if (step.stmt is None or backward.stmt is None or not same_instance(step, backward)
            or not lone_statement(step.stmt.line) or backward.stmt.line is None):
        return None
    block = enclosing_block(model, step.stmt.line)
    if block is None or backward.stmt.line not in block:
        return None
    moved = [step.stmt.line]
    position = block.index(step.stmt.line)
    scaler = step.detail.get("scaler")
    if scaler and position + 1 < len(block) and _is_call(block[position + 1], f"{scaler}.update"):
        moved.append(block[position + 1])
    after = block.index(backward.stmt.line)
    followers = [e.node for e in events if e.kind in (CLIP, UNSCALE) and e.index > backward.index]
    while after + 1 < len(block) and any(contains(block[after + 1], node) for node in followers):
        after += 1
    anchor = block[after]
    edits = []
    for statement in moved:  # inserted after the anchor in this order
        edits += move_after(statement, anchor)
    return Fix(f"Move `{source_text(model, step.node)}` after `{source_text(model, backward.node)}`", edits)


# -- zero_grad() between backward() and step() ------------------------------------------------------
def _zero_grad_between(model: ScriptModel, frame: LoopFrame, events: list[Event]):
    for step in events:
        if step.kind != OPT_STEP or step.context.loop is not frame or step.subject is None:
            continue
        clears = [z for z in events if z.kind == ZERO_GRAD and z.index < step.index and z.context.loop is frame
                  and runs_with(z, step, model) and _clears(model, z, step)]
        if not clears:
            continue
        zero = clears[-1]
        if between(events, zero, step, BACKWARD, GRAD_WRITE):
            continue  # gradients are computed (or set by hand) again after the clearing
        backwards = [b for b in events if b.kind == BACKWARD and b.index < zero.index
                     and not exclusive(b, zero) and not exclusive(b, step)]
        if not backwards:
            continue
        backward = backwards[-1]
        yield Violation(
            zero.node,
            f"`{source_text(model, zero.node)}` (line {model.line(zero.node)}) runs between "
            f"`{source_text(model, backward.node)}` (line {model.line(backward.node)}) and "
            f"`{source_text(model, step.node)}` (line {model.line(step.node)}): the step applies no gradient",
            _fix_zero_grad(model, zero, step),
        )


def _fix_zero_grad(model: ScriptModel, zero: Event, step: Event) -> Fix | None:
    """Move the zero_grad to right after the step (and its `scaler.update()`)."""
    if not same_instance(zero, step) or zero.stmt is None or step.stmt is None or not lone_statement(zero.stmt.line):
        return None
    block = enclosing_block(model, zero.stmt.line)
    if block is None or step.stmt.line not in block:
        return None
    position = block.index(step.stmt.line)
    scaler = step.detail.get("scaler")
    if scaler and position + 1 < len(block) and _is_call(block[position + 1], f"{scaler}.update"):
        position += 1
    return Fix(f"Move `{source_text(model, zero.node)}` after `{source_text(model, step.node)}`",
               move_after(zero.stmt.line, block[position]))


# -- scheduler.step() before optimizer.step() -------------------------------------------------------
def _scheduler_first(model: ScriptModel, frame: LoopFrame, events: list[Event]):
    for sched in events:
        if sched.kind == SCHED_STEP and sched.context.loop is frame and _ordered_scheduler(sched):
            violation = _scheduler_before_steps(model, sched, events)
            if violation is not None:
                yield violation


def _scheduler_outside_loops(model: ScriptModel):
    """A function's `scheduler.step()` before the loop that steps the optimizer, where nothing in the file
    calls the function from a loop (`def train(epoch): scheduler.step(); for batch in loader: ...`)."""
    for sched in model.events:
        if (sched.kind == SCHED_STEP and not sched.context.loops and sched.context.function is not None
                and _ordered_scheduler(sched)):
            scope = [e for e in model.events if e.kind == OPT_STEP and within_instance(e, sched, model.events)]
            violation = _scheduler_before_steps(model, sched, scope)
            if violation is not None:
                yield violation


def _scheduler_before_steps(model: ScriptModel, sched: Event, events: list[Event]) -> Violation | None:
    if any(e.kind == OPT_STEP and e.index < sched.index and not exclusive(e, sched) for e in events):
        return None  # the optimizer already stepped in this iteration
    steps = [e for e in events if e.kind == OPT_STEP and e.index > sched.index and runs_with(sched, e, model)
             and (sched.context.loops or e.context.loops)]
    steps = _of_scheduler(sched, steps)
    if not steps:
        return None
    step = steps[0]
    where = f"`{source_text(model, sched.node)}` (line {model.line(sched.node)})"
    stepped = f"`{source_text(model, step.node)}` (line {model.line(step.node)})"
    if not sched.context.loops:
        message = (f"{where} runs before the loop below it steps the optimizer ({stepped}): the schedule starts "
                   f"one value late and its first learning rate is skipped")
    elif step.context.loop is sched.context.loop:
        message = (f"{where} runs before {stepped} in the same iteration: the schedule is shifted by one step "
                   f"and its first learning rate is skipped")
    else:
        message = (f"{where} runs at the start of the epoch, before the epoch's {stepped}: every epoch trains "
                   f"with the next epoch's learning rate and the schedule's first value is skipped")
    return Violation(sched.node, message, _fix_scheduler(model, sched, step))


def _ordered_scheduler(sched: Event) -> bool:
    """A PyTorch LRScheduler (known from its constructor) stepped without arguments."""
    role = sched.role
    if sched.detail.get("metric") or role is None or role.qualname is None:
        return False
    return role.qualname.startswith(K.ORDERED_SCHEDULER_PREFIXES) and role.qualname not in K.METRIC_SCHEDULERS


def _of_scheduler(sched: Event, steps: list[Event]) -> list[Event]:
    """The steps of the scheduler's optimizer; all of them when only one optimizer steps, else when unknown none."""
    call = sched.role.call if sched.role is not None else None
    arg = None
    if call is not None:
        arg = argument(call, 0, ("optimizer",))
    name = dotted(arg) if arg is not None else None
    if name is not None:
        matching = [s for s in steps if s.spelled is not None and last(s.spelled) == last(name)]
        if matching:
            return matching
    if len({s.subject for s in steps}) == 1:
        return steps
    return []


def _fix_scheduler(model: ScriptModel, sched: Event, step: Event) -> Fix | None:
    """Move the scheduler step to right after the statement of its block that steps the optimizer."""
    if sched.stmt is None or not lone_statement(sched.stmt.line):
        return None
    target = reached_from(step, sched)
    if target is None:
        return None
    block = enclosing_block(model, sched.stmt.line)
    if block is None:
        return None
    start = block.index(sched.stmt.line) + 1
    for position in range(start, len(block)):
        if contains(block[position], target):
            scaler = step.detail.get("scaler")
            if (scaler and position + 1 < len(block) and step.stmt is not None and block[position] is step.stmt.line
                    and _is_call(block[position + 1], f"{scaler}.update")):
                position += 1
            return Fix(f"Move `{source_text(model, sched.node)}` after `{source_text(model, step.node)}`",
                       move_after(sched.stmt.line, block[position]))
    return None


# -- shared ----------------------------------------------------------------------------------------
def _clears(model: ScriptModel, zero: Event, step: Event) -> bool:
    """Does this zero_grad certainly clear the stepped optimizer's gradients?"""
    if zero.subject is not None and zero.subject == step.subject:
        return True
    if zero.role is not None and zero.role.kind == MODEL and zero.spelled is not None:
        models = optimizer_models(model, step)
        return models is not None and any(m == zero.spelled or m.startswith(zero.spelled + ".") for m in models)
    return False


def _is_call(statement: ast.stmt, func: str) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and dotted(statement.value.func) == func)
