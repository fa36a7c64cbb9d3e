"""A JSON list of findings with ruff's field names, so tools that read `ruff --output-format json` read ours.

File errors (E902 unreadable, E999 syntax error) are entries like any other. Nothing else goes to stdout.
"""
from __future__ import annotations

import json

from ..diagnostics import FileResult, Finding, Location


def _location(location: Location) -> dict:
    return {"row": location.row, "column": location.column}


def _fix(finding: Finding) -> dict | None:
    if finding.fix is None:
        return None
    return {
        "applicability": finding.fix.applicability,
        "message": finding.fix.message,
        "edits": [{"content": edit.content, "location": _location(edit.location),
                   "end_location": _location(edit.end_location)} for edit in finding.fix.edits],
    }


def as_dict(finding: Finding) -> dict:
    return {
        "code": finding.code,
        "message": finding.message,
        "filename": finding.filename,
        "location": _location(finding.location),
        "end_location": _location(finding.end_location),
        "fix": _fix(finding),
        "noqa_row": finding.noqa_row,
        "url": finding.url,
        "cell": finding.cell,
    }


def write(report, findings: list[Finding], results: list[FileResult]) -> None:
    json.dump([as_dict(f) for f in findings], report.out, indent=2)
    report.out.write("\n")
