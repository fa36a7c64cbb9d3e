"""Files: find what to lint, read it faithfully (encoding, BOM, notebooks), and skip what cannot matter."""
from __future__ import annotations

import codecs
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
_PREFILTER_TEXT = re.compile(_PREFILTER.pattern.decode())
# Byte order marks of the encodings in which ASCII is not one byte per character, so that the byte
# prefilter cannot see "torch" in them (UTF-32-LE's mark begins with UTF-16-LE's: it is tried first).
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
              (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))


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


def discover(paths: list[Path], resolver: SettingsResolver, read_only: dict[Path, Path] | None = None,
             ) -> tuple[list[tuple[Path, Settings]], list[tuple[Path, str]]]:
    """Files to lint with their settings, and paths that could not be listed (with why).

    Symbolic links, as users of ruff and black expect: a link named on the command line is followed
    (the user chose it); folders are walked without entering linked folders; a linked file found in a
    folder is linted, and when it resolves outside that folder it goes into `read_only` (link -> target):
    `--fix` must not write there, outside what the user asked to change. A file reached twice (through
    a link and by its own name) is linted once, under its own name.
    """
    found: list[tuple[Path, Settings]] = []
    problems: list[tuple[Path, str]] = []
    seen: dict[str, int] = {}  # real path -> index in found
    outside: dict[Path, Path] = {} if read_only is None else read_only

    def add(candidate: Path, root: str | None = None) -> None:
        key = os.path.realpath(candidate)  # the same file named twice (a.py, ./a.py, /abs/a.py) is linted once
        link = candidate.is_symlink()
        if key in seen:
            earlier = found[seen[key]][0]
            if earlier.is_symlink() and not link:
                found[seen[key]] = (candidate, resolver.for_path(candidate))  # its own name, not the link's
                outside.pop(earlier, None)
            return
        seen[key] = len(found)
        found.append((candidate, resolver.for_path(candidate)))
        if link and root is not None and not _within(key, root):
            outside[candidate] = Path(key)

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
        root = os.path.realpath(path)
        for directory, dirnames, filenames in os.walk(path, onerror=lambda e: problems.append(
                (Path(e.filename), e.strerror or str(e)))):
            here = Path(directory)
            settings = resolver.for_path(here)
            dirnames[:] = sorted(d for d in dirnames if not settings.is_excluded(here / d))
            for name in sorted(filenames):
                candidate = here / name
                if candidate.suffix in SOURCE_SUFFIXES and not settings.is_excluded(candidate):
                    add(candidate, root)
    return found, problems


def _within(path: str, folder: str) -> bool:
    """Is the real path `path` inside the real folder `folder`?"""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


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
    signature = (info.st_ino, info.st_size, info.st_mtime_ns)
    notebook = path.suffix == ".ipynb"
    # The byte prefilter sees "torch" only where ASCII is one byte per character: decode the others first.
    wide = _wide_bom(data)
    text = data.decode(wide[0], "replace") if wide else None
    if not notebook:
        declared = _declared_encoding(data)
        if declared is not None and not _ascii_compatible(declared):
            text = data.decode(declared, "replace")
    if not (_PREFILTER_TEXT.search(text) if text is not None else _PREFILTER.search(data)):
        if not notebook and b"\x00" in data and _PREFILTER.search(data.replace(b"\x00", b"")):
            raise ReadError("Python cannot read UTF-16 source files: save this file as UTF-8 "
                            "(it looks like UTF-16 or UTF-32 text without a byte order mark)")
        return None
    if notebook:
        source = _read_notebook(path, text if text is not None else data)
        source.signature = signature
        return source
    if wide:
        raise ReadError(f"Python cannot read {wide[1]} source files: save this file as UTF-8 "
                        f"(it starts with a {wide[1]} byte order mark)")
    if b"\x00" in data:
        raise ReadError("Cannot lint a binary file (it contains NUL bytes)")
    text, encoding, bom = decode_source(data)
    return SourceFile(path, text, encoding, bom, signature=signature)


def may_hold_training_code(text: str) -> bool:
    """The byte prefilter of `read_source`, for text already in memory (an editor's open document): a
    file that mentions no training framework is not linted, by the CLI or the language server."""
    return _PREFILTER.search(text.encode("utf-8", "surrogatepass")) is not None


def _wide_bom(data: bytes) -> tuple[str, str] | None:
    """(codec, name) when the bytes start with a UTF-16 or UTF-32 byte order mark."""
    for bom, codec, name in _WIDE_BOMS:
        if data.startswith(bom):
            return codec, name
    return None


def _declared_encoding(data: bytes) -> str | None:
    """The encoding a coding cookie declares (None without one). A cookie that Python cannot honour is
    refused whatever the file mentions: an unknown codec (its text cannot be known, and Python cannot
    import the file), or UTF-16 / UTF-32 (Python reads source one byte per ASCII character). Raises
    ReadError."""
    second_line_end = data.find(b"\n", data.find(b"\n") + 1)
    if b"coding" not in (data if second_line_end < 0 else data[:second_line_end]):
        return None  # the cookie is on the first two lines; most files have none
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        message = str(error.msg if hasattr(error, "msg") else error)
        if message.startswith("unknown encoding"):
            codec = message.partition(":")[2].strip()
            raise ReadError(f"Cannot read file: its coding cookie names an unknown encoding ({codec}); "
                            f"Python cannot read it either") from None
        return None  # other problems (bad UTF-8 on the first lines, BOM and cookie disagree) are reported on decoding
    name = codecs.lookup(encoding).name
    if name.startswith(("utf-16", "utf-32")):
        wide = "UTF-16" if name.startswith("utf-16") else "UTF-32"
        raise ReadError(f"Python cannot read {wide} source files: save this file as UTF-8 "
                        f"(its coding cookie names {encoding})")
    return encoding


def _ascii_compatible(encoding: str) -> bool:
    """Is ASCII text one byte per character, unchanged, in this encoding (so the byte prefilter works)?"""
    probe = "import torch, keras  # sklearn\n"
    try:
        return probe.encode(encoding) == probe.encode("ascii")
    except (LookupError, UnicodeError, TypeError):
        return False


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


def _read_notebook(path: Path, data: bytes | str) -> SourceFile:
    from .notebook import NotebookError, read_notebook  # only a run over notebooks needs it

    try:
        notebook = read_notebook(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    except NotebookError as error:
        raise ReadError(error.message, error.row, error.column) from None
    return SourceFile(path, notebook.text, notebook=notebook)
