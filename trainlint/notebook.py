"""Notebooks: the Python of a .ipynb as one text to lint and fix, and the exact way back into the file.

The engine lints and fixes one Python text. A notebook becomes that text by joining its code cells with
one blank line between them, after *neutralising* the IPython-only lines (`!pip install`, `%matplotlib`,
`x = !ls`, `obj?`, a `%%time` first line) into plain statements at the same indentation, so that the
parser accepts them, rows stay 1:1 and an `!pip` inside an `if` body keeps the block valid. Cells whose
cell magic is not Python (`%%bash`, `%%writefile`, ...) and pasted `>>>` sessions are left out. Each neutralised line is
remembered, so a fixed text maps back to new cell sources with those lines restored byte for byte, and
the new sources are spliced into the notebook's JSON text: every other byte of the file stays as it was.

Everything here refuses (ValueError) rather than guesses: a change that cannot be given to exactly one
cell, or that touches a neutralised line, or a file that would not read back as the fixed text.
"""
from __future__ import annotations

import ast
import bisect
import difflib
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from json.decoder import scanstring

from .diagnostics import Finding, FixInfo, Location, TextEdit

# Cell magics whose body IPython runs as Python in the notebook's namespace: only their first line is
# neutralised. Any other cell magic (%%bash, %%writefile, %%html, %%script python, ...) is not linted.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
# What starts an IPython escape at the start of a logical line: shell (`!`, `!!`), magic (`%`, `%%`),
# help (`?`, `??`) and the autocall forms (`/f a` -> f(a), `,f a` -> f("a"), `;f a b` -> f("a b")).
# No Python statement starts with any of them.
_ESCAPES = frozenset("!%?/,;")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_INDENT = re.compile(r"[ \t\f]*")
_CELL_MAGIC = re.compile(r"%%(\w+)")
_PROMPT = re.compile(r"(?:>>>|In \[\d*\]:)(?: |$)")
# What the line scanner stops at outside strings: comment, quotes, brackets, backslash, `=`.
_CODE = re.compile(r"""[#'"()\[\]{}\\=]""")
_STRING_END = {quote: re.compile(r"\\(?:.|$)|" + quote) for quote in ("'", '"', "'''", '"""')}
_OPERATOR_BEFORE_EQUALS = set("=!<>:+-*/%&|^@~")
_LINE_REFERENCE = re.compile(r"\bline (\d+)\b(?! of )")  # not `line 42 of engine.py`: another module's


class NotebookError(ValueError):
    """A notebook file that cannot be read; row and column (1-based) point into its JSON text."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.row, self.column = message, row, column


# --- IPython lines ---------------------------------------------------------------------------------

class _Python:
    """Just enough of Python's tokenizer to tell whether a physical line starts a logical line: open
    strings (triple-quoted, or continued with a backslash), bracket depth, backslash continuations."""

    __slots__ = ("quote", "depth", "continued")

    def __init__(self, quote: str | None = None, depth: int = 0, continued: bool = False) -> None:
        self.quote, self.depth, self.continued = quote, depth, continued

    def copy(self) -> _Python:
        return _Python(self.quote, self.depth, self.continued)

    @property
    def at_start(self) -> bool:
        return self.quote is None and self.depth == 0 and not self.continued

    def feed(self, line: str) -> tuple[bool, int | None]:
        """Advance over one physical line: (whether it has a comment, where its first `=` that is an
        assignment at bracket depth 0 is, if any)."""
        i, end, assign = 0, len(line), None
        self.continued = False
        while i < end:
            if self.quote is not None:
                match = _STRING_END[self.quote].search(line, i)
                if match is None:
                    break  # the string goes on past this line
                if match.group().startswith("\\"):
                    if match.group() == "\\":  # a backslash that ends the line: the string continues
                        self.continued = True
                        return False, assign
                    i = match.end()
                    continue
                self.quote, i = None, match.end()
                continue
            match = _CODE.search(line, i)
            if match is None:
                break
            char, i = match.group(), match.end()
            if char == "#":
                return True, assign
            if char == "\\":
                self.continued = i == end
                i += 1
            elif char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            elif char == "=":
                if (assign is None and self.depth == 0 and line[i:i + 1] != "="
                        and (match.start() == 0 or line[match.start() - 1] not in _OPERATOR_BEFORE_EQUALS)):
                    assign = match.start()
                elif line[i:i + 1] == "=":
                    i += 1  # `==`
            else:
                quote = char * 3 if line.startswith(char * 3, match.start()) else char
                self.quote, i = quote, match.start() + len(quote)
        if self.quote in ("'", '"') and not self.continued:
            self.quote = None  # an unterminated one-line string: Python's error, not ours to carry on
        return False, assign


@dataclass(frozen=True)
class _Neutralised:
    lines: tuple[str, ...]  # the cell's lines as the parser sees them
    originals: dict[int, str]  # line (0-based) -> the IPython line it stands for
    fences: frozenset[int]  # positions (0..len) where no line may be inserted
    shifts: dict[int, int] = field(default_factory=dict)  # line -> characters of indentation IPython removed


# Line magics IPython runs without their `%` (automagic) in a cell of one line that is not Python:
# `pip install torch`, `ls ./data`.
AUTOMAGICS = frozenset({"pip", "conda", "mamba", "cd", "ls", "pwd", "env", "mkdir", "rmdir", "rm", "cp", "mv",
                        "cat", "less", "man", "load_ext", "reload_ext", "matplotlib", "time", "timeit", "run",
                        "who", "whos", "history", "set_env", "pycat", "bookmark", "dhist", "alias"})


def _compiles(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<cell>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _dedented(lines: list[str]) -> tuple[list[str], dict[int, int]] | None:
    """A cell whose first line is indented, as IPython runs it: IPython 9 removes the indentation common to
    all its lines, IPython 8 the first line's from every line that has it. The lines, and per line how many
    characters went; None when the cell's first line is not indented."""
    body = [line for line in lines if line.strip()]
    if not body or not body[0][:1].isspace():
        return None
    common = _INDENT.match(body[0]).group()
    for line in body[1:]:
        while not line.startswith(common):
            common = common[:-1]
    if common:  # IPython 9
        return [line[len(common):] if line.strip() else line for line in lines], {
            j: len(common) for j, line in enumerate(lines) if line.strip()}
    first = _INDENT.match(body[0]).group()  # IPython 8
    return [line[len(first):] if line.startswith(first) else line for line in lines], {
        j: len(first) for j, line in enumerate(lines) if line.startswith(first)}


def _neutralise(lines: list[str]) -> _Neutralised | None:
    """The cell's lines with each IPython-only line replaced by a statement the parser accepts, at the
    same indentation; None for a cell whose cell magic does not run Python.

    A cell whose first line is indented is taken dedented when that compiles. IPython dedents before it
    reads any escape, so the test is on the dedented lines once neutralised: an indented cell of
    `!apt-get` lines runs although its lines, dedented but not neutralised, do not compile."""
    dedented = _dedented(lines)
    if dedented is not None:
        neutral = _neutralise_lines(dedented[0])
        if neutral is not None and _compiles("\n".join(neutral.lines)):
            return replace(neutral, shifts=dedented[1])
    return _neutralise_lines(lines)


def _neutralise_lines(lines: list[str]) -> _Neutralised | None:
    """_neutralise of lines taken as they are (no dedenting)."""
    out = list(lines)
    originals: dict[int, str] = {}
    fences: set[int] = set()
    start = 0
    code = [j for j, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if len(code) == 1 and lines[code[0]].split()[0] in AUTOMAGICS and not _compiles(lines[code[0]].strip()):
        j = code[0]  # `pip install torch`: automagic
        out[j] = "pass  # " + lines[j].strip()  # the cell's one statement: at no indentation
        return _Neutralised(tuple(out), {j: lines[j]}, frozenset(range(len(lines) + 1)))
    first = next((j for j, line in enumerate(lines) if line.strip()), None)
    if first is not None and _PROMPT.match(lines[first]):
        return None  # a pasted session (`>>> x = 1`): IPython strips the prompts; not worth re-spacing
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = _CELL_MAGIC.match(lines[first].lstrip())
        if magic is None or magic.group(1) not in PYTHON_CELL_MAGICS:
            return None
        originals[first], out[first] = lines[first], "pass  # " + lines[first].strip()
        fences.update(range(first + 1))  # nothing may come before the cell magic
        start = first + 1
    python = _Python()
    escape_indent: str | None = None  # inside an IPython line continued by a backslash
    for j in range(start, len(lines)):
        line = lines[j]
        if escape_indent is not None:  # IPython joins it to the escape before it
            fences.add(j)
            originals[j], out[j] = line, f"{escape_indent}pass  # {line.strip()}"
            escape_indent = escape_indent if line.endswith("\\") else None
            continue
        if not python.at_start:
            python.feed(line)
            continue
        indent = _INDENT.match(line).group()
        body = line[len(indent):]
        neutral = None
        if body[:1] in _ESCAPES:
            neutral = f"{indent}pass  # {body.rstrip()}"
        else:
            probe = python.copy()
            comment, assign = probe.feed(line)
            if assign is not None and (line[assign + 1:].lstrip()[:1] == "!" or _magic_after(line[assign + 1:])):
                neutral = f"{line[:assign].rstrip()} = None  # {line[assign + 1:].strip()}"
            elif probe.at_start and not comment and line.rstrip().endswith("?"):
                neutral = f"{indent}pass  # {body.rstrip()}"  # help: `obj?`, `obj.attr??`
            else:
                python = probe
        if neutral is not None:
            originals[j], out[j] = line, neutral
            if line.endswith("\\"):
                escape_indent = indent
    if escape_indent is not None:
        fences.add(len(lines))  # a line added at the end would join the dangling command
    return _Neutralised(tuple(out), originals, frozenset(fences))


def _magic_after(text: str) -> bool:
    """`%env`, `%timeit -o f()` after an assignment's `=` (IPython requires a name after the `%`)."""
    text = text.lstrip()
    return text[:1] == "%" and (text[1:2].isalpha() or text[1:2] == "_")


def _split(source: str) -> tuple[list[str], list[str]]:
    """A cell's lines and their endings, split only where Python ends a line."""
    lines, endings, start = [], [], 0
    for match in _NEWLINE.finditer(source):
        lines.append(source[start:match.start()])
        endings.append(match.group())
        start = match.end()
    if start < len(source):
        lines.append(source[start:])
        endings.append("")
    return lines, endings


# --- the concatenated text ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cell:
    index: int  # in the notebook's list of cells (0-based); its cell number is index + 1
    source: str  # as in the notebook
    first_row: int  # its first row in NotebookSource.text (1-based)
    neutral: _Neutralised

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def size(self) -> int:
        return len(self.neutral.lines)


def _layout(cells: list[tuple[int, str]]) -> tuple[str, tuple[_Cell, ...]]:
    """The text of these code cells (index, source) and where each lies in it."""
    parts: list[str] = []
    placed: list[_Cell] = []
    for index, source in cells:
        neutral = _neutralise(_split(source)[0])
        if neutral is None:
            continue
        placed.append(_Cell(index, source, len(parts) + 1, neutral))
        parts.extend(neutral.lines)
        parts.append("")  # cells are separate: one blank line after each
    return "\n".join(parts) + "\n", tuple(placed)


@dataclass(frozen=True)
class NotebookSource:
    """The Python of a notebook as one text (`text`), and the map between its rows and the cells.

    `data` is the notebook file's bytes when it was read from one (needed to write a fix back)."""

    text: str
    cells: tuple[_Cell, ...] = ()
    data: bytes | None = field(default=None, repr=False)

    def locate(self, row: int) -> tuple[int, int]:
        """(cell number, row within the cell) for a 1-based row of `text`; cell numbers count every
        cell of the notebook (markdown too), from 1."""
        starts = [cell.first_row for cell in self.cells]
        position = bisect.bisect_right(starts, row) - 1
        if position < 0:
            return (self.cells[0].number if self.cells else 1), row
        cell = self.cells[position]
        return cell.number, row - cell.first_row + 1

    def cell_source(self, number: int) -> str | None:
        """The source of code cell `number` (1-based), as in the notebook; None if it is not linted."""
        return next((cell.source for cell in self.cells if cell.number == number), None)

    # --- from a fixed text back to the cells ---

    def _rows(self) -> list[tuple[int, int]]:
        """For each row of `text` (0-based): (position in self.cells, line in the cell), where line ==
        the cell's size marks the blank separator after it."""
        return [(k, j) for k, cell in enumerate(self.cells) for j in range(cell.size + 1)]

    def _owner(self, rows: list[tuple[int, int]], start: int, stop: int) -> tuple[int, int, int]:
        """The cell (position in self.cells) and its lines [a, b) that the text rows [start, stop)
        stand for; start == stop is an insertion before row `start`. Raises ValueError."""
        for row in range(start, max(stop, start + 1)):
            if row < len(rows) and self.cells[rows[row][0]].neutral.shifts:
                raise ValueError(f"a fix changes cell {self.cells[rows[row][0]].number}, whose lines IPython "
                                 f"dedents before running them: fix that cell by hand")
        if start < stop:
            k, a = rows[start] if start < len(rows) else (None, None)
            cell = self.cells[k] if k is not None else None
            for row in range(start, stop):
                if row >= len(rows) or rows[row][0] != k or rows[row][1] == self.cells[rows[row][0]].size:
                    after = self.cells[rows[min(row, len(rows) - 1)][0]].number
                    raise ValueError(f"a fix changes the blank line between cell {after} and the next "
                                     f"code cell, so its lines cannot be given to one cell")
                if rows[row][1] in cell.neutral.originals:
                    line = cell.neutral.originals[rows[row][1]].strip()
                    raise ValueError(f"a fix changes the IPython line `{line}` "
                                     f"(cell {cell.number}, line {rows[row][1] + 1})")
            return k, a, rows[stop - 1][1] + 1
        if start >= len(rows):
            raise ValueError("a fix adds lines after the last cell")
        k, position = rows[start]  # before line `position`, or at the end when it is the separator
        cell = self.cells[k]
        if position in cell.neutral.fences:
            raise ValueError(f"a fix inserts a line where it would break an IPython line "
                             f"(cell {cell.number}, line {position + 1})")
        return k, position, position

    def cells_after(self, fixed_text: str) -> dict[int, str]:
        """New sources of the cells that `fixed_text` (a fixed version of `text`) changes, by index in
        the notebook's list of cells (0-based), with the neutralised IPython lines restored as they were.

        Lines inserted at a cell boundary go to the cell on their side of the blank separator: before
        it, to the end of the earlier cell; after it, to the start of the later one. Lines deleted
        across a separator (removing the first statement of a cell also removes the blank line above
        it) are deleted from their own cells and the separator stays. Raises ValueError when a change
        replaces a separator, changes a neutralised line or would split an IPython line."""
        return self._after(fixed_text)[0]

    def _after(self, fixed_text: str) -> tuple[dict[int, str], str]:
        """cells_after, and the text the new cells join into: `fixed_text`, but for the blank
        separators that a deletion took and that are kept."""
        old = self.text.split("\n")[:-1]
        new = _NEWLINE.split(fixed_text)
        if new and new[-1] == "":
            new.pop()
        rows = self._rows()
        hunks: dict[int, list[tuple[int, int, list[str]]]] = {}
        kept: set[int] = set()  # cells (positions) whose separator a deletion took, but that stays
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            if tag == "delete":
                for k, a, b in self._deleted(rows, i1, i2, kept):
                    hunks.setdefault(k, []).append((a, b, []))
                continue
            k, a, b = self._owner(rows, i1, i2)
            hunks.setdefault(k, []).append((a, b, new[j1:j2]))
        sources = {self.cells[k].index: _rebuild(self.cells[k], changes) for k, changes in hunks.items()}
        sources = {i: source for i, source in sources.items() if source != self.cells_by_index(i).source}
        text, placed = _layout([(cell.index, sources.get(cell.index, cell.source)) for cell in self.cells])
        separators = {cell.first_row + cell.size - 1 for k, cell in enumerate(placed) if k in kept}
        joined = [line for row, line in enumerate(text.split("\n")[:-1]) if row not in separators]
        if joined != new or [c.index for c in placed] != [c.index for c in self.cells]:
            raise ValueError("the fixed cells would not join into the fixed code (a change moves a cell "
                             "boundary or an IPython line)")
        return sources, text

    def _deleted(self, rows: list[tuple[int, int]], start: int, stop: int,
                 kept: set[int]) -> list[tuple[int, int, int]]:
        """The lines (cell position, a, b) that deleting text rows [start, stop) deletes, cell by cell;
        a separator among them is kept (and noted in `kept`)."""
        spans: list[tuple[int, int, int]] = []
        for row in range(start, stop):
            k, j = rows[row] if row < len(rows) else (None, None)
            if k is None:
                raise ValueError("a fix deletes lines after the last cell")
            if j == self.cells[k].size:
                kept.add(k)
                continue
            self._owner(rows, row, row + 1)  # refuses a neutralised line
            if spans and spans[-1][0] == k and spans[-1][2] == j:
                spans[-1] = (k, spans[-1][1], j + 1)
            else:
                spans.append((k, j, j + 1))
        return spans

    def cells_by_index(self, index: int) -> _Cell:
        return next(cell for cell in self.cells if cell.index == index)

    def apply_fix(self, fixed_text: str) -> NotebookFix:
        """The notebook file with the cells that `fixed_text` changes rewritten, checked to read back as
        the new cells. Its `source.text` is `fixed_text`, or differs from it only by blank separator
        lines kept where a fix removed the first statement of a cell. Raises ValueError when the change
        cannot be made faithfully."""
        if self.data is None:
            raise ValueError("the notebook was not read from a file")
        sources, text = self._after(fixed_text)
        data = rewrite_notebook(self.data, sources)
        try:
            after = read_notebook(data)
        except NotebookError as error:  # pragma: no cover - rewrite_notebook checks the JSON already
            raise ValueError(f"the fixed notebook would not be readable: {error.message}") from None
        if after.text != text:
            raise ValueError("the fixed notebook would not read back as the fixed code")
        changes = tuple((index + 1, self.cells_by_index(index).source, source)
                        for index, source in sorted(sources.items()))
        return NotebookFix(data, changes, after)

    # --- findings ---

    def locate_findings(self, findings: list[Finding]) -> list[Finding]:
        """Findings on `text` moved into the cells: rows count within the cell named by `cell`, a
        message's `line N` becomes `cell C, line L`, and fix edits are given in cell rows (an edit that
        does not fall within one cell's Python lines keeps the fix but drops its edits)."""
        rows = self._rows()
        mapped = []
        for finding in findings:
            cell, row = self.locate(finding.location.row)
            _, end_row = self.locate(finding.end_location.row)
            shift = self._shift(finding.location.row)  # columns of a cell IPython dedents
            mapped.append(Finding(finding.code, finding.name, self.cell_lines(finding.message), finding.filename,
                                  Location(row, finding.location.column + shift(row)),
                                  Location(end_row, finding.end_location.column + shift(end_row)),
                                  self._cell_fix(rows, finding.fix, cell), row, cell, finding.origin))
        return mapped

    def _shift(self, text_row: int):
        starts = [cell.first_row for cell in self.cells]
        position = bisect.bisect_right(starts, text_row) - 1
        shifts = self.cells[position].neutral.shifts if 0 <= position < len(self.cells) else {}
        return lambda cell_row: shifts.get(cell_row - 1, 0)

    def cell_lines(self, message: str) -> str:
        """A message about `text` with its `line N` references as `cell C, line L`."""
        return _LINE_REFERENCE.sub(lambda m: self._cell_line(int(m.group(1))), message)

    def _cell_line(self, row: int) -> str:
        cell, line = self.locate(row)
        return f"cell {cell}, line {line}"

    def _cell_fix(self, rows: list[tuple[int, int]], fix: FixInfo | None, number: int) -> FixInfo | None:
        """The fix with its edits in the rows of cell `number` (the finding's), or with no edits when
        one of them lies elsewhere (another cell, a separator, an IPython line): an edit's rows can only
        name the finding's cell."""
        if fix is None:
            return None
        edits = []
        for edit in fix.edits:
            try:
                k, a, b = self._owner(rows, edit.location.row - 1, edit.end_location.row - 1)
            except ValueError:
                return replace(fix, edits=())
            if self.cells[k].number != number:
                return replace(fix, edits=())
            edits.append(TextEdit(edit.content, Location(a + 1, 1), Location(b + 1, 1)))
        return replace(fix, edits=tuple(edits))


@dataclass(frozen=True)
class NotebookFix:
    """What fixing a notebook gives: the new file, the cells it changes, and the notebook it becomes."""

    data: bytes
    cells: tuple[tuple[int, str, str], ...]  # (cell number, source before, source after)
    source: NotebookSource


def _rebuild(cell: _Cell, changes: list[tuple[int, int, list[str]]]) -> str:
    """The cell's source with the changed lines (a, b) -> new lines applied; untouched lines keep their
    text (IPython lines as they were) and line endings, new ones take the cell's usual ending."""
    lines, endings = _split(cell.source)
    items: list[tuple[str, str | None]] = list(zip(lines, endings))
    for a, b, new in sorted(changes, key=lambda change: change[:2], reverse=True):  # from the end
        items[a:b] = [(line, None) for line in new]
    usual = Counter(e for e in endings if e).most_common(1)
    newline = usual[0][0] if usual else "\n"
    final_newline = bool(endings) and endings[-1] != ""
    out = []
    for position, (line, ending) in enumerate(items):
        if position == len(items) - 1:
            ending = (ending or newline) if final_newline else ""
        else:
            ending = ending or newline
        out.append(line + ending)
    return "".join(out)


def notebook_source(cells: list[tuple[str, str]]) -> NotebookSource:
    """The NotebookSource of cells given as (cell_type, source text), in notebook order. Only "code"
    cells are linted; every cell counts for the cell numbers."""
    text, placed = _layout([(index, source) for index, (kind, source) in enumerate(cells) if kind == "code"])
    return NotebookSource(text, placed)


def read_notebook(data: bytes) -> NotebookSource:
    """The NotebookSource of a .ipynb file's bytes. Raises NotebookError for what is not a notebook."""
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise NotebookError(f"Notebook is not valid UTF-8: byte 0x{data[error.start]:02x} cannot be decoded") from None
    except json.JSONDecodeError as error:
        raise NotebookError(f"Notebook is not valid JSON: {error.msg}", error.lineno, error.colno) from None
    except RecursionError:
        raise NotebookError("Notebook is not valid JSON: nested too deeply") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("Notebook has no list of cells (is it an nbformat 4 notebook?)")
    metadata = notebook.get("metadata")
    kernelspec = metadata.get("kernelspec") if isinstance(metadata, dict) else None
    language = kernelspec.get("language", "python") if isinstance(kernelspec, dict) else "python"
    if isinstance(language, str) and language.lower() != "python":
        return NotebookSource("", (), data)  # an R or Julia notebook: nothing to lint
    pairs: list[tuple[str, str]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            pairs.append(("other", ""))
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            pairs.append(("code", "".join(source)))
        elif isinstance(source, str):
            pairs.append(("code", source))
        else:
            raise NotebookError(f"Notebook cell {number} has a source that is not text")
    return replace(notebook_source(pairs), data=data)


# --- writing new sources into the notebook's JSON text -----------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    return _WHITESPACE.match(text, i).end()


def _members(text: str, i: int) -> list[tuple[str, int, int, int]]:
    """The members of the JSON object at text[i] as (key, key start, value start, value end)."""
    members = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "}":
        return members
    while True:
        if text[i:i + 1] != '"':
            raise ValueError("unexpected JSON")
        key_start = i
        key, i = scanstring(text, i + 1)
        i = _skip(text, i)
        if text[i:i + 1] != ":":
            raise ValueError("unexpected JSON")
        start = _skip(text, i + 1)
        _, end = _DECODER.raw_decode(text, start)
        members.append((key, key_start, start, end))
        i = _skip(text, end)
        if text[i:i + 1] == ",":
            i = _skip(text, i + 1)
        elif text[i:i + 1] == "}":
            return members
        else:
            raise ValueError("unexpected JSON")


def _elements(text: str, i: int) -> list[tuple[int, int]]:
    """The (start, end) of each value in the JSON array at text[i]."""
    elements = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        return elements
    while True:
        _, end = _DECODER.raw_decode(text, i)
        elements.append((i, end))
        i = _skip(text, end)
        if text[i:i + 1] == ",":
            i = _skip(text, i + 1)
        elif text[i:i + 1] == "]":
            return elements
        else:
            raise ValueError("unexpected JSON")


def _last(members: list[tuple[str, int, int, int]], key: str) -> tuple[str, int, int, int] | None:
    """The member json.loads keeps for `key` (the last one, if the key is repeated)."""
    found = [member for member in members if member[0] == key]
    return found[-1] if found else None


def _source_json(text: str, key_start: int, start: int, end: int, source: str, ensure_ascii: bool) -> str:
    """`source` as the JSON value that replaces text[start:end], in the style of the value it replaces:
    a string stays a string; a list of lines (split as nbformat splits them) keeps its layout (one line
    per element at the same indentation, or all on one line), and lines it already held keep their
    exact JSON spelling."""
    old = text[start:end]
    value = json.loads(old)
    if source == ("".join(value) if isinstance(value, list) else value):
        return old  # the same source: the same bytes
    if not old.startswith("["):
        return json.dumps(source, ensure_ascii=ensure_ascii)
    spans = _elements(text, start)
    spelled = {}
    for a, b in spans:  # an unchanged line keeps the escapes it was written with
        spelled.setdefault(json.loads(text[a:b]), text[a:b])
    items = [spelled.get(line) or json.dumps(line, ensure_ascii=ensure_ascii) for line in source.splitlines(True)]
    if not items:
        return "[]"
    if spans:
        opening = text[start + 1:spans[0][0]]
        closing = text[spans[-1][1]:end - 1]
        if len(spans) > 1:
            separator = text[spans[0][1]:spans[1][0]]
        elif "\n" in opening:
            separator = "," + opening
        else:
            separator = ", " if text[key_start:start].endswith(" ") else ","
    elif "\n" in text:  # an empty list in an indented file: indent one level more than the key's line
        line_start = text.rfind("\n", 0, key_start) + 1
        indent = _INDENT.match(text, line_start).group()
        newline = "\r\n" if text[line_start - 2:line_start] == "\r\n" else "\n"
        unit = _indent_unit(text)
        opening, closing = newline + indent + unit, newline + indent
        separator = "," + opening
    else:  # a file on one line: json.dumps's default separators, unless its keys have no space
        opening = closing = ""
        separator = ", " if text[key_start:start].endswith(" ") else ","
    return "[" + opening + separator.join(items) + closing + "]"


def _indent_unit(text: str) -> str:
    """The indentation step of a pretty-printed JSON file (nbformat writes one space)."""
    i = _skip(text, 0)
    line_start = text.rfind("\n", 0, _skip(text, i + 1)) + 1
    unit = _INDENT.match(text, line_start).group()
    return unit or " "


def rewrite_notebook(data: bytes, new_sources: dict[int, str]) -> bytes:
    """The notebook file `data` with the "source" of each cell index (0-based) in `new_sources`
    replaced, and every other byte as it was (other cells, outputs, metadata, ids, indentation, key
    order, BOM, final newline). The new sources are written in each cell's own style (a list of lines
    or one string) and the file's escaping (non-ASCII kept as is, or as \\u escapes in an ASCII file).
    Raises ValueError when that cannot be done (and checks that the result is the same JSON but for
    those sources)."""
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0:].decode("utf-8")
        original = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"the notebook cannot be read back: {error}") from None
    if not new_sources:
        return data
    ensure_ascii = text.isascii()
    try:
        top = _skip(text, 0)
        cells = _last(_members(text, top), "cells") if text[top:top + 1] == "{" else None
        if cells is None or text[cells[2]:cells[2] + 1] != "[":
            raise ValueError("the notebook has no list of cells")
        elements = _elements(text, cells[2])
        splices = []
        for index, source in new_sources.items():
            if not 0 <= index < len(elements) or text[elements[index][0]] != "{":
                raise ValueError(f"the notebook has no cell {index + 1}")
            member = _last(_members(text, elements[index][0]), "source")
            if member is None:
                raise ValueError(f"cell {index + 1} has no source to replace")
            _, key_start, start, end = member
            splices.append((start, end, _source_json(text, key_start, start, end, source, ensure_ascii)))
    except (json.JSONDecodeError, RecursionError, IndexError) as error:
        raise ValueError(f"the notebook's JSON could not be scanned: {error}") from None
    for start, end, value in sorted(splices, reverse=True):
        text = text[:start] + value + text[end:]
    try:
        result = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the fixed source cannot be written as UTF-8") from None
    expected = original
    for (start, end, value), (index, source) in zip(splices, new_sources.items()):
        written = json.loads(value)
        if ("".join(written) if isinstance(written, list) else written) != source:
            raise ValueError(f"cell {index + 1}'s new source would not read back as written")
        expected["cells"][index]["source"] = written
    if json.loads(text) != expected:
        raise ValueError("the rewritten notebook would differ in more than the fixed cells")
    return (b"\xef\xbb\xbf" if bom else b"") + result
