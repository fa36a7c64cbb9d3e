"""What a lint run reports: findings with positions, their fixes as text edits, and file errors.

These are plain, picklable values: the engine produces them (possibly in worker processes) and the
output formatters consume them. Nothing here knows about the syntax tree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DOCS_URL = "https://github.com/trainlint/trainlint/blob/main/docs/rules/{code}.md"

# Pseudo-codes for files that could not be linted, as flake8 and ruff spell them.
IO_ERROR = "E902"
SYNTAX_ERROR = "E999"
# The analysis of a file stopped at a limit (README: "Limits"): its findings may be incomplete.
ANALYSIS_LIMIT = "E903"


@dataclass(frozen=True, order=True)
class Location:
    row: int  # 1-based
    column: int  # 1-based, in characters


@dataclass(frozen=True)
class TextEdit:
    content: str
    location: Location
    end_location: Location


@dataclass(frozen=True)
class FixInfo:
    applicability: str  # "safe" or "unsafe"
    message: str
    edits: tuple[TextEdit, ...]


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    message: str
    filename: str
    location: Location
    end_location: Location
    fix: FixInfo | None = None
    noqa_row: int | None = None
    cell: int | None = None  # notebook cell (1-based), rows are then relative to the cell
    # For a finding reported where a helper of another module is called: the file and row of the helper's own
    # code it is about. A run that lints that file too reports it there, and not twice.
    origin: tuple[str, int] | None = None

    @property
    def url(self) -> str | None:
        return DOCS_URL.format(code=self.code) if self.code.startswith("TL") else None

    @property
    def is_error(self) -> bool:
        """A file-level error (unreadable, unparsable) rather than a rule's finding."""
        return self.code in (IO_ERROR, SYNTAX_ERROR, ANALYSIS_LIMIT)


@dataclass
class FileResult:
    filename: str
    findings: list[Finding] = field(default_factory=list)
    original: str | None = None  # source text as read, when a fix was computed
    fixed: str | None = None  # source text after fixes, when it differs
    fixed_count: int = 0
    fix_error: str | None = None  # why fixes were not applied, if they were refused
    refused_fixes: list[str] = field(default_factory=list)  # single fixes left out (the others applied), with why
    written: bool = False
    cell_changes: tuple[tuple[int, str, str], ...] = ()  # notebook cells the fixes change: (number, before, after)
