"""One file's analysis: parse once, build the model once, ask every selected rule, keep what noqa allows."""
from __future__ import annotations

import ast
import contextlib
import gc
import os
from pathlib import Path

from ..analysis import ScriptModel
from ..analysis.events import LOCAL_CALL
from ..analysis.links import NOTHING, Links
from ..analysis.source import SourceText
from ..project import ProjectLinks, project_for
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
            node, message, origin = raw.violation.node, raw.violation.message, None
            home = self.model.home(node)
            if home is not None:  # in a helper of another module: report where it is called
                placed = self._call_site(node)
                if placed is None:
                    continue
                origin = (str(getattr(home, "file", home.path)), node.lineno)
                node, message = placed[0], f"{placed[1]}, called here: {message}"
            fix = fix_info(raw, self.source, with_edits)  # a fix with edits in another module is not offered
            row, column, end_row, end_column = self.model.span(node)
            if suppressions.suppressed(raw.rule.code, row):
                continue
            findings.append(Finding(raw.rule.code, raw.rule.name, message, self.path, Location(row, column + 1),
                                    Location(end_row, end_column + 1), fix, noqa_row=row, origin=origin))
        findings.sort(key=lambda f: (f.location, f.code))
        return findings


    def _call_site(self, node: ast.AST) -> tuple[ast.AST, str] | None:
        """The call in this file through which a helper of another module runs `node`, and that helper
        (`train_one_epoch()` (engine.py:42)); None when no such call is known."""
        model = self.model
        event = model.foreign_event(node)
        if event is None:
            return None
        local = [call for call in event.context.call_chain if model.home(call) is None]
        if not local:
            return None
        call = local[-1]
        entered = next((e.detail.get("function") for e in model.of_kind(LOCAL_CALL)
                        if e.site is not None and e.site.call is call), None)
        if entered is None or entered.node is None or entered.module is None:
            return call, f"`{model.code(call.func)}()`"
        return call, f"`{entered.name}()` ({entered.module.path}:{entered.node.lineno})"


def links_for(path: str, settings: Settings) -> Links:
    """The project around a file at `path` (its helpers in other modules are followed), or nothing when the
    path names no place on disk (`<string>`)."""
    if path.startswith("<") or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return NOTHING
    return ProjectLinks(project_for(Path(path), settings.source_folders()), Path(path))


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


_TEST_FOLDERS = frozenset({"tests", "test", "testing", "unittests"})


def is_test_code(path: str) -> bool:
    """A test module: in a `tests/` (or `test/`, `testing/`) folder, or named `test_*.py`, `*_test.py`,
    `conftest.py` (not `test.py`: in research code that is the evaluation script). Its training loops and
    hyperparameters are picked to test something, not to train."""
    parts = Path(path).parts
    name = parts[-1] if parts else ""
    stem = name.rsplit(".", 1)[0]
    return (stem.startswith("test_") or stem.endswith("_test") or stem == "conftest"
            or any(part in _TEST_FOLDERS for part in parts[:-1]))


def analyse(text: str, path: str, settings: Settings, source: SourceText | None = None,
            links: Links | None = None) -> Analysis:
    """Parse and check `text` with the enabled rules it gives something to check, following its helpers into
    the project's other modules through `links`. Raises UnparsableSource."""
    source = source or SourceText(text)
    links = links or NOTHING
    enabled = settings.enabled_rules(path)
    if is_test_code(path):
        enabled = [rule for rule in enabled if not getattr(rule, "training_run", True)]
    rules = needed(text, enabled)
    if len(rules) < len(enabled) and any(getattr(rule, "sees_helpers", True) for rule in enabled):
        helpers = links.helper_texts(text)
        if helpers:
            rules = needed(text, enabled, helpers)
    if not rules:
        return Analysis(path, source, None, None, [])
    with _collector_paused():
        return _analyse(text, path, settings, source, rules, links)


def _analyse(text: str, path: str, settings: Settings, source: SourceText, rules: list[Rule],
             links: Links) -> Analysis:
    module = parse(text, path)
    model = ScriptModel(module, source, path, links)
    raws: list[Raw] = []
    seen: set[tuple[str, int]] = set()
    for rule in rules:
        for violation in rule.check(model, settings.options_for(rule)):
            key = (rule.code, id(violation.node))
            if key not in seen:  # a helper inlined at two call sites reports once
                seen.add(key)
                raws.append(Raw(rule, violation))
    return Analysis(path, source, module, model, raws)
