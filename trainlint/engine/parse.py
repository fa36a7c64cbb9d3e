"""Parsing: the file's text into an `ast` tree, or one clear E999 finding.

The standard library's parser is CPython's own, so trainlint accepts exactly what Python accepts: no
false syntax errors, and no stalls or crashes on deep nesting (Python raises, and so do we, as E999).
"""
from __future__ import annotations

import ast
import warnings

from ..diagnostics import SYNTAX_ERROR, Finding, Location


class UnparsableSource(SyntaxError):
    """The source is not Python that CPython can parse: a syntax error, or nesting too deep for its parser.
    `finding` is the E999 that `lint_source` reports for it."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding
        self.msg = finding.message
        self.lineno, self.offset = finding.location.row, finding.location.column


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse `text`; raises UnparsableSource."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of the user's code are not ours to print
            return ast.parse(text, filename=path)
    except SyntaxError as error:  # IndentationError and TabError too
        location = Location(error.lineno or 1, error.offset or 1)
        finding = Finding(SYNTAX_ERROR, "syntax-error", f"SyntaxError: {error.msg}", path, location, location)
    except ValueError as error:  # "source code string cannot contain null bytes"
        finding = _whole_file(path, f"SyntaxError: {error}")
    except (RecursionError, MemoryError) as error:
        finding = _whole_file(path, f"SyntaxError: nested too deeply for Python's parser ({type(error).__name__})")
    raise UnparsableSource(finding)


def _whole_file(path: str, message: str) -> Finding:
    location = Location(1, 1)
    return Finding(SYNTAX_ERROR, "syntax-error", message, path, location, location)


def compiles(text: str) -> bool:
    """Does Python compile it to bytecode (this also catches `return` outside a function, a repeated argument
    name, `*a = 1`, which the parser accepts)?"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<source>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True
