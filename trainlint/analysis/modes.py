"""Modes: which training steps can run while a model is still in eval mode.

A `model.eval()` (or `model.train(False)`) "reaches" a training step of the same model when some path of
the program goes from the eval() to the step without passing a `model.train()` (or `model.train(flag)`,
which we cannot read and so count as restoring). Two kinds of path exist in structured code:

* straight: the step comes later in the same pass (a baseline evaluation before the epoch loop);
* around a loop: the eval() runs late in one iteration of a loop (`validate()` at the end of an epoch,
  `evaluate()` every N batches) and the step early in the next.

A train() blocks a path when it runs on every pass of it: it *dominates* the step (written before it, in
no loop or branch the step is not also in) or *post-dominates* the eval() (after it, in no loop or
branch the eval() is not also in). Branches are compared by their test's text, so `if phase == "train":
model.train()` covers a step under another `if phase == "train":`, and an eval() under `else:` of that
test never reaches it in the same pass. An eval() in an arm that ends with `return`, `break`, `raise` or
`sys.exit()` does not go on to what follows; other `break`/`continue`/`return` are not modelled. Events
of different entry points (the module body, each function nothing in the file calls) never share a path.
An eval() written before the training step in the training path itself, with no forward of the model
between them (`if freeze_bn: model.eval()`), is taken as meant: it reaches nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import ast

from . import knowledge as K
from .events import FORWARD, OPT_STEP, TRAIN_MODE, Event, LoopFrame
from .names import argument, dotted, keyword, positional
from .order import exclusive
from .structure import (TRY_TYPES, Branch, CallSite, FunctionInfo, Item, Loop, Structure, With, if_arms, item_calls,
                        walk_items)

_UNKNOWN = FunctionInfo("<unknown>", None, [], {}, [], None, None, [])  # an entry we could not place


@dataclass(eq=False)
class EvalReach:
    """An eval() of `model` whose mode reaches a training step of that model."""

    eval: Event
    step: Event  # the optimizer step that can run in eval mode
    first: Event  # the first event of that training iteration (the model's forward, or the step)
    loop: LoopFrame  # the loop whose iteration runs in eval mode; insert the train() in its body
    around: bool  # True: through the loop's next iteration; False: straight on, later in the same pass
    model: str  # the model's identity


class Modes:
    def __init__(self, structure: Structure, events: list[Event]) -> None:
        self.structure = structure
        self.events = events
        self._guard_keys: dict[int, frozenset] = {}
        self._call_function: dict[int, FunctionInfo | None] = {}
        self._branch_function: dict[int, FunctionInfo | None] = {}
        for item, function in walk_items(structure):
            if isinstance(item, Branch):
                self._branch_function[id(item)] = function
            for site in item_calls(item):
                self._call_function[id(site.call)] = function
        self._by_entry: dict[int, list[Event]] = {}
        for event in events:
            self._by_entry.setdefault(id(self.entry(event)), []).append(event)

    # -- the question TL007 asks ------------------------------------------------------------------
    def eval_reaches(self, owners: Callable[[Event], list[str] | None]) -> list[EvalReach]:
        """Each eval() that reaches a training step of its model (the first such step). `owners(step)` says
        whose parameters the stepped optimizer holds: keys, [] for plain tensors, None when unknown."""
        found = []
        for events in self._by_entry.values():
            evals = [e for e in events if e.kind == TRAIN_MODE and e.detail.get("mode") is False and e.subject]
            if not evals:
                continue
            steps = [s for s in events if s.kind == OPT_STEP and s.context.grad_enabled and s.context.loops]
            forwards = [f for f in events if f.kind == FORWARD and f.subject]
            modes = [t for t in events if t.kind == TRAIN_MODE and t.detail.get("mode") is not False and t.subject]
            for ev in evals:
                found.extend(self._reaches(ev, steps, forwards, modes, owners))
        return found

    def _reaches(self, ev: Event, steps: list[Event], forwards: list[Event], modes: list[Event],
                 owners) -> list[EvalReach]:
        model = ev.subject
        restores = [t for t in modes if _related(t.subject, model)]
        uses = [f for f in forwards if _related(f.subject, model)]
        training = [f for f in uses if f.context.grad_enabled and f.context.loop is not None]
        for step in steps:
            first = self.trains(step, model, training, owners(step))
            if first is None:
                continue
            if self.meant(ev, first, uses):
                continue
            reach = self.reach(ev, step, first, restores)
            if reach is not None:
                return [reach]
        return []

    def trains(self, step: Event, model: str, forwards: list[Event], owners: list[str] | None) -> Event | None:
        """The first event of the iteration in which `step` trains `model` (its forward, or the step
        itself when only the optimizer's parameters say so); None when nothing says it trains `model`."""
        if owners is not None and not any(self.same_owner(model, owner, step) for owner in owners):
            return None  # the optimizer holds other parameters (an input image, another network)
        forwards = [f for f in forwards if f.index < step.index
                    and (step.context.loop in f.context.loops or f.context.loop in step.context.loops)]
        usable = [f for f in forwards if not self.contradict(f, step)]
        if usable:
            return usable[0]
        if forwards:
            return None  # the model runs only in passes that do not reach this step (`if phase == "gnn":`)
        if owners:
            return step
        return None

    def same_owner(self, model: str, owner: str, step: Event) -> bool:
        """Is `model` (an identity) the module whose parameters `owner` (a key written where the stepped
        optimizer was built) names? When the optimizer is built at the module level from a global, or in the
        function that steps it from one of its locals, the owner's identity is known and must be the model's
        (`for model in models: optimizer = Adam(model.parameters())` trains the loop's models, not a global
        `model` evaluated elsewhere). Otherwise the names are compared."""
        identity = self.owner_identity(owner, step)
        if identity is not None:
            return _related(model, identity)
        return _same_owner(model, owner, step) or self.stored_as(model, owner, step)

    def stored_as(self, model: str, owner: str, step: Event) -> bool:
        """Is `model` the attribute that the method building the optimizer stores its parameter `owner` in
        (`def __init__(self, model): self.model = model; self.opt = SGD(model.parameters())` trains
        `self.model`, and `trainer.model` of an instance `trainer` whose `trainer.optimizer` steps)?"""
        role = step.role
        scope = self._call_function.get(id(role.call), _UNKNOWN) if role is not None and role.call else _UNKNOWN
        head, _, rest = owner.partition(".")
        if scope is _UNKNOWN or scope is None or head not in scope.params or not step.subject:
            return False
        # the instance the stepped optimizer belongs to stands for `self` (`trainer.optimizer`: `trainer`)
        instance = _plain(step.subject).rpartition(".")[0] or "self"
        for attribute, values in scope.assignments.items():
            if attribute.startswith("self.") and any(isinstance(v, ast.Name) and v.id == head for v in values):
                stored = instance + attribute[4:] + (f".{rest}" if rest else "")
                if _related(_plain(model), stored):
                    return True
        return False

    def owner_identity(self, owner: str, step: Event) -> str | None:
        role = step.role
        if role is None or role.call is None or not step.subject or not step.spelled:
            return None
        scope = self._call_function.get(id(role.call), _UNKNOWN)
        head = owner.split(".")[0]
        if scope is _UNKNOWN or head in ("self", "cls"):
            return None
        if scope is None:  # built at the module level: a global of this file
            return owner if head in self.structure.module_assignments and "::" not in step.subject else None
        # the optimizer is a local of the function that builds it from its own local: the two are of one
        # instance of that function (the step may run in a helper it is handed to)
        prefix, _, subject = step.subject.rpartition("::")
        subject_head = subject.split(".")[0]
        if (head in scope.assignments and head not in scope.params and subject_head in scope.assignments
                and subject_head not in scope.params and (not prefix or prefix.split("#")[0] == scope.name)):
            return f"{prefix}::{owner}" if prefix else owner
        return None

    @staticmethod
    def meant(ev: Event, first: Event, uses: list[Event]) -> bool:
        """Is the eval() written into the training path itself (in the function that trains, or one that
        calls it, before the training) with no use of the model between: training in eval mode on purpose
        (`if freeze_bn: model.eval()`)? An eval() inside a helper the training does not run in (`validate()`,
        `estimate_loss()`) is an evaluation, even when we cannot see its forward."""
        chain_e, chain_f = ev.context.call_chain, first.context.call_chain
        return (ev.index < first.index and set(ev.context.loops) <= set(first.context.loops)
                and len(chain_e) <= len(chain_f) and all(a is b for a, b in zip(chain_e, chain_f))
                and not any(ev.index < f.index < first.index for f in uses))

    def reach(self, ev: Event, step: Event, first: Event, restores: list[Event]) -> EvalReach | None:
        # A train() that runs before `first` in every pass that goes on to the step: the step's own guards
        # hold in that pass too (`if phase == "train": model.train()` ... `if phase == "train": step()`).
        target = self.guard_keys(first) | self.guard_keys(step)

        def before_first(t: Event) -> bool:
            return set(t.context.loops) <= set(first.context.loops) and self.guard_keys(t) <= target

        common = [frame for frame in step.context.loops if frame in ev.context.loops]
        for frame in reversed(common):  # around the innermost loop first
            if self.leaves(ev, first, frame) or _in_last_pass(ev, frame, self.assignments(frame.function)):
                continue
            if not any(frame in t.context.loops and ((t.index > ev.index and self.within(t, ev))
                                                      or (t.index < first.index and before_first(t)))
                       for t in restores):
                return EvalReach(ev, step, first, frame, True, ev.subject)
        contradicts = self.contradict(ev, first) or any(_excludes(a, b) for a in self.guard_keys(ev)
                                                         for b in self.guard_keys(step))
        if ev.index < first.index and not contradicts and not self.leaves(ev, first, None):
            if not any(ev.index < t.index < first.index and (before_first(t) or self.within(t, ev))
                       for t in restores):
                outer = [frame for frame in first.context.loops if frame not in ev.context.loops]
                return EvalReach(ev, step, first, outer[0] if outer else first.context.loop, False, ev.subject)
        return None

    def name_in(self, identity: str, function: FunctionInfo | None, instance: tuple[ast.Call, ...]) -> str | None:
        """How the object `identity` is written in `function`, run through the helper calls `instance`
        (outermost first, empty for the entry point itself); None when we cannot tell."""
        for event in self.events:
            chain = event.context.call_chain
            if (event.subject != identity or not event.spelled or len(chain) < len(instance)
                    or not all(a is b for a, b in zip(chain, instance))):
                continue
            if event.context.function is function and len(chain) == len(instance):
                return event.spelled
            if (event.spelled.startswith("self.") and function is not None and function.class_name
                    and event.context.function is not None
                    and event.context.function.class_name == function.class_name
                    and all(_on_self(call) for call in chain[len(instance):])):
                return event.spelled  # reached through `self.evaluate()`: `self` is the same object here
        if not instance:
            return identity if "::" not in identity else None
        if function is None:
            return None
        prefix, _, key = identity.rpartition("::")
        if prefix.split("#")[0] == function.name and (
                key.split(".")[0] in function.params or key.split(".")[0] in function.assignments):
            return key  # a local of that function (`main#1::model` in `main()`)
        return _parameter_for(function, instance[-1], _plain(identity))

    # -- paths ------------------------------------------------------------------------------------
    def leaves(self, ev: Event, first: Event, around: LoopFrame | None) -> bool:
        """Does `ev` sit in an arm (one `first` is not in) that ends the run (`sys.exit()`, `raise`),
        returns from a function the path to `first` goes through (`if args.evaluate: validate(); return`),
        or breaks out of the loop the path goes `around`?"""
        shared = self.guard_keys(first)
        for branch, arm in ev.context.guards:
            if _guard_key(branch, arm) in shared:
                continue
            ending = _ending(branch, arm)
            if ending == "exit":
                return True
            function = self._branch_function.get(id(branch), ())
            if ending == "break" and around is not None and function is around.function:
                return True  # `if stop: model.eval(); break` leaves the loop (we assume: this one)
            if ending == "return":
                on_path = {first.context.function} | {
                    self._call_function.get(id(call), ()) for call in first.context.call_chain}
                if around is not None:
                    on_path.add(around.function)
                if function in on_path:
                    return True
        return False

    def contradict(self, a: Event, b: Event) -> bool:
        """Can `a` and `b` never run in one pass (different arms of one branch, or of tests that exclude each
        other)?"""
        return exclusive(a, b) or any(_excludes(x, y) for x in self.guard_keys(a) for y in self.guard_keys(b))

    def assignments(self, function: FunctionInfo | None) -> dict:
        return function.assignments if function is not None else self.structure.module_assignments

    def within(self, a: Event, b: Event) -> bool:
        """Is `a` in no loop and no branch arm that `b` is not also in? Then, written before `b`, `a` runs
        before `b` on every pass that reaches `b` (it dominates `b`); written after `b`, it runs after `b`
        whenever `b` runs (it post-dominates `b`)."""
        return set(a.context.loops) <= set(b.context.loops) and self.guard_keys(a) <= self.guard_keys(b)

    def guard_keys(self, event: Event) -> frozenset:
        keys = self._guard_keys.get(id(event))
        if keys is None:
            keys = frozenset(_guard_key(branch, arm) for branch, arm in event.context.guards)
            self._guard_keys[id(event)] = keys
        return keys

    def entry(self, event: Event) -> FunctionInfo | None:
        """The entry point whose run the event belongs to (None: the module body), from the function the
        outermost helper call is written in: one entry's events never share a path with another's."""
        if not event.context.call_chain:
            return event.context.function
        return self._call_function.get(id(event.context.call_chain[0]), _UNKNOWN)


def _guard_key(branch: Branch, arm: int):
    """Arms of `if`s with the same tests are the same condition; other branches are themselves."""
    node = branch.node
    if isinstance(node, ast.If):
        tests, _ = if_arms(node)
        return ("if", tuple(ast.dump(test) for test in tests[:arm + 1]), arm,
                _equality(tests[arm]) if arm < len(tests) else None)
    return (id(branch), arm)


def _equality(test: ast.expr) -> tuple[str, object] | None:
    """(the dump of `x`, c) for a test `x == c` with a constant c."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        for a, b in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
            if isinstance(b, ast.Constant) and not isinstance(a, ast.Constant):
                return ast.dump(a), b.value
    return None


def _in_last_pass(ev: Event, frame: LoopFrame, assignments: dict) -> bool:
    """Is `ev` guarded by a test that holds in the last iteration of the loop only (`for i, b in
    enumerate(steps): ... if i == len(steps) - 1:`)? No next iteration follows it."""
    counter, bounds = _counted(frame.node, assignments)
    if counter is None:
        return False
    for branch, arm in ev.context.guards:
        if arm != 0 or not isinstance(branch.node, ast.If) or not isinstance(branch.node.test, ast.Compare):
            continue
        test = branch.node.test
        if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
            continue
        left, right = test.left, test.comparators[0]
        for a, b in ((left, right), (right, left)):
            if (_is_name(a, counter) and _minus_one(b) is not None and ast.dump(_minus_one(b)) in bounds) or (
                    _plus_one(a) is not None and _is_name(_plus_one(a), counter) and ast.dump(b) in bounds):
                return True
    return False


def _counted(loop: ast.AST, assignments: dict) -> tuple[str | None, set[str]]:
    """(the counter, dumps of the number of iterations) of `for i, x in enumerate(X)` (`len(X)`), also through
    wrappers and names (`steps = list(enumerate(X)); for i, b in tqdm(steps)`: `len(steps)`, `len(X)`; a name
    assigned several times stands for its last value before the loop);
    `for i in range(n)` (`n`). (None, set()) otherwise."""
    if not isinstance(loop, ast.For):
        return None, set()
    target = loop.target
    if isinstance(target, ast.Name) and isinstance(loop.iter, ast.Call) and dotted(loop.iter.func) == "range" \
            and len(loop.iter.args) == 1:
        return target.id, {ast.dump(loop.iter.args[0])}
    if not (isinstance(target, ast.Tuple) and target.elts and isinstance(target.elts[0], ast.Name)):
        return None, set()
    bounds, expr, enumerated = set(), loop.iter, False
    for _ in range(6):  # unwrap `tqdm(...)`, `list(...)`, `enumerate(...)` and names
        key = dotted(expr)
        if key is not None:
            bounds.add(ast.dump(ast.Call(ast.Name("len", ast.Load()), [ast.Name(key, ast.Load())], []))
                       if "." not in key else ast.dump(ast.Call(ast.Name("len", ast.Load()), [expr], [])))
            # the value last assigned before the loop (a notebook's cells reuse names: `steps = ...` per cell)
            values = [v for v in assignments.get(key, []) if (v.lineno, v.col_offset) < (loop.lineno, loop.col_offset)]
            if not values:
                break
            expr = values[-1]
        elif isinstance(expr, ast.Call) and len(expr.args) == 1:
            enumerated = enumerated or dotted(expr.func) == "enumerate"
            expr = expr.args[0]
        else:
            break
    if isinstance(expr, (ast.Name, ast.Attribute)):
        bounds.add(ast.dump(ast.Call(ast.Name("len", ast.Load()), [expr], [])))
    return (target.elts[0].id, bounds) if enumerated else (None, set())


def _is_name(expr: ast.expr, name: str) -> bool:
    return isinstance(expr, ast.Name) and expr.id == name


def _minus_one(expr: ast.expr) -> ast.expr | None:
    """`n` for `n - 1`."""
    if (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and isinstance(expr.right, ast.Constant)
            and expr.right.value == 1):
        return expr.left
    return None


def _plus_one(expr: ast.expr) -> ast.expr | None:
    """`i` for `i + 1`."""
    if (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add) and isinstance(expr.right, ast.Constant)
            and expr.right.value == 1):
        return expr.left
    return None


def _on_self(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"


def _parameter_for(function: FunctionInfo, call: ast.Call, key: str) -> str | None:
    """The parameter of `function` that `call` binds to the caller's `key` (`train_model(net=model)`)."""
    params = list(function.params)
    if function.class_name and params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    pairs = list(zip(params, positional(call)))
    pairs += [(kw.arg, kw.value) for kw in call.keywords if kw.arg is not None]
    for param, value in pairs:
        written = dotted(value)
        if written is not None and param in function.params and (key == written or key.startswith(written + ".")):
            return param + key[len(written):]
    return None


def _excludes(a, b) -> bool:
    """Can two arms never hold in one pass? `if t0: .. elif t1: ..` arms a < b share the tests up to t_a,
    which arm a needs true and arm b false (compared by text, as `_guard_key` does); `x == c1` and `x == c2`
    cannot both hold (we assume `x` keeps its value in between)."""
    if a[0] != "if" or b[0] != "if":
        return False
    if a[3] is not None and b[3] is not None and a[3][0] == b[3][0] and a[3][1] != b[3][1]:
        return True  # `if phase == "gnn":` ... `if phase == "lm":`
    if a[2] == b[2]:
        return False
    shared = min(a[2], b[2]) + 1
    return a[1][:shared] == b[1][:shared]


def _arm_body(branch: Branch, arm: int) -> list[ast.stmt] | None:
    node = branch.node
    if isinstance(node, ast.If):
        _, bodies = if_arms(node)
        return bodies[arm] if arm < len(bodies) else None
    if isinstance(node, TRY_TYPES):
        return node.handlers[arm - 1].body if 0 < arm <= len(node.handlers) else None
    if isinstance(node, getattr(ast, "Match", ())):
        return node.cases[arm].body if arm < len(node.cases) else None
    return None


_EXITS = frozenset({"sys.exit", "exit", "quit", "os._exit"})


def _ending(branch: Branch, arm: int) -> str | None:
    """"exit" when the arm ends the program (`sys.exit()`, `raise`), "return" / "break" when it ends so."""
    body = _arm_body(branch, arm)
    if not body:
        return None
    small = body[-1]
    if isinstance(small, ast.Raise):
        return "exit"
    if isinstance(small, ast.Return):
        return "return"
    if isinstance(small, ast.Break):
        return "break"
    if isinstance(small, ast.Expr) and isinstance(small.value, ast.Call) and dotted(small.value.func) in _EXITS:
        return "exit"
    return None


def _same_owner(model: str, owner: str, step: Event) -> bool:
    """Is `model` (an identity) the module whose parameters `owner` (a key written where the stepped optimizer
    was built) names? Locals of one instantiation of a function are not those of another: `main()` called
    twice builds two models, and the first one's eval() says nothing of the second one's training."""
    prefix = step.subject.rpartition("::")[0] if step.subject and "::" in step.subject else ""
    model_prefix = model.rpartition("::")[0] if "::" in model else ""
    if prefix and model_prefix and prefix != model_prefix and _is_local(owner, step):
        return False
    return _related(_plain(model), owner)


def _is_local(owner: str, step: Event) -> bool:
    """Is the owner key a local of the function the step's optimizer was built in?"""
    role = step.role
    function = step.context.function
    head = owner.split(".")[0]
    return function is not None and role is not None and (head in function.assignments or head in function.params)


def _plain(identity: str) -> str:
    """The identity without a helper's local prefix (`main#2::model` -> `model`)."""
    return identity.rsplit("::", 1)[-1]


def _related(a: str, b: str) -> bool:
    """The same object, or one is part of the other (`model` and `model.module`)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


# -- Keras: custom training steps that call the model in inference mode ------------------------------
# A Keras model runs its Dropout / BatchNormalization layers in training mode only when it is called with
# `training=True` (`fit()` does that for `train_step`); a custom step written with `tf.GradientTape` must pass
# it itself. `TapeForwards` finds the calls of a model inside a `with tf.GradientTape() as tape:` block whose
# variables that tape differentiates (`tape.gradient(loss, model.trainable_variables)`), with their
# `training=` argument, and which training-dependent layer (knowledge.TRAINING_DEPENDENT_LAYERS) the model
# holds, resolved where the file builds it: `keras.Sequential([...])` (and `model.add(...)`), the functional
# API (`x = layers.Dropout(0.2)(x)` ... `keras.Model(inputs, outputs)`), a keras.Model subclass (the layers
# its methods create, its `self.x = ...` attributes, the models handed to its constructor), a local builder
# function, `keras.applications.*`. A model we cannot trace to its construction (a parameter no call in the
# file binds, a loaded model) holds nothing we know of: `layer` is None.


_TAPES = frozenset({"tensorflow.GradientTape"})
_VARIABLE_ATTRIBUTES = frozenset({"trainable_variables", "trainable_weights", "weights", "variables",
                                  "trainable_vars"})
_SEQUENTIAL = frozenset({"keras.Sequential", "keras.models.Sequential"})
_FUNCTIONAL = frozenset({"keras.Model", "keras.models.Model"})
# keras.applications models with no Dropout / BatchNormalization (ConvNeXt: LayerNorm, drop_path 0 by default).
_PLAIN_APPLICATIONS = ("VGG16", "VGG19", "ConvNeXt")
_MAX_RESOLVE_DEPTH = 25


@dataclass(eq=False)
class TapeForward:
    """A call of a model inside a GradientTape block that differentiates the model's variables."""

    call: ast.Call  # `model(x)`, `self(x)`, `self.generator(z)`
    model: str  # as written: `model`, `self`, `self.generator`
    tape: ast.With  # the `with tf.GradientTape() as tape:` statement
    gradient: ast.Call  # `tape.gradient(loss, model.trainable_variables)`
    function: FunctionInfo | None  # where the step is written
    training: ast.expr | None  # the `training=` argument; None when not passed
    unknown_arguments: bool  # `**kwargs` or extra positionals: `training` may be passed another way
    layer: str | None  # a training-dependent layer the model holds (`Dropout`); None when none known
    layer_node: ast.AST | None  # where that layer is created


class TapeForwards:
    def __init__(self, structure: Structure) -> None:
        self.structure = structure
        self.imports = structure.imports
        self._sites: dict[int, list[tuple[CallSite, FunctionInfo | None]]] | None = None
        self.forwards: list[TapeForward] = []
        for item, function in walk_items(structure):
            if isinstance(item, With):
                self.forwards.extend(self._in_tape(item, function))

    # -- the tape block ---------------------------------------------------------------------------
    def _in_tape(self, item: With, function: FunctionInfo | None) -> list[TapeForward]:
        tapes = {key for key, expr in item.bound
                 if isinstance(expr, ast.Call) and self.imports.qualify(expr.func) in _TAPES}
        if not tapes:
            return []
        scope = _ordered(function.body if function is not None else self.structure.body)
        gradients = []  # the tape's gradients: after the block, before another block rebinds the name
        for entry in scope[next(i for i, e in enumerate(scope) if e is item) + 1:]:
            if isinstance(entry, With):
                if any(key in tapes for key, _ in entry.bound):
                    break
            elif entry.method == "gradient" and entry.receiver in tapes:
                gradients.append(entry.call)
        if not gradients or not any(isinstance(e, CallSite) and e.method in ("apply_gradients", "apply")
                                    for e in scope):
            return []
        found = []
        for site in _scope_sites(item.body):
            key = site.func_key
            if key is None or site.method in ("gradient", "apply_gradients") or self.imports.qualify(site.call.func):
                continue
            gradient = next((g for g in gradients if any(_related(key, owner)
                                                         for owner in self._owners(g, function))), None)
            if gradient is None:
                continue
            call = site.call
            training = keyword(call, "training")
            # `**kwargs`, extra positionals, or a keyword of the model's own that names the mode (`is_training=True`
            # handed on to its layers as `training=`): the mode may be passed another way
            unknown = (any(isinstance(a, ast.Starred) for a in call.args) or len(call.args) > 1
                       or any(k.arg is None or "train" in k.arg.lower() for k in call.keywords if k.arg != "training"))
            layer = self.layer_of(key, function) if training is None and not unknown else None
            found.append(TapeForward(site.call, key, item.node, gradient, function, training, unknown,
                                     layer[0] if layer else None, layer[1] if layer else None))
        return found

    def _owners(self, gradient: ast.Call, function: FunctionInfo | None) -> set[str]:
        """Whose variables `tape.gradient(loss, sources)` differentiates: `model` for
        `model.trainable_variables`, `self` for `self.trainable_weights`."""
        sources = argument(gradient, 1, ("sources",))
        owners: set[str] = set()
        pending, seen = [sources], set()
        while pending:
            expr = pending.pop()
            if expr is None:
                continue
            key = dotted(expr)
            if key is not None:
                head, _, attr = key.rpartition(".")
                if attr in _VARIABLE_ATTRIBUTES and head:
                    owners.add(head)
                elif key not in seen:
                    seen.add(key)
                    pending.extend(_assigned(key, function, self.structure))
            elif isinstance(expr, ast.BinOp):
                pending.extend((expr.left, expr.right))
            elif isinstance(expr, (ast.List, ast.Tuple)):
                pending.extend(e.value if isinstance(e, ast.Starred) else e for e in expr.elts)
            elif isinstance(expr, ast.Call) and dotted(expr.func) in ("list", "tuple") and positional(expr):
                pending.append(positional(expr)[0])
        return owners

    # -- what the model holds ---------------------------------------------------------------------
    def layer_of(self, key: str, function: FunctionInfo | None) -> tuple[str, ast.AST] | None:
        return self._key(key, function, set(), 0)

    def _key(self, key: str, function: FunctionInfo | None, seen: set, depth: int):
        if depth > _MAX_RESOLVE_DEPTH or (key, id(function)) in seen:
            return None
        seen.add((key, id(function)))
        first, _, rest = key.partition(".")
        if first == "self" and function is not None and function.class_name:
            if not rest:  # the class's own layers, else what its instantiations are built from
                found = self._class(function.class_name, seen, depth + 1)
                for site, caller in self.sites().get(function.class_name, []) if not found else ():
                    found = self._call(site.call, caller, seen, depth + 1)
                    if found:
                        break
                return found
            return self._attribute(function.class_name, key, seen, depth + 1)
        if function is not None and first in function.params and key not in function.assignments:
            return self._parameter(function, first, rest, seen, depth + 1)
        values = _assigned(key, function, self.structure)
        for value in values:
            found = self._expr(value, self._scope_of(key, function), seen, depth + 1)
            if found:
                return found
        if values:  # `model = keras.Sequential(); model.add(layers.Dropout(0.5))`
            for site in _scope_sites(self._body(self._scope_of(key, function))):
                if site.receiver == key and site.method == "add" and positional(site.call):
                    found = self._expr(positional(site.call)[0], self._scope_of(key, function), seen, depth + 1)
                    if found:
                        return found
        return None

    def _scope_of(self, key: str, function: FunctionInfo | None) -> FunctionInfo | None:
        scope = function
        while scope is not None:
            if key in scope.assignments:
                return scope
            scope = scope.parent
        return None

    def _body(self, function: FunctionInfo | None) -> list[Item]:
        return function.body if function is not None else self.structure.body

    def _expr(self, expr: ast.expr | None, function: FunctionInfo | None, seen: set, depth: int):
        if expr is None or depth > _MAX_RESOLVE_DEPTH:
            return None
        key = dotted(expr)
        if key is not None:
            return self._key(key, function, seen, depth + 1)
        if isinstance(expr, (ast.List, ast.Tuple)):
            for element in expr.elts:
                found = self._expr(element.value if isinstance(element, ast.Starred) else element, function, seen,
                                   depth + 1)
                if found:
                    return found
            return None
        if isinstance(expr, ast.BinOp):
            return self._expr(expr.left, function, seen, depth + 1) or self._expr(expr.right, function, seen,
                                                                                  depth + 1)
        if isinstance(expr, ast.Subscript):
            return self._expr(expr.value, function, seen, depth + 1)
        if isinstance(expr, ast.Call):
            return self._call(expr, function, seen, depth + 1)
        return None

    def _call(self, call: ast.Call, function: FunctionInfo | None, seen: set, depth: int):
        explicit = keyword(call, "training") is not None
        func = call.func
        qualname = self.imports.qualify(func)
        name = qualname.rsplit(".", 1)[-1] if qualname else None
        if qualname is not None and qualname.startswith("keras.layers.") and name in K.TRAINING_DEPENDENT_LAYERS:
            return name, call
        if qualname in _SEQUENTIAL:
            layers = argument(call, 0, ("layers",))
            return self._expr(layers, function, seen, depth + 1)
        if qualname in _FUNCTIONAL:
            outputs = argument(call, 1, ("outputs",))
            return self._expr(outputs, function, seen, depth + 1)
        if qualname is not None and qualname.startswith("keras.applications."):
            if name and name[:1].isupper() and not name.startswith(_PLAIN_APPLICATIONS):
                return "BatchNormalization", call
            return None
        found = None
        if not explicit:  # `layers.Dropout(0.2)(x)`, `encoder(x)`: the layer or model applied
            if isinstance(func, ast.Call):
                found = self._call(func, function, seen, depth + 1)
            elif isinstance(func, ast.Name) and func.id in self.structure.classes:
                found = self._class(func.id, seen, depth + 1)  # then its arguments: `MyModel(inputs, outputs)`
            elif isinstance(func, ast.Name) and qualname is None and func.id in self.structure.functions:
                local = self.structure.functions[func.id]
                for value in local.returns:
                    found = found or self._expr(value, local, seen, depth + 1)
            elif qualname is None and dotted(func) is not None:
                found = self._key(dotted(func), function, seen, depth + 1)
        if found:
            return found
        for arg in [*call.args, *(k.value for k in call.keywords)]:  # the tensors the call reads:
            # `layers.Dense(1)(x)`, `layers.add([a, b])`
            found = self._expr(arg.value if isinstance(arg, ast.Starred) else arg, function, seen, depth + 1)
            if found:
                return found
        return None

    def _class(self, name: str, seen: set, depth: int):
        """A training-dependent layer that a class defined in this file creates in any of its methods, or
        holds as an attribute."""
        chain = _class_chain(self.structure, name)
        for klass in chain:
            for base in klass.bases:  # `class ProbedDropout(layers.Dropout)`
                if base.startswith("keras.layers.") and base.rsplit(".", 1)[-1] in K.TRAINING_DEPENDENT_LAYERS:
                    return base.rsplit(".", 1)[-1], klass.node
            for method in klass.methods.values():
                for site in _scope_sites(method.body):
                    qualname = self.imports.qualify(site.call.func)
                    last_name = qualname.rsplit(".", 1)[-1] if qualname else None
                    if qualname and qualname.startswith("keras.layers.") and last_name in K.TRAINING_DEPENDENT_LAYERS:
                        return last_name, site.call
        for klass in chain:
            for attribute in klass.attributes:
                found = self._attribute(klass.name, attribute, seen, depth + 1)
                if found:
                    return found
        return None

    def _attribute(self, class_name: str, key: str, seen: set, depth: int):
        """`self.encoder`: what the class's methods assign to it (a parameter: what its instantiations pass)."""
        for klass in _class_chain(self.structure, class_name):
            for method in klass.methods.values():
                for value in method.assignments.get(key, []):
                    found = self._expr(value, method, seen, depth + 1)
                    if found:
                        return found
        return None

    def _parameter(self, function: FunctionInfo, param: str, rest: str, seen: set, depth: int):
        """A parameter: what the calls of the function in this file pass for it (`__init__`: the class's
        instantiations)."""
        name = function.class_name if function.name == "__init__" and function.class_name else function.name
        params = list(function.params)
        if function.class_name and params and params[0] in ("self", "cls"):
            params = params[1:]
        for site, caller in self.sites().get(name, []):
            value = keyword(site.call, param)
            if value is None and param in params:
                index = params.index(param)
                args = positional(site.call)
                value = args[index] if index < len(args) else None
            if value is None:
                continue
            written = dotted(value)
            if written is not None and rest:
                found = self._key(f"{written}.{rest}", caller, seen, depth + 1)
            else:
                found = self._expr(value, caller, seen, depth + 1)
            if found:
                return found
        return None

    def sites(self) -> dict[str, list[tuple[CallSite, FunctionInfo | None]]]:
        """Calls of plain names (`train_step(...)`, `MyModel(...)`) anywhere in the file, by name."""
        if self._sites is None:
            self._sites = {}
            for item, function in walk_items(self.structure):
                for site in item_calls(item):
                    if isinstance(site.call.func, ast.Name):
                        self._sites.setdefault(site.call.func.id, []).append((site, function))
        return self._sites


def _scope_sites(items: list[Item]) -> list[CallSite]:
    """Every call written in a block, nested blocks included (not in nested functions), in source order."""
    return [entry for entry in _ordered(items) if isinstance(entry, CallSite)]


def _ordered(items: list[Item]) -> list:
    """The calls of a block in source order, each `with` statement (the With item) before its own calls."""
    out: list = []
    for item in items:
        if isinstance(item, With):
            out.append(item)
        out.extend(item_calls(item))
        if isinstance(item, Loop):
            out.extend(_ordered(item.body + item.orelse))
        elif isinstance(item, Branch):
            for arm in item.arms:
                out.extend(_ordered(arm))
            out.extend(_ordered(item.always))
        elif isinstance(item, With):
            out.extend(_ordered(item.body))
    return out


def _assigned(key: str, function: FunctionInfo | None, structure: Structure) -> list[ast.expr]:
    scope = function
    while scope is not None:
        if key in scope.assignments:
            return scope.assignments[key]
        if key.split(".")[0] in scope.params:
            return []
        scope = scope.parent
    return structure.module_assignments.get(key, [])


def _class_chain(structure: Structure, name: str) -> list:
    chain, pending = [], [name]
    while pending:
        klass = structure.classes.get(pending.pop(0))
        if klass is None or klass in chain:
            continue
        chain.append(klass)
        pending.extend(base.rsplit(".", 1)[-1] for base in klass.bases)
    return chain
