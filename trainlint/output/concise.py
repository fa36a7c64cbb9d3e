"""One line per finding: `path:row:col: CODE message` (the line the problem matchers read), then the summary.

Notebook findings say which cell their row counts in: `path:cell N:row:col: CODE message`.
"""
from __future__ import annotations

from ..diagnostics import FileResult, Finding
from .summary import summary_line


def line(finding: Finding) -> str:
    where = f"{finding.filename}:cell {finding.cell}" if finding.cell else finding.filename
    # One physical line per finding, whatever a message holds: matchers read line by line.
    message = " ".join(finding.message.splitlines())
    return f"{where}:{finding.location.row}:{finding.location.column}: {finding.code} {message}"


def write(report, findings: list[Finding], results: list[FileResult]) -> None:
    for finding in findings:
        print(line(finding), file=report.out)
    if not report.quiet:
        print(summary_line(report, findings, results), file=report.out)
