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

import ast
from dataclasses import dataclass

from . import knowledge as K
from .names import dotted, last

LIVE, UNKNOWN, DETACHED = 0, 1, 2  # a path's mode is the max of the modes along it


@dataclass(frozen=True, eq=False)
class Occurrence:
    key: str  # `loss`, `outputs.loss`
    node: ast.expr  # the Name/Attribute as written
    mode: int
    scalar: bool  # reached from the root through arithmetic only (so a scalar root means a scalar tensor)


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A LIVE occurrence resolved to the identity (and definition) it denotes at that point."""

    identity: str
    version: int  # which assignment of `identity` reaches this point (0: none seen)
    key: str
    node: ast.expr
    scalar: bool


def occurrences(expr: ast.expr | None) -> list[Occurrence]:
    """Every Name/Attribute chain in `expr` with how the value of `expr` holds it."""
    out: list[Occurrence] = []
    pending: list[tuple[ast.AST, int, bool]] = [(expr, LIVE, True)] if expr is not None else []
    while pending:
        node, mode, scalar = pending.pop()
        if isinstance(node, ast.Name):
            out.append(Occurrence(node.id, node, mode, scalar))
        elif isinstance(node, ast.Attribute):
            if node.attr in K.DETACHED_ATTRIBUTES:
                pending.append((node.value, DETACHED, False))
                continue
            key = dotted(node)
            if key is not None:
                out.append(Occurrence(key, node, mode, scalar))
            else:
                pending.append((node.value, max(mode, UNKNOWN), False))
        elif isinstance(node, ast.Call):
            pending.extend(_call(node, mode))
        elif isinstance(node, ast.BinOp):
            keeps = scalar and not isinstance(node.op, ast.MatMult)
            pending.extend(((node.left, mode, keeps), (node.right, mode, keeps)))
        elif isinstance(node, ast.UnaryOp):
            detached = isinstance(node.op, ast.Not)
            pending.append((node.operand, DETACHED if detached else mode, scalar and not detached))
        elif isinstance(node, ast.Compare):
            pending.append((node.left, DETACHED, False))
            pending.extend((comparator, DETACHED, False) for comparator in node.comparators)
        elif isinstance(node, ast.BoolOp):
            pending.extend((value, max(mode, UNKNOWN), False) for value in node.values)
        elif isinstance(node, ast.Subscript):
            pending.append((node.value, max(mode, UNKNOWN), False))
            index = node.slice
            for element in (index.elts if isinstance(index, ast.Tuple) else [index]):
                if not isinstance(element, ast.Slice):
                    pending.append((element, max(mode, UNKNOWN), False))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            pending.extend((element, mode, False) for element in node.elts)
        elif isinstance(node, ast.Starred):
            pending.append((node.value, mode, False))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is not None:
                    pending.append((key, DETACHED, False))
                pending.append((value, mode, False))
        elif isinstance(node, ast.IfExp):
            pending.extend(((node.test, DETACHED, False), (node.body, mode, scalar), (node.orelse, mode, scalar)))
        elif isinstance(node, (ast.NamedExpr, ast.Await)):
            pending.append((node.value, mode, scalar))
        elif isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    pending.append((part.value, DETACHED, False))
    return out


def _call(node: ast.Call, mode: int):
    func = node.func
    args = [a.value if isinstance(a, ast.Starred) else a for a in node.args] + [k.value for k in node.keywords]
    if isinstance(func, ast.Attribute):
        method = func.attr
        if method in K.DETACHING_METHODS:
            yield func.value, DETACHED, False
            yield from ((a, DETACHED, False) for a in args)
            return
        if method in K.GRAPH_KEEPING_METHODS:
            yield func.value, mode, False
            yield from ((a, max(mode, UNKNOWN), False) for a in args)
            return
        yield func.value, max(mode, UNKNOWN), False
    elif isinstance(func, ast.Name):
        if func.id in K.DETACHING_BUILTINS:
            yield from ((a, DETACHED, False) for a in args)
            return
    else:
        yield func, max(mode, UNKNOWN), False
    yield from ((a, max(mode, UNKNOWN), False) for a in args)


# -- how a value is used later: may it become a Python number? ------------------------------------
_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "clear"})
_COMPOUND = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
             ast.AsyncFunctionDef, ast.ClassDef) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ()) + (
             (ast.Match,) if hasattr(ast, "Match") else ())
_RECURSE = (ast.BinOp, ast.UnaryOp, ast.IfExp, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Starred)
_NUMBER_CONTEXTS = (ast.Compare, ast.FormattedValue, ast.JoinedStr, ast.Expr, ast.BoolOp, ast.If, ast.While)


def _root_key(expr: ast.expr) -> str | None:
    """`history` for `history["loss"]`, `self.log` for `self.log[0]`."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    return dotted(expr)


class Uses:
    """Whether every use of a key in a scope would accept a Python number (or a list of them) instead
    of a tensor: printed, formatted, logged, compared, divided, summed, `np.mean`-ed."""

    def __init__(self, scope: ast.AST, qualify) -> None:
        self.scope = scope
        self.qualify = qualify  # ImportMap.qualify
        self._parents: dict[int, ast.AST] | None = None
        self._by_key: dict[str, list[ast.expr]] | None = None

    def _index(self) -> None:
        parents: dict[int, ast.AST] = {}
        by_key: dict[str, list[ast.expr]] = {}
        pending = [self.scope]
        while pending:
            node = pending.pop()
            if isinstance(node, (ast.Name, ast.Attribute)):
                key = dotted(node)
                if key is not None:
                    by_key.setdefault(key, []).append(node)
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
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
            while statement is not None and not isinstance(statement, ast.stmt):
                statement = self._parent(statement)
            if statement is not None and not isinstance(statement, _COMPOUND) \
                    and _runs_autograd(statement, self.qualify):
                return True
        return False

    def _parent(self, node: ast.AST) -> ast.AST | None:
        return self._parents.get(id(node))

    def _accepts_number(self, node: ast.AST, key: str, depth: int) -> bool:
        """Would the expression `node` (a use of `key`, or something computed from it) work as a number?"""
        if depth > 8:
            return False
        parent = self._parent(node)
        if parent is None:
            return False
        if isinstance(parent, ast.Attribute):
            return parent.attr in _CONTAINER_METHODS  # any other attribute is a tensor's (`.item()`)
        if isinstance(parent, ast.Subscript):
            if parent.value is not node:
                return True  # used as an index
            return self._accepts_number(parent, key, depth + 1)  # an element: how is it used?
        if isinstance(parent, ast.AugAssign):
            if parent.value is node:
                return self._target_accepts(parent.target, key, depth)
            return True
        if isinstance(parent, ast.Delete):
            return True
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            if parent.value is not node:
                return True  # a target
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return all(self._target_accepts(t, key, depth) for t in targets)
        if isinstance(parent, _RECURSE):
            if isinstance(parent, ast.IfExp) and parent.test is node:
                return True
            return self._accepts_number(parent, key, depth + 1)
        if isinstance(parent, _NUMBER_CONTEXTS):
            return True
        if isinstance(parent, ast.keyword):
            parent = self._parent(parent)
            if not isinstance(parent, ast.Call):
                return False
        if isinstance(parent, ast.Call):
            if parent.func is node:
                return False
            func = parent.func
            if isinstance(func, ast.Attribute) and func.attr in _CONTAINER_METHODS:
                container = _root_key(func.value)  # `history["epoch"].append(total / n)`: how is `history` used?
                return container is not None and self.number_ok_nested(container, depth + 1)
            return self._consumes_number(parent)
        return False  # returned, yielded, lambda'd, iterated, ...: its users are out of sight

    def _target_accepts(self, target: ast.expr, key: str, depth: int) -> bool:
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

    def _consumes_number(self, call: ast.Call) -> bool:
        qualname = self.qualify(call.func)
        if qualname is not None and qualname.startswith(K.TENSOR_MODULES):
            return qualname in K.TENSOR_MODULE_NUMBER_CONSUMERS
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            return isinstance(func.value, ast.Constant) and isinstance(func.value.value, str)
        name = dotted(func)
        return name is not None and last(name) in K.NUMBER_CONSUMERS


def _runs_autograd(statement: ast.AST, qualify) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "backward":
                return True
            if qualify(func) in ("torch.autograd.grad", "torch.autograd.backward"):
                return True
    return False
