from __future__ import annotations

import ast
import math

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis import knowledge as K
from ..analysis.events import BACKWARD, CLIP, GRAD_WRITE, OPT_STEP, UNSCALE
from ..analysis.names import argument, dotted, last, number, string
from ..analysis.order import between, exclusive, runs_whenever, runs_with, same_instance
from ..analysis.splits import Reads
from ..analysis.tfsteps import AppliedGradients, GradientClip
from ..fixes import Fix, InsertAfter, InsertBefore, Remove, Replace, statement
from .base import FIX_SAFE, Rule, Violation
from .common import (contains, enclosing_block, lone_statement, optimizer_models, parameters_owners,
                     source_text)

_INFINITE = frozenset({"math.inf", "torch.inf", "numpy.inf", "np.inf", "inf"})


class ClipAfterStep(Rule):
    """
    ## What it does
    Checks for gradient clipping (`torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`, however
    imported) that runs where it cannot limit the update:

    - after `optimizer.step()` in the iteration;
    - before `backward()`;
    - with AMP, between `scaler.scale(loss).backward()` and `scaler.step(optimizer)` without
      `scaler.unscale_(optimizer)` first;
    - in a PyTorch Lightning `training_step` with automatic optimisation (the default): Lightning runs
      `backward()` on the returned loss after `training_step` returns;
    - in Keras / TensorFlow custom steps, `tf.clip_by_global_norm`, `tf.clip_by_norm` or
      `tf.clip_by_value` applied to the gradient list after `optimizer.apply_gradients(...)` (or
      Keras 3's `optimizer.apply(grads, variables)`) has applied it.

    ## Why is this bad?
    Clipping only changes the update if it rewrites `.grad` between the `backward()` that fills it
    and the `step()` that applies it. After the step, the unclipped gradient has already been applied
    and the next `backward()` (after `zero_grad()`) replaces the clipped one; before `backward()`, it
    clips the previous (or cleared) gradients. The update's gradient norm is then never bounded by
    `max_norm`, so the spikes clipping was meant to stop still reach the weights.

    Under AMP, the gradients between `scaler.scale(loss).backward()` and `scaler.step()` are
    multiplied by the loss scale (often 65536): clipping them without `scaler.unscale_(optimizer)`
    compares the scaled norm with `max_norm`, so the real threshold becomes `max_norm / scale` and
    almost every update is shrunk to nearly nothing.

    In TensorFlow, `tape.gradient()` returns a new list and the `tf.clip_by_*` functions return clipped
    copies: whatever list `apply_gradients()` is handed is what updates the weights. Clipping the list
    afterwards changes nothing that was applied.

    Not reported: backward → clip → step; backward → `scaler.unscale_()` → clip → `scaler.step()`;
    clipping inside a gradient-accumulation `if` before the step; a `clip_grad_norm_(..., inf)`
    that only measures the norm; in TensorFlow, a clip between `tape.gradient()` and
    `apply_gradients()`, an optimizer that clips by itself (`clipnorm=`, `global_clipnorm=`,
    `clipvalue=`), and `_, norm = tf.clip_by_global_norm(grads, ...)` that only measures the norm.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
    ```

    ## Fix safety
    The fix moves the clipping call between `backward()` and the step (right before the step, or
    right after the backward), and under AMP inserts `scaler.unscale_(optimizer)` before it. It is
    offered only when the statements sit directly in the same block, and it is safe: clipping then
    does what the code asked for, and nothing else changes.

    In TensorFlow, moving the clip is only half the fix: `apply_gradients()` must also receive the
    clipped list. When the clip rebinds the applied name (`grads, _ = tf.clip_by_global_norm(grads, 1.0)`,
    `grads = [tf.clip_by_norm(g, 1.0) for g in grads]`) the move is enough; when it binds another name
    (`clipped, norm = ...`), the `apply_gradients()` call is pointed at `clipped`; a clip whose result
    was thrown away is bound to the applied name (`grads, _ = ...`). No fix is offered when anything
    between the two statements reads or changes the names involved.
    """

    code = "TL005"
    name = "clip-after-step"
    summary = "Gradient clipping runs where it cannot affect the optimizer step"
    fix = FIX_SAFE
    frameworks = ("pytorch", "keras")
    requires = (("clip",), ("step", "apply"))  # a clip, and an optimizer step or apply_gradients

    def check(self, model: ScriptModel, options):
        for frame in model.loops:
            events = model.events_in(frame)
            if not any(e.kind == OPT_STEP for e in events):
                continue
            for clip in events:
                if clip.kind != CLIP or clip.context.loop is not frame or not _torch_clip(model, clip):
                    continue
                violation = (_after_step(model, events, clip) or _before_backward(model, frame, events, clip)
                             or _scaled(model, frame, events, clip))
                if violation is not None:
                    yield violation
        yield from _after_apply_gradients(model)
        yield from _in_lightning_training_step(model)


def _in_lightning_training_step(model: ScriptModel):
    """Clipping in a LightningModule's `training_step` under automatic optimisation runs before Lightning's
    own `backward()` of the returned loss: it clips the previous step's gradients (or cleared ones)."""
    for step in model.lightning_steps:
        for clip in model.of_kind(CLIP):
            if clip.context.function is step.training_step and _torch_clip(model, clip):
                yield Violation(
                    clip.node,
                    f"`{_clip_name(clip)}` (line {model.line(clip.node)}) runs in `{step.klass.name}.training_step()`, "
                    f"before Lightning's own `backward()` of the loss it returns: with automatic optimisation it "
                    f"clips the previous step's gradients, never this step's; pass `gradient_clip_val` to the "
                    f"Trainer (or clip in `configure_gradient_clipping`)")


def _torch_clip(model: ScriptModel, clip: Event) -> bool:
    """`torch.nn.utils.clip_grad_norm_`-like, and not a norm measurement (`max_norm=inf`)."""
    if clip.detail.get("tensorflow") or clip.detail.get("qualname") not in K.CLIP_FUNCTIONS:
        return False
    limit = argument(clip.site.call, 1, ("max_norm", "clip_value"))
    return not _infinite(model, limit)


def _infinite(model: ScriptModel, expr: ast.expr | None) -> bool:
    if expr is None:
        return False
    value = number(expr)
    if value is not None:
        return math.isinf(value)
    if isinstance(expr, ast.Call) and dotted(expr.func) == "float" and expr.args:
        return (string(expr.args[0]) or "").strip().lower() in ("inf", "+inf")
    qualname = model.imports.qualify(expr)
    return (qualname or dotted(expr) or "") in _INFINITE


# -- after optimizer.step() -------------------------------------------------------------------------
def _after_step(model: ScriptModel, events: list[Event], clip: Event) -> Violation | None:
    steps = [s for s in events if s.kind == OPT_STEP and s.index < clip.index and s.context.loop is clip.context.loop
             and runs_with(s, clip, model)]
    steps = _related(model, events, clip, steps)
    if not steps:
        return None
    step = steps[-1]
    if between(events, step, clip, BACKWARD, GRAD_WRITE):
        return None  # the clip acts on new gradients
    later = [s for s in events if s.kind == OPT_STEP and s.index > clip.index and not exclusive(s, clip)]
    if later and not between(events, clip, later[0], BACKWARD):
        return None  # a later step in this iteration applies the clipped gradients
    return Violation(
        clip.node,
        f"`{_clip_name(clip)}` (line {model.line(clip.node)}) runs after `{source_text(model, step.node)}` "
        f"(line {model.line(step.node)}): the step has already applied the unclipped gradients, so the "
        f"clipping has no effect",
        _fix_before_step(model, events, clip, step),
    )


def _fix_before_step(model: ScriptModel, events: list[Event], clip: Event, step: Event) -> Fix | None:
    if (clip.stmt is None or step.stmt is None or not same_instance(clip, step)
            or not lone_statement(clip.stmt.line) or step.stmt.line is None):
        return None
    block = enclosing_block(model, clip.stmt.line)
    if block is None or not any(s is step.stmt.line for s in block):
        return None
    edits = [Remove(clip.stmt.line)]
    unscale = _unscale_needed(events, clip, step, before=step)
    if unscale is not None:
        edits.append(InsertBefore(step.stmt.line, unscale))
    edits.append(InsertBefore(step.stmt.line, clip.stmt.line))
    return Fix(f"Move `{_clip_name(clip)}` before `{source_text(model, step.node)}`", edits)


# -- before backward() ------------------------------------------------------------------------------
def _before_backward(model: ScriptModel, frame: LoopFrame, events: list[Event], clip: Event) -> Violation | None:
    if any(e.kind in (BACKWARD, GRAD_WRITE) and e.index < clip.index and not exclusive(e, clip) for e in events):
        return None  # there are gradients of this iteration to clip
    backward = next((b for b in events if b.kind == BACKWARD and b.index > clip.index
                     and not exclusive(b, clip)), None)
    if backward is None:
        return None
    steps = [s for s in events if s.kind == OPT_STEP and s.index > clip.index and not exclusive(s, clip)]
    if not steps or steps[0].index < backward.index:
        return None  # a step right after the clip uses the clipped (accumulated) gradients
    steps = [s for s in steps if s.context.loop is frame and runs_with(s, clip, model)]
    steps = _related(model, events, clip, steps)
    if not steps:
        return None
    step = steps[0]
    last_backward = between(events, clip, step, BACKWARD)[-1]
    if any(not exclusive(c, step) for c in between(events, last_backward, step, CLIP)):
        return None  # the gradients are clipped again where it counts
    return Violation(
        clip.node,
        f"`{_clip_name(clip)}` (line {model.line(clip.node)}) runs before `{source_text(model, backward.node)}` "
        f"(line {model.line(backward.node)}): it clips the previous (or cleared) gradients, and "
        f"`{source_text(model, step.node)}` (line {model.line(step.node)}) applies the new ones unclipped",
        _fix_after_backward(model, events, clip, last_backward, step),
    )


def _fix_after_backward(model: ScriptModel, events: list[Event], clip: Event, backward: Event,
                        step: Event) -> Fix | None:
    if (clip.stmt is None or backward.stmt is None or not same_instance(clip, backward)
            or not same_instance(clip, step) or not lone_statement(clip.stmt.line) or backward.stmt.line is None):
        return None
    block = enclosing_block(model, clip.stmt.line)
    if block is None or not any(s is backward.stmt.line for s in block):
        return None
    position = next(i for i, s in enumerate(block) if s is backward.stmt.line)
    unscales = [e.node for e in events if e.kind == UNSCALE and backward.index < e.index < step.index]
    while position + 1 < len(block) and any(contains(block[position + 1], node) for node in unscales):
        position += 1
    anchor = block[position]
    edits = [Remove(clip.stmt.line)]
    unscale = None if unscales else _unscale_needed(events, clip, step, before=step, backward=backward)
    if unscale is not None:
        edits.append(InsertAfter(anchor, unscale))
    edits.append(InsertAfter(anchor, clip.stmt.line))
    return Fix(f"Move `{_clip_name(clip)}` after `{source_text(model, backward.node)}`", edits)


# -- AMP: clipping the scaled gradients -------------------------------------------------------------
def _scaled(model: ScriptModel, frame: LoopFrame, events: list[Event], clip: Event) -> Violation | None:
    scaled = [b for b in events if b.kind == BACKWARD and b.index < clip.index and b.detail.get("scaler")
              and not exclusive(b, clip)]
    if not scaled:
        return None
    backward = scaled[-1]
    if any(not exclusive(e, backward) for e in between(events, backward, clip, BACKWARD)):
        return None  # another (unscaled) backward follows in the same pass
    if between(events, backward, clip, UNSCALE):
        return None
    steps = [s for s in events if s.kind == OPT_STEP and s.index > clip.index and not exclusive(s, clip)
             and not exclusive(s, backward)]
    if not steps or not steps[0].detail.get("scaler") or between(events, clip, steps[0], BACKWARD):
        return None
    step = steps[0]
    if step.context.loop is not frame or not _related(model, events, clip, [step]):
        return None
    return Violation(
        clip.node,
        f"`{_clip_name(clip)}` (line {model.line(clip.node)}) clips the scaled gradients of "
        f"`{source_text(model, backward.node)}` (line {model.line(backward.node)}): call "
        f"`{step.detail['scaler']}.unscale_({step.spelled})` before clipping, or the threshold is divided by "
        f"the loss scale",
        _fix_unscale(model, clip, step),
    )


def _fix_unscale(model: ScriptModel, clip: Event, step: Event) -> Fix | None:
    """Insert `scaler.unscale_(optimizer)` before the clip, when that unscales once per step: the step runs
    whenever the clip does, and nothing unscales again before it (a second `unscale_()` raises)."""
    if (not same_instance(clip, step) or clip.stmt is None or clip.stmt.line is None or not runs_whenever(step, clip)
            or between(model.events, clip, step, UNSCALE)):
        return None
    unscale = statement(f"{step.detail['scaler']}.unscale_({step.spelled})")
    return Fix(f"Call `{step.detail['scaler']}.unscale_({step.spelled})` before clipping",
               [InsertBefore(clip.stmt.line, unscale)])


# -- shared ----------------------------------------------------------------------------------------
def _unscale_needed(events: list[Event], clip: Event, step: Event, before: Event,
                    backward: Event | None = None) -> str | None:
    """`scaler.unscale_(optimizer)` when the clip, once moved before `before`, would see scaled gradients."""
    scaler = step.detail.get("scaler")
    if not scaler:
        return None
    if backward is None:
        backwards = [b for b in events if b.kind == BACKWARD and b.index < before.index and not exclusive(b, step)]
        if not backwards:
            return None
        backward = backwards[-1]
    if not backward.detail.get("scaler"):
        return None
    if any(u.kind == UNSCALE and backward.index < u.index < before.index for u in events):
        return None
    return statement(f"{scaler}.unscale_({step.spelled})")


def _related(model: ScriptModel, events: list[Event], clip: Event, steps: list[Event]) -> list[Event]:
    """The steps whose optimizer holds the clipped parameters; when that is unknown, the steps of the
    only optimizer stepping in the iteration (none when several do)."""
    first = argument(clip.site.call, 0, ("parameters",))
    owners = parameters_owners(first) if first is not None else []
    related = []
    for step in steps:
        models = optimizer_models(model, step)
        if owners and models:
            if any(_same_model(a, b) for a in owners for b in models):
                related.append(step)
        elif len({e.subject for e in events if e.kind == OPT_STEP}) == 1:
            related.append(step)
    return related


def _same_model(a: str, b: str) -> bool:
    a, b = a.removeprefix("self."), b.removeprefix("self.")
    return a == b or a.startswith(b + ".") or b.startswith(a + ".") or last(a) == last(b)


def _clip_name(clip: Event) -> str:
    return f"{dotted(clip.site.call.func) or 'clip_grad_norm_'}()"


# -- Keras / TensorFlow: tf.clip_by_* after optimizer.apply_gradients() -----------------------------
def _after_apply_gradients(model: ScriptModel):
    steps = model.tf_steps
    if not steps.clips or not steps.applies:
        return
    for clip in steps.clips:
        event = clip.event
        applies = [a for a in steps.applies if a.event.index < event.index and a.key == clip.source
                   and same_instance(a.event, event) and a.event.context.loop is event.context.loop
                   and runs_with(a.event, event, model)]
        if not applies or applies[-1].self_clipping:
            continue  # an optimizer built with clipnorm= / global_clipnorm= / clipvalue= clips the update itself
        applied = applies[-1]
        statements = steps.between(applied.event.stmt, event.stmt, event.context.function)
        if statements is None or any(_assigns(s, clip.source) for s in statements):
            continue  # the clip reads a list made after the apply
        consumed = clip.result or clip.source
        if any(a.event.index > event.index and same_instance(a.event, event) and not exclusive(a.event, event)
               and (a.key == consumed or contains(a.event.site.call, clip.expression)) for a in steps.applies):
            continue  # a later apply_gradients in the same pass applies the clipped list
        if clip.result not in (None, clip.source) and any(a.key == clip.result for a in steps.applies):
            continue  # `self.clipped = ...` is applied somewhere else (e.g. in the next call)
        yield Violation(
            event.node,
            f"`{_clip_name(event)}` (line {model.line(event.node)}) clips `{clip.source}` after "
            f"`{_apply_text(model, applied)}` (line {model.line(applied.event.node)}) has applied it: "
            f"the update is not clipped, so the clipping has no effect",
            _fix_before_apply(model, clip, applied, statements),
        )


def _assigns(stmt, key: str) -> bool:
    keys = [k for k, _ in stmt.targets if k] + ([stmt.aug[0]] if stmt.aug is not None and stmt.aug[0] else [])
    return any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in keys)


def _fix_before_apply(model: ScriptModel, clip: GradientClip, applied: AppliedGradients, statements) -> Fix | None:
    """Move the clip right before the apply_gradients and make sure the apply receives the clipped list: the
    clip's result when it rebinds the applied name; else the apply is pointed at the clipped list's name; a
    clipped list that was thrown away is bound to the applied name."""
    stmt, apply_stmt = clip.event.stmt, applied.event.stmt
    if not lone_statement(stmt.line) or apply_stmt.line is None or applied.node is None:
        return None
    block = enclosing_block(model, stmt.line)
    if block is None or not any(s is apply_stmt.line for s in block):
        return None
    written = {k for k, _ in stmt.targets if k}
    reads = Reads(stmt.node.value).closure if hasattr(stmt.node, "value") else set()
    for other in statements:  # what the moved statement reads or writes must not change in between
        other_writes = {k for k, _ in other.targets if k} | ({other.aug[0]} if other.aug and other.aug[0] else set())
        other_reads = Reads(other.node.value).closure if isinstance(getattr(other.node, "value", None),
                                                                        ast.expr) else set()
        if other_writes & (reads | written) or other_reads & written:
            return None
    if clip.discarded:
        qualname = clip.event.detail.get("qualname") or ""
        code = model.code(clip.expression)
        if qualname.endswith("clip_by_global_norm"):
            new = f"{clip.source}, _ = {code}"
        elif clip.expression is not clip.event.site.call:
            new = f"{clip.source} = {code}"
        else:
            return None  # `tf.clip_by_value(grads, ...)` on a whole list: not a per-gradient clip to keep
        edits = [Remove(stmt.line), InsertBefore(apply_stmt.line, new)]
        return Fix(f"Clip `{clip.source}` before `{_apply_text(model, applied)}`", edits)
    if clip.result is None:
        return None
    edits = [Remove(stmt.line), InsertBefore(apply_stmt.line, stmt.line)]
    if clip.result != clip.source:
        if dotted(applied.node) != clip.source:
            return None
        edits.append(Replace(applied.node, clip.result))
        return Fix(f"Move `{_clip_name(clip.event)}` before `{_apply_text(model, applied)}` and apply "
                   f"`{clip.result}`", edits)
    return Fix(f"Move `{_clip_name(clip.event)}` before `{_apply_text(model, applied)}`", edits)


def _apply_text(model: ScriptModel, applied: AppliedGradients) -> str:
    receiver = applied.event.spelled or source_text(model, applied.event.site.call.func.value, 30)
    return f"{receiver}.{applied.event.site.method}(...)"
