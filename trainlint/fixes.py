"""Fixes: edits that rules propose on the statements they saw, turned into text edits by the engine, and the
safe write to disk.

A rule describes a fix as edits on `ast` nodes: insert a statement before or after another, remove one,
replace an expression's text. `resolve` turns them into character ranges of the source, keeping the
code around them exactly as written (comments, blank lines, quotes, line endings): a statement is
inserted on lines of its own, indented like the statement it goes next to, in the file's newline style;
a statement that moves takes the comment lines written directly above it along. Writing is atomic and
keeps the file's encoding, BOM, newlines and mode.
"""
from __future__ import annotations

import ast
import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .analysis.source import SourceText
from .analysis.structure import FOREIGN

SAFE = "safe"
UNSAFE = "unsafe"

Code = Union[str, ast.stmt]  # new code, or a statement of the file (moved with its text)


@dataclass(frozen=True, eq=False)
class InsertBefore:
    anchor: ast.stmt  # a statement that starts its own line
    code: Code


@dataclass(frozen=True, eq=False)
class InsertAfter:
    anchor: ast.stmt  # a statement that ends its own line
    code: Code


@dataclass(frozen=True, eq=False)
class Remove:
    statement: ast.stmt


@dataclass(frozen=True, eq=False)
class Replace:
    node: ast.AST
    code: str


Edit = Union[InsertBefore, InsertAfter, Remove, Replace]


@dataclass(eq=False)
class Fix:
    message: str
    edits: list[Edit]
    applicability: str = SAFE


class EditError(ValueError):
    """A fix refers to code it cannot edit as text (a statement sharing its line, a moved statement whose
    lines cannot be re-indented)."""


def statement(code: str) -> str:
    """A statement to insert, from source text such as `optimizer.zero_grad()` (checked to be one)."""
    code = code.rstrip("\n")
    parsed = ast.parse(code).body
    if len(parsed) != 1:
        raise ValueError(f"not one statement: {code!r}")
    return code


def move_before(node: ast.stmt, anchor: ast.stmt) -> list[Edit]:
    return [Remove(node), InsertBefore(anchor, node)]


def move_after(node: ast.stmt, anchor: ast.stmt) -> list[Edit]:
    return [Remove(node), InsertAfter(anchor, node)]


# -- from edits on nodes to edits on text ----------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """Replace the characters [start, end) of the source with `text`; `order` keeps insertions at the same
    place in the order they were asked for."""

    start: int
    end: int
    text: str
    order: int = 0


def _first_row(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    return min([node.lineno] + [d.lineno for d in decorators]) if decorators else node.lineno


def _statement_start(source: SourceText, node: ast.stmt) -> int:
    """The first row of a statement's text: its decorators, and the comment lines written directly above it
    at its indentation (they describe it, and travel with it)."""
    row = _first_row(node)
    indent = source.indentation(row)
    while row > 1:
        above = source.line(row - 1)
        stripped = above.lstrip(" \t\f")
        if not stripped.startswith("#") or above[:len(above) - len(stripped)] != indent:
            break
        row -= 1
    return row


def _check_alone(source: SourceText, node: ast.stmt, *, end: bool) -> None:
    row = _first_row(node)
    line = source.line(row)
    column = source.char_column(row, min([node.col_offset] + [d.col_offset - 1 for d in
                                                              getattr(node, "decorator_list", ())]))
    if line[:column].strip(" \t\f"):
        raise EditError("the statement shares its line with other code")
    if end:
        last = source.line(node.end_lineno)
        rest = last[source.char_column(node.end_lineno, node.end_col_offset):].strip()
        if rest and not rest.startswith("#"):
            raise EditError("the statement shares its line with other code")


def _after_lines(source: SourceText, row: int) -> int:
    """The offset just after line `row` (its newline included)."""
    return source.offset(row + 1, 0)


def _code_lines(source: SourceText, code: Code) -> list[str]:
    """The lines of the code to insert, without indentation of their own."""
    if isinstance(code, str):
        return code.split("\n")
    _check_alone(source, code, end=True)
    first = _statement_start(source, code)
    indent = source.indentation(_first_row(code))
    lines = []
    for row in range(first, code.end_lineno + 1):
        line = source.line(row)
        if not line.strip():
            lines.append("")
        elif line.startswith(indent):
            lines.append(line[len(indent):])
        else:
            raise EditError("the moved statement has lines that cannot be re-indented")
    return lines


def _insertion(source: SourceText, code: Code, indent: str) -> str:
    newline = source.newline
    return "".join((indent + line if line else "") + newline for line in _code_lines(source, code))


def resolve(fix: Fix, source: SourceText) -> list[Span]:
    """The fix as text spans of `source`. Raises EditError when it cannot be expressed as text edits."""
    spans = []
    text = source.text
    ends_without_newline = bool(text) and not text.endswith(("\n", "\r"))
    for edit in fix.edits:
        for node in (getattr(edit, "anchor", None), getattr(edit, "statement", None), getattr(edit, "node", None),
                     getattr(edit, "code", None)):
            if isinstance(node, ast.AST) and getattr(node, FOREIGN, None) is not None:
                raise EditError("the fix belongs in another module of the project, which is fixed when linted")
    for order, edit in enumerate(fix.edits):
        if isinstance(edit, Replace):
            spans.append(Span(source.start(edit.node), source.end(edit.node), edit.code, order))
        elif isinstance(edit, Remove):
            _check_alone(source, edit.statement, end=True)
            start = source.offset(_statement_start(source, edit.statement), 0)
            spans.append(Span(start, _after_lines(source, edit.statement.end_lineno), "", order))
        elif isinstance(edit, InsertBefore):
            _check_alone(source, edit.anchor, end=False)
            row = _statement_start(source, edit.anchor)
            indent = source.indentation(_first_row(edit.anchor))
            position = source.offset(row, 0)
            spans.append(Span(position, position, _insertion(source, edit.code, indent), order))
        elif isinstance(edit, InsertAfter):
            _check_alone(source, edit.anchor, end=True)
            indent = source.indentation(_first_row(edit.anchor))
            position = _after_lines(source, edit.anchor.end_lineno)
            inserted = _insertion(source, edit.code, indent)
            if position >= len(text) and ends_without_newline:
                inserted = source.newline + inserted[:-len(source.newline)]
            spans.append(Span(position, position, inserted, order))
        else:  # pragma: no cover - a rule built an edit this module does not know
            raise EditError(f"unknown edit {type(edit).__name__}")
    return spans


def overlaps(a: list[Span], b: list[Span]) -> bool:
    """Would applying both sets of spans touch the same characters (or insert inside a replaced range)?"""
    for x in a:
        for y in b:
            if x.start < y.end and y.start < x.end:
                return True
            if x.start == x.end and y.start < x.start < y.end or y.start == y.end and x.start < y.start < x.end:
                return True
    return False


def apply_spans(text: str, spans: list[Span]) -> str:
    """`text` with non-overlapping spans applied (insertions at one place in their order)."""
    out, position = [], 0
    for span in sorted(spans, key=lambda s: (s.start, s.end > s.start, s.order)):
        if span.start < position:
            raise EditError("overlapping edits")
        out.append(text[position:span.start])
        out.append(span.text)
        position = span.end
    out.append(text[position:])
    return "".join(out)


def write_atomic(path: Path, data: bytes, expect: tuple[int, int, int] | None = None) -> None:
    """Replace the file at `path` with `data`, so that a crash leaves either the old or the new file.

    The bytes go to a temporary file in the same folder, are flushed to disk, get the file's mode (and,
    when allowed, its owner), and then take its place by an atomic rename. A symbolic link is followed:
    its target is rewritten, the link stays. `expect` is the file's (inode, size, mtime_ns) when it was
    read: if it changed since, nothing is written (someone else edited it). Raises OSError.
    """
    target = Path(os.path.realpath(path))
    info = os.stat(target)
    if expect is not None and (info.st_ino, info.st_size, info.st_mtime_ns) != tuple(expect):
        raise OSError(errno.EBUSY, "the file changed on disk while it was being checked")
    if not os.access(target, os.W_OK):
        raise OSError(errno.EACCES, "the file is read-only")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".trainlint-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown"):
            try:
                os.chown(tmp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only root may give a file away; the mode is kept either way
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
