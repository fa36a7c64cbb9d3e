from __future__ import annotations

import ast
import re

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis import knowledge as K
from ..analysis.builds import stateless_optimizer
from ..analysis.events import APPLY_GRADIENTS, BUILD, OPT_STEP, SCHED_STEP
from ..analysis.names import dotted, last
from ..analysis.order import settled_guard
from ..analysis.roles import SCHEDULER
from ..fixes import Fix, InsertBefore, Remove
from .base import FIX_UNSAFE, Rule, Violation

_EPOCH = re.compile(r"(?i)epoch|^ep$|^e$|^ep_|_ep$")
_UNFREEZING = re.compile(r"(?i).*freeze.*|requires_grad_?")


class OptimizerRebuiltInLoop(Rule):
    """
    ## What it does
    Checks for an optimizer (Adam, SGD with momentum, ...) or a learning-rate scheduler built on every
    iteration of the epoch loop or of the batch loop, over the parameters of a model (or an optimizer)
    that lives on across iterations.

    Not reported: an optimizer over tensors made in the same iteration (a perturbation or an image
    optimised per sample), one per fold of a cross-validation with a fresh model, one built under a
    condition (`if epoch == unfreeze_at:`), a loop that unfreezes layers, restores the model's weights
    (`load_state_dict`) or the optimizer's state before going on, SGD without momentum (it keeps no
    state), and loops that are neither the epoch loop nor the loop that steps.

    ## Why is this bad?
    An optimizer carries state from step to step: momentum buffers, Adam's moment estimates and its
    step count (which drives the bias correction). A new optimizer every epoch starts all of that over:
    each epoch begins with Adam's large, uncorrected first steps, and momentum never builds up past one
    epoch. A scheduler built every iteration restarts its schedule: a decay never decays, a warmup warms
    up again every epoch. Training goes on without any error, just worse.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    for epoch in range(3):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(3):
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Fix safety
    The fix moves the constructor's statement to right before the loop, when it sits directly in the
    loop's body and nothing it reads changes from one iteration to the next. It is unsafe: the optimizer
    then keeps its state (and the scheduler its position) across iterations, which is the point, but a
    run tuned with the resetting optimizer will train differently.
    """

    code = "TL014"
    name = "optimizer-rebuilt-in-loop"
    summary = "Optimizer or LR scheduler rebuilt on every iteration of the training loop"
    fix = FIX_UNSAFE
    frameworks = ("pytorch", "keras")
    # an optimizer or scheduler constructor (torch.optim..., keras.optimizers..., transformers' AdamW, DeepSpeed's
    # adam / lamb ops, lr_scheduler, get_*_schedule*, timm.scheduler, SWALR), and its steps
    requires = (("optim", "Optim", "Adam", "adam", "lamb", "schedule", "Schedule", "SWALR"), ("step", "apply"))

    def check(self, model: ScriptModel, options):
        reported: set[int] = set()
        for build in model.of_kind(BUILD):
            if id(build.node) in reported or not build.context.loops:
                continue
            if build.detail["built"] != SCHEDULER and stateless_optimizer(build.node, build.detail["qualname"]):
                continue
            found = _rebuilding_loop(model, build)
            if found is not None:
                frame, uses = found
                reported.add(id(build.node))
                yield Violation(build.node, _message(model, build, frame, uses), _fix(model, build, frame))


def _rebuilding_loop(model: ScriptModel, build: Event) -> tuple[LoopFrame, list[Event]] | None:
    """The loop (epoch loop, or the loop that steps) on every iteration of which the object is built anew over
    something that outlives the iteration, with the object's steps in that loop."""
    loops = build.context.loops
    for frame in reversed(loops):
        if any(not settled_guard(model, branch) for branch, _ in build.context.guards[frame.outer_guards:]):
            return None  # built under a condition: not on every iteration
        uses = _uses(model, frame, build)
        if not uses:
            continue
        direct = any(u.context.loop is frame for u in uses)
        if not direct and not _epoch_loop(model, frame):
            return None  # a loop of folds, stages, trials or sweeps around the training
        if _fresh(model, frame, build) or _restarted(model, frame, build):
            return None
        return frame, uses
    return None


def _uses(model: ScriptModel, frame: LoopFrame, build: Event) -> list[Event]:
    """The steps of the built object within the loop's iterations, after it is built."""
    kinds = (SCHED_STEP,) if build.detail["built"] == SCHEDULER else (OPT_STEP, APPLY_GRADIENTS)
    found = []
    for event in model.events_in(frame, *kinds):
        if event.index < build.index:
            continue
        if build.subject is not None:
            if event.subject == build.subject:
                found.append(event)
        elif event.role is not None and event.role.call is build.node:
            found.append(event)  # built in a factory: `opt = make_optimizer(model)`
    return found


def _epoch_loop(model: ScriptModel, frame: LoopFrame) -> bool:
    node = frame.node
    if isinstance(node, ast.While):
        return bool(_EPOCH.search(model.code(node.test)))
    target = dotted(node.target) or ""
    return bool(_EPOCH.search(last(target))) or "epoch" in model.code(node.iter).lower()


def _fresh(model: ScriptModel, frame: LoopFrame, build: Event) -> bool:
    """Is what the object is built over made anew in the iteration (a model per fold, a tensor per sample)?
    Unknown counts as fresh."""
    over = build.detail["over"]
    if not over:
        if not build.detail["complete"]:
            return True
        return _keras_models_fresh(model, frame, build)  # a Keras optimizer: the variables it is applied to
    if not build.detail["complete"]:
        return True
    return any(identity is None or identity in frame.assigned for _, identity in over)


def _keras_models_fresh(model: ScriptModel, frame: LoopFrame, build: Event) -> bool:
    uses = _uses(model, frame, build)
    owners = {dotted(n.value) for u in uses if u.site is not None for n in ast.walk(u.site.call)
              if isinstance(n, ast.Attribute) and n.attr in ("trainable_variables", "trainable_weights")}
    owners.discard(None)
    if not owners:
        return True
    assigned = _assigned_keys(frame.node)
    return any(owner in assigned or owner.split(".")[0] in assigned for owner in owners)


def _restarted(model: ScriptModel, frame: LoopFrame, build: Event) -> bool:
    """Does the iteration put the model back to a saved state, reload the optimizer's state, or unfreeze
    layers? Then a new optimizer for the new state is what the loop means."""
    names = {last(key) for key, _ in build.detail["over"]} | ({last(build.spelled)} if build.spelled else set())
    scopes = [frame.node]
    if build.context.function is not None and build.context.function is not frame.function \
            and build.context.function.node is not None and model.home(build.context.function.node) is None:
        scopes.append(build.context.function.node)
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Call):
                func = node.func
                name = last(dotted(func) or "") if not isinstance(func, ast.Attribute) else func.attr
                if _UNFREEZING.fullmatch(name):
                    return True
                if isinstance(func, ast.Attribute) and func.attr in K.MODEL_RESET_METHODS:
                    receiver = dotted(func.value)
                    if receiver is None or last(receiver) in names or func.attr != "apply":
                        return True
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in targets):
                    return True
    return False


def _assigned_keys(node: ast.AST) -> set[str]:
    keys = set()
    for child in ast.walk(node):
        targets = []
        if isinstance(child, ast.Assign):
            targets = child.targets
        elif isinstance(child, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [child.target]
        elif isinstance(child, ast.withitem) and child.optional_vars is not None:
            targets = [child.optional_vars]
        elif isinstance(child, ast.NamedExpr):
            targets = [child.target]
        for target in targets:
            for part in ast.walk(target):
                key = dotted(part)
                if key is not None:
                    keys.add(key)
    return keys


def _message(model: ScriptModel, build: Event, frame: LoopFrame, uses: list[Event]) -> str:
    what = f"`{dotted(build.node.func) or 'optimizer'}(...)` (line {model.line(build.node)})"
    direct = any(u.context.loop is frame for u in uses)
    loop = f"the {'loop that steps it' if direct else 'epoch loop'} (line {model.line(frame.node)})"
    over = ", ".join(f"`{key}`" for key, _ in build.detail["over"])
    if build.detail["built"] == SCHEDULER:
        return (f"{what} builds a new learning-rate scheduler over {over or 'the optimizer'} on every iteration of "
                f"{loop}: the schedule starts over each time, so the learning rate never gets past its first values")
    held = f"over {over}'s parameters" if over else "for the same model"
    return (f"{what} builds a new optimizer {held} on every iteration of {loop}: its state (momentum, moment "
            f"estimates, step count) starts over each time instead of carrying on across the run")


def _fix(model: ScriptModel, build: Event, frame: LoopFrame) -> Fix | None:
    """Move `optimizer = Adam(...)` to right before the loop, when it is a statement of the loop's own body
    and what it reads does not change between iterations."""
    line = build.stmt.line if build.stmt is not None else None
    if (line is None or not isinstance(line, ast.Assign) or line.value is not build.node
            or build.context.function is not frame.function or model.home(line) is not None
            or not any(statement is line for statement in frame.node.body)):
        return None
    assigned = _assigned_keys(frame.node)
    read = {dotted(n) for n in ast.walk(line.value) if isinstance(n, (ast.Name, ast.Attribute))}
    read.discard(None)
    if any(key in assigned or key.split(".")[0] in assigned for key in read):
        return None
    return Fix(f"Build it once, before the loop on line {model.line(frame.node)}",
               [Remove(line), InsertBefore(frame.node, line)], applicability="unsafe")
