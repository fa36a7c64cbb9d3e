"""Schedulers: every learning-rate scheduler the file builds, and what becomes of it.

A scheduler changes the learning rate only when something steps it. The file either steps it itself
(`scheduler.step()`, timm's `step_update()`), or hands it to something that may: passes it to a call
(`Trainer(..., lr_scheduler=s)`, `train_one_epoch(model, opt, s)`, a `SequentialLR`), returns it
(Lightning's `configure_optimizers`), stores it (`self.scheduler = s`, `schedulers[name] = s`, a list), or
lets a closure see it. Keras schedules and callbacks step themselves once handed over (to an optimizer, to
`fit(callbacks=[...])`), so for them only the handing over counts. Anything else the name is used for
(`s.get_last_lr()`, `s.state_dict()`, `if s is not None`) neither steps nor hands it over.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from . import knowledge as K
from .structure import FunctionInfo, Stmt, Structure, walk_items

STEPPED = "stepped"
HANDED = "handed"  # passed, returned, stored, captured: someone else may step it
IDLE = "idle"  # built, and nothing steps it or could


@dataclass(eq=False)
class SchedulerBuild:
    call: ast.Call
    qualname: str
    name: str | None  # the plain name it is bound to (None: a bare expression statement)
    function: FunctionInfo | None  # where it is built (None: the module)
    fate: str  # STEPPED, HANDED or IDLE

    @property
    def keras(self) -> bool:
        return self.qualname.startswith("keras.")


def _tracked(qualname: str | None) -> bool:
    if qualname is None:
        return False
    if qualname.startswith(K.HANDED_OVER_LR_CONTROLS):
        return True
    return qualname.startswith(K.LR_SCHEDULER_PREFIXES)


def scheduler_builds(structure: Structure) -> list[SchedulerBuild]:
    builds: list[SchedulerBuild] = []
    scopes: dict[int, _Scope] = {}
    for item, function in walk_items(structure):
        if not isinstance(item, Stmt):
            continue
        for site in item.calls:
            if site.func_key is None:
                continue
            imports = function.module.imports if function is not None and function.module else structure.imports
            qualname = imports.qualify(site.call.func)
            if not _tracked(qualname):
                continue
            node = item.node
            value = getattr(node, "value", None)
            if value is not site.call:
                builds.append(SchedulerBuild(site.call, qualname, None, function, HANDED))  # an argument, returned
                continue
            if isinstance(node, ast.Expr):
                builds.append(SchedulerBuild(site.call, qualname, None, function, IDLE))
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                builds.append(SchedulerBuild(site.call, qualname, None, function, HANDED))  # `self.s = ...`
                continue
            name = targets[0].id
            scope_node = function.node if function is not None else structure.module
            scope = scopes.get(id(scope_node))
            if scope is None:
                scope = scopes[id(scope_node)] = _Scope(scope_node)
            builds.append(SchedulerBuild(site.call, qualname, name, function, scope.fate(name)))
    return builds


class _Scope:
    """The uses of the names of one scope (a function with its closures, or the whole module), by name:
    indexed in one walk on first use."""

    def __init__(self, node: ast.AST) -> None:
        self.node = node
        self._fates: dict[str, str] | None = None

    def fate(self, name: str) -> str:
        if self._fates is None:
            self._fates = self._index()
        return self._fates.get(name, IDLE)

    def _index(self) -> dict[str, str]:
        fates: dict[str, str] = {}
        rank = {IDLE: 0, STEPPED: 1, HANDED: 2}

        def note(name: str, fate: str) -> None:
            if rank[fate] > rank[fates.get(name, IDLE)]:
                fates[name] = fate

        pending: list[tuple[ast.AST, ast.AST | None]] = [(self.node, None)]
        while pending:
            node, parent = pending.pop()
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                for name in node.names:
                    note(name, HANDED)  # shared with another scope: its uses are elsewhere
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                use = _use(node, parent)
                if use != IDLE:
                    note(node.id, use)
            pending.extend((child, node) for child in ast.iter_child_nodes(node))
        return fates


def _use(name: ast.Name, parent: ast.AST | None) -> str:
    if isinstance(parent, ast.Attribute):
        return STEPPED if parent.attr in K.SCHEDULER_STEP_METHODS else IDLE  # `s.get_last_lr()`: a read
    if isinstance(parent, (ast.Compare, ast.BoolOp, ast.If, ast.While, ast.IfExp, ast.Assert)):
        return IDLE if not isinstance(parent, ast.IfExp) or parent.test is name else HANDED
    if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
        return IDLE
    if isinstance(parent, ast.Delete):
        return IDLE
    return HANDED
