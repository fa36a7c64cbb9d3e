"""Autograd facts about expressions: which names a value keeps attached to the autograd graph, and
whether a value is ever needed as a tensor.

A name occurs in a value in one of three *modes*:

- LIVE: reached through arithmetic and graph-keeping tensor methods only (`loss`, `loss * n`,
  `loss.mean()`, `[loss, acc]`): the value holds the name's graph.
- UNKNOWN: reached through a call or subscript we know nothing about (`accelerator.gather(loss)`,
  `torch.stack(losses)`, `out["loss"]`): it may or may not.
- DETACHED: under `.item()`, `.detach()`, `.tolist()`, `float()`, `.data`, a comparison or an f-string:
  it holds none of it.

The event builder turns LIVE occurrences into identities with a definition version (see
`EventBuilder.tensor_refs`), so a rule can ask "is this the very tensor `backward()` ran on?".
"""
from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from . import knowledge as K
from .names import dotted, last

LIVE, UNKNOWN, DETACHED = 0, 1, 2  # a path's mode is the max of the modes along it


@dataclass(frozen=True, eq=False)
class Occurrence:
    key: str  # `loss`, `outputs.loss`
    node: cst.BaseExpression  # the Name/Attribute as written
    mode: int
    scalar: bool  # reached from the root through arithmetic only (so a scalar root means a scalar tensor)


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A LIVE occurrence resolved to the identity (and definition) it denotes at that point."""

    identity: str
    version: int  # which assignment of `identity` reaches this point (0: none seen)
    key: str
    node: cst.BaseExpression
    scalar: bool


def occurrences(expr: cst.BaseExpression | None) -> list[Occurrence]:
    """Every Name/Attribute chain in `expr` with how the value of `expr` holds it."""
    out: list[Occurrence] = []
    pending: list[tuple[cst.CSTNode, int, bool]] = [(expr, LIVE, True)] if expr is not None else []
    while pending:
        node, mode, scalar = pending.pop()
        if isinstance(node, cst.Name):
            if node.value not in ("True", "False", "None"):
                out.append(Occurrence(node.value, node, mode, scalar))
        elif isinstance(node, cst.Attribute):
            if node.attr.value in K.DETACHED_ATTRIBUTES:
                pending.append((node.value, DETACHED, False))
                continue
            key = dotted(node)
            if key is not None:
                out.append(Occurrence(key, node, mode, scalar))
            else:
                pending.append((node.value, max(mode, UNKNOWN), False))
        elif isinstance(node, cst.Call):
            pending.extend(_call(node, mode))
        elif isinstance(node, cst.BinaryOperation):
            keeps = scalar and not isinstance(node.operator, cst.MatrixMultiply)
            pending.extend(((node.left, mode, keeps), (node.right, mode, keeps)))
        elif isinstance(node, cst.UnaryOperation):
            detached = isinstance(node.operator, cst.Not)
            pending.append((node.expression, DETACHED if detached else mode, scalar and not detached))
        elif isinstance(node, cst.Comparison):
            pending.append((node.left, DETACHED, False))
            pending.extend((target.comparator, DETACHED, False) for target in node.comparisons)
        elif isinstance(node, cst.BooleanOperation):
            pending.extend(((node.left, max(mode, UNKNOWN), False), (node.right, max(mode, UNKNOWN), False)))
        elif isinstance(node, cst.Subscript):
            pending.append((node.value, max(mode, UNKNOWN), False))
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    pending.append((element.slice.value, max(mode, UNKNOWN), False))
        elif isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            pending.extend((element.value, mode, False) for element in node.elements)
        elif isinstance(node, cst.Dict):
            for element in node.elements:
                if isinstance(element, cst.DictElement):
                    pending.append((element.key, DETACHED, False))
                pending.append((element.value, mode, False))
        elif isinstance(node, cst.IfExp):
            pending.extend(((node.test, DETACHED, False), (node.body, mode, scalar), (node.orelse, mode, scalar)))
        elif isinstance(node, (cst.NamedExpr, cst.Await)):
            pending.append((node.value if isinstance(node, cst.NamedExpr) else node.expression, mode, scalar))
        elif isinstance(node, cst.FormattedString):
            for part in node.parts:
                if isinstance(part, cst.FormattedStringExpression):
                    pending.append((part.expression, DETACHED, False))
    return out


def _call(node: cst.Call, mode: int):
    func = node.func
    args = [arg.value for arg in node.args]
    if isinstance(func, cst.Attribute):
        method = func.attr.value
        if method in K.DETACHING_METHODS:
            yield func.value, DETACHED, False
            yield from ((a, DETACHED, False) for a in args)
            return
        if method in K.GRAPH_KEEPING_METHODS:
            yield func.value, mode, False
            yield from ((a, max(mode, UNKNOWN), False) for a in args)
            return
        yield func.value, max(mode, UNKNOWN), False
    elif isinstance(func, cst.Name):
        if func.value in K.DETACHING_BUILTINS:
            yield from ((a, DETACHED, False) for a in args)
            return
    else:
        yield func, max(mode, UNKNOWN), False
    yield from ((a, max(mode, UNKNOWN), False) for a in args)


# -- how a value is used later: may it become a Python number? ------------------------------------
_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "clear"})


def _root_key(expr: cst.BaseExpression) -> str | None:
    """`history` for `history["loss"]`, `self.log` for `self.log[0]`."""
    while isinstance(expr, cst.Subscript):
        expr = expr.value
    return dotted(expr)


class Uses:
    """Whether every use of a key in a scope would accept a Python number (or a list of them) instead
    of a tensor: printed, formatted, logged, compared, divided, summed, `np.mean`-ed."""

    def __init__(self, scope: cst.CSTNode, qualify) -> None:
        self.scope = scope
        self.qualify = qualify  # ImportMap.qualify
        self._parents: dict[int, cst.CSTNode] | None = None
        self._by_key: dict[str, list[cst.BaseExpression]] | None = None

    def _index(self) -> None:
        parents: dict[int, cst.CSTNode] = {}
        by_key: dict[str, list[cst.BaseExpression]] = {}
        pending = [self.scope]
        while pending:
            node = pending.pop()
            if isinstance(node, (cst.Name, cst.Attribute)):
                key = dotted(node)
                if key is not None:
                    by_key.setdefault(key, []).append(node)
            # names that are not uses: `x.attr`'s attr, `f(kw=...)`'s keyword, a parameter's name
            skip = (node.attr if isinstance(node, cst.Attribute) else node.keyword if isinstance(node, cst.Arg)
                    else node.name if isinstance(node, (cst.Param, cst.FunctionDef, cst.ClassDef)) else None)
            for child in node.children:
                parents[id(child)] = node
                if child is not skip:
                    pending.append(child)
        self._parents, self._by_key = parents, by_key

    def number_ok(self, key: str) -> bool:
        if self._parents is None:
            self._index()
        return all(self._accepts_number(node, key, 0) for node in self._by_key.get(key, []))

    def feeds_backward(self, key: str) -> bool:
        """Is `key` used in a statement that runs autograd (`torch.stack(losses).sum().backward()`,
        `torch.autograd.grad(total, params)`)? Then its graph is wanted."""
        if self._parents is None:
            self._index()
        for node in self._by_key.get(key, []):
            statement = node
            while statement is not None and not isinstance(statement, cst.BaseSmallStatement):
                statement = None if isinstance(statement, cst.BaseCompoundStatement) else self._parent(statement)
            if statement is not None and _runs_autograd(statement, self.qualify):
                return True
        return False

    def _parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(id(node))

    def _accepts_number(self, node: cst.CSTNode, key: str, depth: int) -> bool:
        """Would the expression `node` (a use of `key`, or something computed from it) work as a number?"""
        if depth > 8:
            return False
        parent = self._parent(node)
        if parent is None:
            return False
        if isinstance(parent, cst.Attribute):
            return parent.attr.value in _CONTAINER_METHODS  # any other attribute is a tensor's (`.item()`)
        if isinstance(parent, cst.Subscript):
            if parent.value is not node:
                return True  # used as an index
            return self._accepts_number(parent, key, depth + 1)  # an element: how is it used?
        if isinstance(parent, (cst.AssignTarget, cst.AugAssign, cst.Del)):
            if isinstance(parent, cst.AugAssign) and parent.value is node:
                return self._target_accepts(parent.target, key, depth)
            return True
        if isinstance(parent, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
            return all(self._target_accepts(t, key, depth) for t in targets)
        if isinstance(parent, (cst.BinaryOperation, cst.UnaryOperation, cst.IfExp, cst.Element, cst.DictElement,
                               cst.List, cst.Tuple, cst.Set, cst.Dict, cst.StarredElement)):
            if isinstance(parent, cst.IfExp) and parent.test is node:
                return True
            return self._accepts_number(parent, key, depth + 1)
        if isinstance(parent, (cst.Comparison, cst.ComparisonTarget, cst.FormattedStringExpression,
                               cst.FormattedString, cst.Expr, cst.BooleanOperation, cst.If, cst.While,
                               cst.NameItem)):
            return True
        if isinstance(parent, cst.Arg):
            call = self._parent(parent)
            if not isinstance(call, cst.Call):
                return False
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in _CONTAINER_METHODS:
                container = _root_key(func.value)  # `history["epoch"].append(total / n)`: how is `history` used?
                return container is not None and self.number_ok_nested(container, depth + 1)
            return self._consumes_number(call)
        if isinstance(parent, cst.Call) and parent.func is node:
            return False
        return False  # returned, yielded, lambda'd, iterated, ...: its users are out of sight

    def _target_accepts(self, target: cst.BaseExpression, key: str, depth: int) -> bool:
        name = dotted(target)
        if name is None:
            return False
        if name == key:
            return True  # `total = total + x`, `total /= n`: the key itself
        return self.number_ok_nested(name, depth + 1)

    def number_ok_nested(self, key: str, depth: int) -> bool:
        if depth > 3:
            return False
        return all(self._accepts_number(node, key, depth) for node in self._by_key.get(key, []))

    def _consumes_number(self, call: cst.Call) -> bool:
        qualname = self.qualify(call.func)
        if qualname is not None and qualname.startswith(K.TENSOR_MODULES):
            return qualname in K.TENSOR_MODULE_NUMBER_CONSUMERS
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "format":
            return isinstance(func.value, (cst.SimpleString, cst.ConcatenatedString))
        name = dotted(func)
        return name is not None and last(name) in K.NUMBER_CONSUMERS


def _runs_autograd(statement: cst.CSTNode, qualify) -> bool:
    pending = [statement]
    while pending:
        node = pending.pop()
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "backward":
                return True
            if qualify(func) in ("torch.autograd.grad", "torch.autograd.backward"):
                return True
        pending.extend(node.children)
    return False
