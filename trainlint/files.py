"""Files: find what to lint, read it faithfully (encoding, BOM, notebooks), and skip what cannot matter."""
from __future__ import annotations

import io
import json
import os
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .config import SettingsResolver, Settings

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")
MAX_FILE_BYTES = 20 * 1024 * 1024
# A file that mentions none of these cannot hold a training script we know how to check.
_PREFILTER = re.compile(rb"torch|keras|tensorflow|sklearn|lightning|accelerate|jax|flax")
# Cell magics whose cell body is still Python.
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun", "%%debug")


class ReadError(Exception):
    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.row, self.column = message, row, column


@dataclass
class NotebookMap:
    """Where each code cell starts in the concatenated source (1-based rows)."""

    cells: list[tuple[int, int]] = field(default_factory=list)  # (cell number, first row)

    def locate(self, row: int) -> tuple[int, int]:
        """(cell number, row within the cell) for a row of the concatenated source."""
        cell, start = 1, 1
        for number, first in self.cells:
            if first > row:
                break
            cell, start = number, first
        return cell, row - start + 1


@dataclass
class SourceFile:
    path: Path
    text: str
    encoding: str = "utf-8"
    bom: bool = False
    notebook: NotebookMap | None = None

    def to_bytes(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return (b"\xef\xbb\xbf" + data) if self.bom else data


def discover(paths: list[Path], resolver: SettingsResolver) -> tuple[list[tuple[Path, Settings]], list[tuple[Path, str]]]:
    """Files to lint with their settings, and paths that could not be listed (with why)."""
    found: list[tuple[Path, Settings]] = []
    problems: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_file() or (path.suffix in SOURCE_SUFFIXES and path.exists() and not path.is_dir()):
            if path not in seen:  # an explicit file is linted even if excluded, as in ruff
                seen.add(path)
                found.append((path, resolver.for_path(path)))
            continue
        if not path.exists():
            problems.append((path, "No such file or directory"))
            continue
        if not os.access(path, os.R_OK | os.X_OK):
            problems.append((path, "Permission denied"))
            continue
        for directory, dirnames, filenames in os.walk(path, onerror=lambda e: problems.append(
                (Path(e.filename), e.strerror or str(e)))):
            here = Path(directory)
            settings = resolver.for_path(here)
            dirnames[:] = sorted(d for d in dirnames if not settings.is_excluded(here / d))
            for name in sorted(filenames):
                candidate = here / name
                if candidate.suffix in SOURCE_SUFFIXES and not settings.is_excluded(candidate) and candidate not in seen:
                    seen.add(candidate)
                    found.append((candidate, settings))
    return found, problems


def read_source(path: Path) -> SourceFile | None:
    """The file's text, or None when it cannot contain a training script. Raises ReadError."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ReadError(f"Cannot read file: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ReadError(f"File is too large to lint ({len(data) // (1024 * 1024)} MiB; the limit is "
                        f"{MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    if not _PREFILTER.search(data):
        return None
    if path.suffix == ".ipynb":
        return _read_notebook(path, data)
    if b"\x00" in data:
        raise ReadError("Cannot lint a binary file (it contains NUL bytes)")
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise ReadError(f"Cannot read file: {error}") from None
    body = data[3:] if bom else data
    encoding = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        row = body[:error.start].count(b"\n") + 1
        column = error.start - (body.rfind(b"\n", 0, error.start) + 1) + 1
        raise ReadError(f"File is not valid {encoding}: byte 0x{body[error.start]:02x} cannot be decoded",
                        row, column) from None
    return SourceFile(path, text, encoding, bom)


def _read_notebook(path: Path, data: bytes) -> SourceFile:
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ReadError("Notebook is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise ReadError(f"Notebook is not valid JSON: {error.msg}", error.lineno, error.colno) from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise ReadError("Notebook has no list of cells")
    language = (notebook.get("metadata") or {}).get("kernelspec", {}).get("language", "python")
    if language != "python":
        return SourceFile(path, "", notebook=NotebookMap())
    lines: list[str] = []
    mapping = NotebookMap()
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cell_lines = text.splitlines()
        if cell_lines and cell_lines[0].startswith("%%"):
            if not cell_lines[0].startswith(_PYTHON_CELL_MAGICS):
                continue
            cell_lines[0] = "pass  # " + cell_lines[0]
        mapping.cells.append((number, len(lines) + 1))
        for line in cell_lines:
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")) or (stripped.endswith("?") and not stripped.startswith("#")):
                line = line[: len(line) - len(stripped)] + "pass  # " + stripped
            lines.append(line)
        lines.append("")  # cells are separate: one blank line between them
    return SourceFile(path, "\n".join(lines) + "\n", notebook=mapping)
