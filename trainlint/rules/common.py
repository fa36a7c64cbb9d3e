"""Small questions several rules ask of the model's events."""
from __future__ import annotations

import libcst as cst

from ..analysis import Event, LoopFrame, ScriptModel
from ..analysis.names import dotted


def same_scope(frame: LoopFrame, event: Event) -> bool:
    """Is the event written in the same function as the loop (so its names are valid there)?"""
    return frame.function is event.context.function


def first_statement(node: cst.For | cst.While) -> cst.BaseStatement | None:
    body = node.body
    if isinstance(body, cst.IndentedBlock) and body.body:
        return body.body[0]
    return None


def parameters_owners(expr: cst.BaseExpression | None) -> list[str]:
    """`model` for `model.parameters()`, `[{'params': net.fc.parameters()}]`, `filter(f, m.parameters())`."""
    owners: list[str] = []
    pending = [expr] if expr is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("parameters", "named_parameters"):
                owner = dotted(func.value)
                if owner:
                    owners.append(owner)
                continue
            pending.extend(arg.value for arg in node.args)
            if isinstance(func, cst.Attribute):
                pending.append(func.value)
        elif isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            pending.extend(element.value for element in node.elements)
        elif isinstance(node, cst.Dict):
            pending.extend(element.value for element in node.elements)
        elif isinstance(node, cst.BinaryOperation):
            pending.extend((node.left, node.right))
        elif isinstance(node, (cst.ListComp, cst.GeneratorExp)):
            pending.extend(f.iter for f in _for_ins(node.for_in))
    return owners


def _for_ins(for_in):
    while for_in is not None:
        yield for_in
        for_in = for_in.inner_for_in


def optimizer_models(model: ScriptModel, step: Event) -> list[str] | None:
    """Keys of the models whose parameters the stepped optimizer holds, or None if unknown."""
    role = step.role
    if role is None or role.call is None or not role.call.args:
        return None
    owners = parameters_owners(role.call.args[0].value)
    return owners or None


# -- where a statement sits, for fixes that move it (used by TL002, TL005) ------------------------------
def enclosing_block(root: cst.CSTNode, target: cst.CSTNode) -> list[cst.BaseStatement] | None:
    """The statements of the block (module, function or compound statement body) that directly holds
    `target`, or None (e.g. inside a one-line suite)."""
    pending = [list(root.body)] if isinstance(root, cst.Module) else list(_inner_blocks(root))
    while pending:
        statements = pending.pop()
        for statement in statements:
            if statement is target:
                return statements
            if isinstance(statement, cst.BaseCompoundStatement):
                pending.extend(_inner_blocks(statement))
    return None


def _inner_blocks(node: cst.CSTNode):
    for child in node.children:
        if isinstance(child, cst.IndentedBlock):
            yield list(child.body)
        elif not isinstance(child, (cst.BaseExpression, cst.BaseSmallStatement, cst.SimpleStatementSuite)):
            yield from _inner_blocks(child)


def contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    """Is `node` (by identity) `tree` or inside it?"""
    pending = [tree]
    while pending:
        current = pending.pop()
        if current is node:
            return True
        pending.extend(current.children)
    return False


def lone_statement(line: cst.SimpleStatementLine | None) -> bool:
    """A line holding exactly one statement (so moving the line moves only that statement)."""
    return line is not None and len(line.body) == 1


def source_text(model: ScriptModel, node: cst.CSTNode, limit: int = 60) -> str:
    """The code of `node` on one line, shortened for a message."""
    text = " ".join(model.module.code_for_node(node).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
