"""Order: how two events of one loop iteration relate (does one always run with the other, can both run).

Events are numbered in execution order (`Event.index`); within one iteration of a loop, a smaller
index runs first. Branches make that partial: two events in different arms of the same `if`/`try`
never run in the same pass, and an event under an `if` the other one is not under may not run at all.
These questions are asked of the guards (the (branch, arm) pairs around each event, outermost first).
`break`, `continue` and `return` are not modelled, so rules should only rely on these facts to stay
*silent*, or to report orders that hold on every path through the guards.
"""
from __future__ import annotations

import ast

from .events import Event
from .structure import if_arms
from .names import dotted, is_none


def exclusive(a: Event, b: Event) -> bool:
    """Are `a` and `b` in different arms of the same branch (so never in the same pass)?"""
    arms = {id(branch): arm for branch, arm in a.context.guards}
    return any(id(branch) in arms and arms[id(branch)] != arm for branch, arm in b.context.guards)


def runs_whenever(a: Event, b: Event) -> bool:
    """Does `a` run in every pass where `b` runs? True when `a`'s guards are a prefix of `b`'s.

    Loops are not guards: if `a` sits in an inner loop that `b` is not in, `a` may run zero or many
    times; callers that care compare `context.loop` as well.
    """
    guards_a, guards_b = a.context.guards, b.context.guards
    if len(guards_a) > len(guards_b):
        return False
    return all(ga[0] is gb[0] and ga[1] == gb[1] for ga, gb in zip(guards_a, guards_b))


def same_instance(a: Event, b: Event) -> bool:
    """Were `a` and `b` written in the same function, reached through the same helper calls?

    Then their names mean the same things and one can be moved next to the other.
    """
    chain_a, chain_b = a.context.call_chain, b.context.call_chain
    return (a.context.function is b.context.function and len(chain_a) == len(chain_b)
            and all(x is y for x, y in zip(chain_a, chain_b)))


def reached_from(inner: Event, outer: Event):
    """The call in `outer`'s function through which `inner` runs (or `inner`'s own node when both are
    written in the same function); None when `inner` is not reached from `outer`'s function instance."""
    chain_o, chain_i = outer.context.call_chain, inner.context.call_chain
    if len(chain_i) < len(chain_o) or not all(x is y for x, y in zip(chain_o, chain_i)):
        return None
    if len(chain_i) == len(chain_o):
        return inner.node if inner.context.function is outer.context.function else None
    return chain_i[len(chain_o)]


def between(events: list[Event], first: Event, last: Event, *kinds: str) -> list[Event]:
    """The events of `kinds` that run after `first` and before `last` (by index)."""
    return [e for e in events if first.index < e.index < last.index and e.kind in kinds]


# -- guards that take the same arm on every iteration ----------------------------------------------
# Roots of configuration objects: `args.use_amp`, `config.scheduler`, `self.cfg.clip` are set once per run.
_CONFIG_ROOTS = frozenset({"args", "config", "cfg", "conf", "hparams", "hp", "flags", "FLAGS", "settings",
                           "options", "self.args", "self.config", "self.cfg", "self.conf", "self.hparams",
                           "self.hp", "self.flags", "self.settings", "self.options"})
_SETTLED_ROLES = frozenset({"scheduler", "grad_scaler", "optimizer", "accelerator", "model"})


def loop_assigned_keys(structure) -> frozenset[str]:
    """Keys assigned inside a loop (or as a loop's target), anywhere in the file: they may change from one
    iteration to the next."""
    from .structure import Branch, Loop, Stmt, With

    keys: set[str] = set()

    def walk(items, in_loop: bool) -> None:
        for item in items:
            if isinstance(item, Stmt):
                if in_loop:
                    keys.update(key for key, _ in item.targets if key)
                    if item.aug is not None and item.aug[0]:
                        keys.add(item.aug[0])
            elif isinstance(item, Loop):
                keys.update(item.target_keys)
                walk(item.body, True)
                walk(item.orelse, in_loop)
            elif isinstance(item, Branch):
                for arm in item.arms:
                    walk(arm, in_loop)
                walk(item.always, in_loop)
            elif isinstance(item, With):
                if in_loop:
                    keys.update(key for key, _ in item.bound)
                walk(item.body, in_loop)

    walk(structure.body, False)
    for function in structure.all_functions:
        walk(function.body, False)
    return frozenset(keys)


def settled_guard(model, branch) -> bool:
    """Does this `if` take the same arm on every iteration of a run? True when each test is a configuration
    flag (`args.use_amp`, `config.clip`, a constant never reassigned) or asks whether a training object exists
    (`scheduler is not None`, `if self.scaler:`), asked in the scope the `if` is written in. Comparisons,
    counters and anything reassigned in a loop are not settled."""
    node = branch.node
    if not isinstance(node, ast.If):
        return False
    tests, _ = if_arms(node)
    return all(_settled_test(model, test, branch.function) for test in tests)


def _settled_test(model, test: ast.expr, function) -> bool:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _settled_test(model, test.operand, function)
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.IsNot))
            and is_none(test.comparators[0])):
        test = test.left
    key = dotted(test)
    return key is not None and (_settled_key(model, key, function) or _settled_object(model, key, function))


def _settled_key(model, key: str, function) -> bool:
    if key in model.loop_assigned:
        return False
    root, _, rest = key.rpartition(".")
    if root:
        return any(root == r or root.startswith(r + ".") for r in _CONFIG_ROOTS)
    scope = function
    while scope is not None:  # a local set before the loop (`use_amp = args.amp`), or a parameter
        if key in scope.assignments or key in scope.params:
            return key in scope.assignments or key in _FLAG_PARAMETERS
        scope = scope.parent
    if key not in model.structure.module_assignments:
        return False
    return not any(key in f.assignments or key in f.params for f in model.structure.all_functions)


# Parameters that name a run-wide switch (`def train(model, loader, use_amp=False)`).
_FLAG_PARAMETERS = frozenset({"use_amp", "amp", "fp16", "bf16", "use_scheduler", "scheduler", "scaler",
                              "use_scaler", "clip", "clip_grad", "grad_clip", "max_grad_norm", "distributed"})


def _settled_object(model, key: str, function) -> bool:
    """A training object known by its constructor (its existence does not change while training)."""
    if key in model.loop_assigned:
        return False
    role = model.roles.of(key, function)
    return role is not None and role.kind in _SETTLED_ROLES and role.evidence != "name"


def runs_with(a: Event, b: Event, model=None) -> bool:
    """Like `runs_whenever(a, b)`, but an `if` around `a` alone that takes the same arm on every iteration
    (`if args.use_scheduler:`, `if scaler is not None:`) does not count: within a run, `a` then runs in every
    pass where `b` runs, or in none."""
    if model is None:
        return runs_whenever(a, b)
    arms = {id(branch): arm for branch, arm in b.context.guards}
    for branch, arm in a.context.guards:
        if id(branch) in arms:
            if arms[id(branch)] != arm:
                return False
        elif not settled_guard(model, branch):
            return False
    return True


def within_instance(inner: Event, outer: Event, events: list[Event]) -> bool:
    """Does `inner` run as part of the same function instance as `outer` (written there, or in a helper
    called from there)? `events` must hold the LOCAL_CALL events (the model's events do)."""
    from .events import LOCAL_CALL

    chain_o, chain_i = outer.context.call_chain, inner.context.call_chain
    if len(chain_i) < len(chain_o) or not all(x is y for x, y in zip(chain_o, chain_i)):
        return False
    if len(chain_i) == len(chain_o):
        return inner.context.function is outer.context.function
    call = chain_i[len(chain_o)]
    return any(e.kind == LOCAL_CALL and e.site is not None and e.site.call is call
               and e.context.function is outer.context.function and len(e.context.call_chain) == len(chain_o)
               and all(x is y for x, y in zip(e.context.call_chain, chain_o)) for e in events)
