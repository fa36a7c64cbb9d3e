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

import libcst as cst

from .events import FORWARD, OPT_STEP, TRAIN_MODE, Event, LoopFrame
from .names import dotted
from .order import exclusive
from .structure import Branch, FunctionInfo, Structure, item_calls, walk_items

_CODE = cst.Module([])
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
        if owners is not None and not any(_related(_plain(model), owner) or _last_part(model) == _last_part(owner)
                                          for owner in owners):
            return None  # the optimizer holds other parameters (an input image, another network)
        forwards = [f for f in forwards if f.index < step.index
                    and (step.context.loop in f.context.loops or f.context.loop in step.context.loops)]
        if forwards:
            return forwards[0]
        if owners:
            return step
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
            if self.leaves(ev, first, frame):
                continue
            if not any(frame in t.context.loops and ((t.index > ev.index and self.within(t, ev))
                                                      or (t.index < first.index and before_first(t)))
                       for t in restores):
                return EvalReach(ev, step, first, frame, True, ev.subject)
        contradicts = exclusive(ev, first) or any(_excludes(a, b) for a in self.guard_keys(ev) for b in target)
        if ev.index < first.index and not contradicts and not self.leaves(ev, first, None):
            if not any(ev.index < t.index < first.index and (before_first(t) or self.within(t, ev))
                       for t in restores):
                outer = [frame for frame in first.context.loops if frame not in ev.context.loops]
                return EvalReach(ev, step, first, outer[0] if outer else first.context.loop, False, ev.subject)
        return None

    def name_in(self, identity: str, function: FunctionInfo | None, instance: tuple[cst.Call, ...]) -> str | None:
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
    if isinstance(node, cst.If):
        tests, current = [], node
        while isinstance(current, cst.If) and len(tests) <= arm:
            tests.append(_CODE.code_for_node(current.test))
            current = current.orelse
        return ("if", tuple(tests), arm)
    return (id(branch), arm)


def _on_self(call: cst.Call) -> bool:
    func = call.func
    return isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self"


def _parameter_for(function: FunctionInfo, call: cst.Call, key: str) -> str | None:
    """The parameter of `function` that `call` binds to the caller's `key` (`train_model(net=model)`)."""
    params = list(function.params)
    if function.class_name and params and params[0] in ("self", "cls") and isinstance(call.func, cst.Attribute):
        params = params[1:]
    pairs = [(param, arg) for param, arg in zip(params, [a for a in call.args if a.keyword is None])]
    pairs += [(arg.keyword.value, arg) for arg in call.args if arg.keyword is not None]
    for param, arg in pairs:
        if arg.star:
            break
        written = dotted(arg.value)
        if written is not None and param in function.params and (key == written or key.startswith(written + ".")):
            return param + key[len(written):]
    return None


def _excludes(a, b) -> bool:
    """Can two arms never hold in one pass? `if t0: .. elif t1: ..` arms a < b share the tests up to t_a,
    which arm a needs true and arm b false (compared by text, as `_guard_key` does)."""
    if a[0] != "if" or b[0] != "if" or a[2] == b[2]:
        return False
    shared = min(a[2], b[2]) + 1
    return a[1][:shared] == b[1][:shared]


def _arm_body(branch: Branch, arm: int) -> cst.BaseSuite | None:
    node = branch.node
    if isinstance(node, cst.If):
        current: cst.If | cst.Else | None = node
        for _ in range(arm):
            current = current.orelse if isinstance(current, cst.If) else None
        return current.body if current is not None else None
    if isinstance(node, (cst.Try, cst.TryStar)):
        return node.handlers[arm - 1].body if 0 < arm <= len(node.handlers) else None
    if isinstance(node, cst.Match):
        return node.cases[arm].body if arm < len(node.cases) else None
    return None


_EXITS = frozenset({"sys.exit", "exit", "quit", "os._exit"})


def _ending(branch: Branch, arm: int) -> str | None:
    """"exit" when the arm ends the program (`sys.exit()`, `raise`), "return" / "break" when it ends so."""
    body = _arm_body(branch, arm)
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return None
    last = body.body[-1]
    if not isinstance(last, cst.SimpleStatementLine) or not last.body:
        return None
    small = last.body[-1]
    if isinstance(small, cst.Raise):
        return "exit"
    if isinstance(small, cst.Return):
        return "return"
    if isinstance(small, cst.Break):
        return "break"
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and dotted(small.value.func) in _EXITS:
        return "exit"
    return None


def _plain(identity: str) -> str:
    """The identity without a helper's local prefix (`main#2::model` -> `model`)."""
    return identity.rsplit("::", 1)[-1]


def _last_part(key: str) -> str:
    return _plain(key).rsplit(".", 1)[-1]


def _related(a: str, b: str) -> bool:
    """The same object, or one is part of the other (`model` and `model.module`)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
