"""Files: find what to lint, read it faithfully (encoding, BOM, notebooks), and skip what cannot matter."""
from __future__ import annotations

import io
import os
import re
import stat
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import SettingsResolver, Settings

if TYPE_CHECKING:  # imported only when a notebook is read
    from .notebook import NotebookSource

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")
MAX_FILE_BYTES = 20 * 1024 * 1024
# A file that mentions none of these cannot hold a training script we know how to check.
_PREFILTER = re.compile(rb"torch|keras|tensorflow|sklearn|lightning|accelerate|jax|flax")


class ReadError(Exception):
    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.row, self.column = message, row, column


@dataclass
class SourceFile:
    path: Path
    text: str
    encoding: str = "utf-8"
    bom: bool = False
    notebook: NotebookSource | None = None  # a .ipynb: its cells joined into `text`, and the way back
    signature: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) when read: was it changed since?

    def to_bytes(self, text: str) -> bytes:
        """`text` encoded the way the file was; raises ValueError if that would not read back as `text`."""
        try:
            data = text.encode(self.encoding)
        except UnicodeEncodeError as error:
            raise ValueError(f"the fixed text cannot be encoded as {self.encoding} "
                             f"({text[error.start:error.end]!r})") from None
        if self.bom:
            data = b"\xef\xbb\xbf" + data
        try:
            same = decode_source(data)[0] == text
        except ReadError as error:
            raise ValueError(f"the fixed file would not be readable: {error.message}") from None
        if not same:
            raise ValueError(f"the fixed text would not read back the same in {self.encoding}")
        return data


def discover(paths: list[Path], resolver: SettingsResolver) -> tuple[list[tuple[Path, Settings]], list[tuple[Path, str]]]:
    """Files to lint with their settings, and paths that could not be listed (with why)."""
    found: list[tuple[Path, Settings]] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()

    def add(candidate: Path) -> None:
        key = os.path.realpath(candidate)  # the same file named twice (a.py, ./a.py, /abs/a.py) is linted once
        if key not in seen:
            seen.add(key)
            found.append((candidate, resolver.for_path(candidate)))

    for path in paths:
        if path.is_file() or (path.suffix in SOURCE_SUFFIXES and path.exists() and not path.is_dir()):
            add(path)  # an explicit file is linted even if excluded, as in ruff
            continue
        if not path.exists():
            why = "No such file or directory" if not path.is_symlink() else "Broken symbolic link"
            problems.append((path, why))
            continue
        if not path.is_dir():
            continue  # a device or socket named on the command line that is not a source file
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
                if candidate.suffix in SOURCE_SUFFIXES and not settings.is_excluded(candidate):
                    add(candidate)
    return found, problems


def read_source(path: Path) -> SourceFile | None:
    """The file's text, or None when it cannot contain a training script. Raises ReadError."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ReadError("Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ReadError("Not a regular file")  # a FIFO would block the run forever
        if info.st_size > MAX_FILE_BYTES:
            raise ReadError(_too_large(info.st_size))
        data = path.read_bytes()
    except OSError as error:
        raise ReadError(f"Cannot read file: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ReadError(_too_large(len(data)))
    if not _PREFILTER.search(data):
        return None
    signature = (info.st_ino, info.st_size, info.st_mtime_ns)
    if path.suffix == ".ipynb":
        source = _read_notebook(path, data)
        source.signature = signature
        return source
    if b"\x00" in data:
        raise ReadError("Cannot lint a binary file (it contains NUL bytes)")
    text, encoding, bom = decode_source(data)
    return SourceFile(path, text, encoding, bom, signature=signature)


def may_hold_training_code(text: str) -> bool:
    """The byte prefilter of `read_source`, for text already in memory (an editor's open document): a
    file that mentions no training framework is not linted, by the CLI or the language server."""
    return _PREFILTER.search(text.encode("utf-8", "surrogatepass")) is not None


def _too_large(size: int) -> str:
    return (f"File is too large to lint ({size / (1024 * 1024):.1f} MiB; the limit is "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB)")


def decode_source(data: bytes) -> tuple[str, str, bool]:
    """(text, encoding, has a UTF-8 BOM) of Python source bytes, as Python itself would read them
    (PEP 263 coding cookie, BOM), with newlines left as they are. Raises ReadError."""
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise ReadError(f"Cannot read file: {error.msg if hasattr(error, 'msg') else error}") from None
    body = data[3:] if bom else data
    encoding = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        row = body[:error.start].count(b"\n") + 1
        column = error.start - (body.rfind(b"\n", 0, error.start) + 1) + 1
        raise ReadError(f"File is not valid {encoding}: byte 0x{body[error.start]:02x} cannot be decoded "
                        f"(add a coding cookie such as `# -*- coding: latin-1 -*-` if it is not UTF-8)",
                        row, column) from None
    except LookupError as error:  # pragma: no cover - detect_encoding rejects unknown codecs first
        raise ReadError(f"Cannot read file: {error}") from None
    return text, encoding, bom


def split_lines(text: str) -> list[str]:
    """Lines as Python's tokenizer counts them: only \\n, \\r\\n and \\r end a line (str.splitlines
    would also split on form feeds and other separators that Python keeps inside a line)."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


_NEWLINE = re.compile(r"\r\n|\r|\n")


def _read_notebook(path: Path, data: bytes) -> SourceFile:
    from .notebook import NotebookError, read_notebook  # only a run over notebooks needs it

    try:
        notebook = read_notebook(data)
    except NotebookError as error:
        raise ReadError(error.message, error.row, error.column) from None
    return SourceFile(path, notebook.text, notebook=notebook)
