"""The properties every input must keep, whatever it is: generated programs, mutated training scripts.

For every input:
- `lint_source` raises nothing; an input Python cannot parse gives exactly one finding, E999;
- every finding (and every fix's text edit) has a position inside the text;
- `fix_source` either refuses with `FixError` (allowed, counted, must stay rare) or returns text that
  compiles whenever the input compiled;
- fixing the fixed text again changes nothing;
- re-linting the fixed text reports none of the findings that had safe fixes.

`check` returns what happened (for counting) and raises AssertionError with the input in the message,
so that a failure of a long run can be reduced and turned into a regression test.
"""
from __future__ import annotations

import ast
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

import trainlint
from trainlint.engine import FixError
from trainlint.files import split_lines

PATH = "fuzz.py"
# Every example a bounded run may spend, shared between the fuzz tests (see README.md in this folder).
DEFAULT_EXAMPLES = 400


def budget(share: float, minimum: int = 5) -> int:
    """This test's part of the examples: TRAINLINT_FUZZ_EXAMPLES (default DEFAULT_EXAMPLES) times `share`."""
    total = int(os.environ.get("TRAINLINT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
    return max(minimum, round(total * share))


def _without_bom(source: str) -> str:
    """A text that starts with U+FEFF is a file's UTF-8 BOM read as text: Python skips it in a file,
    libcst and trainlint skip it in a string (only `compile()` of the string refuses it)."""
    return source[1:] if source.startswith("\ufeff") else source


def python_parses(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(_without_bom(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def python_compiles(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(_without_bom(source), PATH, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


@dataclass
class Outcome:
    """What one input did: was it parsed, how many findings, were fixes applied or refused."""

    parsed: bool = True
    findings: int = 0
    fixed: bool = False  # fix_source changed the text
    fix_error: str | None = None


@dataclass
class Tally:
    """Outcomes over a run, and the inputs whose fixes were refused (printed, and asserted rare)."""

    outcomes: Counter = field(default_factory=Counter)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (label, reason, source)

    def add(self, label: str, source: str, outcome: Outcome) -> None:
        self.outcomes["inputs"] += 1
        self.outcomes["parsed"] += outcome.parsed
        self.outcomes["with findings"] += outcome.findings > 0
        self.outcomes["fixed"] += outcome.fixed
        if outcome.fix_error is not None:
            self.outcomes["fix refused"] += 1
            self.refused.append((label, outcome.fix_error, source))

    def report(self) -> str:
        lines = [", ".join(f"{key}: {value}" for key, value in self.outcomes.items())]
        for label, reason, source in self.refused:
            lines.append(f"--- fix refused ({label}): {reason}\n{source}")
        return "\n".join(lines)

    def assert_refusals_rare(self, most: float = 0.02) -> None:
        """A refused fix keeps the file safe, but a fixer that refuses often is a fixer that does not fix:
        at most `most` of the inputs that had something to fix (and at most 2 inputs below 100)."""
        attempted = self.outcomes["fixed"] + self.outcomes["fix refused"]
        allowed = max(2, int(most * attempted))
        assert self.outcomes["fix refused"] <= allowed, self.report()


def _shown(source: str, limit: int = 4000) -> str:
    """The input as it can be printed (lone surrogates escaped), cut when very long."""
    source = source.encode("utf-8", "backslashreplace").decode("utf-8")
    return source if len(source) <= limit else source[:limit] + f"\n... ({len(source) - limit} more characters)"


def _failure(label: str, source: str, what: str) -> str:
    return f"{label}: {what}\n--- input ---\n{_shown(source)}\n--- end ---"


def check_positions(findings, source: str, label: str) -> None:
    lines = split_lines(source)

    def valid(location) -> bool:
        return 1 <= location.row <= len(lines) and 1 <= location.column <= len(lines[location.row - 1]) + 1

    for finding in findings:
        where = f"{finding.code} at {finding.location.row}:{finding.location.column}-" \
                f"{finding.end_location.row}:{finding.end_location.column}"
        assert lines, _failure(label, source, f"a finding in an empty text: {where}")
        assert valid(finding.location) and valid(finding.end_location), \
            _failure(label, source, f"position outside the text ({len(lines)} lines): {where}")
        assert (finding.location.row, finding.location.column) <= \
               (finding.end_location.row, finding.end_location.column), \
            _failure(label, source, f"the finding ends before it starts: {where}")
        for edit in finding.fix.edits if finding.fix else ():
            span = f"{edit.location.row}:{edit.location.column}-{edit.end_location.row}:{edit.end_location.column}"
            # Whole-line edits: the end may be the row after the last line (end exclusive).
            assert edit.location.column == 1 and edit.end_location.column == 1 and \
                   1 <= edit.location.row <= edit.end_location.row <= len(lines) + 1, \
                _failure(label, source, f"{finding.code}'s fix edit {span} is outside the text")


def _key(finding, lines: list[str]) -> tuple[str, str]:
    """A finding as it can be recognised after a fix moved rows: its code and its line's text."""
    row = finding.location.row
    return finding.code, lines[row - 1].strip() if 0 < row <= len(lines) else ""


def check(source: str, label: str = "input", unsafe: bool = False) -> Outcome:
    """Every property on one input. Raises AssertionError (with the input) when one does not hold."""
    try:
        findings = trainlint.lint_source(source, path=PATH)
    except Exception as error:  # noqa: BLE001 - any exception is the failure being looked for
        raise AssertionError(_failure(label, source, f"lint_source raised {type(error).__name__}: {error}")) from error
    outcome = Outcome(findings=len(findings))
    check_positions(findings, source, label)
    syntax_errors = [f for f in findings if f.code == "E999"]
    if not python_parses(source):
        assert [f.code for f in findings] == ["E999"], \
            _failure(label, source, f"Python cannot parse this, expected exactly one E999, got "
                                    f"{[(f.code, f.message) for f in findings]}")
        outcome.parsed = False
        return outcome
    assert not syntax_errors, _failure(label, source, f"Python parses this, but trainlint says "
                                                      f"{syntax_errors[0].message!r}")
    try:
        fixed = trainlint.fix_source(source, path=PATH, unsafe=unsafe)
    except FixError as error:
        outcome.fix_error = str(error)
        return outcome
    except Exception as error:  # noqa: BLE001
        raise AssertionError(_failure(label, source, f"fix_source raised {type(error).__name__}: {error}")) from error
    outcome.fixed = fixed != source
    if not outcome.fixed:
        return outcome
    if python_compiles(source):
        assert python_compiles(fixed), _failure(label, source, f"the fixed text does not compile:\n{fixed}")
    try:
        again = trainlint.fix_source(fixed, path=PATH, unsafe=unsafe)
    except FixError as error:
        raise AssertionError(_failure(label, source, f"fixing the fixed text again was refused ({error}); "
                                                     f"fixed text:\n{fixed}")) from None
    assert again == fixed, _failure(label, source, f"a second fix changed the text again:\n{fixed}\n--- to ---\n{again}")
    after = trainlint.lint_source(fixed, path=PATH)
    check_positions(after, fixed, label + " (fixed)")
    applicable = ("safe", "unsafe") if unsafe else ("safe",)
    left = [f for f in after if f.fix is not None and f.fix.applicability in applicable]
    assert not left, _failure(label, source, f"after fixing, {left[0].code} at row {left[0].location.row} "
                                             f"still has a fix:\n{fixed}")
    before_lines, after_lines = split_lines(source), split_lines(fixed)
    unfixed_before = Counter(_key(f, before_lines) for f in findings
                             if f.fix is None or f.fix.applicability not in applicable)
    fixed_before = Counter(_key(f, before_lines) for f in findings
                           if f.fix is not None and f.fix.applicability in applicable)
    for key, count in Counter(_key(f, after_lines) for f in after).items():
        if key in fixed_before:
            assert count <= unfixed_before[key], \
                _failure(label, source, f"a fixed finding came back: {key[0]} on {key[1]!r}\n--- fixed text ---\n{fixed}")
    return outcome
