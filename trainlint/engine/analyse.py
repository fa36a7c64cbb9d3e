"""One file's analysis: parse once, build the model once, ask every selected rule, keep what noqa allows."""
from __future__ import annotations

import ast
import contextlib
import gc

from ..analysis import ScriptModel
from ..analysis.source import SourceText
from ..config import Settings
from ..diagnostics import ANALYSIS_LIMIT, Finding, FixInfo, Location
from ..fixes import EditError, resolve
from ..rules import Rule, Violation
from .edits import text_edit
from .parse import parse
from .prefilter import needed
from .suppressions import Suppressions


LIMIT_MESSAGE = ("Analysis stopped early: this file's helpers, followed into each of their call sites, reach the "
                 "limit of calls analysed for a file of its size; findings after that point may be missing")


class Raw:
    """A violation with its rule, before positions are computed."""

    __slots__ = ("rule", "violation")

    def __init__(self, rule: Rule, violation: Violation) -> None:
        self.rule, self.violation = rule, violation

    @property
    def row(self) -> int:
        return self.violation.node.lineno


class Analysis:
    """A parsed file with its model and the rules' violations (noqa not yet applied)."""

    __slots__ = ("path", "source", "module", "model", "raws")

    def __init__(self, path: str, source: SourceText, module: ast.Module, model: ScriptModel | None,
                 raws: list[Raw]) -> None:
        self.path, self.source, self.module, self.model, self.raws = path, source, module, model, raws

    def findings(self, with_edits: bool = True) -> list[Finding]:
        """Findings not suppressed by noqa, with their fixes (and each fix's text edit when `with_edits`)."""
        findings = []
        if self.model is not None and self.model.truncated:
            location = Location(1, 1)
            findings.append(Finding(ANALYSIS_LIMIT, "analysis-limit", LIMIT_MESSAGE, self.path, location, location))
        if not self.raws:
            return findings
        suppressions = Suppressions(self.source.text)
        for raw in self.raws:
            row, column, end_row, end_column = self.model.span(raw.violation.node)
            if suppressions.suppressed(raw.rule.code, row):
                continue
            findings.append(Finding(raw.rule.code, raw.rule.name, raw.violation.message, self.path,
                                    Location(row, column + 1), Location(end_row, end_column + 1),
                                    fix_info(raw, self.source, with_edits), noqa_row=row))
        findings.sort(key=lambda f: (f.location, f.code))
        return findings


def fix_info(raw: Raw, source: SourceText, with_edits: bool = True) -> FixInfo | None:
    """The finding's fix as one whole-line text edit; None when the fix cannot be made as text edits."""
    fix = raw.violation.fix
    if fix is None:
        return None
    try:
        spans = resolve(fix, source)
    except EditError:
        return None
    return FixInfo(fix.applicability, fix.message, (text_edit(source, spans),) if with_edits else ())


@contextlib.contextmanager
def _collector_paused():
    """A syntax tree and its model are hundreds of thousands of small objects and almost no cycles: the cyclic
    collector's passes over them while they are built cost a third of the time and free nothing (and grow
    with the file's size). Paused while one file is analysed; what it would have found is found afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def analyse(text: str, path: str, settings: Settings, source: SourceText | None = None) -> Analysis:
    """Parse and check `text` with the enabled rules it gives something to check. Raises UnparsableSource."""
    source = source or SourceText(text)
    rules = needed(text, settings.enabled_rules(path))
    if not rules:
        return Analysis(path, source, None, None, [])
    with _collector_paused():
        return _analyse(text, path, settings, source, rules)


def _analyse(text: str, path: str, settings: Settings, source: SourceText, rules: list[Rule]) -> Analysis:
    module = parse(text, path)
    model = ScriptModel(module, source, path)
    raws: list[Raw] = []
    seen: set[tuple[str, int]] = set()
    for rule in rules:
        for violation in rule.check(model, settings.options_for(rule)):
            key = (rule.code, id(violation.node))
            if key not in seen:  # a helper inlined at two call sites reports once
                seen.add(key)
                raws.append(Raw(rule, violation))
    return Analysis(path, source, module, model, raws)
