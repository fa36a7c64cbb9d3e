"""Fix helpers that put statements under a new block header (`with torch.no_grad():`) or a function under a
new decorator, as one text replacement built from the source as written.

Wrapping re-indents the statements one level. That is safe for every line but one kind: a line inside a
string literal that spans lines (its text would change), so statements holding one are never wrapped. The
new level's indentation is the one the file already uses (the step from a block's header to its body), so a
file indented with tabs stays indented with tabs.
"""
from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.structure import FUNCTION_TYPES
from ..fixes import Replace


class TextRange(ast.AST):
    """A range of the source to replace (rows 1-based, columns 0-based UTF-8 bytes, as `ast` counts them)."""

    _fields = ()

    def __init__(self, lineno: int, col_offset: int, end_lineno: int, end_col_offset: int) -> None:
        super().__init__()
        self.lineno, self.col_offset, self.end_lineno, self.end_col_offset = lineno, col_offset, end_lineno, end_col_offset


def no_grad_call(model: ScriptModel) -> str | None:
    """How this file spells `torch.no_grad()`: through `import torch` (or `import torch as th`), or a
    `from torch import no_grad`; None when it cannot without a new import."""
    names = model.imports.names
    for local, qualname in sorted(names.items()):
        if qualname == "torch" and "." not in local:
            return f"{local}.no_grad()"
    for local, qualname in sorted(names.items()):
        if qualname in ("torch.no_grad", "torch.autograd.no_grad") and "." not in local:
            return f"{local}()"
    return None


def _multiline_string(node: ast.AST) -> bool:
    return any(isinstance(sub, (ast.Constant, ast.JoinedStr)) and sub.end_lineno != sub.lineno
               for sub in ast.walk(node))


def indent_unit(model: ScriptModel, near: ast.AST) -> str:
    """The step of indentation the file uses: a compound statement's body against its header, looked for in
    `near` first, then anywhere in the file; four spaces when the file has no block at all."""
    for tree in (near, model.module):
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(node, ast.stmt) and isinstance(body, list) and body and body[0].lineno > node.lineno:
                outer = model.source.indentation(node.lineno)
                inner = model.source.indentation(body[0].lineno)
                if inner.startswith(outer) and len(inner) > len(outer):
                    return inner[len(outer):]
    return "    "


def wrap(model: ScriptModel, statements: list[ast.stmt], header: str) -> Replace | None:
    """Replace consecutive statements of one block by `header:` with the statements as its body; None when
    their text cannot be re-indented safely (a string spanning lines, a line shared with other code)."""
    first, last = statements[0], statements[-1]
    source = model.source
    if getattr(first, "decorator_list", None):
        return None
    start_row = first.lineno
    indent = source.indentation(start_row)
    if source.char_column(first.lineno, first.col_offset) != len(indent):
        return None  # `x = 1; for ...`: the statement does not start its line
    end_line = source.line(last.end_lineno)
    rest = end_line[source.char_column(last.end_lineno, last.end_col_offset):].strip()
    if rest and not rest.startswith("#"):
        return None  # `...; other()` after it on its last line
    if any(_multiline_string(statement) for statement in statements):
        return None
    unit = indent_unit(model, first)
    newline = source.newline
    lines = [source.line(row) for row in range(start_row, last.end_lineno + 1)]
    body = newline.join(unit + text if text.strip() else text for text in lines)
    text = f"{indent}{header}:{newline}{body}"
    span = TextRange(start_row, 0, last.end_lineno, len(end_line.encode("utf-8")))
    return Replace(span, text)


def decorate(model: ScriptModel, function: ast.AST, decorator: str) -> Replace | None:
    """Put `@decorator` right above a function's `def` (below its other decorators: `@staticmethod` stays
    outermost). None for an `async def` (a decorator like torch.no_grad would not cover its awaits)."""
    if not isinstance(function, FUNCTION_TYPES) or isinstance(function, ast.AsyncFunctionDef):
        return None
    source = model.source
    indent = source.indentation(function.lineno)
    if source.char_column(function.lineno, function.col_offset) != len(indent):
        return None
    span = TextRange(function.lineno, function.col_offset, function.lineno, function.col_offset + len("def"))
    return Replace(span, f"@{decorator}{source.newline}{indent}def")
