"""Which rules a file's text gives anything to report: each rule says what a file must mention for it to
find something (`Rule.requires`), and a rule whose requirements a file does not meet is not run. A file no
rule needs is not parsed at all: most files of a training project (models, data, utilities) hold no
training step, and reading their text is all they cost.

A syntax error in a file that no rule needs is not reported (there is nothing trainlint could check in it;
general linters report syntax errors).
"""
from __future__ import annotations

import os

from ..rules import Rule

# Set (to anything) to run every enabled rule on every file: how the ecosystem check proves that the
# prefilter skips nothing that matters (the findings with and without it must be identical).
DISABLE_VARIABLE = "TRAINLINT_NO_PREFILTER"


def needed(text: str, rules: list[Rule], helpers: list[str] | None = None) -> list[Rule]:
    """The rules whose requirements `text` meets, or (for rules that follow helpers into other modules) the
    text together with `helpers`, the text of the project modules it imports. Plain substring tests."""
    if os.environ.get(DISABLE_VARIABLE):
        return list(rules)
    found: dict[str, bool] = {}
    elsewhere: dict[str, bool] = {}

    def mentions(word: str, rule: Rule) -> bool:
        if word not in found:
            found[word] = word in text
        if found[word] or not helpers or not getattr(rule, "sees_helpers", True):
            return found[word]
        if word not in elsewhere:
            elsewhere[word] = any(word in other for other in helpers)
        return elsewhere[word]

    return [rule for rule in rules
            if all(any(mentions(word, rule) for word in group) for group in getattr(rule, "requires", ()))]
