"""Hyperparameter facts: where optimizers are built, with which learning rate, and what changes it later.

An optimizer's learning rate is "scaled" when anything in the file may change it after construction:
an LR scheduler or warmup built on it (`StepLR(optimizer, ...)`, `get_linear_schedule_with_warmup(opt, ...)`,
a local `WarmupScheduler(optimizer)`), a helper handed the optimizer whose name says it adjusts the rate
(`adjust_learning_rate(optimizer, epoch)`), a manual write (`for g in optimizer.param_groups: g["lr"] = lr`),
or a trainer that schedules what it is given (`transformers.Trainer(..., optimizers=(opt, None))`).
Keras: a `keras.optimizers.schedules.*` object, a `ReduceLROnPlateau`/`LearningRateScheduler` callback, or
`optimizer.learning_rate.assign(x)` / `K.set_value(optimizer.lr, x)`; a callback's model is not traced to
its compiled optimizer, so it counts for any optimizer in the file.
When the file does not say which optimizer a scheduler or a write belongs to, it may belong to any.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from . import knowledge as K
from .names import argument, dotted, keyword, last, positional, string
from .roles import OPTIMIZER, OPTIMIZER_NAMES, Roles
from .structure import CallSite, FunctionInfo, Stmt, Structure, item_calls, walk_items

# A helper whose name says it schedules or changes the learning rate.
_LR_HELPER = re.compile(r".*(sched|warmup|warm_up|anneal).*|(.*_)?(lr|learning_rate|learningrate)(_.*)?"
                        r"|adjust_.*|.*_decay")
_LR_CLASS = re.compile(r"[A-Z]\w*LR")  # a scheduler class named like torch's (StepLR, CyclicLR): `TriangularLR`
_LR_KEYS = frozenset({"lr", "learning_rate", "initial_lr"})


@dataclass(eq=False)
class OptimizerBuild:
    """One call of a known optimizer constructor."""

    call: ast.Call
    qualname: str
    function: FunctionInfo | None  # where the call is written
    lr: ast.expr | None  # the learning-rate argument as written; None: the constructor's default
    per_group_lr: bool  # a parameter group sets its own "lr"
    in_test: bool = False  # written in a unit test (`def test_...`, `class ...Test`): rates there are picked
    # for the arithmetic (lr=1.0 makes the update equal the gradient) or to blow gradients up on purpose
    params: ast.expr | None = None  # what it is handed to optimise (torch), as written
    decays: bool = False  # Keras 2 `decay=0.01`: the optimizer lowers its own rate as it goes


def in_unit_test(function: FunctionInfo | None) -> bool:
    """Is `function` (or a function it is nested in) a test function or a method of a test class?"""
    while function is not None:
        if function.name.startswith("test") or (function.class_name or "").startswith("Test") \
                or (function.class_name or "").endswith(("Test", "Tests", "TestCase")):
            return True
        function = function.parent
    return False


@dataclass(eq=False)
class LrControl:
    """Something that may change an optimizer's learning rate after it is built."""

    node: ast.AST
    how: str  # scheduler | helper | write | trainer | callback
    optimizers: tuple[ast.expr, ...]  # the optimizer arguments; empty: unknown (may be any)
    function: FunctionInfo | None
    warms_up: bool = True  # may it start low and raise the rate? False for schedulers that only ever decay it


def lr_argument(call: ast.Call, qualname: str) -> ast.expr | None:
    """The learning-rate argument of an optimizer constructor call, by keyword or position."""
    for prefix, (position, keywords) in K.OPTIMIZER_LR_ARGUMENT.items():
        if qualname.startswith(prefix):
            break
    else:
        return None
    return argument(call, position, keywords)


def _sets_group_lr(expr: ast.expr | None) -> bool:
    """`[{"params": ..., "lr": 1e-4}, ...]` or `dict(params=..., lr=...)`: groups with their own rate."""
    pending = [expr] if expr is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Dict):
            if any(string(k) == "lr" for k in node.keys):
                return True
        elif isinstance(node, ast.Call) and dotted(node.func) == "dict":
            if keyword(node, "lr") is not None:
                return True
        elif isinstance(node, (ast.List, ast.Tuple)):
            pending.extend(node.elts)
    return False


_KERAS_OPTIMIZER_SUBMODULE = re.compile(r"keras\.optimizers\.(legacy|experimental)\.")


def optimizer_name(qualname: str) -> str:
    """`keras.optimizers.legacy.Adam` (tf.keras 2.11+), `keras.optimizers.experimental.AdamW`: `keras.optimizers.X`."""
    return _KERAS_OPTIMIZER_SUBMODULE.sub("keras.optimizers.", qualname, count=1)


def _namesake(roles: Roles, site: CallSite, function: FunctionInfo | None) -> str | None:
    """`AdamW(...)` of the project's own `AdamW` class: it takes the framework optimizer's defaults."""
    role = roles.classify(site.call, function, 0)
    if role is not None and role.kind == OPTIMIZER and role.local_class is not None:
        return role.qualname if role.qualname in K.TORCH_OPTIMIZERS or role.qualname in K.KERAS_OPTIMIZERS else None
    return None


def optimizer_builds(structure: Structure, roles: Roles) -> list[OptimizerBuild]:
    builds = []
    for item, function in walk_items(structure):
        for site in item_calls(item):
            if site.func_key is None or last(site.func_key) not in OPTIMIZER_NAMES:
                continue  # cheap test first: most calls are not optimizers
            qualname = structure.imports.qualify(site.call.func)
            qualname = optimizer_name(qualname) if qualname is not None else None
            if qualname is None or (qualname not in K.TORCH_OPTIMIZERS and qualname not in K.KERAS_OPTIMIZERS):
                qualname = _namesake(roles, site, function)
                if qualname is None:
                    continue
            params = next(iter(positional(site.call)), None)
            params_kw = keyword(site.call, "params")
            builds.append(OptimizerBuild(site.call, qualname, function, lr_argument(site.call, qualname),
                                         _sets_group_lr(params_kw or params), in_unit_test(function),
                                         (params_kw or params) if qualname.startswith("torch.") else None,
                                         _decays(site.call, qualname)))
    return builds


def _decays(call: ast.Call, qualname: str) -> bool:
    """`keras.optimizers.Adam(lr=0.1, decay=0.01)`: Keras 2's time-based decay, lr / (1 + decay * step)."""
    if not qualname.startswith("keras."):
        return False
    for kw in call.keywords:
        if kw.arg in K.KERAS_DECAY_ARGUMENTS:
            return not (isinstance(kw.value, ast.Constant) and kw.value.value in (0, 0.0, None, False))
    return False


def _is_lr_write(target: ast.expr) -> bool:
    if isinstance(target, ast.Subscript):
        return string(target.slice) in _LR_KEYS
    if isinstance(target, ast.Attribute):
        return target.attr in ("lr", "learning_rate") and "optim" in (dotted(target.value) or "").lower()
    return False


def lr_controls(structure: Structure, roles: Roles) -> list[LrControl]:
    controls = []
    for item, function in walk_items(structure):
        if isinstance(item, Stmt):
            targets: list[ast.expr] = []
            if isinstance(item.node, ast.Assign):
                targets = item.node.targets
            elif isinstance(item.node, (ast.AugAssign, ast.AnnAssign)):
                targets = [item.node.target]
            if any(_is_lr_write(t) for t in targets):
                controls.append(LrControl(item.node, "write", (), function))
        for site in item_calls(item):
            control = _control_call(site, structure, roles, function)
            if control is not None:
                controls.append(control)
    return controls


def _control_call(site: CallSite, structure: Structure, roles: Roles,
                  function: FunctionInfo | None) -> LrControl | None:
    call = site.call
    qualname = structure.imports.qualify(call.func)
    name = last(site.func_key).lower() if site.func_key else None
    if qualname is not None and qualname.startswith(K.LR_SCHEDULING_OWNERS):
        return LrControl(call, "trainer", (), function)  # we cannot tell which optimizer it gets: any
    if qualname in K.KERAS_LR_CALLBACKS:  # changes the rate of whatever model fit() trains
        return LrControl(call, "callback", (), function, warms_up=qualname not in K.DECAY_ONLY_SCHEDULERS)
    if qualname is not None and qualname.startswith(K.LR_SCHEDULER_PREFIXES):
        how = "scheduler"
    elif name is not None and qualname is None and (_LR_HELPER.fullmatch(name) or _LR_CLASS.fullmatch(last(site.func_key))):
        how = "helper"  # a local (or unresolved) scheduler class or lr helper (`TriangularLR(optimizer, 20)`)
    elif (site.method in ("assign", "set_value") and call.args
          and any((key or "").endswith((".lr", ".learning_rate"))
                  for key in (site.receiver, dotted(call.args[0])))):
        return LrControl(call, "write", (), function)  # optimizer.learning_rate.assign(x), K.set_value(opt.lr, x)
    else:
        return None
    optimizers = []
    for value in [*call.args, *(kw.value for kw in call.keywords)]:
        key = dotted(value)
        if key is None:
            continue
        if any(kw.value is value and kw.arg in ("optimizer", "optim", "opt") for kw in call.keywords):
            optimizers.append(value)
        elif roles.is_kind(key, function, OPTIMIZER):
            optimizers.append(value)
    if how == "helper" and not optimizers:
        return None  # `get_lr(step)`: computes a rate, hands it to nothing we know
    return LrControl(call, how, tuple(optimizers), function, warms_up=qualname not in K.DECAY_ONLY_SCHEDULERS)


def controls_optimizer(control: LrControl, build: OptimizerBuild, roles: Roles) -> bool:
    """May `control` change the learning rate of the optimizer `build` makes? Unsure means yes."""
    if not control.optimizers:
        return True
    for expr in control.optimizers:
        if expr is build.call:
            return True
        role = roles.of(dotted(expr), control.function)
        if role is None or role.kind != OPTIMIZER or role.call is None or role.call is build.call:
            return True
    return False
