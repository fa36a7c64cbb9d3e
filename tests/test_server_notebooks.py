"""`trainlint server` with notebooks sent as LSP notebook documents (notebookDocument/*): a real client
over stdio, as in test_server.py. A notebook is linted as the CLI lints the .ipynb file, and each cell
gets its own diagnostics."""
from __future__ import annotations

import json

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_server import client, codes, start, until  # noqa: F401 - `client` is the pytest-lsp fixture

import trainlint

SETUP = "import torch\nmodel = torch.nn.Linear(4, 1)\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
LOOP = ("%matplotlib inline\n"
        "for step in range(10):\n"
        "    loss = model(torch.randn(8, 4)).pow(2).mean()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n")
FIXED_LOOP = LOOP.replace("for step in range(10):\n", "for step in range(10):\n    optimizer.zero_grad()\n")
CELLS = [("code", SETUP), ("markdown", "# Training"), ("code", LOOP)]


def cell_uri(root, number: int) -> str:
    return f"vscode-notebook-cell:{root.as_posix()}/train.ipynb#cell{number}"


def open_notebook(client: LanguageClient, root) -> str:
    uri = (root / "train.ipynb").as_uri()
    cells, documents = [], []
    for number, (kind, text) in enumerate(CELLS, start=1):
        code = kind == "code"
        cells.append(types.NotebookCell(kind=types.NotebookCellKind.Code if code else types.NotebookCellKind.Markup,
                                        document=cell_uri(root, number)))
        documents.append(types.TextDocumentItem(uri=cell_uri(root, number), language_id="python" if code else "markdown",
                                                version=1, text=text))
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri=uri, notebook_type="jupyter-notebook", version=1, cells=cells),
        cell_text_documents=documents))
    return uri


def published(client: LanguageClient, uri: str) -> list[types.PublishDiagnosticsParams]:
    return [p for p in client.published if p.uri == uri]


def cli_findings(root) -> list:
    """What `trainlint check` reports for the same notebook written as an .ipynb file."""
    notebook = {"cells": [{"cell_type": kind, "metadata": {}, "source": text,
                           **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                          for kind, text in CELLS],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = root / "written.ipynb"
    path.write_text(json.dumps(notebook))
    from trainlint.config import Settings
    from trainlint.engine import check_file
    return check_file(path, Settings()).findings


@pytest.mark.asyncio
async def test_a_notebook_document_is_linted_across_its_cells_like_the_ipynb_file(client: LanguageClient, tmp_path):
    """The loop in cell 3 steps the optimizer built in cell 1 and never clears it; `%matplotlib inline` is
    IPython, not a syntax error. The diagnostic goes to cell 3, on the row the CLI names for the .ipynb."""
    await start(client, tmp_path)
    open_notebook(client, tmp_path)
    found = await until(lambda: published(client, cell_uri(tmp_path, 3)), "diagnostics for cell 3")
    diagnostics = found[-1].diagnostics
    assert codes(diagnostics) == ["TL001"]
    (expected,) = cli_findings(tmp_path)
    assert expected.cell == 3
    assert diagnostics[0].range.start.line == expected.location.row - 1 == 3  # `    loss.backward()`
    assert diagnostics[0].message == expected.message and "cell 3" in expected.message
    assert published(client, cell_uri(tmp_path, 1)) == [] and published(client, cell_uri(tmp_path, 2)) == []


@pytest.mark.asyncio
async def test_editing_a_cell_clears_its_diagnostic_and_closing_clears_all(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_notebook(client, tmp_path)
    target = cell_uri(tmp_path, 3)
    await until(lambda: [p for p in published(client, target) if p.diagnostics], "the TL001 diagnostic")
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=uri, version=2),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=target, version=2),
                changes=[types.TextDocumentContentChangeWholeDocument(text=FIXED_LOOP)])]))))
    await until(lambda: not published(client, target)[-1].diagnostics, "cell 3's diagnostics cleared")
    assert trainlint.lint_source(SETUP + FIXED_LOOP.replace("%matplotlib inline\n", ""), "x.py") == []

    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=uri, version=3),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=target, version=3),
                changes=[types.TextDocumentContentChangeWholeDocument(text=LOOP)])]))))
    await until(lambda: published(client, target)[-1].diagnostics, "the finding back after undoing the fix")
    client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
        notebook_document=types.NotebookDocumentIdentifier(uri=uri),
        cell_text_documents=[types.TextDocumentIdentifier(uri=cell_uri(tmp_path, n)) for n in (1, 2, 3)]))
    await until(lambda: not published(client, target)[-1].diagnostics, "diagnostics cleared on close")
