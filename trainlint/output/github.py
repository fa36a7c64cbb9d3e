"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request's diff.

    ::error title=trainlint (TL001),file=train.py,line=6,col=5,endLine=6,endColumn=20::TL001 message

Escaping follows GitHub's toolkit (`escapeData` / `escapeProperty` in @actions/core): a raw newline
would end the command, and a `,` or `:` in a property would start the next one.
"""
from __future__ import annotations

from pathlib import PurePath

from ..diagnostics import FileResult, Finding


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(finding: Finding) -> str:
    properties = {"title": f"trainlint ({finding.code})", "file": PurePath(finding.filename).as_posix()}
    message = f"{finding.code} {finding.message}"
    start, end = finding.location, finding.end_location
    if finding.cell:
        # Rows count within a notebook cell, not in the .ipynb file: annotate the file, say where in words.
        message += f" (cell {finding.cell}, line {start.row}, column {start.column})"
    else:
        properties["line"], properties["endLine"] = str(start.row), str(end.row)
        if end.row == start.row:  # GitHub accepts columns only for annotations on a single line
            properties["col"], properties["endColumn"] = str(start.column), str(end.column)
    order = ("title", "file", "line", "col", "endLine", "endColumn")
    listed = ",".join(f"{key}={escape_property(properties[key])}" for key in order if key in properties)
    return f"::error {listed}::{escape_data(message)}"


def write(report, findings: list[Finding], results: list[FileResult]) -> None:
    for finding in findings:
        print(command(finding), file=report.out)
