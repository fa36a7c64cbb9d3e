"""The library API and one file's run: lint text, fix text, check a file on disk (and write its fixes)."""
from __future__ import annotations

import re
from pathlib import Path

from ..config import Settings
from ..diagnostics import IO_ERROR, FileResult, Finding, Location
from ..files import ReadError, SourceFile, read_source
from ..fixes import write_atomic
from ..analysis.links import Links
from .analyse import analyse, links_for
from .cache import Cache
from .fixing import FixError, Fixed, fix_text
from .parse import UnparsableSource


def lint_source(source: str, path: str = "<string>", settings: Settings | None = None, *,
                fix_edits: bool = True) -> list[Finding]:
    """Findings for `source`, sorted by position. Never raises for any text: a file Python cannot parse
    gives one E999 finding. When `path` names a file of a project, the helpers it imports from the project's
    other modules are followed (read, never run).

    Each fixable finding carries its fix; with `fix_edits` (the default) also the text edit the fix makes."""
    settings = settings or Settings()
    try:
        analysis = analyse(source, path, settings, links=links_for(path, settings))
    except UnparsableSource as error:
        return [error.finding]
    return analysis.findings(fix_edits)


def fix_source(source: str, path: str = "<string>", settings: Settings | None = None,
               unsafe: bool = False) -> str:
    """`source` with every applicable fix applied (safe ones, and unsafe ones when asked).

    A fix that would break the code or not remove its finding is left out, and the others are applied.
    Raises UnparsableSource (a SyntaxError) when `source` is not Python that CPython can parse, and
    FixError when the fixes never settle."""
    return fix_text(source, path, settings or Settings(), unsafe).text


def check_file(path: Path, settings: Settings, fix: bool = False, unsafe: bool = False,
               diff: bool = False, *, fix_edits: bool = True, cache: Cache | None = None) -> FileResult:
    """Lint one file; with fix/diff compute the fixed text, and with fix (not diff) write it safely.

    The file is written only when the fixed text parses and re-lints, it encodes back to the file's
    encoding (BOM and newlines kept), and the file did not change meanwhile; otherwise it is left untouched
    and `fix_error` says why. Notebooks are never written. With a `cache`, an unchanged file's findings
    come from it (when there is nothing to fix), and new findings go into it.
    """
    result = _check(path, settings, fix, unsafe, diff, fix_edits or cache is not None, cache)
    return result


def _check(path: Path, settings: Settings, fix: bool, unsafe: bool, diff: bool, fix_edits: bool,
           cache: Cache | None) -> FileResult:
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
    links = links_for(name, settings)
    key = cache.key(name, source.text.encode("utf-8", "surrogatepass"), settings) if cache else None
    if key is not None:
        cached = cache.get(key, name, _digest(links))
        if cached is not None and not ((fix or diff) and source.notebook is None
                                       and any(_applies(f, unsafe) for f in cached)):
            result.findings = cached
            return result
    if (fix or diff) and source.notebook is None:
        try:
            fixed = fix_text(source.text, name, settings, unsafe, links)
        except FixError as error:
            result.fix_error = str(error)
        except UnparsableSource:
            pass  # reported below
        else:
            result.refused_fixes = fixed.refused
            if fixed.text == source.text:  # nothing to fix: the loop's analysis is the lint
                result.findings = fixed.analysis.findings(fix_edits)
                _store(cache, key, result.findings, links)
                return result
            if _write(path, source, fixed, result, fix and not diff):
                result.findings = fixed.analysis.findings(fix_edits)
                if cache is not None:
                    _store(cache, cache.key(name, fixed.text.encode("utf-8", "surrogatepass"), settings),
                           result.findings, links)
                return result
    try:
        findings = analyse(source.text, name, settings, links=links).findings(fix_edits)
    except UnparsableSource as error:
        findings = [error.finding]
    result.findings = _map_notebook(findings, source)
    if not result.fix_error:
        _store(cache, key, result.findings, links)
    return result


def _digest(links: Links):
    """How the cache checks that the project modules an entry depended on are unchanged."""
    project = getattr(links, "project", None)
    if project is None:
        return None

    def digest(path: str) -> str | None:
        module = project.module(Path(path))
        return module.digest if module is not None else None
    return digest


def _applies(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (finding.fix.applicability == "safe" or unsafe)


def _store(cache: Cache | None, key: str | None, findings: list[Finding], links: Links) -> None:
    if cache is not None and key is not None:
        cache.put(key, findings, {str(path): digest for path, digest in getattr(links, "read", {}).items()})


def _write(path: Path, source: SourceFile, fixed: Fixed, result: FileResult, write: bool) -> bool:
    """Record the fixed text in `result` and, when asked, write it. True when the fixed text is what the
    file now holds (so the findings of the fixed text are the file's)."""
    try:
        data = source.to_bytes(fixed.text)  # --diff must not show what --fix could not write
    except ValueError as error:
        result.fix_error = str(error)
        return False
    result.original, result.fixed, result.fixed_count = source.text, fixed.text, fixed.applied
    if not write:
        return False
    try:
        write_atomic(path, data, expect=source.signature)
    except OSError as error:
        result.fix_error = f"could not write the fixed file: {error.strerror or error}"
        result.original = result.fixed = None
        result.fixed_count = 0
        return False
    result.written = True
    return True


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
