"""What the human formats print after the findings: the summary line, and `--statistics` tables."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from ..diagnostics import FileResult, Finding


def is_fixable(finding: Finding, report) -> bool:
    """Whether `--fix` (with the report's `--unsafe-fixes` choice) would apply this finding's fix."""
    fix = finding.fix
    return fix is not None and (fix.applicability == "safe" or (report.unsafe_fixes and fix.applicability == "unsafe"))


def is_hidden_fixable(finding: Finding, report) -> bool:
    """An unsafe fix the user has not opted into."""
    return finding.fix is not None and finding.fix.applicability == "unsafe" and not report.unsafe_fixes


def _findings(count: int) -> str:
    return f"{count} finding" if count == 1 else f"{count} findings"


def summary_line(report, findings: list[Finding], results: list[FileResult]) -> str:
    """`Found 3 findings (2 fixable with --fix)`, or with --fix `Found 3 findings (2 fixed, 1 remaining)`."""
    remaining = len(findings)
    fixed = sum(r.fixed_count for r in results if r.written) if report.fix else 0
    if remaining == 0 and fixed == 0:
        return "All checks passed!"
    hidden = sum(is_hidden_fixable(f, report) for f in findings)
    if report.fix:
        line = f"Found {_findings(remaining + fixed)} ({fixed} fixed, {remaining} remaining)"
        return line + (f"; {hidden} more fixable with --fix --unsafe-fixes" if hidden else "")
    notes = []
    fixable = sum(is_fixable(f, report) for f in findings)
    if fixable:
        notes.append(f"{fixable} fixable with --fix")
    if hidden:
        notes.append(f"{hidden} more with --fix --unsafe-fixes")
    return f"Found {_findings(remaining)}" + (f" ({'; '.join(notes)})" if notes else "")


@dataclass(frozen=True)
class Statistic:
    code: str
    name: str
    count: int
    fixable: bool


def statistics(report, findings: list[Finding]) -> list[Statistic]:
    """One row per code, most frequent first (ties by code), as ruff's --statistics."""
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if is_fixable(f, report)}
    return [Statistic(code, names[code], count, code in fixable)
            for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def statistics_lines(rows: list[Statistic]) -> list[str]:
    """`  3  TL001  [*] missing-zero-grad`: counts right-aligned, codes padded, `[*]` when fixable."""
    if not rows:
        return []
    count_width = max(3, *(len(str(row.count)) for row in rows))
    code_width = max(len(row.code) for row in rows)
    return [f"{row.count:>{count_width}}  {row.code:<{code_width}}  {'[*]' if row.fixable else '[ ]'} {row.name}"
            for row in rows]


def write_statistics(report, findings: list[Finding], results: list[FileResult]) -> None:
    """`--statistics` replaces the findings: a JSON list for `--output-format json`, else a table."""
    rows = statistics(report, findings)
    if report.format == "json":
        json.dump([{"code": r.code, "name": r.name, "count": r.count, "fixable": r.fixable} for r in rows],
                  report.out, indent=2)
        report.out.write("\n")
        return
    for line in statistics_lines(rows):
        print(line, file=report.out)
    if not report.quiet:
        print(summary_line(report, findings, results), file=report.out)
