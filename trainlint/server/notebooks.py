"""Notebooks as LSP notebook documents (notebookDocument/* sync, LSP 3.17).

The client sends the notebook and its cells; pygls keeps them in the workspace. A notebook is linted as
the CLI lints an .ipynb file: its code cells as one text, so a training loop in one cell sees the optimizer
built in another. Each cell gets its own diagnostics (published to the cell's URI), positions counted within
the cell. Quick fixes stay with the CLI (`trainlint check --fix notebook.ipynb` rewrites only the affected
cells); a cell sent as a plain text document (`vscode-notebook-cell:` without notebook sync) is never linted
alone, out of its context.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lsprotocol import types

from .documents import Outcome, analyse_notebook
from .positions import LineIndex

PYTHON_IDS = ("python", "py", "python3")
# Every notebook type whose cells are Python: the server lints the Python cells and leaves the rest.
SYNC_OPTIONS = types.NotebookDocumentSyncOptions(
    notebook_selector=[types.NotebookDocumentFilterWithCells(
        notebook="*", cells=[types.NotebookCellLanguage(language="python")])],
    save=True)


@dataclass
class NotebookState:
    pending: asyncio.Future | None = None
    published: set[str] = field(default_factory=set)  # cell URIs that were sent diagnostics
    config_error: str | None = None


def cells_of(server, notebook: types.NotebookDocument) -> list[tuple[str, str, str, str]]:
    """(kind, source, cell URI, language) for each cell, in order; kind is "code" for Python code cells."""
    found = []
    for cell in notebook.cells:
        document = server.workspace.get_text_document(cell.document)
        language = (document.language_id or "").lower()
        code = cell.kind == types.NotebookCellKind.Code and language in PYTHON_IDS
        found.append(("code" if code else "markdown", document.source, cell.document, language))
    return found


def snapshot(server, uri: str) -> tuple | None:
    """The notebook's cells as they are now (what a result was computed on), None when it is closed."""
    notebook = server.workspace.get_notebook_document(notebook_uri=uri)
    if notebook is None:
        return None
    return tuple((kind, source, cell_uri) for kind, source, cell_uri, _ in cells_of(server, notebook))


async def lint_and_publish(server, uri: str, delay: float, to_diagnostic, path) -> None:
    """Lint the notebook after `delay` and publish each code cell's diagnostics, unless the notebook
    changed meanwhile (a newer lint is then pending)."""
    if delay:
        await asyncio.sleep(delay)
    cells = snapshot(server, uri)
    if cells is None:
        return
    generation = server.generation
    outcome: Outcome = await server.run_lint(
        uri, analyse_notebook, path(uri), [(kind, source) for kind, source, _ in cells], server.settings)
    state = server.notebooks.get(uri)
    if state is None or snapshot(server, uri) != cells or generation != server.generation:
        return
    server.note_config_error(uri, state, outcome.config_error)
    by_cell: dict[int, list] = {}
    for finding in outcome.findings:
        by_cell.setdefault(finding.cell or 1, []).append(finding)
    published = set()
    for number, (kind, source, cell_uri) in enumerate(cells, start=1):
        index = LineIndex(source, server.encoding)
        diagnostics = [to_diagnostic(finding, index) for finding in by_cell.get(number, [])] if kind == "code" else []
        if diagnostics or cell_uri in state.published:  # new ones, or clearing what was shown before
            server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=diagnostics))
        if diagnostics:
            published.add(cell_uri)
    cell_uris = {cell_uri for _, _, cell_uri in cells}
    for gone in state.published - cell_uris:  # cells deleted since
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=gone, diagnostics=[]))
    state.published = published


def clear(server, uri: str) -> None:
    state = server.notebooks.pop(uri, None)
    if state is None:
        return
    if state.pending is not None:
        state.pending.cancel()
    for cell_uri in state.published:
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=[]))
