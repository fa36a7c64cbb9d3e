"""Output formatters: full (rich), concise, json, github, sarif.

The CLI builds a `Report` (what the user asked for) and calls `write_report` with the results.
Each format lives in its own module with a `write(report, findings, results)` function.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass
from typing import TextIO

from ..diagnostics import FileResult, Finding

FORMATS = ("full", "concise", "json", "github", "sarif")
# `json` would shadow the standard library module inside this package, hence the longer name.
_MODULES = {"full": "full", "concise": "concise", "json": "json_format", "github": "github", "sarif": "sarif"}
# Fewer files than this are checked faster than a progress bar could be read.
PROGRESS_MIN_FILES = 20


@dataclass
class Report:
    format: str = "full"
    statistics: bool = False
    quiet: bool = False
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False
    stream: TextIO | None = None
    error_stream: TextIO | None = None

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    @property
    def err(self) -> TextIO:
        return self.error_stream or sys.stderr

    @contextlib.contextmanager
    def progress(self, total: int):
        """Yields a callable to advance a progress bar on stderr, or None when no bar should be shown.

        A bar is shown only for the human `full` format on an interactive stderr with enough files:
        machine formats, pipes, CI logs and NO_COLOR users get clean output.
        """
        if not self._wants_progress(total):
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=self.err, highlight=False)
        if not console.is_terminal or console.is_dumb_terminal:
            yield None
            return
        columns = (TextColumn("Checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:  # transient: erased when done
            task = bar.add_task("check", total=total)
            yield lambda: bar.advance(task)

    def _wants_progress(self, total: int) -> bool:
        if self.format != "full" or self.quiet or total < PROGRESS_MIN_FILES:
            return False
        if os.environ.get("NO_COLOR") or os.environ.get("CI") or os.environ.get("TERM") == "dumb":
            return False
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())


def sorted_findings(results: list[FileResult]) -> list[Finding]:
    return sorted((f for r in results for f in r.findings),
                  key=lambda f: (f.filename, f.cell or 0, f.location, f.code))


def write_report(report: Report, results: list[FileResult]) -> None:
    if report.format not in _MODULES:
        raise ValueError(f"unknown output format {report.format!r} (choose from {', '.join(FORMATS)})")
    _report_fix_errors(report, results)
    findings = sorted_findings(results)
    if report.statistics:
        from .summary import write_statistics
        write_statistics(report, findings, results)
        return
    formatter = importlib.import_module(f".{_MODULES[report.format]}", __name__)
    formatter.write(report, findings, results)


def _report_fix_errors(report: Report, results: list[FileResult]) -> None:
    # On stderr in every format: machine-readable stdout must stay parseable.
    for result in results:
        if result.fix_error:
            print(f"{result.filename}: fixes not applied: {result.fix_error}", file=report.err)
        for why in result.refused_fixes:
            print(f"{result.filename}: fix not applied: {why}", file=report.err)
