"""One line per finding: `path:row:col: CODE message` (the line the problem matchers read)."""
from __future__ import annotations


def line(finding) -> str:
    where = f"{finding.filename}:cell {finding.cell}" if finding.cell else finding.filename
    return f"{where}:{finding.location.row}:{finding.location.column}: {finding.code} {finding.message}"


def write(report, findings, results) -> None:
    for finding in findings:
        print(line(finding), file=report.out)
