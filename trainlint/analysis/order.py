"""Order: how two events of one loop iteration relate (does one always run with the other, can both run).

Events are numbered in execution order (`Event.index`); within one iteration of a loop, a smaller
index runs first. Branches make that partial: two events in different arms of the same `if`/`try`
never run in the same pass, and an event under an `if` the other one is not under may not run at all.
These questions are asked of the guards (the (branch, arm) pairs around each event, outermost first).
`break`, `continue` and `return` are not modelled, so rules should only rely on these facts to stay
*silent*, or to report orders that hold on every path through the guards.
"""
from __future__ import annotations

from .events import Event


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
