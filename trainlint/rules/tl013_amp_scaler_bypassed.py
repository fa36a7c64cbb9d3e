from __future__ import annotations

import ast

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis.events import BACKWARD, OPAQUE_USE, OPT_STEP, SCALER_UPDATE, UNSCALE
from ..analysis.names import bool_value, keyword
from ..analysis.order import between, exclusive, runs_whenever, same_instance
from ..analysis.roles import GRAD_SCALER, OPTIMIZER
from ..fixes import Fix, InsertAfter, Remove, Replace, statement
from .base import FIX_SAFE, Rule, Violation
from .common import source_text


class AmpScalerBypassed(Rule):
    """
    ## What it does
    Checks AMP training loops that use a `GradScaler` halfway:

    - `scaler.scale(loss).backward()` followed by a plain `optimizer.step()` instead of
      `scaler.step(optimizer)` (and no `scaler.unscale_(optimizer)` in between);
    - `scaler.step(optimizer)` in a loop whose iteration never calls `scaler.update()`.

    ## Why is this bad?
    `scaler.scale(loss)` multiplies the loss, and so every gradient, by the loss scale (65536 by
    default) so that small float16 gradients do not underflow. `scaler.step(optimizer)` divides the
    gradients by that scale again, skips the step when they overflowed, and only then calls
    `optimizer.step()`. A plain `optimizer.step()` applies the scaled gradients: with SGD every update
    is thousands of times too large and the weights blow up; with Adam the scale mostly cancels but
    overflowed (inf/NaN) gradients reach the weights.

    `scaler.update()` adjusts the scale after each step and resets the scaler for the next iteration.
    Without it the second `scaler.step()` raises `RuntimeError: step() has already been called since the
    last update()` — on the GPU run only, since a disabled scaler (CPU, `enabled=False`) steps without
    complaint.

    Not reported: the full `scale` / `step` / `update` pattern (with `unscale_()` and clipping before
    the step), a plain step in the non-AMP arm of an `if use_amp: ... else: ...`, a scaler built with
    `enabled=False`, a scaler or optimizer of the project's own class, and a scaler handed to a function
    trainlint cannot see into.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        with torch.autocast("cuda"):
            loss = torch.nn.functional.mse_loss(model(x), y)
        scaler.scale(loss).backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        with torch.autocast("cuda"):
            loss = torch.nn.functional.mse_loss(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    ```

    ## Fix safety
    The fix replaces `optimizer.step()` with `scaler.step(optimizer)` and, when the iteration has no
    `scaler.update()`, inserts one right after the (last) `scaler.step()`. It is safe: this is the
    pattern `GradScaler` documents, and it changes nothing but the unscaling, the overflow check and
    the scale's update.
    """

    code = "TL013"
    name = "amp-scaler-bypassed"
    summary = "AMP-scaled gradients stepped without scaler.step(), or a scaler never updated"
    fix = FIX_SAFE
    requires = (("scale", "Scale"), ("step",))  # `scaler.scale(loss)` or a (Grad)Scaler, and a step

    def check(self, model: ScriptModel, options):
        reported: set[int] = set()
        frames: dict[int, LoopFrame] = {}
        for step in model.of_kind(OPT_STEP):
            frame = _iteration(model, step)
            if frame is not None:
                frames.setdefault(id(frame), frame)
        for frame in frames.values():
            events = model.events_in(frame)
            for violation in [*_bypassed(model, frame, events), *_never_updated(model, frame, events)]:
                if id(violation.node) not in reported:  # a helper's step may be reached from several loops
                    reported.add(id(violation.node))
                    yield violation


def _iteration(model: ScriptModel, step: Event) -> LoopFrame | None:
    """The loop one of whose iterations is one training step: the innermost loop around the step, less loops
    over the optimizers (`for opt in optimizers: scaler.step(opt)`) and loops that may stop after their
    first pass (`while True:` retried until a `break`)."""
    frame = step.context.loop
    while frame is not None and (_over_optimizers(frame, step) or _may_stop_early(frame.node)):
        frame = frame.parent
    return frame


def _over_optimizers(frame: LoopFrame, step: Event) -> bool:
    target = frame.loop.target_keys
    return step.spelled is not None and step.spelled in target


def _may_stop_early(loop: ast.AST) -> bool:
    """A `while True:` whose own body (not a nested loop's or function's) holds a `break` or a `return`: a retry
    loop, or a step loop we cannot tell from one."""
    if not (isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value):
        return False
    pending = list(loop.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Break, ast.Return)):
            return True
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef,
                             ast.ClassDef, ast.Lambda)):
            continue
        pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)
                       or isinstance(child, ast.excepthandler) or isinstance(child, ast.match_case))
    return False


# -- scaler.scale(loss).backward(); optimizer.step() ------------------------------------------------
def _bypassed(model: ScriptModel, frame: LoopFrame, events: list[Event]):
    for step in events:
        if (step.kind != OPT_STEP or step.detail.get("scaler") or _iteration(model, step) is not frame
                or not _torch_optimizer(step)):
            continue
        backwards = [b for b in events if b.kind == BACKWARD and b.index < step.index and not exclusive(b, step)]
        scaled = [b for b in backwards if b.detail.get("scaler") and not any(
            later.index > b.index and not later.detail.get("scaler") and not exclusive(later, b)
            for later in backwards)]
        if not scaled:
            continue  # no scaled backward reaches the step (a plain backward follows it in the same pass)
        backward = scaled[-1]
        if not _real_scaler(backward.detail.get("scaler_role")):
            continue
        if any(e.kind == OPT_STEP and e.detail.get("scaler") and e.subject == step.subject for e in events):
            continue  # `scaler.step(optimizer)` elsewhere in the iteration: this is the non-AMP path
        if between(events, backward, step, UNSCALE):
            continue  # unscaled by hand before the step
        scaler = backward.detail["scaler"]
        yield Violation(
            step.node,
            f"`{source_text(model, step.node)}` (line {model.line(step.node)}) applies the gradients of "
            f"`{source_text(model, backward.node)}` (line {model.line(backward.node)}) still multiplied by the loss "
            f"scale: step through `{scaler}.step({step.spelled})`, which unscales them and skips overflowed steps",
            _fix_bypass(model, events, backward, step),
        )


def _fix_bypass(model: ScriptModel, events: list[Event], backward: Event, step: Event) -> Fix | None:
    scaler = backward.detail["scaler"]
    call = step.site.call if step.site is not None else None
    if (call is None or call.args or call.keywords or step.spelled is None or not same_instance(backward, step)
            or step.stmt is None or step.stmt.line is None or not _alone(step.stmt.line, call)):
        return None
    if not runs_whenever(backward, step) or any(
            b.kind == BACKWARD and not b.detail.get("scaler") and b.index < step.index and not exclusive(b, step)
            for b in events):
        return None  # `if use_amp: scaler.scale(loss).backward() else: loss.backward()`: the step serves both
    edits = [Replace(call, f"{scaler}.step({step.spelled})")]
    if not _updates(events, backward.detail.get("scaler_identity"), step):
        if step.context.loop is not _iteration(model, step):
            return None
        edits.append(InsertAfter(step.stmt.line, statement(f"{scaler}.update()")))
    return Fix(f"Step through `{scaler}.step({step.spelled})`", edits)


# -- scaler.step(optimizer) with no scaler.update() --------------------------------------------------
def _never_updated(model: ScriptModel, frame: LoopFrame, events: list[Event]):
    steps = [s for s in events if s.kind == OPT_STEP and s.detail.get("scaler") and _iteration(model, s) is frame
             and _real_scaler(s.detail.get("scaler_role"))]
    seen: set[str] = set()
    for step in steps:
        identity = step.detail.get("scaler_identity")
        if identity is None or identity in seen:
            continue
        seen.add(identity)
        if _updates(events, identity, step):
            continue
        if any(e.kind == OPAQUE_USE and e.subject == identity for e in events):
            continue  # handed to a function we cannot see: it may update it
        scaler = step.detail["scaler"]
        last = [s for s in steps if s.detail.get("scaler_identity") == identity and same_instance(s, step)][-1]
        yield Violation(
            step.node,
            f"`{source_text(model, step.node)}` (line {model.line(step.node)}) runs on every iteration of the loop "
            f"on line {model.line(frame.node)}, but `{scaler}.update()` never does: the second `{scaler}.step()` "
            f"raises `RuntimeError` once AMP is on, and the loss scale never adapts",
            _fix_update(model, frame, last, scaler),
        )


def _fix_update(model: ScriptModel, frame: LoopFrame, step: Event, scaler: str) -> Fix | None:
    """Insert `scaler.update()` after the step; an update written elsewhere (once per epoch, after the loop)
    moves there, since a second update with no step since the first raises."""
    call = step.site.call if step.site is not None else None
    if (call is None or step.stmt is None or step.stmt.line is None or not _alone(step.stmt.line, call)
            or step.context.loop is not frame):
        return None  # (in a loop over the optimizers, an update after each step would be one too many)
    identity = step.detail.get("scaler_identity")
    elsewhere = {id(e.node): e for e in model.of_kind(SCALER_UPDATE) if e.subject == identity}
    edits = [InsertAfter(step.stmt.line, statement(f"{scaler}.update()"))]
    if len(elsewhere) > 1 or any(e.in_loop(frame) for e in elsewhere.values()):
        return None  # several, or one in another arm of this iteration: no single place to move
    for update in elsewhere.values():
        if update.stmt is None or update.stmt.line is None or not _alone(update.stmt.line, update.site.call):
            return None
        edits.insert(0, Remove(update.stmt.line))
    return Fix(f"Call `{scaler}.update()` after `{scaler}.step()`", edits)


# -- shared ----------------------------------------------------------------------------------------
def _updates(events: list[Event], identity: str | None, step: Event) -> bool:
    return any(e.kind == SCALER_UPDATE and e.subject == identity and not exclusive(e, step) for e in events)


def _real_scaler(role) -> bool:
    """A torch GradScaler that scales: built by its constructor without `enabled=False`, or unknown (a
    parameter named `scaler`). A project's own scaler class may unscale inside its optimizer."""
    if role is None or role.evidence == "name":
        return True
    if role.kind != GRAD_SCALER or role.call is None:
        return False
    return bool_value(keyword(role.call, "enabled")) is not False


def _torch_optimizer(step: Event) -> bool:
    role = step.role
    return (role is not None and role.kind == OPTIMIZER and role.local_class is None
            and not (role.qualname or "").startswith("keras."))


def _alone(line: ast.stmt, call: ast.Call) -> bool:
    """The statement is the call and nothing else (`optimizer.step()` on its own line)."""
    return isinstance(line, ast.Expr) and line.value is call
