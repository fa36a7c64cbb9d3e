from __future__ import annotations

import libcst as cst

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis import knowledge as K
from ..analysis.events import BACKWARD, CLIP, GRAD_WRITE, OPT_STEP, UNSCALE
from ..analysis.names import dotted, last
from ..analysis.order import between, exclusive, runs_whenever, runs_with, same_instance
from ..fixes import Fix, InsertAfter, InsertBefore, Remove, statement
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
      `scaler.unscale_(optimizer)` first.

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

    Not reported: backward → clip → step; backward → `scaler.unscale_()` → clip → `scaler.step()`;
    clipping inside a gradient-accumulation `if` before the step; a `clip_grad_norm_(..., inf)`
    that only measures the norm. TensorFlow's `tf.clip_by_*` is not this rule's business.

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
    """

    code = "TL005"
    name = "clip-after-step"
    summary = "Gradient clipping runs where it cannot affect the optimizer step"
    fix = FIX_SAFE

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


def _torch_clip(model: ScriptModel, clip: Event) -> bool:
    """`torch.nn.utils.clip_grad_norm_`-like, and not a norm measurement (`max_norm=inf`)."""
    if clip.detail.get("tensorflow") or clip.detail.get("qualname") not in K.CLIP_FUNCTIONS:
        return False
    call = clip.site.call
    limit = next((a.value for a in call.args if a.keyword is not None
                  and a.keyword.value in ("max_norm", "clip_value")), None)
    if limit is None:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        limit = positional[1].value if len(positional) > 1 else None
    return not _infinite(model, limit)


def _infinite(model: ScriptModel, expr: cst.BaseExpression | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, cst.Call) and dotted(expr.func) == "float" and expr.args:
        value = expr.args[0].value
        return isinstance(value, cst.SimpleString) and value.evaluated_value.strip().lower() in ("inf", "+inf")
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
    block = enclosing_block(model.module, clip.stmt.line)
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
    block = enclosing_block(model.module, clip.stmt.line)
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
                    backward: Event | None = None) -> cst.BaseStatement | None:
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
    args = [a for a in clip.site.call.args if a.keyword is None and not a.star]
    keyword = [a for a in clip.site.call.args if a.keyword is not None and a.keyword.value == "parameters"]
    first = (args or keyword or [None])[0]
    owners = parameters_owners(first.value) if first is not None else []
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
