"""Small questions several rules ask of the model's events."""
from __future__ import annotations

import ast

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis.names import argument, dotted


def same_scope(frame: LoopFrame, event: Event) -> bool:
    """Is the event written in the same function as the loop (so its names are valid there)?"""
    return frame.function is event.context.function


def first_statement(node: ast.For | ast.While) -> ast.stmt | None:
    return node.body[0] if node.body else None


def parameters_owners(expr: ast.expr | None) -> list[str]:
    """`model` for `model.parameters()`, `[{'params': net.fc.parameters()}]`, `filter(f, m.parameters())`."""
    owners: list[str] = []
    pending = [expr] if expr is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("parameters", "named_parameters"):
                owner = dotted(func.value)
                if owner:
                    owners.append(owner)
                continue
            pending.extend(a.value if isinstance(a, ast.Starred) else a for a in node.args)
            pending.extend(k.value for k in node.keywords)
            if isinstance(func, ast.Attribute):
                pending.append(func.value)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            pending.extend(node.elts)
        elif isinstance(node, ast.Starred):
            pending.append(node.value)
        elif isinstance(node, ast.Dict):
            pending.extend(node.values)
        elif isinstance(node, ast.BinOp):
            pending.extend((node.left, node.right))
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            pending.extend(g.iter for g in node.generators)
    return owners


def optimizer_models(model: ScriptModel, step: Event) -> list[str] | None:
    """Keys of the models whose parameters the stepped optimizer holds, or None if unknown."""
    role = step.role
    if role is None or role.call is None:
        return None
    params = argument(role.call, 0, ("params",))
    owners = parameters_owners(params) if params is not None else []
    return owners or None


# -- where a statement sits, for fixes that move it (used by TL002, TL005) ------------------------------
def enclosing_block(model: ScriptModel, target: ast.stmt | None) -> list[ast.stmt] | None:
    """The statements of the block (module, function or compound statement body) that directly holds
    `target`, or None."""
    return model.block_of(target)


def contains(tree: ast.AST, node: ast.AST) -> bool:
    """Is `node` written within `tree` (by their positions)?"""
    return ((tree.lineno, tree.col_offset) <= (node.lineno, node.col_offset)
            and (node.end_lineno, node.end_col_offset) <= (tree.end_lineno, tree.end_col_offset))


def lone_statement(line: ast.stmt | None) -> bool:
    """A statement with its lines to itself (so moving its lines moves only that statement)."""
    return line is not None


def source_text(model: ScriptModel, node: ast.AST, limit: int = 60) -> str:
    """The code of `node` on one line, shortened for a message."""
    text = " ".join(model.code(node).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
