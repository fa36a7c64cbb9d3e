"""Source excerpts under a finding, ruff-style: numbered lines with the span marked by `^^^^`.

    |
  5 |     loss = model(torch.randn(2, 4)).sum()
  6 |     loss.backward()
    |     ^^^^^^^^^^^^^^^ TL001
  7 |     opt.step()
    |

A span over several lines is drawn with a left margin (`/`, `|`, `|___^`) as annotate-snippets does.
"""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text

from ..diagnostics import FileResult, Finding
from ..files import MAX_FILE_BYTES
from ..notebook import NotebookSource, read_notebook

CONTEXT_LINES = 2
MAX_SPAN_LINES = 8  # longer spans show their first and last lines around a `...`
TAB_SIZE = 4

GUTTER_STYLE = "bold blue"
MARK_STYLE = "bold red"

# Only the line breaks Python (and its row numbers) know; str.splitlines also splits on \f, \x1c...
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SourceLines:
    """The lines of each reported file, read once; None for files that cannot be shown."""

    def __init__(self, results: list[FileResult]) -> None:
        # After --fix the findings refer to the fixed text, which is what was written.
        self._written = {r.filename: r.fixed for r in results if r.written and r.fixed is not None}
        self._cache: dict[str, list[str] | None] = {}
        self._notebooks: dict[str, NotebookSource | None] = {}

    def cell(self, filename: str, number: int) -> list[str] | None:
        """The lines of a notebook's code cell `number` as it is on disk now (after --fix, fixed)."""
        key = f"{filename}\0{number}"
        if key not in self._cache:
            if filename not in self._notebooks:
                self._notebooks[filename] = _read_notebook(Path(filename))
            notebook = self._notebooks[filename]
            source = notebook.cell_source(number) if notebook is not None else None
            self._cache[key] = None if source is None else _LINE_BREAK.split(source)
        return self._cache[key]

    def get(self, filename: str) -> list[str] | None:
        if filename not in self._cache:
            text = self._written.get(filename)
            if text is None:
                text = _read_text(Path(filename))
            self._cache[filename] = None if text is None else _LINE_BREAK.split(text)
        return self._cache[filename]


def _read_notebook(path: Path) -> NotebookSource | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return read_notebook(path.read_bytes())
    except (OSError, ValueError):
        return None


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except (OSError, ValueError):
        return None
    if b"\x00" in data:  # binary: nothing sensible to show
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:  # honour a PEP 263 coding cookie so columns count the same characters the engine counted
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding, errors="replace")
    except (SyntaxError, LookupError):
        return data.decode("utf-8", errors="replace")


def _display(line: str) -> str:
    return line.expandtabs(TAB_SIZE)


def _offset(line: str, column: int) -> int:
    """Terminal cells before the 1-based character `column` of `line` (tabs and wide characters count)."""
    return cell_len(_display(line[: max(column - 1, 0)]))


def _indent(line: str) -> int:
    return _offset(line, len(line) - len(line.lstrip()) + 1)


def render(finding: Finding, lines: list[str], hint: Text | None = None) -> Text | None:
    """The excerpt for `finding` (ending with `= help: ...` when given), or None when its rows are not in `lines`."""
    start, end = finding.location, finding.end_location
    last_row = len(lines)
    if lines and lines[-1] == "":
        last_row -= 1  # the empty "line" after a final newline exists only for errors at EOF
    if not 1 <= start.row <= last_row + 1:
        return None
    lines = lines[:last_row] + [""]
    end_row = min(max(end.row, start.row), len(lines))

    first = max(1, start.row - CONTEXT_LINES)
    while first < start.row and not lines[first - 1].strip():
        first += 1
    last = min(last_row, end_row + CONTEXT_LINES)
    while last > end_row and not lines[last - 1].strip():
        last -= 1
    last = max(last, end_row)

    span = list(range(start.row, end_row + 1))
    if len(span) > MAX_SPAN_LINES:
        span = span[:4] + [None] + span[-3:]
    rows = list(range(first, start.row)) + span + list(range(end_row + 1, last + 1))
    width = len(str(max(r for r in rows if r is not None)))
    return _Drawing(finding, lines, width, multiline=end_row > start.row).draw(rows, end_row, hint)


class _Drawing:
    def __init__(self, finding: Finding, lines: list[str], width: int, multiline: bool) -> None:
        self.finding, self.lines, self.width, self.multiline = finding, lines, width, multiline
        self.text = Text()

    def _gutter(self, row: int | None = None) -> None:
        label = str(row) if row is not None else ""
        self.text.append(f"{label:>{self.width}} |", style=GUTTER_STYLE)

    def _source(self, row: int, margin: str = "") -> None:
        self._gutter(row)
        self.text.append(" ")
        if margin:
            self.text.append(margin, style=MARK_STYLE)
        self.text.append(_display(self.lines[row - 1]).rstrip() + "\n")

    def _mark(self, marks: str) -> None:
        self._gutter()
        self.text.append(" ")
        self.text.append(marks, style=MARK_STYLE)
        self.text.append("\n")

    def draw(self, rows: list[int | None], end_row: int, hint: Text | None) -> Text:
        start, end = self.finding.location, self.finding.end_location
        start_line = self.lines[start.row - 1]
        self._gutter()
        self.text.append("\n")
        for row in rows:
            if row is None:
                self.text.append("...\n", style=GUTTER_STYLE)
            elif not self.multiline:
                self._source(row)
                if row == start.row:
                    left = _offset(start_line, start.column)
                    right = _offset(start_line, end.column) if end.row == start.row else cell_len(_display(start_line))
                    self._mark(" " * left + "^" * max(right - left, 1) + f" {self.finding.code}")
            elif row == start.row:
                left = _offset(start_line, start.column)
                if left <= _indent(start_line):  # the span starts the line: a slash opens it
                    self._source(row, "/ ")
                else:  # mid-line start: an underline leads to its first character
                    self._source(row, "  ")
                    self._mark(" " + "_" * (left + 1) + "^")
            elif start.row < row <= end_row:
                self._source(row, "| ")
                if row == end_row:
                    right = _offset(self.lines[row - 1], end.column)
                    self._mark("|" + "_" * right + f"^ {self.finding.code}")
            else:
                self._source(row, "  ")
        self._gutter()
        if hint is not None:
            self.text.append("\n" + " " * self.width + " ")
            self.text.append_text(hint)
        return self.text
