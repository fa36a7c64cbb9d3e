"""Keras / TensorFlow custom training steps: which gradient list `optimizer.apply_gradients(...)` receives, and
which list each gradient clip (`tf.clip_by_global_norm`, `tf.clip_by_norm`, `tf.clip_by_value`) reads and
where its result goes.

A TensorFlow step has no `zero_grad()` and no `backward()`: `tape.gradient(loss, variables)` returns a fresh
list, the clip functions return new (clipped) tensors instead of changing their input, and
`apply_gradients(zip(grads, variables))` applies whatever list it is handed. So the facts are names: the list
a clip reads, the name its clipped list is bound to (or that it is thrown away), the list an apply receives
(with the node spelling it, for fixes), and the statements of a scope in source order, to ask what happens
between two of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import ast

from . import knowledge as K
from .events import APPLY_GRADIENTS, CLIP, Event
from .names import argument, dotted, is_none, number, string
from .structure import Branch, FunctionInfo, Item, Loop, Stmt, Structure, With, item_calls, walk_items

_CONTAINERS = frozenset({"list", "tuple"})
_PAIRS = frozenset({"zip", "enumerate"})


@dataclass(eq=False)
class AppliedGradients:
    """One `optimizer.apply_gradients(...)` (or Keras 3's `optimizer.apply(grads, variables)`)."""

    event: Event
    key: str | None  # `grads` for `apply_gradients(zip(grads, variables))`; `pairs` for `apply_gradients(pairs)`
    node: ast.expr | None  # the expression spelling `key` inside the call
    self_clipping: bool  # the optimizer clips every update itself (clipnorm=, global_clipnorm=, clipvalue=)


@dataclass(eq=False)
class GradientClip:
    """One TensorFlow clip of a list of gradients (or of (gradient, variable) pairs)."""

    event: Event
    source: str  # the list it clips
    result: str | None  # the name the clipped list is bound to; None when unknown or thrown away
    discarded: bool  # the clipped list is thrown away (`tf.clip_by_global_norm(grads, 1.0)` as a statement)
    expression: ast.expr  # what yields the clipped list: the call, or the comprehension around it


class TfSteps:
    """The TensorFlow-step facts of one file (ScriptModel.tf_steps)."""

    def __init__(self, structure: Structure, events: list[Event]) -> None:
        self.structure = structure
        self.imports = structure.imports
        self._order: dict[int, dict[int, int]] = {}  # id(function) -> id(stmt) -> position in source order
        self._statements: dict[int, list[Stmt]] = {}
        self.self_clipping_optimizers = self._self_clipping_builds()
        self.applies = [a for a in (self._applied(e) for e in events if e.kind == APPLY_GRADIENTS) if a is not None]
        self.clips = [c for c in (self._clip(e) for e in events if e.kind == CLIP and e.detail.get("tensorflow"))
                      if c is not None]

    # -- statements in source order -----------------------------------------------------------------
    def statements(self, function: FunctionInfo | None) -> list[Stmt]:
        found = self._statements.get(id(function))
        if found is None:
            found = self._statements[id(function)] = []
            _collect(function.body if function is not None else self.structure.body, found)
            self._order[id(function)] = {id(s): i for i, s in enumerate(found)}
        return found

    def between(self, first: Stmt, last: Stmt, function: FunctionInfo | None) -> list[Stmt] | None:
        """The statements written after `first` and before `last` in the same scope, or None if either is
        not a statement of that scope."""
        statements = self.statements(function)
        order = self._order[id(function)]
        if id(first) not in order or id(last) not in order:
            return None
        return statements[order[id(first)] + 1:order[id(last)]]

    # -- optimizer.apply_gradients(...) --------------------------------------------------------------
    def _applied(self, event: Event) -> AppliedGradients | None:
        call = event.site.call
        arg = argument(call, 0, ("grads_and_vars",))
        if event.detail.get("keras_apply"):  # optimizer.apply(grads, variables)
            arg = argument(call, 0, ("grads",))
        node = _gradient_list(arg)
        key = dotted(node) if node is not None else None
        return AppliedGradients(event, key, node, self._clips_itself(event))

    def _clips_itself(self, event: Event) -> bool:
        """Does the optimizer clip its updates itself? Unsure (the optimizer's constructor is not known, and
        the file builds a clipping optimizer somewhere, e.g. in `compile()`) counts as yes."""
        role = event.role
        if role is not None and role.call is not None and role.qualname:
            return _clipping_call(role.call)
        return bool(self.self_clipping_optimizers)

    def _self_clipping_builds(self) -> list[ast.Call]:
        found = []
        for item, _ in walk_items(self.structure):
            for site in item_calls(item):
                qualname = self.imports.qualify(site.call.func)
                if qualname and qualname.startswith("keras.optimizers.") and _clipping_call(site.call):
                    found.append(site.call)
        return found

    # -- tf.clip_by_* on a gradient list ------------------------------------------------------------
    def _clip(self, event: Event) -> GradientClip | None:
        call, stmt = event.site.call, event.stmt
        if stmt is None or isinstance(stmt.node, ast.Return):
            return None  # `return [tf.clip_by_norm(g, 1.0) for g in grads]`: the caller decides what is applied
        comprehension = event.detail.get("comprehension")
        if comprehension is not None:
            source = _comprehension_source(comprehension, call)
            expression = comprehension
        else:
            first = argument(call, 0, ("t_list", "t"))
            source = dotted(first) if first is not None else None
            expression = call
        if source is None or _measures_only(call, event.detail.get("qualname")):
            return None
        global_norm = (event.detail.get("qualname") or "").endswith("clip_by_global_norm")
        node = stmt.node
        result, discarded = None, False
        if isinstance(node, ast.Expr) and node.value is expression:
            discarded = True
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            if value is expression and not global_norm:
                result = dotted(target)  # grads = [tf.clip_by_norm(g, 5.0) for g in grads]
            elif value is expression and isinstance(target, (ast.Tuple, ast.List)) and target.elts:
                result = dotted(target.elts[0])  # grads, norm = tf.clip_by_global_norm(grads, 5.0)
                if result == "_":
                    return None  # `_, norm = tf.clip_by_global_norm(...)`: only the norm is wanted
            elif _first_of(value) is expression and global_norm:
                result = dotted(target)  # grads = tf.clip_by_global_norm(grads, 5.0)[0]
            elif isinstance(value, ast.Subscript) and value.value is expression:
                return None  # `norm = tf.clip_by_global_norm(grads, 5.0)[1]`: a measurement
        return GradientClip(event, source, result, discarded, expression)


def _collect(items: list[Item], out: list[Stmt]) -> None:
    for item in items:
        if isinstance(item, Stmt):
            out.append(item)
        elif isinstance(item, Loop):
            _collect(item.body, out)
            _collect(item.orelse, out)
        elif isinstance(item, Branch):
            for arm in item.arms:
                _collect(arm, out)
            _collect(item.always, out)
        elif isinstance(item, With):
            _collect(item.body, out)


def _gradient_list(expr: ast.expr | None) -> ast.expr | None:
    """The expression naming the gradient list in an apply_gradients argument: `grads` in `zip(grads, vs)`,
    `list(zip(grads, vs))`, `[(g, v) for g, v in zip(grads, vs) if g is not None]`, or a name of pairs."""
    while expr is not None:
        if dotted(expr) is not None:
            return expr
        if isinstance(expr, ast.Call) and dotted(expr.func) in _CONTAINERS | _PAIRS:
            expr = argument(expr, 0)
        elif isinstance(expr, (ast.ListComp, ast.GeneratorExp)) and len(expr.generators) == 1:
            expr = expr.generators[0].iter
        else:
            return None
    return None


def _comprehension_source(comprehension, call: ast.Call) -> str | None:
    """`grads` for `[tf.clip_by_norm(g, 5.0) for g in grads]` / `[(tf.clip_by_value(g, -1, 1), v) for g, v in
    pairs]`, when the clip's argument is an element the comprehension takes from that list."""
    if len(comprehension.generators) != 1:
        return None
    for_in = comprehension.generators[0]
    bound = set()
    pending = [for_in.target]
    while pending:
        target = pending.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            pending.extend(target.elts)
        elif isinstance(target, ast.Name):
            bound.add(target.id)
    first = argument(call, 0, ("t", "t_list"))
    if not isinstance(first, ast.Name) or first.id not in bound:
        return None
    source = _gradient_list(for_in.iter)
    return dotted(source) if source is not None else None


def _first_of(value: ast.expr) -> ast.expr | None:
    """`x` for `x[0]`."""
    if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and value.slice.value == 0 \
            and not isinstance(value.slice.value, bool):
        return value.value
    return None


def _clipping_call(call: ast.Call) -> bool:
    return any(kw.arg in K.KERAS_OPTIMIZER_CLIPPING and not is_none(kw.value) for kw in call.keywords)


def _measures_only(call: ast.Call, qualname: str | None) -> bool:
    """A clip whose limit is infinite (`tf.clip_by_global_norm(grads, np.inf)`) only measures the norm."""
    if not qualname or qualname.endswith("clip_by_value"):
        return False
    limit = argument(call, 1, ("clip_norm",))
    if limit is None:
        return False
    value = number(limit)
    if value is not None:
        return math.isinf(value)
    if isinstance(limit, ast.Call) and dotted(limit.func) == "float" and limit.args:
        return (string(limit.args[0]) or "").strip().lower() in ("inf", "+inf")
    return (dotted(limit) or "").rsplit(".", 1)[-1] == "inf"
