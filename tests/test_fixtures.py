"""Every rule fixture, statically: trainlint reports exactly its `# expect:` lines, and its own fix
leaves nothing to report and is idempotent. (Each rule's test file runs its fixtures for the symptom.)

A fixture whose fix is only offered as unsafe says so with a `# fix: unsafe` line; then the safe
`--fix` must leave it alone. A fixture of a rule without a fix (or a case its rule does not fix, marked
`# fix: none`) must be left alone by every fix.
"""
from __future__ import annotations

import pytest
from runtime import FIXTURES, autofixed, expected_findings, fix_is_none, fix_is_unsafe, reported

import trainlint
from trainlint.rules import RULES_BY_CODE
from trainlint.rules.base import FIX_NONE, FIX_UNSAFE

ALL_BUGS = sorted(FIXTURES.glob("TL*/bug_*.py"))


def code_of(path) -> str:
    return path.parent.name


def needs_unsafe(path) -> bool:
    return RULES_BY_CODE[code_of(path)].fix == FIX_UNSAFE or fix_is_unsafe(path)


def fixture_id(path) -> str:
    return f"{code_of(path)}/{path.stem}"


@pytest.mark.parametrize("path", ALL_BUGS, ids=fixture_id)
def test_reports_exactly_the_marked_lines(path):
    assert reported(path, code_of(path)) == expected_findings(path)


@pytest.mark.parametrize("path", ALL_BUGS, ids=fixture_id)
def test_fixed_fixture_has_no_finding_and_fix_is_idempotent(path, tmp_path):
    if RULES_BY_CODE[code_of(path)].fix == FIX_NONE or fix_is_none(path):
        assert trainlint.fix_source(path.read_text(), unsafe=True) == path.read_text(), "no fix is offered here"
        return
    unsafe = needs_unsafe(path)
    if unsafe:
        assert trainlint.fix_source(path.read_text()) == path.read_text(), "this fix must not be applied as safe"
    fixed = autofixed(path, tmp_path, unsafe=unsafe)
    assert reported(fixed, code_of(path)) == set()
    assert trainlint.fix_source(fixed.read_text(), unsafe=unsafe) == fixed.read_text()


def test_every_rule_has_fixtures():
    assert {code_of(p) for p in ALL_BUGS} == set(RULES_BY_CODE)
