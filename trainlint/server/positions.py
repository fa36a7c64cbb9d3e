"""Positions: trainlint's 1-based (row, character) locations <-> LSP's 0-based (line, code unit) ones.

LSP counts a line's characters in UTF-16 code units unless the client and server agreed on another
encoding (`positionEncoding`, LSP 3.17): a character outside the Basic Multilingual Plane (an emoji, a
rare CJK ideograph) is 2 UTF-16 units, 4 UTF-8 units, but 1 Python character. Lines end only at
\\n, \\r\\n and \\r (as in Python's tokenizer and as trainlint counts rows; not at form feeds or U+2028,
which `str.splitlines` would split on). Everything here works on character offsets into the text.
"""
from __future__ import annotations

import bisect
import re

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
_NEWLINE = re.compile(r"\r\n|\r|\n")


def units(text: str, encoding: str) -> int:
    """How many code units `text` takes in the position encoding."""
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == UTF32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _unit_width(char: str, encoding: str) -> int:
    point = ord(char)
    if encoding == UTF8:
        return 1 if point < 0x80 else 2 if point < 0x800 else 3 if point < 0x10000 else 4
    if encoding == UTF32:
        return 1
    return 2 if point > 0xFFFF else 1


class LineIndex:
    """Where each line of a text starts, to convert positions both ways without splitting the text."""

    def __init__(self, text: str, encoding: str = UTF16) -> None:
        self.text = text
        self.encoding = encoding
        self.starts = [0] + [match.end() for match in _NEWLINE.finditer(text)]

    @property
    def line_count(self) -> int:
        """LSP's count: a text ending with a newline has one more, empty, line."""
        return len(self.starts)

    def line_content_end(self, line: int) -> int:
        """The offset where line `line` (0-based) ends, before its line break."""
        if line + 1 < len(self.starts):
            end = self.starts[line + 1]
            return end - 2 if self.text.startswith("\r\n", end - 2) else end - 1
        return len(self.text)

    def line_text(self, line: int) -> str:
        return self.text[self.starts[line]:self.line_content_end(line)]

    # trainlint (1-based rows and characters) -> offsets

    def offset_of_location(self, row: int, column: int) -> int:
        """The offset of a 1-based (row, character column); a column past the end of its line is the line's
        end, a row past the last line is the end of the text."""
        if row < 1:
            return 0
        if row > len(self.starts):
            return len(self.text)
        start = self.starts[row - 1]
        return min(start + max(column - 1, 0), self.line_content_end(row - 1))

    # offsets <-> LSP positions (0-based line, code units)

    def position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        offset = min(offset, self.line_content_end(line))  # never inside a \r\n
        return line, units(self.text[start:offset], self.encoding)

    def offset(self, line: int, character: int) -> int:
        """The offset of an LSP position. A line past the end is the end of the text; a character past
        the end of its line is the line's end (as the LSP specification says); a position inside a
        character (half of a surrogate pair) is that character's start."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[line], self.line_content_end(line)
        if self.encoding == UTF32:
            return min(start + max(character, 0), end)
        counted = 0
        for index in range(start, end):
            width = _unit_width(self.text[index], self.encoding)
            if counted + width > character:
                return index
            counted += width
        return end

    def location_to_position(self, row: int, column: int) -> tuple[int, int]:
        return self.position(self.offset_of_location(row, column))
