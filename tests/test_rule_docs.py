"""Every rule's page is its docstring: docs/rules/<CODE>.md must match it, and its examples must behave.

Regenerate the pages after editing a docstring with: TRAINLINT_WRITE_DOCS=1 pytest tests/test_rule_docs.py
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from runtime import ROOT

import trainlint
from trainlint.rules import ALL_RULES

DOCS = ROOT / "docs" / "rules"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_docs_page_matches_the_rule(rule):
    page = DOCS / f"{rule.code}.md"
    if os.environ.get("TRAINLINT_WRITE_DOCS"):
        page.write_text(rule.page())
    assert page.read_text() == rule.page(), f"run TRAINLINT_WRITE_DOCS=1 pytest {__file__}"
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in rule.page()


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_example_triggers_the_rule_and_use_instead_does_not(rule):
    bad = trainlint.lint_source(rule.example("Example"))
    good = trainlint.lint_source(rule.example("Use instead"))
    assert rule.code in {f.code for f in bad}
    assert rule.code not in {f.code for f in good}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_command_prints_the_page(rule):
    out = subprocess.run([sys.executable, "-m", "trainlint", "rule", rule.code], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout == rule.page()
