"""Events: the ordered training actions of a file, each with its context.

The IR of each entry point (the module body, and every function nothing in the file calls) is
instantiated in order; a call to a helper defined in this file (`train_epoch(...)`, `self.validate()`,
`trainer.fit_one()`) instantiates the helper's body at the call site, with its parameters bound to
the caller's arguments. So an epoch loop that calls `train(); validate()` is one sequence of events,
in the caller's names.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import ast

from . import knowledge as K
from .autograd import DETACHED, LIVE, TensorRef, occurrences
from .builds import built_kind, built_over
from .names import bool_value, dotted, is_eval_name, is_none, keyword, last, normalize, positional
from .roles import (ACCELERATOR, DATA_SCALER, GRAD_SCALER, INSTANCE, MODEL, OPTIMIZER, OTHER, SCHEDULER,
                    Role, Roles)
from .structure import (FOR_TYPES, TRY_TYPES, Branch, CallSite, FunctionInfo, Item, Loop, Stmt, Structure, With,
                        if_arms, item_calls, walk_items)
from .roles import _MODE_METHODS as _RETURNS_SELF  # nn.Module methods that return the module

BACKWARD = "backward"
ZERO_GRAD = "zero_grad"
OPT_STEP = "optimizer_step"
SCHED_STEP = "scheduler_step"
CLIP = "clip"
UNSCALE = "unscale"
TRAIN_MODE = "train_mode"  # model.train() / model.eval(); `mode` says which
DATA_FIT = "data_fit"  # fit / fit_transform / transform / adapt on a data scaler; `method` says which
ACCUMULATE = "accumulate"  # x += value, x = x + value, xs.append(value)
FORWARD = "forward"
OPAQUE_USE = "opaque_use"  # an optimizer handed to a function we cannot see into
APPLY_GRADIENTS = "apply_gradients"
TAPE_GRADIENT = "tape_gradient"
LOCAL_CALL = "local_call"  # a call of a helper defined in this file (its events follow)
GRAD_WRITE = "grad_write"  # `p.grad = g`, `p.grad.copy_(g)`: gradients set by hand, not by backward()
SCALER_UPDATE = "scaler_update"  # `scaler.update()` of an AMP GradScaler (TL013)
BUILD = "build"  # an optimizer or LR scheduler constructor call; `built` says which, `over` what it holds (TL014)
SET_EPOCH = "set_epoch"  # `sampler.set_epoch(epoch)`: a DistributedSampler told which epoch it shuffles for

_MAX_INLINE_DEPTH = 5
# Helpers are instantiated at each of their call sites, so a file whose helpers call each other from many
# places multiplies the calls to walk. Real files stay far below this budget (each call written is walked a
# few times); a file that reaches it is analysed no further, and says so (ScriptModel.truncated, E903).
_MIN_WORK_BUDGET = 100_000
_WORK_PER_CALL = 25
_NON_TENSOR_KINDS = frozenset({INSTANCE, MODEL, OPTIMIZER, SCHEDULER, DATA_SCALER, OTHER, GRAD_SCALER, ACCELERATOR})
_CLIP_NAMES = frozenset({"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_gradients"})
_GRAD_WRITE_METHODS = frozenset({"copy_", "add_", "set_"})
# Names of helpers that clear the gradients they are handed.
_CLEARING_NAME = re.compile(r"(?i)(zero|clear|reset|null|none)_?(the_)?grad(s|ients?)?(_.*)?|zero_gradients")
_DATA_METHODS = frozenset({"fit", "fit_transform", "transform", "adapt", "partial_fit"})


@dataclass(eq=False)
class LoopFrame:
    """One instantiation of a loop (a helper's loop inlined at two call sites gives two frames)."""

    loop: Loop
    function: FunctionInfo | None
    parent: "LoopFrame | None"
    # identity -> the contexts of the plain assignments to it within an iteration (at any depth; TL004)
    assigned: dict = field(default_factory=dict)
    # How many of an event's `context.guards` lie outside the loop: the rest are `if`s within one iteration.
    outer_guards: int = 0
    call_chain: tuple[ast.Call, ...] = ()  # the helper calls that led to the loop (whose arguments its names hold)

    @property
    def node(self) -> ast.For | ast.AsyncFor | ast.While:
        return self.loop.node


@dataclass(frozen=True, eq=False)
class Context:
    loops: tuple[LoopFrame, ...] = ()
    guards: tuple[tuple[Branch, int], ...] = ()  # (branch, arm) pairs, outermost first
    grad_enabled: bool = True
    call_chain: tuple[ast.Call, ...] = ()  # helper calls that led here, outermost first
    function: FunctionInfo | None = None

    @property
    def loop(self) -> LoopFrame | None:
        return self.loops[-1] if self.loops else None


@dataclass(eq=False)
class Event:
    kind: str
    subject: str | None  # identity of the object acted on, in the entry point's names
    spelled: str | None  # the same object as written at the event
    role: Role | None
    site: CallSite | None
    stmt: Stmt | None
    context: Context
    index: int = 0
    detail: dict = field(default_factory=dict)

    @property
    def node(self) -> ast.AST:
        return self.site.call if self.site is not None else self.stmt.node

    def in_loop(self, frame: LoopFrame) -> bool:
        return frame in self.context.loops


@dataclass
class _Frame:
    function: FunctionInfo | None
    bindings: dict[str, str | None]  # parameter -> caller identity (None: not a plain name)
    bound_roles: dict[str, Role | None]
    prefix: str  # for the helper's own locals, so they do not collide with the caller's
    active: tuple[FunctionInfo, ...]
    outer: "_Frame | None" = None  # the enclosing function's frame, for a closure's free variables
    constants: dict[str, object] = field(default_factory=dict)  # parameter -> the constant the caller passed
    origin: ast.AST | None = None  # the module-level call this helper runs under (where its globals are read)


def _constants(call: ast.Call, function: FunctionInfo, pairs: list[tuple[str, ast.expr]]) -> dict[str, object]:
    """Of the (parameter, argument) pairs a call binds, the parameters given a constant string, number or bool
    that the function never reassigns."""
    if any(isinstance(a, ast.Starred) for a in call.args):
        return {}
    return {param: arg.value for param, arg in pairs if param not in function.assignments
            and isinstance(arg, ast.Constant) and isinstance(arg.value, (str, int, float, bool))}


def _arm_excluded(node: ast.AST, arm: int, constants: dict[str, object]) -> bool:
    """Can this arm of an if/elif chain not run, given the constants the helper was called with? Only tests
    `param == c` (either side) and `param != c` on such a parameter are read; any other test may hold."""
    if not constants or not isinstance(node, ast.If):
        return False
    tests, _ = if_arms(node)
    outcomes = [_decided(test, constants) for test in tests]
    if arm < len(tests) and outcomes[arm] is False:
        return True
    return any(outcome is True for outcome in outcomes[:arm])  # an earlier arm is taken


def _decided(test: ast.expr, constants: dict[str, object]) -> bool | None:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
        return None
    for a, b in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        if isinstance(a, ast.Name) and a.id in constants and isinstance(b, ast.Constant):
            value = constants[a.id]
            if type(value) is not type(b.value):
                return None
            equal = value == b.value
            return equal if isinstance(test.ops[0], ast.Eq) else not equal
    return None


def _accumulates(key: str, value: ast.expr) -> bool:
    """`x = x + v` / `x = x - v`: the value only grows `x`."""
    return (isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub))
            and dotted(value.left) == key)


def _running_update(key: str, value: ast.expr) -> ast.expr | None:
    """`x = 0.98 * x + 0.02 * v`, `x = v + x`: a sum that carries `x` on (a running average); the occurrence
    of `x`, else None."""
    if not (isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub))):
        return None
    return next((o.node for o in occurrences(value) if o.key == key and o.mode == LIVE), None)


def _module_receiver(expr: ast.expr) -> str | None:
    """`model` for `model.to(device)` / `model.cuda().float()`: nn.Module methods that return the module."""
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
           and expr.func.attr in _RETURNS_SELF):
        expr = expr.func.value
    return dotted(expr) if not isinstance(expr, ast.Call) else None


def _argument_key(expr: ast.expr) -> str | None:
    """The object an argument passes: `model`, and for `model.module if distributed else model` the object both
    arms are part of."""
    if isinstance(expr, ast.IfExp):
        a, b = dotted(expr.body), dotted(expr.orelse)
        if a is not None and b is not None:
            if a == b or a.startswith(b + "."):
                return b
            if b.startswith(a + "."):
                return a
        return None
    return dotted(expr)


def comprehension_clips(node: ast.AST, imports) -> list[tuple[ast.expr, ast.Call, str]]:
    """(comprehension, call, qualname) for each TensorFlow clip call in the element of a list/generator
    comprehension that a statement's value is, or passes to a call: `[tf.clip_by_norm(g, 1.0) for g in grads]`,
    `zip([tf.clip_by_value(g, -1, 1) for g in grads], variables)`. The one walk does not enter comprehensions."""
    value = getattr(node, "value", None)
    pending = [value] if isinstance(value, ast.expr) else []
    found = []
    while pending:
        expr = pending.pop()
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp)):
            elements = [expr.elt]
            while elements:
                element = elements.pop()
                if isinstance(element, ast.Call):
                    qualname = imports.qualify(element.func)
                    if qualname in K.TF_CLIP_FUNCTIONS:
                        found.append((expr, element, qualname))
                elif isinstance(element, ast.Tuple):
                    elements.extend(element.elts)
                elif isinstance(element, ast.IfExp):
                    elements.extend((element.body, element.orelse))
        elif isinstance(expr, ast.Call):
            pending.extend(a.value if isinstance(a, ast.Starred) else a for a in expr.args)
            pending.extend(k.value for k in expr.keywords)
        elif isinstance(expr, ast.Tuple):
            pending.extend(expr.elts)
    return found


def base_key(expr: ast.expr | None) -> str | None:
    """The dotted root of an expression: `loss` for `loss.mean()`, `out.loss` for `out.loss[0]`."""
    while expr is not None:
        key = dotted(expr)
        if key is not None:
            return key
        if isinstance(expr, ast.Call):
            expr = expr.func.value if isinstance(expr.func, ast.Attribute) else None
        elif isinstance(expr, (ast.Attribute, ast.Subscript)):
            expr = expr.value
        else:
            return None
    return None


# The calls that make a function part of a training step (backward, step, zero_grad, mode switches, clipping,
# data scalers' fits, TensorFlow's tape and apply_gradients).
_TRAINING_CALLS = frozenset({"backward", "step", "zero_grad", "eval", "train", "clip_grad_norm_", "clip_grad_value_",
                             "clip_grad_norm", "clip_gradients", "unscale_", "fit", "fit_transform", "partial_fit",
                             "adapt", "apply_gradients", "gradient", "optimizer_step"})
_MAX_RELEVANCE_DEPTH = 3


def _does_training(function: FunctionInfo, roles: Roles, depth: int, seen: dict) -> bool:
    """Does the function, or a helper of its own module it calls (a few levels deep), make a training call?"""
    if id(function) in seen:
        return seen[id(function)]
    seen[id(function)] = False
    found = False
    pending = list(function.body)
    while pending and not found:
        item = pending.pop()
        if isinstance(item, Loop):
            pending.extend(item.body + item.orelse)
        elif isinstance(item, Branch):
            for arm in item.arms:
                pending.extend(arm)
            pending.extend(item.always)
        elif isinstance(item, With):
            pending.extend(item.body)
        if isinstance(item, Stmt) and any(key and key.endswith((".grad", ".grad.data")) for key, _ in item.targets):
            found = True  # `p.grad = None`: gradients cleared (or set) by hand
            break
        for site in item_calls(item):
            name = site.method or (last(site.func_key) if site.func_key else None)
            if name in _TRAINING_CALLS or (name and _CLEARING_NAME.fullmatch(name)) or (
                    site.method in _GRAD_WRITE_METHODS | {"zero_", "fill_", "detach_"} and site.receiver
                    and site.receiver.endswith((".grad", ".grad.data"))):
                found = True
                break
            if depth < _MAX_RELEVANCE_DEPTH:
                callee = None
                module = function.module
                if site.receiver is None and site.func_key and module is not None:
                    callee = module.functions.get(site.func_key)
                elif site.receiver == "self" and function.klass is not None:
                    callee = roles.method(function.klass, site.method)
                if callee is not None and _does_training(callee, roles, depth + 1, seen):
                    found = True
                    break
    seen[id(function)] = found
    return found


class EventBuilder:
    def __init__(self, structure: Structure, roles: Roles) -> None:
        self.structure = structure
        self.roles = roles
        self.imports = structure.imports
        self.events: list[Event] = []
        self.instantiated: set[int] = set()
        self._counter = itertools.count(1)
        self._versions: dict[str, int] = {}  # identity -> its latest definition, in walk order
        self._definitions = itertools.count(1)
        calls = sum(len(item_calls(item)) for item, _ in walk_items(structure))
        self.budget = max(_MIN_WORK_BUDGET, _WORK_PER_CALL * calls)
        self.work = 0  # calls walked so far, inlined helpers' calls included
        self._tensorflow = any(q.startswith(("tensorflow", "keras", "tf_keras")) for q in self.imports.names.values())
        self._clips: dict[int, list] = {}  # id(stmt) -> its TensorFlow clips in comprehensions
        self._qualnames: dict[int, str | None] = {}  # id(call) -> the qualified name of what it calls
        self.truncated = False  # the budget ran out: events after that point are missing

    def build(self) -> list[Event]:
        root = _Frame(None, {}, {}, "", ())
        self.block(self.structure.body, Context(), root)
        called = self.called_names()
        callbacks = []
        for function in self.structure.all_functions:
            method = function.klass is not None and function.parent is None
            if id(function) in self.instantiated or (id(function) in self.called_methods if method
                                                      else function.name in called):
                continue  # a method is called as `x.name()`, a function as `name()`
            if function.name in self.passed_names and not method:
                callbacks.append(function)  # handed to a call (a bare name cannot denote a method)
                continue
            self.instantiate(function, Context(function=function, grad_enabled=function.grad is not False),
                             _Frame(function, {}, {}, "", (function,)))
        for function in callbacks:  # `mp.spawn(train, ...)`: an entry point, unless a step ran it as a closure
            if id(function) not in self.instantiated:
                self.instantiate(function, Context(function=function, grad_enabled=function.grad is not False),
                                 _Frame(function, {}, {}, "", (function,)))
        for index, event in enumerate(self.events):
            event.index = index
        return self.events

    def called_names(self) -> set[str]:
        """Names called as `name()` anywhere in the file; the methods that a call `x.name()` reaches (through
        `self` in their class, or an object of their class) go to `called_methods`, and names passed as bare
        arguments to `passed_names`. A method whose name is only called on other objects (`model.train()` is
        not `Trainer.train`) is not called: it is an entry point of its own."""
        names: set[str] = set()
        self.passed_names: set[str] = set()
        self.called_methods: set[int] = set()
        method_names = {name for klass in self.structure.classes.values() for name in klass.methods}

        def walk(items: list[Item], function: FunctionInfo | None) -> None:
            for item in items:
                calls: list[CallSite] = []
                if isinstance(item, Stmt):
                    calls = item.calls
                elif isinstance(item, Loop):
                    calls = item.header_calls
                    walk(item.body, function), walk(item.orelse, function)
                elif isinstance(item, Branch):
                    calls = item.test_calls
                    for arm in item.arms:
                        walk(arm, function)
                    walk(item.always, function)
                elif isinstance(item, With):
                    calls = item.item_calls
                    walk(item.body, function)
                for site in calls:
                    if site.func_key and site.receiver is None:
                        names.add(last(site.func_key))
                    elif site.method in method_names and site.receiver is not None:
                        target = self._method_target(site, function)
                        if target is not None:
                            self.called_methods.add(id(target))
                    for arg in [*site.call.args, *(k.value for k in site.call.keywords)]:
                        if isinstance(arg, ast.Name):
                            self.passed_names.add(arg.id)

        walk(self.structure.body, None)
        for function in self.structure.all_functions:
            walk(function.body, function)
        return names

    def _method_target(self, site: CallSite, function: FunctionInfo | None) -> FunctionInfo | None:
        """The method of this file's classes that `x.name()` runs, when `x` is `self` or an object of a class
        the file knows."""
        if site.receiver in ("self", "cls") and function is not None and function.klass is not None:
            return self.roles.method(function.klass, site.method)
        role = self.roles.of(site.receiver, function)
        if role is not None and role.local_class is not None:
            return self.roles.method(role.local_class, site.method)
        return None

    # -- walking the IR ---------------------------------------------------------------------------
    def instantiate(self, function: FunctionInfo, context: Context, frame: _Frame) -> None:
        self.instantiated.add(id(function))
        self.block(function.body, context, frame)

    def block(self, items: list[Item], context: Context, frame: _Frame) -> None:
        for item in items:
            if self.work > self.budget:
                self.truncated = True
                return
            if isinstance(item, Stmt):
                self.statement(item, context, frame)
            elif isinstance(item, Loop):
                if isinstance(item.node, FOR_TYPES):
                    self.calls(item.header_calls, None, context, frame)
                loop_frame = LoopFrame(item, frame.function, context.loop, outer_guards=len(context.guards),
                                       call_chain=context.call_chain)
                inner = Context(context.loops + (loop_frame,), context.guards, context.grad_enabled,
                                context.call_chain, context.function)
                for key in item.target_keys:
                    self.define(key, inner, frame)
                if isinstance(item.node, ast.While):
                    self.calls(item.header_calls, None, inner, frame)
                self.block(item.body, inner, frame)
                self.block(item.orelse, context, frame)
            elif isinstance(item, Branch):
                self.calls(item.test_calls, None, context, frame)
                is_try = isinstance(item.node, TRY_TYPES)
                for arm_index, arm in enumerate(item.arms):
                    if not is_try and _arm_excluded(item.node, arm_index, frame.constants):
                        continue  # `if phase == "lm":` in a helper called with `phase="gnn"`
                    guarded = context if (is_try and arm_index == 0) else Context(
                        context.loops, context.guards + ((item, arm_index),), context.grad_enabled,
                        context.call_chain, context.function)
                    self.block(arm, guarded, frame)
                self.block(item.always, context, frame)
            elif isinstance(item, With):
                self.calls(item.item_calls, None, context, frame)
                grad = context.grad_enabled if item.grad is None else item.grad
                inner = Context(context.loops, context.guards, grad, context.call_chain, context.function)
                for key, _ in item.bound:
                    self.define(key, inner, frame)
                self.block(item.body, inner, frame)

    def statement(self, stmt: Stmt, context: Context, frame: _Frame) -> None:
        clips = self._clips.get(id(stmt)) if self._tensorflow else ()
        if clips is None:
            clips = self._clips[id(stmt)] = comprehension_clips(stmt.node, self.roles.imports_of(frame.function))
        for comprehension, call, qualname in clips:
            # `grads = [tf.clip_by_norm(g, 5.0) for g in grads]`: evaluated before the calls it is passed to
            self.emit(CLIP, None, site=CallSite(call, dotted(call.func), None, None), stmt=stmt, context=context,
                      frame=frame, qualname=qualname, tensorflow=True, comprehension=comprehension)
        self.calls(stmt.calls, stmt, context, frame)
        if stmt.aug is not None:
            key, operator, value = stmt.aug
            target = stmt.node.target
            if key is None and isinstance(target, ast.Subscript):
                key = base_key(target)  # `stats["loss"] += loss` accumulates into `stats`
            if isinstance(operator, (ast.Add, ast.Sub)) and key:
                self.emit(ACCUMULATE, key, stmt=stmt, context=context, frame=frame, value=value, target=target,
                          refs=self.tensor_refs(value, frame))
        grows: set[str] = set()  # keys this statement only grows (`x = x + v`): not a reset of them
        for key, value in stmt.targets:
            if key is None:
                continue
            if key.endswith(".grad") and is_none(value):
                self.emit(ZERO_GRAD, None, stmt=stmt, context=context, frame=frame, everything=True)
            elif key.endswith((".grad", ".grad.data")):
                self.emit(GRAD_WRITE, key, stmt=stmt, context=context, frame=frame)
            elif _accumulates(key, value):
                grows.add(key)
                self.emit(ACCUMULATE, key, stmt=stmt, context=context, frame=frame, value=value.right,
                          target=value.left, refs=self.tensor_refs(value.right, frame))
            else:
                carried = _running_update(key, value)
                if carried is not None:  # `avg = 0.98 * avg + 0.02 * v`
                    grows.add(key)
                    self.emit(ACCUMULATE, key, stmt=stmt, context=context, frame=frame, value=value,
                              target=carried, refs=[r for r in self.tensor_refs(value, frame) if r.key != key])
        for key, value in stmt.targets:
            if key is not None:
                self.define(key, context, frame, reset=key not in grows)
                if self.fresh_module(value, frame):  # `model = Net()`: a new module, in training mode
                    self.emit(TRAIN_MODE, key, stmt=stmt, context=context, frame=frame, mode=True, fresh=True)

    def fresh_module(self, value: ast.expr | None, frame: _Frame) -> bool:
        """Does `value` build a new torch module (`Net()`, `Net().to(device)`, `nn.Sequential(...)`), which starts
        in training mode? Not a wrapper of a module it is handed (`DDP(model)`), nor a loaded one."""
        while (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
               and value.func.attr in _RETURNS_SELF):
            if value.func.attr in ("train", "eval"):
                return False
            value = value.func.value
        if not isinstance(value, ast.Call) or not isinstance(value.func, (ast.Name, ast.Attribute)):
            return False
        role = self.roles.classify(value, frame.function, 0)
        if role is None or role.kind != MODEL or role.call is not value:
            return False
        qualname = role.qualname or ""
        if role.local_class is None and not qualname.startswith(K.FRESH_MODULE_PREFIXES) or qualname.startswith(
                K.MODULE_WRAPPERS):
            return False
        roles = (self.role(dotted(arg), frame, value) for arg in [*value.args, *(k.value for k in value.keywords)])
        return not any(role is not None and role.kind == MODEL for role in roles)

    # -- classifying calls ------------------------------------------------------------------------
    def calls(self, sites: list[CallSite], stmt: Stmt | None, context: Context, frame: _Frame) -> None:
        for site in sites:
            self.call(site, stmt, context, frame)

    def call(self, site: CallSite, stmt: Stmt | None, context: Context, frame: _Frame) -> None:
        self.work += 1
        method, receiver = site.method, site.receiver
        qualname = self._qualnames.get(id(site.call), False)
        if qualname is False:
            qualname = self._qualnames[id(site.call)] = self.roles.imports_of(frame.function).qualify(site.call.func)
        args = positional(site.call)
        first = args[0] if args else None

        helper = self.resolve_helper(site, frame)
        if helper is not None:  # a helper we can see into: its events are its body's (none, when it trains nothing)
            function, bindings, roles, constants = helper
            if method in ("train", "eval") and isinstance(site.call.func, ast.Attribute):
                self.mode_switch(site, stmt, context, frame)  # a module's own train() still sets the mode
            if function not in frame.active and len(frame.active) < _MAX_INLINE_DEPTH and self.followed(function):
                self.emit(LOCAL_CALL, None, stmt=stmt, context=context, frame=frame, site=site, function=function)
                inner = Context(context.loops, context.guards,
                                context.grad_enabled and function.grad is not False,
                                context.call_chain + (site.call,), function)
                self.instantiate(function, inner, _Frame(function, bindings, roles,
                                                         f"{function.name}#{next(self._counter)}::",
                                                         frame.active + (function,), self.enclosing(function, frame),
                                                         constants,
                                                         frame.origin if frame.function is not None else site.call))
            return

        if qualname in K.AUTOGRAD_BACKWARD and first is not None:
            self.emit(BACKWARD, base_key(first), site=site, stmt=stmt, context=context, frame=frame,
                      **self.loss_detail(first, frame))
            return
        if method == "backward":
            self.backward(site, stmt, context, frame, first)
            return
        if method == "step" and receiver is not None:
            self.step(site, stmt, context, frame, first)
            return
        if method == "optimizer_step" and first is not None:  # torch_xla's xm.optimizer_step(opt)
            self.emit(OPT_STEP, dotted(first), site=site, stmt=stmt, context=context, frame=frame)
            return
        if method == "set_epoch":
            self.emit(SET_EPOCH, receiver, site=site, stmt=stmt, context=context, frame=frame)
            return
        if method == "zero_grad":
            self.emit(ZERO_GRAD, receiver, site=site, stmt=stmt, context=context, frame=frame,
                      everything=receiver is None)
            return
        if site.func_key is not None and _CLEARING_NAME.fullmatch(last(site.func_key)) \
                and (site.call.args or site.call.keywords):
            # `zero_grad(self.model_params)`, `utils.zero_grads(opt)`: a helper we cannot see into whose name
            # says it clears the gradients it is handed. Unsure means it clears.
            self.emit(ZERO_GRAD, None, site=site, stmt=stmt, context=context, frame=frame, everything=True)
            return
        if method in ("zero_", "fill_", "detach_") and receiver and (receiver.endswith(".grad")
                                                                       or receiver.endswith(".grad.data")):
            if method != "detach_":
                self.emit(ZERO_GRAD, None, site=site, stmt=stmt, context=context, frame=frame, everything=True)
            return
        if method in _GRAD_WRITE_METHODS and receiver and receiver.endswith((".grad", ".grad.data")):
            self.emit(GRAD_WRITE, receiver, site=site, stmt=stmt, context=context, frame=frame)
            return
        func_name = last(site.func_key) if site.func_key else None
        if qualname in K.CLIP_FUNCTIONS or qualname in K.TF_CLIP_FUNCTIONS or func_name in _CLIP_NAMES:
            self.emit(CLIP, None, site=site, stmt=stmt, context=context, frame=frame,
                      qualname=qualname, tensorflow=qualname in K.TF_CLIP_FUNCTIONS)
            return
        if method == "unscale_" and first is not None:
            self.emit(UNSCALE, dotted(first), site=site, stmt=stmt, context=context, frame=frame, scaler=receiver)
            return
        if method in ("train", "eval"):
            self.mode_switch(site, stmt, context, frame)
            return
        if method in _DATA_METHODS and receiver is not None:
            self.emit(DATA_FIT, receiver, site=site, stmt=stmt, context=context, frame=frame, method=method,
                      data=first)
            return
        if method in _DATA_METHODS and isinstance(site.call.func, ast.Attribute):
            role = self.roles.classify(site.call.func.value, frame.function, 0)
            if role is not None and role.kind == DATA_SCALER:  # `StandardScaler().fit_transform(X)`
                bound = None  # `scaler = StandardScaler().fit(X)`: fit returns the scaler, named `scaler`
                if method in ("fit", "partial_fit") and stmt is not None and len(stmt.targets) == 1 \
                        and stmt.targets[0][1] is site.call:
                    bound = stmt.targets[0][0]
                self.events.append(Event(DATA_FIT, self.identity(bound, frame), bound, role, site, stmt, context,
                                         detail={"method": method, "data": first}))
                return
        if method == "update" and receiver is not None and self.grad_scaler(receiver, frame, site.call):
            self.emit(SCALER_UPDATE, receiver, site=site, stmt=stmt, context=context, frame=frame)
            return
        if method == "apply_gradients":
            self.emit(APPLY_GRADIENTS, receiver, site=site, stmt=stmt, context=context, frame=frame)
            return
        if method == "apply" and receiver is not None and self.keras_optimizer(receiver, frame, site.call):
            # Keras 3: `optimizer.apply(grads, model.trainable_weights)`
            self.emit(APPLY_GRADIENTS, receiver, site=site, stmt=stmt, context=context, frame=frame, keras_apply=True)
            return
        if method == "gradient" and receiver is not None:
            self.emit(TAPE_GRADIENT, receiver, site=site, stmt=stmt, context=context, frame=frame)
            return
        if method in ("append", "extend") and first is not None and isinstance(site.call.func, ast.Attribute):
            container = site.call.func.value  # `history["loss"].append(v)` accumulates into `history`
            spelled = receiver or (base_key(container) if isinstance(container, ast.Subscript) else None)
            if spelled is not None:
                self.emit(ACCUMULATE, spelled, site=site, stmt=stmt, context=context, frame=frame, value=first,
                          target=container, refs=self.tensor_refs(first, frame))
                return
        if site.func_key is not None and (method is None or receiver in ("self", "cls") or "." in site.func_key):
            # `model(x)`, and a model held as an attribute: `self.model(x)`, `self.net(x)`, `trainer.model(x)`
            role = self.role(site.func_key, frame, site.call)
            if role is not None and role.kind == MODEL:
                self.emit(FORWARD, site.func_key, site=site, stmt=stmt, context=context, frame=frame)
                return
        built = built_kind(qualname)
        if built is not None:
            self.construction(site, stmt, context, frame, built, qualname)
        for arg in [*site.call.args, *(k.value for k in site.call.keywords)]:
            key = dotted(arg)
            role = self.role(key, frame, site.call) if key is not None else None
            if role is not None and role.kind in (OPTIMIZER, GRAD_SCALER):
                self.emit(OPAQUE_USE, key, site=site, stmt=stmt, context=context, frame=frame)

    def mode_switch(self, site: CallSite, stmt: Stmt | None, context: Context, frame: _Frame) -> None:
        """`model.train()`, `model.eval()`, `model.train(False)`, `model.to(device).train()`: the model's mode."""
        receiver, method = site.receiver, site.method
        if receiver is None:
            receiver = _module_receiver(site.call.func.value)  # `model.to(device).train()`
        if receiver is None or receiver == "self":
            return
        role = self.role(receiver, frame, site.call)
        if role is None or role.kind == MODEL:
            mode = method == "train"
            args = positional(site.call)
            flag = args[0] if args else keyword(site.call, "mode")
            if method == "train" and flag is not None:  # train(False) is eval(); train(flag) is unknown
                mode = bool_value(flag)
            self.emit(TRAIN_MODE, receiver, site=site, stmt=stmt, context=context, frame=frame, mode=mode)

    def construction(self, site: CallSite, stmt, context, frame, built: str, qualname: str) -> None:
        """An optimizer or scheduler constructor: the name it is bound to (`spelled`), and the identities of
        what it is built over."""
        bound = None
        if stmt is not None and len(stmt.targets) == 1 and stmt.targets[0][1] is site.call:
            bound = stmt.targets[0][0]
        keys, complete = built_over(site.call, built, qualname)
        self.emit(BUILD, bound, site=site, stmt=stmt, context=context, frame=frame, built=built, qualname=qualname,
                  over=[(key, self.identity(key, frame)) for key in keys], complete=complete)

    def grad_scaler(self, key: str, frame: _Frame, at: ast.AST | None = None) -> bool:
        """An AMP GradScaler: built by its constructor, or unknown and named like one (`scaler`, `self.grad_scaler`)."""
        role = self.role(key, frame, at)
        if role is not None and role.kind == GRAD_SCALER:
            return True
        return (role is None or role.evidence == "name") and "scaler" in last(key).lower()

    def keras_optimizer(self, key: str, frame: _Frame, at: ast.AST | None = None) -> bool:
        """A Keras optimizer: built by a `keras.optimizers` constructor, or named like an optimizer in a file
        that imports Keras (`self.optimizer` in a `keras.Model.train_step`)."""
        role = self.role(key, frame, at)
        if role is None or role.kind != OPTIMIZER:
            return False
        if role.qualname:
            return role.qualname.startswith("keras.optimizers.")
        return role.evidence == "name" and any(
            q == "keras" or q.startswith(("keras.", "tensorflow"))
            for q in map(normalize, self.roles.imports_of(frame.function).names.values()))

    def backward(self, site: CallSite, stmt, context, frame, first) -> None:
        receiver = site.receiver
        func = site.call.func
        role = self.role(receiver, frame, site.call) if receiver else None
        if role is not None and role.kind == ACCELERATOR or (receiver and "engine" in last(receiver).lower()):
            if first is not None:  # accelerator.backward(loss), fabric.backward(loss), engine.backward(loss)
                self.emit(BACKWARD, base_key(first), site=site, stmt=stmt, context=context, frame=frame,
                          **self.loss_detail(first, frame))
            return
        inner = func.value if isinstance(func, ast.Attribute) else None
        if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "scale"
                and positional(inner)):  # scaler.scale(loss).backward()
            loss = positional(inner)[0]
            scaler = dotted(inner.func.value)
            self.emit(BACKWARD, base_key(loss), site=site, stmt=stmt, context=context, frame=frame,
                      scaler=scaler, scaler_identity=self.identity(scaler, frame), scaler_role=self.role(scaler, frame),
                      **self.loss_detail(loss, frame))
            return
        if receiver == "self" or (role is not None and role.kind in _NON_TENSOR_KINDS and role.evidence != "number"):
            return  # a user's own backward(), not autograd's
        self.emit(BACKWARD, base_key(inner) if inner is not None else None, site=site, stmt=stmt,
                  context=context, frame=frame, **self.loss_detail(inner, frame))

    def step(self, site: CallSite, stmt, context, frame, first) -> None:
        receiver = site.receiver
        role = self.role(receiver, frame, site.call)
        if first is not None and (role is not None and role.kind == GRAD_SCALER or
                                  (role is None or role.evidence == "name") and "scaler" in last(receiver).lower()):
            self.emit(OPT_STEP, dotted(first), site=site, stmt=stmt, context=context, frame=frame, scaler=receiver,
                      scaler_identity=self.identity(receiver, frame), scaler_role=role)
            return
        if role is None:
            return
        if role.kind == OPTIMIZER:
            if isinstance(first, ast.Name):  # optimizer.step(closure): the closure runs first
                closure = self.lookup_function(first.id, frame)
                if closure is not None and closure not in frame.active:
                    self.instantiate(closure, Context(context.loops, context.guards, context.grad_enabled,
                                                      context.call_chain + (site.call,), closure),
                                     _Frame(closure, {}, {}, f"{closure.name}#{next(self._counter)}::",
                                            frame.active + (closure,), self.enclosing(closure, frame)))
            self.emit(OPT_STEP, receiver, site=site, stmt=stmt, context=context, frame=frame)
        elif role.kind == SCHEDULER:
            self.emit(SCHED_STEP, receiver, site=site, stmt=stmt, context=context, frame=frame,
                      metric=bool(site.call.args or site.call.keywords))

    # -- helpers defined in this file, or in a module of the project it imports -------------------------
    def lookup_function(self, name: str, frame: _Frame) -> FunctionInfo | None:
        scope = frame.function
        while scope is not None:
            if name in scope.nested:
                return scope.nested[name]
            scope = scope.parent
        module = self.roles.module_of(frame.function)
        return module.functions.get(name) or self.roles.links.function(module, name)

    def followed(self, function: FunctionInfo) -> bool:
        """Is a helper worth following into? Those of this file always are; a function of another module of
        the project only when it (or what it calls in its own module) does something a training step does, or
        is named as an evaluation: the rest is library code, followed like torch's, that is, not at all."""
        if function.module is None or function.module is self.structure:
            return True
        # an evaluation helper (`evaluate()`, `validate_one_epoch()`) runs the model without training it (TL008)
        return is_eval_name(function.name) or _does_training(function, self.roles, 0, {})

    @staticmethod
    def enclosing(function: FunctionInfo, frame: _Frame) -> _Frame | None:
        """The frame of the function that defines `function` (its closure), if it is on the stack."""
        if function.parent is None:
            return None
        while frame is not None and frame.function is not function.parent:
            frame = frame.outer
        return frame

    def resolve_helper(self, site: CallSite, frame: _Frame):
        """(function, bindings, bound roles, constants) when the call runs a function defined in this file."""
        func = site.call.func
        function, self_identity, self_role = None, None, None
        if isinstance(func, ast.Name):
            function = self.lookup_function(func.id, frame)
        elif isinstance(func, ast.Attribute) and site.receiver is not None:
            if site.receiver == "self" and frame.function is not None and frame.function.klass is not None:
                function = self.roles.method(frame.function.klass, site.method)
                self_identity = self.identity("self", frame)
                self_role = frame.bound_roles.get("self")
            else:
                role = self.role(site.receiver, frame, site.call)
                if role is not None and role.local_class is not None:
                    function = self.roles.method(role.local_class, site.method)
                    self_identity, self_role = self.identity(site.receiver, frame), role
                elif role is None and site.func_key is not None and not self.bound(site.receiver, frame):
                    # `engine.train_one_epoch(...)`: a function of a project module imported as a name
                    function = self.roles.links.function(self.roles.module_of(frame.function), site.func_key)
        if function is None:
            return None
        params = list(function.params)
        bindings: dict[str, str | None] = {}
        bound_roles: dict[str, Role | None] = {}
        if function.klass is not None and function.parent is None and params and params[0] in ("self", "cls") \
                and not isinstance(func, ast.Name):
            bindings[params[0]] = self_identity
            bound_roles[params[0]] = self_role
            params = params[1:]
        pairs = [*zip(params, positional(site.call)),
                 *((kw.arg, kw.value) for kw in site.call.keywords if kw.arg is not None and kw.arg in function.params)]
        for param, arg in pairs:
            key = _argument_key(arg)
            bindings[param] = self.identity(key, frame)
            bound_roles[param] = self.role(key, frame, site.call)
        return function, bindings, bound_roles, _constants(site.call, function, pairs)

    # -- names ------------------------------------------------------------------------------------
    def alias(self, key: str, function: FunctionInfo | None) -> str:
        """`opt = self.optimizer` makes `opt` another name for `self.optimizer`; so does every binding of a loop
        variable over the same collection of training objects (`for optimizer in self.optimizers:`, twice in
        one function): each names an element of that collection, which one we cannot tell."""
        seen = set()
        while function is not None and key not in seen:
            seen.add(key)
            values = function.assignments.get(key)
            if not values:
                break
            targets = {dotted(value) for value in values}
            if len(targets) != 1 or None in targets:
                break
            target = targets.pop()
            if len(values) > 1 and not self._collection_of_training_objects(target, function):
                break
            key = target
        return key

    def _collection_of_training_objects(self, key: str, function: FunctionInfo | None) -> bool:
        role = self.roles.of(key, function)
        return role is not None and role.kind in (OPTIMIZER, SCHEDULER)

    def identity(self, key: str | None, frame: _Frame) -> str | None:
        if key is None:
            return None
        key = self.alias(key, frame.function)
        first, dot, rest = key.partition(".")
        if first in frame.bindings:
            bound = frame.bindings[first]
            if bound is None:
                return f"{frame.prefix}{key}"
            return bound + dot + rest
        function = frame.function
        if function is not None and (first in function.assignments or first in function.params
                                     or key in function.assignments):
            return f"{frame.prefix}{key}"
        if frame.outer is not None:  # a closure's free variable is the enclosing function's
            return self.identity(key, frame.outer)
        module = self.roles.module_of(function)
        if module is not self.structure:  # a global of another module is not this file's namesake
            return f"{module.path}::{key}"
        return key

    def bound(self, key: str, frame: _Frame) -> bool:
        """Is the head of `key` a parameter or a local of the function (or a function around it)?"""
        first = key.split(".")[0]
        if first in frame.bindings:
            return True
        scope = frame.function
        while scope is not None:
            if first in scope.params or first in scope.assignments:
                return True
            scope = scope.parent
        return first in self.roles.module_of(frame.function).module_assignments

    def role(self, key: str | None, frame: _Frame, at: ast.AST | None = None) -> Role | None:
        """What `key` denotes in `frame`, where `at` is written (a name re-assigned in one scope denotes its
        last value before that point)."""
        if key is None:
            return None
        key = self.alias(key, frame.function)
        first = key.split(".")[0]
        if key == first and first in frame.bound_roles and frame.bound_roles[first] is not None:
            return frame.bound_roles[first]
        function = frame.function
        if (function is not None and frame.origin is not None and first not in function.assignments
                and first not in function.params and first in self.structure.module_assignments):
            # a global read in a helper: its value when the module-level call that runs the helper is made
            # (a notebook rebinds `optimizer` in each cell before calling the same `train()`)
            return self.roles.role_at(key, None, frame.origin)
        return self.roles.role_at(key, function, at)

    # -- definitions and the tensors a value holds (TL004) -----------------------------------------
    def define(self, key: str, context: Context, frame: _Frame, reset: bool = True) -> None:
        """`key` is (re)bound here: a new definition; unless it only grows (`x = x + v`), a reset of it
        for every loop it sits in."""
        identity = self.identity(key, frame)
        if identity is None:
            return
        self._versions[identity] = next(self._definitions)
        if reset:
            for loop_frame in context.loops:
                loop_frame.assigned.setdefault(identity, []).append(context)

    def version(self, identity: str) -> int:
        """The latest definition of `identity` or of an object it is part of (`outputs` for `outputs.loss`)."""
        parts = identity.split(".")
        return max(self._versions.get(".".join(parts[:n]), 0) for n in range(1, len(parts) + 1))

    def tensor_refs(self, expr: ast.expr | None, frame: _Frame) -> list[TensorRef]:
        """The names whose autograd graph the value of `expr` holds (LIVE occurrences), as identities with
        the definition that reaches this point."""
        refs = []
        for occurrence in occurrences(expr):
            if occurrence.mode == LIVE:
                identity = self.identity(occurrence.key, frame)
                if identity is not None:
                    refs.append(TensorRef(identity, self.version(identity), occurrence.key, occurrence.node,
                                          occurrence.scalar))
        return refs

    def loss_detail(self, expr: ast.expr | None, frame: _Frame) -> dict:
        """For a BACKWARD: `tensors`, the tensors `backward()` runs on (LIVE in its argument); `touches`,
        every identity its argument mentions other than detached (`torch.stack(log_probs).sum()`)."""
        touches = {self.identity(o.key, frame) for o in occurrences(expr) if o.mode != DETACHED}
        touches.discard(None)
        return {"tensors": self.tensor_refs(expr, frame), "touches": frozenset(touches)}

    def emit(self, kind: str, spelled: str | None, *, stmt: Stmt | None, context: Context, frame: _Frame,
             site: CallSite | None = None, **detail) -> None:
        role = self.role(spelled, frame, site.call if site is not None else stmt.node if stmt is not None else None) if spelled else None
        self.events.append(Event(kind, self.identity(spelled, frame), spelled, role, site, stmt, context,
                                 detail=detail))
