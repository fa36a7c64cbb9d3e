"""The engine: per file, parse once, build the model once, run the selected rules, apply noqa and fixes.

Usable as a library (`lint_source`, `fix_source`) and by the CLI (`check_file`, `check_files`, which
spreads many files over all cores).
"""
from __future__ import annotations

import ast
import bisect
import contextlib
import gc
import os
import re
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Container, Iterator

import libcst as cst

from .analysis import ScriptModel
from .config import Settings
from .diagnostics import IO_ERROR, SYNTAX_ERROR, FileResult, Finding, FixInfo, Location, TextEdit
from .files import ReadError, SourceFile, read_source, split_lines
from .fixes import SAFE, UNSAFE, Fix, InsertAfter, InsertBefore, Remove, Replace, apply_edits, write_atomic
from .rules import Rule, Violation

# `# noqa`, `# noqa: TL001`, `# noqa: TL001, TL004` (also `# NOQA:TL001,TL004`); not `# noqasomething`.
_NOQA = re.compile(r"#\s*noqa(?![\w-])(?:\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# `# trainlint: noqa` (or `# trainlint: noqa: TL001`) alone on a line: the whole file.
_FILE_NOQA = re.compile(r"^[ \t\f]*#[ \t]*trainlint[ \t]*:[ \t]*noqa(?![\w-])"
                        r"(?:[ \t]*:[ \t]*(?P<codes>[A-Z]+[0-9]+(?:[, \t]+[A-Z]+[0-9]+)*))?[ \t]*\r?$",
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
        self.lines = split_lines(source)  # rows as libcst counts them (form feeds do not end a line)

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


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _lines_keepends(text: str) -> list[str]:
    """Lines with their endings, split only where Python ends a line (not at form feeds)."""
    return _LINE.findall(text)


def _text_edit(before: str, after: str, first_row: int = 1) -> TextEdit:
    """One whole-line replacement that turns `before` into `after` (rows and columns 1-based, as ruff's);
    `before` starts at row `first_row` of the file."""
    old, new = _lines_keepends(before), _lines_keepends(after)
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    content = "".join(new[prefix:len(new) - suffix])
    offset = first_row - 1
    return TextEdit(content, Location(offset + prefix + 1, 1), Location(offset + len(old) - suffix + 1, 1))


def _edit_nodes(fix: Fix) -> list[cst.CSTNode]:
    """The nodes of the parsed file that a fix's edits touch (not the statements it brings)."""
    nodes = []
    for edit in fix.edits:
        if isinstance(edit, (InsertBefore, InsertAfter)):
            nodes.append(edit.anchor)
        elif isinstance(edit, Remove):
            nodes.append(edit.statement)
        elif isinstance(edit, Replace):
            nodes.append(edit.node)
    return nodes


class _Regions:
    """The top-level statements of a module with their first rows (their leading comments included), so
    that a fix's text edit is computed on the few statements it touches, not by regenerating the file."""

    def __init__(self, module: cst.Module, model: ScriptModel, source: str) -> None:
        self.module, self.model, self.source = module, model, source
        positions = model.positions
        self.rows = [self._first_row(positions, s) for s in module.body]
        self.ends = [positions[s].end.line for s in module.body]
        self._line_offsets: list[int] | None = None

    @staticmethod
    def _first_row(positions, statement: cst.CSTNode) -> int:
        """The row where the statement's text begins: its leading comments and decorators included."""
        decorators = getattr(statement, "decorators", ())
        if decorators:
            start = positions[decorators[0]].start.line - len(decorators[0].leading_lines)
        else:
            start = positions[statement].start.line
        return start - len(getattr(statement, "leading_lines", ()))

    def index(self, node: cst.CSTNode) -> int:
        row = self.model.positions[node].start.line
        i = bisect.bisect_right(self.rows, row) - 1
        if i < 0 or row > self.ends[i]:
            raise LookupError("node is not inside a top-level statement")
        return i

    def offset(self, row: int) -> int:
        if self._line_offsets is None:
            offsets, total = [], 0
            for line in _lines_keepends(self.source):
                offsets.append(total)
                total += len(line)
            offsets.append(total)
            self._line_offsets = offsets
        return self._line_offsets[row - 1]

    def text_edit(self, fix: Fix) -> TextEdit:
        nodes = _edit_nodes(fix)
        if not nodes:
            raise LookupError("the fix touches no existing statement")
        indexes = [self.index(node) for node in nodes]
        lo, hi = min(indexes), max(indexes)
        module = self.module
        at_end = hi == len(module.body) - 1 and not module.footer
        region = module.with_changes(body=module.body[lo:hi + 1], header=(), footer=(),
                                     has_trailing_newline=module.has_trailing_newline or not at_end)
        before = region.code
        start = self.offset(self.rows[lo])
        if self.source[start:start + len(before)] != before:  # the region is not where we think: be exact
            raise LookupError("region does not match the source")
        after = apply_edits(region, fix.edits).code
        return _text_edit(before, after, self.rows[lo])


def _fix_info(module: cst.Module, fix: Fix | None, source: str, regions: _Regions | None = None) -> FixInfo | None:
    if fix is None:
        return None
    edit = None
    if regions is not None:
        try:
            edit = regions.text_edit(fix)
        except Exception:  # fall back to the whole module below
            edit = None
    if edit is None:
        try:
            edit = _text_edit(source, apply_edits(module, fix.edits).code)
        except Exception:  # a fix that cannot be applied is not offered
            return None
    return FixInfo(fix.applicability, fix.message, (edit,))


def _findings(path: str, source: str, module: cst.Module, model: ScriptModel, raws: list[_Raw],
              with_fixes: bool = True, edits: bool = True) -> list[Finding]:
    """Findings not suppressed by noqa; with their fixes, and (`edits`) each fix's text edit."""
    suppressions = _Suppressions(source)
    findings = []
    regions: _Regions | None = None
    for raw in raws:
        start, end = _location(model, raw.violation.node)
        if suppressions.suppressed(raw.rule.code, start.row):
            continue
        fix = None
        if with_fixes and raw.violation.fix is not None and not edits:
            fix = FixInfo(raw.violation.fix.applicability, raw.violation.fix.message, ())
        elif with_fixes and raw.violation.fix is not None:
            if regions is None:
                try:
                    regions = _Regions(module, model, source)
                except Exception:
                    pass
            fix = _fix_info(module, raw.violation.fix, source, regions)
        findings.append(Finding(raw.rule.code, raw.rule.name, raw.violation.message, path, start, end, fix,
                                noqa_row=start.row))
    findings.sort(key=lambda f: (f.location, f.code))
    return findings


# libcst's native parser overflows the C stack (the process dies) on very deep nesting: a few thousand
# brackets, or an expression chain of ~10k operators. CPython rejects such code itself (too many nested
# parentheses, RecursionError). So when a cheap scan finds deep brackets or a very long logical line,
# Python's own parser vets the file first. Typical files never trigger it.
_NESTING = re.compile(r"[()\[\]{}]|\\\r?\n|\r?\n|\r")
_RISKY_DEPTH = 100
_RISKY_LOGICAL_LINE = 6000  # characters; the shortest chain that overflows is ~8000


def _risky(source: str) -> bool:
    if len(source) < _RISKY_LOGICAL_LINE:
        return False
    depth, logical_start = 0, 0
    for match in _NESTING.finditer(source):
        char = match.group()[0]
        if char in "([{":
            depth += 1
            if depth > _RISKY_DEPTH:
                return True
        elif char in ")]}":
            depth = depth - 1 if depth else 0
        elif char != "\\" and depth == 0:  # a newline that ends a logical line
            if match.start() - logical_start > _RISKY_LOGICAL_LINE:
                return True
            logical_start = match.end()
    return len(source) - logical_start > _RISKY_LOGICAL_LINE


class TooComplex(Exception):
    """Python's own parser cannot build this file (nesting too deep): it is not parsed at all."""


def _parse(source: str) -> cst.Module:
    """Parse with libcst. Raises cst.ParserSyntaxError, SyntaxError (from Python's parser when the file
    was vetted first) or TooComplex."""
    if _risky(source):
        try:
            compile(source, "<source>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError:
            raise
        except (RecursionError, MemoryError, ValueError) as error:
            raise TooComplex(f"The file is nested too deeply to parse ({type(error).__name__})") from None
    return cst.parse_module(source)


def _python_syntax_finding(path: str, error: SyntaxError) -> Finding:
    location = Location(error.lineno or 1, error.offset or 1)
    return Finding(SYNTAX_ERROR, "syntax-error", f"SyntaxError: {error.msg}", path, location, location)


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


def lint_source(source: str, path: str = "<string>", settings: Settings | None = None, *,
                fix_edits: bool = True) -> list[Finding]:
    """Findings for `source`. Syntax errors are returned as one E999 finding.

    Each fixable finding carries its fix; with `fix_edits` (the default) also the text edit that the fix
    makes, which costs a partial re-generation of the code per finding (only JSON and SARIF show it)."""
    settings = settings or Settings()
    rules = settings.enabled_rules(path)
    try:
        module = _parse(source)
    except cst.ParserSyntaxError as error:
        return [_syntax_finding(path, source, error)]
    except SyntaxError as error:
        return [_python_syntax_finding(path, error)]
    except TooComplex as error:
        location = Location(1, 1)
        return [Finding(SYNTAX_ERROR, "syntax-error", str(error), path, location, location)]
    if not rules:
        return []
    model, raws = _violations(module, rules, settings)
    return _findings(path, source, module, model, raws, edits=fix_edits) if raws else []


def _fixable(raw: _Raw, unsafe: bool) -> bool:
    fix = raw.violation.fix
    return fix is not None and (fix.applicability == SAFE or (unsafe and fix.applicability == UNSAFE))


class FixError(Exception):
    pass


def fix_source(source: str, path: str = "<string>", settings: Settings | None = None,
               unsafe: bool = False) -> str:
    """`source` with every applicable fix applied (safe ones, and unsafe ones when asked).

    Raises FixError when the fixes cannot be trusted, and cst.ParserSyntaxError / SyntaxError when
    `source` does not parse."""
    return _fix_source(source, path, settings or Settings(), unsafe).text


class _Fixed:
    """The outcome of the fix loop: the final text, how many fixes went in, and the analysis of that
    final text (so the findings that remain need no second parse)."""

    __slots__ = ("text", "applied", "module", "model", "raws")

    def __init__(self, text: str, applied: int, module: cst.Module, model: ScriptModel | None,
                 raws: list[_Raw]) -> None:
        self.text, self.applied, self.module, self.model, self.raws = text, applied, module, model, raws


def _compiles(text: str) -> bool:
    """Does Python compile it (to bytecode: this also catches `return` outside a function, a repeated
    argument name, `*a = 1`, which a parser accepts)?"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of the user's code are not ours to print
            compile(text, "<source>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def _fix_source(source: str, path: str, settings: Settings, unsafe: bool) -> _Fixed:
    """Apply the fixes, pass after pass, until none is left. Every intermediate result must parse (with
    libcst and, when the original did, with Python's own compiler); a fix that changes nothing, or fixes
    that never settle, are refused. Raises FixError, or the parse errors of `source` itself."""
    rules = settings.enabled_rules(path)
    text, applied = source, 0
    module = _parse(text)
    if not rules:
        return _Fixed(text, 0, module, None, [])
    model, raws = _violations(module, rules, settings)
    python_accepts_original: bool | None = None
    for _ in range(_MAX_FIX_PASSES):
        suppressions = _Suppressions(text)
        pending = [r for r in raws if _fixable(r, unsafe)
                   and not suppressions.suppressed(r.rule.code, model.line(r.violation.node))]
        if not pending:
            return _Fixed(text, applied, module, model, raws)
        edits = [edit for raw in pending for edit in raw.violation.fix.edits]
        codes = ", ".join(sorted({raw.rule.code for raw in pending}))
        try:
            candidate = apply_edits(module, edits).code
        except Exception as error:
            raise FixError(f"a fix ({codes}) could not be applied: {error}") from None
        if candidate == text:
            raise FixError(f"a fix ({codes}) changed nothing; the finding would stay")
        try:
            module = _parse(candidate)
        except (cst.ParserSyntaxError, SyntaxError, TooComplex) as error:
            why = getattr(error, "message", None) or getattr(error, "msg", None) or str(error)
            raise FixError(f"the code after the fix ({codes}) would not parse: "
                           f"{str(why).strip().splitlines()[0]}") from None
        if python_accepts_original is None:
            python_accepts_original = _compiles(source)
        if python_accepts_original and not _compiles(candidate):
            raise FixError(f"the code after the fix ({codes}) would not compile with Python")
        text, applied = candidate, applied + len(pending)
        model, raws = _violations(module, rules, settings)
    raise FixError(f"the fixes did not settle after {_MAX_FIX_PASSES} passes (a fix keeps re-triggering its rule)")


def check_file(path: Path, settings: Settings, fix: bool = False, unsafe: bool = False,
               diff: bool = False, *, fix_edits: bool = True) -> FileResult:
    """Lint one file; with fix/diff compute the fixed text, and with fix (not diff) write it safely.

    The file is written only when every fix applied, the result parses and re-lints clean of them, it
    encodes back to the file's encoding (BOM and newlines kept), and the file did not change meanwhile;
    otherwise it is left untouched and `fix_error` says why. Notebooks are never written.
    """
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
            fixed = _fix_source(source.text, name, settings, unsafe)
        except FixError as error:
            result.fix_error = str(error)
        except (cst.ParserSyntaxError, SyntaxError, TooComplex):
            pass  # reported below
        else:
            if fixed.text == source.text:  # nothing to fix: the loop's analysis is the lint
                result.findings = _final_findings(name, fixed, fix_edits)
                return result
            try:
                data = source.to_bytes(fixed.text)  # --diff must not show what --fix could not write
            except ValueError as error:
                result.fix_error = str(error)
            else:
                result.original, result.fixed, result.fixed_count = source.text, fixed.text, fixed.applied
                if fix and not diff:
                    try:
                        write_atomic(path, data, expect=source.signature)
                    except OSError as error:
                        result.fix_error = f"could not write the fixed file: {error.strerror or error}"
                        result.original = result.fixed = None
                        result.fixed_count = 0
                    else:
                        result.written = True
                        result.findings = _final_findings(name, fixed, fix_edits)
                        return result
    result.findings = _map_notebook(lint_source(source.text, name, settings, fix_edits=fix_edits), source)
    return result


def _final_findings(path: str, fixed: _Fixed, edits: bool) -> list[Finding]:
    if not fixed.raws or fixed.model is None:
        return []
    return _findings(path, fixed.text, fixed.module, fixed.model, fixed.raws, edits=edits)


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


def _error_result(path: Path, message: str) -> FileResult:
    location = Location(1, 1)
    message = " ".join(message.split())  # one line, whatever an exception says
    return FileResult(str(path), [Finding(IO_ERROR, "io-error", message, str(path), location, location)])


def _check_one(args) -> FileResult:
    path, settings, fix, unsafe, diff, fix_edits = args
    try:
        return check_file(path, settings, fix, unsafe, diff, fix_edits=fix_edits)
    except RecursionError:
        return _error_result(path, "File is nested too deeply to analyse")
    except MemoryError:
        return _error_result(path, "Out of memory while analysing this file")
    except Exception as error:  # a bug in trainlint must not stop the other files from being checked
        return _error_result(path, f"Internal error while checking this file ({type(error).__name__}: {error}); "
                                   f"please report it")


def _check_chunk(tasks: list[tuple]) -> list[FileResult]:
    return [_check_one(task) for task in tasks]


def _check_isolated(task: tuple) -> FileResult:
    """One file in a process of its own, after a worker died: find the file that kills it, and go on."""
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            return pool.submit(_check_one, task).result()
    except BrokenProcessPool:
        return _error_result(task[0], "trainlint crashed while checking this file (the process died); "
                                      "please report it")


def check_files(files: list[tuple[Path, Settings]], fix: bool = False, unsafe: bool = False, diff: bool = False,
                jobs: int | None = None, progress=None, *, fix_edits: bool = True,
                read_only: Container[Path] = ()) -> Iterator[FileResult]:
    """A FileResult per file, in the order given; in parallel across cores when there are many.
    The files in `read_only` are only linted, never fixed nor diffed (see files.discover).

    The worker processes start when this is called, not when the results are first read: call it
    before starting any thread (a progress bar), so that workers are not forked from a threaded process.
    """
    tasks = [(path, settings, fix, unsafe, diff, fix_edits) if path not in read_only
             else (path, settings, False, unsafe, False, fix_edits) for path, settings in files]
    jobs = jobs or os.cpu_count() or 1
    if len(tasks) < _PARALLEL_THRESHOLD or jobs == 1:
        return _sequential(tasks, progress)
    jobs = min(jobs, len(tasks))
    size = max(1, len(tasks) // (jobs * 8))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_tune_gc)
    try:
        futures = [pool.submit(_check_chunk, chunk) for chunk in chunks]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return _collect(pool, chunks, futures, progress)


# A syntax tree is hundreds of thousands of small objects without cycles: the collector's frequent
# young-generation passes over them cost ~10% of the run and free nothing. Collect less often.
_GC_THRESHOLD = 20_000


def _tune_gc() -> None:
    gc.set_threshold(max(gc.get_threshold()[0], _GC_THRESHOLD), *gc.get_threshold()[1:])


@contextlib.contextmanager
def _tuned_gc():
    before = gc.get_threshold()
    _tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _sequential(tasks: list[tuple], progress) -> Iterator[FileResult]:
    with _tuned_gc():
        for task in tasks:
            result = _check_one(task)
            yield result
            if progress:
                progress()


def _collect(pool: ProcessPoolExecutor, chunks: list[list[tuple]], futures: list, progress) -> Iterator[FileResult]:
    try:
        broken = False
        for chunk, future in zip(chunks, futures):
            if not broken:
                try:
                    results = future.result()
                except BrokenProcessPool:
                    broken = True
            if broken:
                results = [_check_isolated(task) for task in chunk]
            for result in results:
                yield result
                if progress:
                    progress()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
