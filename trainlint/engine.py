"""The engine: per file, parse once, build the model once, run the selected rules, apply noqa and fixes.

Usable as a library (`lint_source`, `fix_source`) and by the CLI (`check_file`, `check_files`, which
spreads many files over all cores).
"""
from __future__ import annotations

import ast
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst

from .analysis import ScriptModel
from .config import Settings
from .diagnostics import IO_ERROR, SYNTAX_ERROR, FileResult, Finding, FixInfo, Location, TextEdit
from .files import ReadError, SourceFile, read_source
from .fixes import SAFE, UNSAFE, Fix, apply_edits, write_atomic
from .rules import Rule, Violation

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(r"^\s*#\s*trainlint\s*:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?\s*$",
                        re.IGNORECASE | re.MULTILINE)
_MAX_FIX_PASSES = 10
_PARALLEL_THRESHOLD = 8  # below this many files, a process pool costs more than it saves


class _Raw:
    """A violation with its rule, before positions are computed."""

    __slots__ = ("rule", "violation")

    def __init__(self, rule: Rule, violation: Violation) -> None:
        self.rule, self.violation = rule, violation


def _violations(module: cst.Module, rules: list[Rule], settings: Settings) -> tuple[ScriptModel, list[_Raw]]:
    model = ScriptModel(module)
    raws: list[_Raw] = []
    seen: set[tuple[str, int]] = set()
    for rule in rules:
        for violation in rule.check(model, settings.options_for(rule)):
            key = (rule.code, id(violation.node))
            if key not in seen:  # a helper inlined at two call sites reports once
                seen.add(key)
                raws.append(_Raw(rule, violation))
    return model, raws


def _codes(text: str | None) -> set[str] | None:
    return {c.upper() for c in re.split(r"[,\s]+", text) if c} if text else None


class _Suppressions:
    def __init__(self, source: str) -> None:
        self.file_codes: set[str] | None = None
        self.file_all = False
        for match in _FILE_NOQA.finditer(source):
            codes = _codes(match.group("codes"))
            if codes is None:
                self.file_all = True
            else:
                self.file_codes = (self.file_codes or set()) | codes
        self.lines = source.splitlines()

    def suppressed(self, code: str, row: int) -> bool:
        if self.file_all or (self.file_codes and code in self.file_codes):
            return True
        if 0 < row <= len(self.lines) and "#" in self.lines[row - 1]:
            match = _NOQA.search(self.lines[row - 1])
            if match is not None:
                codes = _codes(match.group("codes"))
                return codes is None or code in codes
        return False


def _location(model: ScriptModel, node: cst.CSTNode) -> tuple[Location, Location]:
    code_range = model.positions[node]
    return (Location(code_range.start.line, code_range.start.column + 1),
            Location(code_range.end.line, code_range.end.column + 1))


def _text_edit(before: str, after: str) -> TextEdit:
    """One whole-line replacement that turns `before` into `after` (rows and columns 1-based, as ruff's)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    content = "".join(new[prefix:len(new) - suffix])
    return TextEdit(content, Location(prefix + 1, 1), Location(len(old) - suffix + 1, 1))


def _fix_info(module: cst.Module, fix: Fix | None, source: str) -> FixInfo | None:
    if fix is None:
        return None
    try:
        fixed = apply_edits(module, fix.edits).code
    except Exception:  # a fix that cannot be applied is not offered
        return None
    return FixInfo(fix.applicability, fix.message, (_text_edit(source, fixed),))


def _findings(path: str, source: str, module: cst.Module, model: ScriptModel, raws: list[_Raw],
              with_fixes: bool = True) -> list[Finding]:
    suppressions = _Suppressions(source)
    findings = []
    for raw in raws:
        start, end = _location(model, raw.violation.node)
        if suppressions.suppressed(raw.rule.code, start.row):
            continue
        fix = _fix_info(module, raw.violation.fix, source) if with_fixes else None
        findings.append(Finding(raw.rule.code, raw.rule.name, raw.violation.message, path, start, end, fix,
                                noqa_row=start.row))
    findings.sort(key=lambda f: (f.location, f.code))
    return findings


def _parse(source: str) -> cst.Module:
    return cst.parse_module(source)


def _syntax_finding(path: str, source: str, error: cst.ParserSyntaxError) -> Finding:
    """Python's own compiler says where and what more precisely than libcst; ask it (only on failure)."""
    try:
        compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python_error:
        location = Location(python_error.lineno or 1, python_error.offset or 1)
        return Finding(SYNTAX_ERROR, "syntax-error", f"SyntaxError: {python_error.msg}", path, location, location)
    except (ValueError, RecursionError, MemoryError):
        pass
    message = str(error.message).strip().splitlines()[0] if error.message else "invalid syntax"
    message = re.sub(r"^parser error: error at \d+:\d+: ", "", message)
    location = Location(error.editor_line, error.editor_column)
    return Finding(SYNTAX_ERROR, "syntax-error", f"SyntaxError: {message}", path, location, location)


def lint_source(source: str, path: str = "<string>", settings: Settings | None = None) -> list[Finding]:
    """Findings for `source`. Syntax errors are returned as one E999 finding."""
    settings = settings or Settings()
    rules = settings.enabled_rules(path)
    try:
        module = _parse(source)
    except cst.ParserSyntaxError as error:
        return [_syntax_finding(path, source, error)]
    if not rules:
        return []
    model, raws = _violations(module, rules, settings)
    return _findings(path, source, module, model, raws) if raws else []


def _fixable(raw: _Raw, unsafe: bool) -> bool:
    fix = raw.violation.fix
    return fix is not None and (fix.applicability == SAFE or (unsafe and fix.applicability == UNSAFE))


class FixError(Exception):
    pass


def fix_source(source: str, path: str = "<string>", settings: Settings | None = None,
               unsafe: bool = False) -> str:
    """`source` with every applicable fix applied (safe ones, and unsafe ones when asked)."""
    return _fix_source(source, path, settings or Settings(), unsafe)[0]


def _fix_source(source: str, path: str, settings: Settings, unsafe: bool) -> tuple[str, int]:
    """(fixed source, number of fixes applied). Raises FixError when the result cannot be trusted."""
    rules = settings.enabled_rules(path)
    text, applied = source, 0
    for _ in range(_MAX_FIX_PASSES):
        module = _parse(text)
        model, raws = _violations(module, rules, settings)
        suppressions = _Suppressions(text)
        pending = [r for r in raws if _fixable(r, unsafe)
                   and not suppressions.suppressed(r.rule.code, model.line(r.violation.node))]
        if not pending:
            return text, applied
        edits = [edit for raw in pending for edit in raw.violation.fix.edits]
        try:
            candidate = apply_edits(module, edits).code
        except Exception as error:
            raise FixError(f"a fix could not be applied ({error})") from None
        try:
            _parse(candidate)
        except cst.ParserSyntaxError as error:
            raise FixError(f"the fixed code would not parse ({error.message})") from None
        if candidate == text:
            raise FixError("a fix changed nothing; the finding would stay")
        text, applied = candidate, applied + len(pending)
    raise FixError(f"fixes did not settle after {_MAX_FIX_PASSES} passes")


def check_file(path: Path, settings: Settings, fix: bool = False, unsafe: bool = False,
               diff: bool = False) -> FileResult:
    """Lint one file; with fix/diff compute the fixed text, and with fix (not diff) write it safely."""
    name = str(path)
    result = FileResult(name)
    try:
        source = read_source(path)
    except ReadError as error:
        location = Location(error.row, error.column)
        result.findings.append(Finding(IO_ERROR, "io-error", error.message, name, location, location))
        return result
    if source is None:
        return result
    if (fix or diff) and source.notebook is None:
        try:
            fixed, count = _fix_source(source.text, name, settings, unsafe)
        except FixError as error:
            result.fix_error = str(error)
        except cst.ParserSyntaxError:
            pass  # reported below
        else:
            if fixed != source.text:
                result.original, result.fixed, result.fixed_count = source.text, fixed, count
                if fix and not diff:
                    try:
                        write_atomic(path, source.to_bytes(fixed))
                        result.written = True
                    except OSError as error:
                        result.fix_error = f"could not write the fixed file: {error.strerror or error}"
                        result.fixed = None
        text = result.fixed if result.written else source.text
    else:
        text = source.text
    result.findings = _map_notebook(lint_source(text, name, settings), source)
    return result


def _map_notebook(findings: list[Finding], source: SourceFile) -> list[Finding]:
    if source.notebook is None:
        return findings
    mapped = []
    for finding in findings:
        cell, row = source.notebook.locate(finding.location.row)
        _, end_row = source.notebook.locate(finding.end_location.row)
        message = _LINE_REFERENCE.sub(lambda m: _cell_line(source, int(m.group(1))), finding.message)
        mapped.append(Finding(finding.code, finding.name, message, finding.filename,
                              Location(row, finding.location.column), Location(end_row, finding.end_location.column),
                              None, row, cell))
    return mapped


_LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


def _cell_line(source: SourceFile, row: int) -> str:
    cell, line = source.notebook.locate(row)
    return f"cell {cell}, line {line}"


def _check_one(args) -> FileResult:
    path, settings, fix, unsafe, diff = args
    try:
        return check_file(path, settings, fix, unsafe, diff)
    except RecursionError:
        location = Location(1, 1)
        return FileResult(str(path), [Finding(IO_ERROR, "io-error", "File is nested too deeply to analyse",
                                              str(path), location, location)])


def check_files(files: list[tuple[Path, Settings]], fix: bool = False, unsafe: bool = False, diff: bool = False,
                jobs: int | None = None, progress=None):
    """Yield a FileResult per file, in the order given; in parallel across cores when there are many."""
    tasks = [(path, settings, fix, unsafe, diff) for path, settings in files]
    jobs = jobs or os.cpu_count() or 1
    if len(tasks) < _PARALLEL_THRESHOLD or jobs == 1:
        for task in tasks:
            yield _check_one(task)
            if progress:
                progress()
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(_check_one, tasks, chunksize=max(1, len(tasks) // (jobs * 8))):
            yield result
            if progress:
                progress()
