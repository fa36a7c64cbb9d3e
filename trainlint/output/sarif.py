"""SARIF 2.1.0, for GitHub code scanning (`github/codeql-action/upload-sarif`) and other SARIF viewers.

Every rule is described in `tool.driver.rules`, so a viewer can explain a finding without trainlint.
Files that could not be linted (E902 unreadable, E999 syntax error) are not rule violations: they are
results with level "error" and a `ruleId` but no `ruleIndex` (code scanning wants a ruleId on every
result; there is no rule to point at), described in `tool.driver.notifications` and repeated as
`invocations[0].toolExecutionNotifications`, which is where SARIF puts "the tool could not analyse this".
"""
from __future__ import annotations

import json
import os
import re
from pathlib import PurePath
from urllib.parse import quote

from ..diagnostics import ANALYSIS_LIMIT, DOCS_URL, IO_ERROR, SYNTAX_ERROR, FileResult, Finding, Location
from ..rules import ALL_RULES

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = DOCS_URL.split("/blob/")[0]
FILE_ERRORS = {
    IO_ERROR: ("io-error", "The file could not be read"),
    SYNTAX_ERROR: ("syntax-error", "The file is not valid Python"),
    ANALYSIS_LIMIT: ("analysis-limit", "The analysis of the file stopped at a limit; findings may be missing"),
}


def section(page: str, heading: str) -> str:
    """The text of `## heading` in a rule's page, with its wrapped lines joined into paragraphs."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", page, re.S | re.M)
    if match is None:
        return ""
    paragraphs = re.split(r"\n\s*\n", match.group(1).strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _rule_descriptor(rule) -> dict:
    page = rule.page()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": section(page, "What it does") or rule.summary},
        "help": {"text": page, "markdown": page},
        "helpUri": DOCS_URL.format(code=rule.code),
        "defaultConfiguration": {"level": "warning"},
        "properties": {"fix": rule.fix},
    }


def artifact_uri(filename: str) -> str:
    """A relative path stays relative (code scanning resolves it against the repository root)."""
    path = PurePath(filename)
    if path.is_absolute():
        return path.as_uri()
    return quote(PurePath(os.path.normpath(filename)).as_posix())


def _region(start: Location, end: Location) -> dict:
    return {"startLine": start.row, "startColumn": start.column, "endLine": end.row, "endColumn": end.column}


def _location(finding: Finding) -> dict:
    physical: dict = {"artifactLocation": {"uri": artifact_uri(finding.filename)}}
    if not finding.cell:  # notebook rows count within a cell, not in the .ipynb file
        physical["region"] = _region(finding.location, finding.end_location)
    return {"physicalLocation": physical}


def _message(finding: Finding) -> str:
    if finding.cell:
        return f"{finding.message} (cell {finding.cell}, line {finding.location.row}, column {finding.location.column})"
    return finding.message


def _fix(finding: Finding) -> dict:
    fix = finding.fix
    replacements = [{"deletedRegion": _region(edit.location, edit.end_location),
                     "insertedContent": {"text": edit.content}} for edit in fix.edits]
    return {
        "description": {"text": fix.message},
        "artifactChanges": [{"artifactLocation": {"uri": artifact_uri(finding.filename)},
                             "replacements": replacements}],
        "properties": {"applicability": fix.applicability},
    }


def _result(finding: Finding, rule_index: dict[str, int]) -> dict:
    result: dict = {"ruleId": finding.code}
    if finding.code in rule_index:
        result["ruleIndex"] = rule_index[finding.code]
    result["level"] = "error" if finding.is_error else "warning"
    result["message"] = {"text": _message(finding)}
    result["locations"] = [_location(finding)]
    if finding.fix is not None and finding.fix.edits and not finding.cell:  # cell rows are not the file's
        result["fixes"] = [_fix(finding)]
    return result


def _notification(finding: Finding, index: dict[str, int]) -> dict:
    return {
        "descriptor": {"id": finding.code, "index": index[finding.code]},
        "level": "error",
        "message": {"text": _message(finding)},
        "locations": [_location(finding)],
    }


def log(findings: list[Finding]) -> dict:
    """The whole SARIF log for these findings, as a JSON-ready dict."""
    from .. import __version__

    rule_index = {rule.code: i for i, rule in enumerate(ALL_RULES)}
    notification_index = {code: i for i, code in enumerate(FILE_ERRORS)}
    driver = {
        "name": "trainlint",
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_rule_descriptor(rule) for rule in ALL_RULES],
        "notifications": [{"id": code, "name": name, "shortDescription": {"text": text}}
                          for code, (name, text) in FILE_ERRORS.items()],
    }
    file_errors = [f for f in findings if f.is_error]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            # The run finished; files it could not analyse are listed rather than failing it.
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": [_notification(f, notification_index)
                                                            for f in file_errors]}],
            "columnKind": "unicodeCodePoints",  # our columns count characters, not UTF-16 units
            "results": [_result(f, rule_index) for f in findings],
        }],
    }


def write(report, findings: list[Finding], results: list[FileResult]) -> None:
    json.dump(log(findings), report.out, indent=2)
    report.out.write("\n")
