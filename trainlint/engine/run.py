"""The library API and one file's run: lint text, fix text, check a file on disk (and write its fixes)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..analysis.links import Links
from ..config import Settings
from ..diagnostics import IO_ERROR, FileResult, Finding, Location
from ..files import ReadError, SourceFile, read_source
from ..fixes import write_atomic
from .analyse import analyse, links_for
from .cache import Cache
from .fixing import FixError, Fixed, fix_text
from .parse import UnparsableSource

if TYPE_CHECKING:  # imported only when a notebook is read
    from ..notebook import NotebookSource


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
        if cached is not None and not ((fix or diff) and any(_applies(f, unsafe) for f in cached)):
            result.findings = cached
            return result
    return _analysed(path, source, result, links, key, settings, fix, unsafe, diff, fix_edits, cache)


def from_cache(path: Path, settings: Settings, fix: bool, unsafe: bool, diff: bool,
               cache: Cache) -> FileResult | None:
    """The file's result when the cache has it (and nothing is to be fixed), without analysing anything: what
    a run checks first, in one process, before it starts workers for the files that changed."""
    name = str(path)
    try:
        source = read_source(path)
    except ReadError:
        return None
    if source is None:
        return FileResult(name)
    key = cache.key(name, source.text.encode("utf-8", "surrogatepass"), settings)
    cached = cache.get(key, name, _digest(links_for(name, settings)))
    if cached is None or ((fix or diff) and any(_applies(f, unsafe) for f in cached)):
        return None
    return FileResult(name, cached)


def _analysed(path: Path, source: SourceFile, result: FileResult, links: Links, key: str | None,
              settings: Settings, fix: bool, unsafe: bool, diff: bool, fix_edits: bool,
              cache: Cache | None) -> FileResult:
    name = result.filename
    if fix or diff:
        try:
            fixed = fix_text(source.text, name, settings, unsafe, links)
        except FixError as error:
            result.fix_error = str(error)
        except UnparsableSource:
            pass  # reported below
        else:
            result.refused_fixes = [source.notebook.cell_lines(why) if source.notebook else why
                                    for why in fixed.refused]
            if fixed.text == source.text:  # nothing to fix: the loop's analysis is the lint
                result.findings = _map_notebook(fixed.analysis.findings(fix_edits), source.notebook)
                _store(cache, key, result.findings, links)
                return result
            written = _write(path, source, fixed, result, fix and not diff)
            if written is not None:
                text, notebook = written
                if text == fixed.text:  # else a notebook kept a cell separator: lint what was written
                    result.findings = _map_notebook(fixed.analysis.findings(fix_edits), notebook)
                    if cache is not None:
                        _store(cache, cache.key(name, text.encode("utf-8", "surrogatepass"), settings),
                               result.findings, links)
                    return result
                source = dataclasses.replace(source, text=text, notebook=notebook)
                key = cache.key(name, text.encode("utf-8", "surrogatepass"), settings) if cache else None
    try:
        findings = analyse(source.text, name, settings, links=links).findings(fix_edits)
    except UnparsableSource as error:
        findings = [error.finding]
    result.findings = _map_notebook(findings, source.notebook)
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


def _write(path: Path, source: SourceFile, fixed: Fixed, result: FileResult,
           write: bool) -> tuple[str, NotebookSource | None] | None:
    """Record the fixed text in `result` and, when asked, write it (a notebook: only its changed cells'
    sources). The text the file now holds and its notebook map when it was written, else None."""
    notebook, text = source.notebook, fixed.text
    try:  # --diff must not show what --fix could not write
        if notebook is not None:  # the changed cells go back into the notebook's JSON
            change = notebook.apply_fix(fixed.text)
            data, notebook, text = change.data, change.source, change.source.text
            result.cell_changes = change.cells
        else:
            data = source.to_bytes(fixed.text)
    except ValueError as error:
        result.fix_error = str(error)
        return None
    result.original, result.fixed, result.fixed_count = source.text, text, fixed.applied
    if not write:
        return None
    try:
        write_atomic(path, data, expect=source.signature)
    except OSError as error:
        result.fix_error = f"could not write the fixed file: {error.strerror or error}"
        result.original = result.fixed = None
        result.fixed_count, result.cell_changes = 0, ()
        return None
    result.written = True
    return text, notebook


def _map_notebook(findings: list[Finding], notebook: NotebookSource | None) -> list[Finding]:
    return findings if notebook is None else notebook.locate_findings(findings)
