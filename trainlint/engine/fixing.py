"""The fix loop: apply the fixes, pass after pass, verifying each one.

Each pass applies every applicable fix whose edits do not overlap another's (the rest wait for the next
pass), then re-parses and re-lints the result. A pass is kept only when the code still parses, still
compiles with Python when the original did, and every finding it fixed is gone. When a pass fails that
check, the fixes of that pass are tried one at a time; a fix that breaks the code or does not remove its
finding is refused (its finding stays, with the reason) and the others go ahead: one bad fix never
blocks the rest of the file.
"""
from __future__ import annotations

import re
from collections import Counter

from ..analysis.links import Links
from ..config import Settings
from ..fixes import SAFE, UNSAFE, EditError, Span, apply_spans, overlaps, resolve
from .analyse import Analysis, Raw, analyse, links_for
from .parse import UnparsableSource, compiles
from .suppressions import Suppressions

MAX_FIX_PASSES = 10
_LINE_NUMBER = re.compile(r"\bline \d+\b|\(\d+\)")


class FixError(Exception):
    """The fixes of a file cannot be trusted (they never settle): nothing is written."""


class Fixed:
    """The outcome of the fix loop: the final text, how many fixes went in, the analysis of that text (so the
    findings that remain need no new parse), and the fixes that were refused, with why."""

    __slots__ = ("text", "applied", "analysis", "refused")

    def __init__(self, text: str, applied: int, analysis: Analysis, refused: list[str]) -> None:
        self.text, self.applied, self.analysis, self.refused = text, applied, analysis, refused


def fixable(raw: Raw, unsafe: bool) -> bool:
    fix = raw.violation.fix
    return fix is not None and (fix.applicability == SAFE or (unsafe and fix.applicability == UNSAFE))


def _key(analysis: Analysis, raw: Raw) -> tuple[str, str, str]:
    """What identifies a finding across passes (rows move when lines are inserted above it)."""
    node = raw.violation.node
    return (raw.rule.code, _LINE_NUMBER.sub("", raw.violation.message), analysis.model.code(node))


def _describe(analysis: Analysis, raw: Raw) -> str:
    return f"{raw.rule.code} at line {raw.row}"


def fix_text(text: str, path: str, settings: Settings, unsafe: bool, links: Links | None = None) -> Fixed:
    """Apply the applicable fixes to `text`. Raises UnparsableSource when `text` does not parse, and FixError
    when the fixes never settle."""
    analysis = analyse(text, path, settings, links=links or links_for(path, settings))
    refused: dict[tuple, str] = {}
    applied = 0
    original_compiles: bool | None = None
    serial = False  # one fix per pass, after a pass whose fixes were good alone but not together
    for _ in range(MAX_FIX_PASSES + len(analysis.raws)):
        suppressions = Suppressions(analysis.source.text)
        chosen: list[tuple[Raw, list[Span]]] = []
        taken: list[Span] = []
        for raw in analysis.raws:
            if not fixable(raw, unsafe) or suppressions.suppressed(raw.rule.code, raw.row):
                continue
            key = _key(analysis, raw)
            if key in refused:
                continue
            try:
                spans = resolve(raw.violation.fix, analysis.source)
            except EditError as error:
                refused[key] = f"{_describe(analysis, raw)}: {error}"
                continue
            if overlaps(spans, taken) or (serial and chosen):
                continue  # next pass, on the code this pass produces
            chosen.append((raw, spans))
            taken.extend(spans)
        if not chosen:
            return Fixed(analysis.source.text, applied, analysis, list(refused.values()))
        if original_compiles is None:
            original_compiles = compiles(text)
        result, problem = _try(analysis, chosen, path, settings, original_compiles)
        if problem is None:
            analysis, applied = result, applied + len(chosen)
            continue
        if len(chosen) == 1:
            refused[_key(analysis, chosen[0][0])] = f"{_describe(analysis, chosen[0][0])}: {problem}"
            continue
        failed_alone = False
        for raw, spans in chosen:  # find the fixes that fail on their own; the others go ahead next pass
            _, alone = _try(analysis, [(raw, spans)], path, settings, original_compiles)
            if alone is not None:
                refused[_key(analysis, raw)] = f"{_describe(analysis, raw)}: {alone}"
                failed_alone = True
        serial = serial or not failed_alone  # good alone, bad together: one at a time from now on
    raise FixError(f"the fixes did not settle after {MAX_FIX_PASSES} passes (fixes of different rules keep "
                   f"re-triggering each other)")


def _try(analysis: Analysis, chosen: list[tuple[Raw, list[Span]]], path: str, settings: Settings,
         original_compiles: bool) -> tuple[Analysis | None, str | None]:
    """(analysis of the fixed text, None) when the fixes are good, else (None, why not)."""
    try:
        candidate = apply_spans(analysis.source.text, [s for _, spans in chosen for s in spans])
    except EditError as error:
        return None, f"the fix could not be applied ({error})"
    if candidate == analysis.source.text:
        return None, "the fix changes nothing"
    try:
        result = analyse(candidate, path, settings, links=getattr(analysis.model, "links", None))
    except UnparsableSource as error:
        return None, f"the code after the fix would not parse ({error.finding.message})"
    if original_compiles and not compiles(candidate):
        return None, "the code after the fix would not compile with Python"
    before = Counter(_key(analysis, raw) for raw in analysis.raws)
    fixed = Counter(_key(analysis, raw) for raw, _ in chosen)
    after = Counter(_key(result, raw) for raw in result.raws)
    if any(after[key] > before[key] - count for key, count in fixed.items()):
        return None, "the fix did not remove the finding"
    return result, None
