"""`trainlint server` end to end: a real client (pytest-lsp) talks LSP over stdio to
`python -m trainlint server` run from this checkout, on files written to a temporary folder.

Waits poll the client's received messages with a generous deadline (the machine may be loaded);
nothing here asserts how fast anything is (bench/lsp_latency.py measures that).
"""
from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

import trainlint
from trainlint.server import edits as text_edits
from trainlint.server.positions import LineIndex

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 90.0  # seconds; a generous bound for a loaded 2-core machine, never a measurement

TRAIN = textwrap.dedent("""\
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(10):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        loss.backward()
        optimizer.step()
""")
BACKWARD_LINE = 6  # 0-based: `    loss.backward()`
# TL001 and TL004 (`total += loss` keeps every iteration's graph): both safe to fix.
ACCUMULATING = TRAIN.replace("for step", "total = 0\nfor step").replace(
    "    optimizer.step()\n", "    optimizer.step()\n    total += loss\n")


def _client() -> LanguageClient:
    """The test client, recording every publishDiagnostics (with its version), not just the last."""
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {method: handler for method, handler in DEFAULT_CLIENT_FEATURES.items()
                                   if method != types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS})
    client.published = []

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def publish(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        ls.diagnostics[params.uri] = params.diagnostics
        ls.published.append(params)

    return client


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "trainlint", "server"],
    server_env={**os.environ, "PYTHONPATH": str(ROOT)},
    client_factory=_client,
))
async def client(lsp_client: LanguageClient):
    yield
    if lsp_client.capabilities is None:  # the test failed before `initialize`: no session to shut down
        lsp_client._server.terminate()
    else:
        await lsp_client.shutdown_session()


CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
            version_support=True, code_description_support=True),
        code_action=types.CodeActionClientCapabilities(
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(
                    value_set=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll])),
            is_preferred_support=True),
    ),
    workspace=types.WorkspaceClientCapabilities(
        configuration=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True)),
    window=types.WindowClientCapabilities(
        show_message=types.ShowMessageRequestClientCapabilities()),
)


async def start(client: LanguageClient, root: Path, options=None, encodings=None) -> types.InitializeResult:
    capabilities = CAPABILITIES
    if encodings is not None:
        capabilities = types.ClientCapabilities(
            text_document=CAPABILITIES.text_document, workspace=CAPABILITIES.workspace,
            window=CAPABILITIES.window, general=types.GeneralClientCapabilities(position_encodings=encodings))
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="project")],
        initialization_options=options))


def open_file(client: LanguageClient, path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


async def until(condition, what: str):
    """Poll until `condition()` is truthy; fail (saying what was awaited) after DEADLINE."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def until_async(condition, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await condition():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def diagnostics_for(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    """The diagnostics of the first publication for `version` of `uri`."""
    found = await until(lambda: [p for p in client.published if p.uri == uri and p.version == version],
                        f"diagnostics for version {version} of {uri}")
    return list(found[0].diagnostics)


async def code_actions(client: LanguageClient, uri: str, diagnostic: types.Diagnostic | None = None,
                       only=None) -> list[types.CodeAction]:
    rng = diagnostic.range if diagnostic is not None else types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
        context=types.CodeActionContext(diagnostics=[diagnostic] if diagnostic else [], only=only,
                                        trigger_kind=types.CodeActionTriggerKind.Invoked)))
    return [action for action in result or [] if isinstance(action, types.CodeAction)]


def apply_edit(text: str, uri: str, edit: types.WorkspaceEdit, encoding: str = "utf-16") -> str:
    """Apply a WorkspaceEdit to `text` as an editor would."""
    if edit.document_changes:
        lsp_edits = [e for change in edit.document_changes if change.text_document.uri == uri for e in change.edits]
    else:
        lsp_edits = list(edit.changes[uri])
    index = LineIndex(text, encoding)
    offsets = [(index.offset(e.range.start.line, e.range.start.character),
                index.offset(e.range.end.line, e.range.end.character), e.new_text) for e in lsp_edits]
    return text_edits.apply(text, offsets)


def codes(diagnostics) -> list[str]:
    return sorted(str(d.code) for d in diagnostics)


@pytest.mark.asyncio
async def test_a_missing_zero_grad_is_reported_where_the_cli_reports_it(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    diagnostics = await diagnostics_for(client, uri, 1)
    assert codes(diagnostics) == ["TL001"]
    (diagnostic,) = diagnostics
    assert diagnostic.range == types.Range(start=types.Position(line=BACKWARD_LINE, character=4),
                                           end=types.Position(line=BACKWARD_LINE, character=19))
    assert diagnostic.severity == types.DiagnosticSeverity.Warning
    assert diagnostic.source == "trainlint"
    assert diagnostic.code_description.href.endswith("/docs/rules/TL001.md")
    (finding,) = trainlint.lint_source(TRAIN, "train.py")
    assert finding.message == diagnostic.message and diagnostic.code_description.href == finding.url


@pytest.mark.asyncio
async def test_applying_the_quick_fix_and_sending_the_change_clears_the_finding(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    actions = await code_actions(client, uri, diagnostic)
    fixes = [a for a in actions if a.title.startswith("Fix TL001:")]
    assert len(fixes) == 1 and fixes[0].kind == types.CodeActionKind.QuickFix and fixes[0].is_preferred
    fixed = apply_edit(TRAIN, uri, fixes[0].edit)
    assert "    optimizer.zero_grad()\n    loss = model" in fixed
    change(client, uri, 2, fixed)
    assert "TL001" not in codes(await diagnostics_for(client, uri, 2))


@pytest.mark.asyncio
async def test_fix_all_applies_every_safe_fix_as_the_cli_would(client: LanguageClient, tmp_path):
    text = ACCUMULATING
    assert {f.code for f in trainlint.lint_source(text, "train.py")} == {"TL001", "TL004"}
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", text)
    assert codes(await diagnostics_for(client, uri, 1)) == ["TL001", "TL004"]
    actions = await code_actions(client, uri, only=[types.CodeActionKind.SourceFixAll])
    assert [a.kind for a in actions] == ["source.fixAll.trainlint"]
    fixed = apply_edit(text, uri, actions[0].edit)
    assert fixed == trainlint.fix_source(text, str(tmp_path / "train.py"))
    change(client, uri, 2, fixed)
    assert codes(await diagnostics_for(client, uri, 2)) == []


@pytest.mark.asyncio
async def test_fix_all_is_not_offered_when_nothing_is_fixable(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    clean = TRAIN.replace("    loss.backward()", "    optimizer.zero_grad()\n    loss.backward()")
    uri = open_file(client, tmp_path / "train.py", clean)
    assert codes(await diagnostics_for(client, uri, 1)) == []
    assert await code_actions(client, uri, only=[types.CodeActionKind.SourceFixAll]) == []


@pytest.mark.asyncio
async def test_disable_for_this_line_adds_a_noqa_comment(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    actions = [a for a in await code_actions(client, uri, diagnostic) if a.title == "Disable TL001 for this line"]
    assert len(actions) == 1
    disabled = apply_edit(TRAIN, uri, actions[0].edit)
    assert disabled.splitlines()[BACKWARD_LINE] == "    loss.backward()  # noqa: TL001"
    change(client, uri, 2, disabled)
    assert codes(await diagnostics_for(client, uri, 2)) == []


@pytest.mark.asyncio
async def test_disable_for_this_line_merges_with_an_existing_noqa_comment(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    text = TRAIN.replace("    loss.backward()", "    loss.backward()  # noqa: E501")
    uri = open_file(client, tmp_path / "train.py", text)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    (action,) = [a for a in await code_actions(client, uri, diagnostic) if a.title.startswith("Disable")]
    disabled = apply_edit(text, uri, action.edit)
    assert disabled.splitlines()[BACKWARD_LINE] == "    loss.backward()  # noqa: E501, TL001"
    change(client, uri, 2, disabled)
    assert codes(await diagnostics_for(client, uri, 2)) == []


@pytest.mark.asyncio
async def test_a_configuration_error_is_shown_once_and_the_server_goes_on(client: LanguageClient, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.trainlint]\nselect = ["TL999"]\n')
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    assert await diagnostics_for(client, uri, 1) == []
    await until(lambda: client.messages, "a window/showMessage")
    (message,) = client.messages
    assert message.type == types.MessageType.Error
    assert "TL999" in message.message and str(pyproject) in message.message
    change(client, uri, 2, TRAIN + "\n")  # the same error again: not shown again
    assert await diagnostics_for(client, uri, 2) == []
    assert len(client.messages) == 1
    pyproject.write_text('[tool.trainlint]\nselect = ["TL001"]\n')  # fixed: the next lint reads it
    change(client, uri, 3, TRAIN)
    assert codes(await diagnostics_for(client, uri, 3)) == ["TL001"]


@pytest.mark.asyncio
async def test_per_file_ignores_and_select_from_pyproject_apply(client: LanguageClient, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.trainlint]\nselect = ["TL001", "TL004"]\nper-file-ignores = { "scratch_*.py" = ["TL001"] }\n')
    text = ACCUMULATING
    await start(client, tmp_path)
    scratch = open_file(client, tmp_path / "scratch_run.py", text)
    train = open_file(client, tmp_path / "train.py", text.replace("lr=0.1", "lr=5.0"))
    assert codes(await diagnostics_for(client, scratch, 1)) == ["TL004"]
    assert codes(await diagnostics_for(client, train, 1)) == ["TL001", "TL004"]  # TL006 is not selected


@pytest.mark.asyncio
async def test_a_syntax_error_is_an_e999_error(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", "import torch\nfor x in range(3)\n    loss.backward()\n")
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    assert diagnostic.code == "E999" and diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range.start.line == 1
    assert await code_actions(client, uri, diagnostic) == []


UNSAFE = TRAIN.replace("SGD(model.parameters(), lr=0.1)", "Adam(model.parameters(), lr=0.5)").replace(
    "    loss.backward()", "    optimizer.zero_grad()\n    loss.backward()")


@pytest.mark.asyncio
async def test_unsafe_fixes_are_offered_only_when_the_editor_allows_them(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", UNSAFE)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    assert diagnostic.code == "TL006"
    titles = [a.title for a in await code_actions(client, uri, diagnostic)]
    assert titles == ["Disable TL006 for this line"]
    assert await code_actions(client, uri, only=[types.CodeActionKind.SourceFixAll]) == []

    client.set_configuration({"unsafeFixes": True}, section="trainlint")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    actions: list[types.CodeAction] = []

    async def offered() -> bool:  # the setting arrives through a workspace/configuration request
        actions[:] = await code_actions(client, uri, diagnostic)
        return any(a.title.startswith("Fix TL006 (unsafe):") for a in actions)

    await until_async(offered, "the unsafe fix to be offered")
    (fix,) = [a for a in actions if a.title.startswith("Fix TL006 (unsafe):")]
    assert not fix.is_preferred
    fixed = apply_edit(UNSAFE, uri, fix.edit)
    assert fixed == trainlint.fix_source(UNSAFE, str(tmp_path / "train.py"), unsafe=True)


@pytest.mark.asyncio
async def test_unsafe_fixes_from_initialization_options(client: LanguageClient, tmp_path):
    await start(client, tmp_path, options={"unsafeFixes": True})
    uri = open_file(client, tmp_path / "train.py", UNSAFE)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    titles = [a.title for a in await code_actions(client, uri, diagnostic)]
    assert any(t.startswith("Fix TL006 (unsafe):") for t in titles)
    (fix_all,) = await code_actions(client, uri, only=[types.CodeActionKind.SourceFixAll])
    assert "unsafe" in fix_all.title


@pytest.mark.asyncio
async def test_editor_select_and_ignore_override_the_configuration(client: LanguageClient, tmp_path):
    await start(client, tmp_path, options={"settings": {"ignore": ["TL001"]}})
    uri = open_file(client, tmp_path / "train.py", ACCUMULATING)
    assert codes(await diagnostics_for(client, uri, 1)) == ["TL004"]


@pytest.mark.parametrize("encodings, expected", [(None, "utf-16"), (["utf-8", "utf-16"], "utf-8")])
@pytest.mark.asyncio
async def test_positions_count_code_units_of_the_negotiated_encoding(client: LanguageClient, tmp_path,
                                                                     encodings, expected):
    result = await start(client, tmp_path, encodings=encodings)
    assert result.capabilities.position_encoding == expected
    # An emoji (outside the BMP: 1 Python character, 2 UTF-16 units, 4 UTF-8 bytes) and an accented
    # letter (2 UTF-8 bytes) before the reported call on its line.
    text = TRAIN.replace("    loss.backward()", '    tag = "é😀"; loss.backward()')
    uri = open_file(client, tmp_path / "train.py", text)
    (diagnostic,) = await diagnostics_for(client, uri, 1)
    prefix = '    tag = "é😀"; '
    width = len(prefix.encode("utf-16-le")) // 2 if expected == "utf-16" else len(prefix.encode("utf-8"))
    assert (len(prefix), width) == ((16, 17) if expected == "utf-16" else (16, 20))
    assert diagnostic.range.start == types.Position(line=BACKWARD_LINE, character=width)
    assert diagnostic.range.end == types.Position(line=BACKWARD_LINE, character=width + len("loss.backward()"))
    (fix,) = [a for a in await code_actions(client, uri, diagnostic) if a.title.startswith("Disable")]
    disabled = apply_edit(text, uri, fix.edit, encoding=expected)
    assert disabled.splitlines()[BACKWARD_LINE] == '    tag = "é😀"; loss.backward()  # noqa: TL001'


@pytest.mark.asyncio
async def test_the_latest_version_wins_and_close_clears(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    assert codes(await diagnostics_for(client, uri, 1)) == ["TL001"]
    fixed = trainlint.fix_source(TRAIN)
    for version in range(2, 12):  # typing: a burst of changes, the last one buggy again
        change(client, uri, version, fixed if version % 2 == 0 else TRAIN)
    change(client, uri, 12, TRAIN + "# last\n")
    assert codes(await diagnostics_for(client, uri, 12)) == ["TL001"]
    versions = [p.version for p in client.published if p.uri == uri]
    assert versions == sorted(versions), "a stale result was published after a newer one"
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    await until(lambda: client.published[-1].uri == uri and len(client.published[-1].diagnostics) == 0,
                "diagnostics cleared on close")


@pytest.mark.asyncio
async def test_documents_that_are_not_python_files_are_left_alone(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    cell = "vscode-notebook-cell:/project/nb.ipynb#W0sZmlsZQ%3D%3D"  # a cell alone is not a script
    notes = tmp_path / "notes.md"
    for uri, language in ((cell, "python"), (notes.as_uri(), "markdown")):
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id=language, version=1, text=TRAIN)))
    witness = open_file(client, tmp_path / "train.py", TRAIN)  # published after the others were opened
    assert codes(await diagnostics_for(client, witness, 1)) == ["TL001"]
    assert {p.uri for p in client.published} == {witness}
    assert await code_actions(client, cell) == []


@pytest.mark.asyncio
async def test_a_file_that_mentions_no_framework_is_not_linted(client: LanguageClient, tmp_path):
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "util.py", "def f(:\n")  # the CLI skips it too: no E999
    assert await diagnostics_for(client, uri, 1) == []
