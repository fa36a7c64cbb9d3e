"""Source text: lines, and the conversions between `ast` positions and what users see.

`ast` gives each node a 1-based line and a 0-based column counted in UTF-8 bytes. Users (and every
output format) count columns in characters. Lines are split only where Python ends a line (`\\n`,
`\\r\\n`, `\\r`), not at form feeds or other separators `str.splitlines` would split on.
"""
from __future__ import annotations

import ast
import re

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> list[str]:
    """Lines as Python's tokenizer counts them, without their endings."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def lines_keepends(text: str) -> list[str]:
    """Lines with their endings, split only where Python ends a line."""
    return _LINE.findall(text)


class SourceText:
    """A file's text with what positions need: its lines, their offsets, and the newline it uses."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None
        self._offsets: list[int] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = split_lines(self.text)
        return self._lines

    @property
    def newline(self) -> str:
        match = _NEWLINE.search(self.text)
        return match.group() if match else "\n"

    def line(self, row: int) -> str:
        lines = self.lines
        return lines[row - 1] if 0 < row <= len(lines) else ""

    def char_column(self, row: int, byte_column: int) -> int:
        """The 0-based character column of a 0-based UTF-8 byte column on a 1-based row."""
        line = self.line(row)
        if line.isascii():
            return byte_column
        return len(line.encode("utf-8")[:byte_column].decode("utf-8", "replace"))

    def offset(self, row: int, byte_column: int = 0) -> int:
        """The character offset in the text of a position (1-based row, 0-based byte column)."""
        if self._offsets is None:
            offsets, total = [], 0
            for line in lines_keepends(self.text):
                offsets.append(total)
                total += len(line)
            offsets.append(total)
            self._offsets = offsets
        offsets = self._offsets
        if row - 1 >= len(offsets):
            return len(self.text)
        return offsets[row - 1] + self.char_column(row, byte_column)

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node: ast.AST) -> str:
        """The source of a node, as written (without the parentheses around it)."""
        return self.text[self.start(node):self.end(node)]

    def indentation(self, row: int) -> str:
        line = self.line(row)
        return line[:len(line) - len(line.lstrip(" \t\f"))]
