"""The language server: diagnostics as you type, quick fixes, fix-all and `# noqa` actions (pygls).

Shaped like `ruff server`: push diagnostics on open, change (debounced) and save; one quick fix per
fixable finding, `source.fixAll.trainlint`, and "Disable TLxxx for this line". The protocol's event
loop never lints: a document is linted in a worker thread on the text of one version, and the result
is published only if that version is still the latest (a stale result is dropped).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..diagnostics import Finding
from . import edits as text_edits
from . import notebooks
from .documents import Outcome, analyse, fix_all
from .positions import UTF8, UTF16, UTF32, LineIndex
from .settings import SECTION, ClientSettings, parse

log = logging.getLogger(__name__)

NAME = "trainlint"
DEBOUNCE_SECONDS = 0.25  # after the last keystroke; open and save lint at once
EDITS_AFTER_IDLE_SECONDS = 0.5  # the quick fixes' edits are computed once typing has paused this long
FIX_ALL_KIND = "source.fixAll.trainlint"
_WATCHER_ID = "trainlint-config-watcher"


@dataclass
class _Document:
    """The server's state for one open document: the pending lint, the last published result with the
    text and version it was computed on, and the same result with the fixes' edits (for quick fixes),
    computed after it once the document has been idle a moment, or at once when a quick fix is asked."""

    pending: asyncio.Future | None = None
    outcome: Outcome | None = None
    text: str = ""
    version: int | None = None
    generation: int = -1
    edits: asyncio.Future | None = None  # -> Outcome with the fixes' text edits, for this text
    hurry: asyncio.Event = field(default_factory=asyncio.Event)  # a quick fix is waiting for `edits`
    config_error: str | None = None
    fix_all: tuple[tuple, text_edits.Edit | None] | None = None  # (key, edit) of the last fix-all


class TrainlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(NAME, __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full,
                         notebook_document_sync=notebooks.SYNC_OPTIONS)
        self.settings = ClientSettings()
        self.documents: dict[str, _Document] = {}
        self.notebooks: dict[str, notebooks.NotebookState] = {}
        # Bumped when anything but the text can change a result (editor settings, a pyproject.toml).
        self.generation = 0
        # pygls reads stdin through its own thread pool: lint in another, so a slow file never starves it.
        self.linter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trainlint-lint")

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def encoding(self) -> str:
        value = getattr(self.workspace.position_encoding, "value", self.workspace.position_encoding)
        return value if value in (UTF8, UTF16, UTF32) else UTF16

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def apply_settings(self, options: Any, where: str) -> bool:
        """Take the editor's settings; say what was not understood. True if they changed."""
        settings, problems = parse(options, self.settings)
        for problem in problems:
            self.log(f"trainlint: {where}: {problem}", types.MessageType.Warning)
        if problems:
            self.tell(f"trainlint: {where}: {problems[0]}", types.MessageType.Warning)
        changed = settings != self.settings
        self.settings = settings
        return changed

    def text_of(self, uri: str) -> tuple[str, int | None] | None:
        if uri not in self.documents:
            return None
        document = self.workspace.get_text_document(uri)
        return document.source, document.version

    def _current(self, uri: str, state: _Document) -> bool:
        """Is the state's result for the document's text and settings as they are now?"""
        return state.outcome is not None and state.generation == self.generation \
            and self.text_of(uri) == (state.text, state.version)

    # -- linting -----------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float = 0.0) -> None:
        """Lint `uri` after `delay`, replacing any lint still pending for it (debounce)."""
        state = self.documents.setdefault(uri, _Document())
        if state.pending is not None and not state.pending.done():
            state.pending.cancel()
        if state.edits is not None:  # they would be for the text being replaced: never compute them
            state.edits.cancel()
        state.pending = asyncio.ensure_future(self._lint_and_publish(uri, delay))

    def relint_all(self) -> None:
        self.generation += 1
        for uri in list(self.documents):
            self.schedule(uri)
        for uri in list(self.notebooks):
            self.schedule_notebook(uri)

    def schedule_notebook(self, uri: str, delay: float = 0.0) -> None:
        """Lint the notebook `uri` after `delay`, replacing any lint still pending for it (debounce)."""
        state = self.notebooks.setdefault(uri, notebooks.NotebookState())
        if state.pending is not None and not state.pending.done():
            state.pending.cancel()
        state.pending = asyncio.ensure_future(notebooks.lint_and_publish(self, uri, delay, to_diagnostic, _path))

    async def analysed(self, uri: str) -> _Document | None:
        """The document's state with a result for its current text and settings; None if it is not
        open, or keeps changing. Waits for the pending lint rather than starting another: an editor
        asks for code actions on every cursor move, typing must not lint once per keystroke."""
        for _ in range(5):
            state = self.documents.get(uri)
            if state is None:
                return None
            if self._current(uri, state):
                return state
            if state.pending is None or state.pending.done():
                self.schedule(uri)
            await asyncio.wait({state.pending})
        return None

    async def _lint_and_publish(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        current = self.text_of(uri)
        if current is None:
            return
        text, version = current
        generation = self.generation
        outcome = await self._analyse(uri, text)
        state = self.documents.get(uri)
        if state is None or self.text_of(uri) != current or generation != self.generation:
            return  # a newer version (or setting) is being linted: this result is stale
        self._store(uri, state, outcome, text, version, generation)
        self._publish(uri, state)

    async def _analyse(self, uri: str, text: str, fix_edits: bool = False) -> Outcome:
        return await self.run_lint(uri, analyse, _path(uri), text, self.settings, fix_edits)

    async def run_lint(self, uri: str, lint, *args) -> Outcome:
        """`lint(*args)` (documents.analyse or analyse_notebook) in the linting thread; a failure is logged."""
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self.linter, lint, *args)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the executor itself failed (shutting down)
            outcome = Outcome(internal_error=f"{type(error).__name__}: {error}")
        if outcome.internal_error:
            self.log(f"trainlint failed on {_path(uri) or uri}; please report it:\n{outcome.internal_error}",
                     types.MessageType.Error)
        return outcome

    def _store(self, uri: str, state: _Document, outcome: Outcome, text: str, version: int | None,
               generation: int) -> None:
        state.outcome, state.text, state.version, state.generation = outcome, text, version, generation
        state.fix_all = None
        if state.edits is not None:
            state.edits.cancel()
        state.edits, state.hurry = None, asyncio.Event()
        if any(finding.fix is not None for finding in outcome.findings):
            state.edits = asyncio.ensure_future(self._edits(uri, state.hurry, text, EDITS_AFTER_IDLE_SECONDS))

    async def _edits(self, uri: str, hurry: asyncio.Event, text: str, idle: float) -> Outcome:
        """The same lint with the fixes' text edits, once the document has been idle `idle` seconds (or
        at once when a quick fix waits for it): while the user types, this work never runs."""
        try:
            await asyncio.wait_for(hurry.wait(), idle)
        except asyncio.TimeoutError:
            pass
        return await self._analyse(uri, text, fix_edits=True)

    async def with_edits(self, uri: str, state: _Document) -> Outcome | None:
        """The state's result with the fixes' text edits; None if the document changed meanwhile."""
        task = state.edits
        if task is None:
            return None
        state.hurry.set()
        await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None or state.edits is not task:
            return None
        return task.result()

    def _publish(self, uri: str, state: _Document) -> None:
        outcome = state.outcome
        self.note_config_error(uri, state, outcome.config_error if outcome else None)
        diagnostics: list[types.Diagnostic] = []
        if outcome is not None and outcome.findings:
            index = LineIndex(state.text, self.encoding)
            diagnostics = [to_diagnostic(finding, index) for finding in outcome.findings]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=state.version))

    def note_config_error(self, uri: str, state, error: str | None) -> None:
        """Show a configuration error once: when it first appears for any open document, not again
        while documents keep hitting it, and again if it is fixed and comes back."""
        if error == state.config_error:
            return
        state.config_error = error
        if error is None:
            return
        if any(other.config_error == error for key, other in self.documents.items() if key != uri):
            return
        self.log(f"trainlint: {error}", types.MessageType.Error)
        self.tell(f"trainlint: configuration error, no diagnostics until it is fixed: {error}")

    def forget(self, uri: str) -> None:
        state = self.documents.pop(uri, None)
        if state is not None:
            for task in (state.pending, state.edits):
                if task is not None:
                    task.cancel()
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # -- code actions ------------------------------------------------------------------------------

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        state = await self.analysed(uri)
        if state is None or state.outcome is None or not state.outcome.findings:
            return []
        only = params.context.only
        index = LineIndex(state.text, self.encoding)
        wanted = index.offset(params.range.start.line, params.range.start.character), \
            index.offset(params.range.end.line, params.range.end.character)
        actions: list[types.CodeAction] = []
        if _wants(only, types.CodeActionKind.QuickFix):
            here = [f for f in state.outcome.findings
                    if not f.is_error and _overlaps(finding_offsets(f, index), wanted)]
            if any(self._allowed(f) for f in here):  # the edits are computed apart from the diagnostics
                full = await self.with_edits(uri, state)
                if full is not None and len(full.findings) == len(state.outcome.findings):
                    here = [f for f in full.findings if not f.is_error and _overlaps(finding_offsets(f, index), wanted)]
            noqa_done: set[tuple[str, int]] = set()
            comments = text_edits.Comments(state.text) if here else None
            for finding in here:
                diagnostic = to_diagnostic(finding, index)
                fix = self._quick_fix(uri, state, finding, diagnostic, index)
                if fix is not None:
                    actions.append(fix)
                row = finding.noqa_row or finding.location.row
                if (finding.code, row) not in noqa_done:
                    noqa_done.add((finding.code, row))
                    noqa = self._noqa_action(uri, state, finding, row, diagnostic, index, comments)
                    if noqa is not None:
                        actions.append(noqa)
        automatic = params.context.trigger_kind == types.CodeActionTriggerKind.Automatic
        if _wants(only, FIX_ALL_KIND) and not (only is None and automatic):
            action = await self._fix_all_action(uri, state)
            if action is not None:
                actions.append(action)
        # Edits are for the text they were computed on: if the document changed while we waited, none.
        return actions if self._current(uri, state) else []

    def _allowed(self, finding: Finding) -> bool:
        fix = finding.fix
        return fix is not None and (fix.applicability == "safe" or self.settings.unsafe_fixes)

    def _quick_fix(self, uri: str, state: _Document, finding: Finding, diagnostic: types.Diagnostic,
                   index: LineIndex) -> types.CodeAction | None:
        fix = finding.fix
        if fix is None or not fix.edits or not self._allowed(finding):
            return None
        edits = [(index.offset_of_location(e.location.row, e.location.column),
                  index.offset_of_location(e.end_location.row, e.end_location.column), e.content)
                 for e in fix.edits]
        safe = fix.applicability == "safe"
        title = f"Fix {finding.code}: {fix.message}" if safe else f"Fix {finding.code} (unsafe): {fix.message}"
        return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                                is_preferred=safe, edit=self._workspace_edit(uri, state, edits, index))

    def _noqa_action(self, uri: str, state: _Document, finding: Finding, row: int, diagnostic: types.Diagnostic,
                     index: LineIndex, comments: text_edits.Comments) -> types.CodeAction | None:
        edit = text_edits.noqa_edit(state.text, row, finding.code, comments)
        if edit is None:
            return None
        return types.CodeAction(title=f"Disable {finding.code} for this line", kind=types.CodeActionKind.QuickFix,
                                diagnostics=[diagnostic], edit=self._workspace_edit(uri, state, [edit], index))

    async def _fix_all_action(self, uri: str, state: _Document) -> types.CodeAction | None:
        outcome = state.outcome
        if outcome is None or outcome.settings is None or not any(self._allowed(f) for f in outcome.findings):
            return None
        unsafe = self.settings.unsafe_fixes
        key = (state.version, state.generation, unsafe)
        if state.fix_all is None or state.fix_all[0] != key:
            loop = asyncio.get_running_loop()
            fixed = await loop.run_in_executor(self.linter, fix_all, _path(uri), state.text, outcome.settings, unsafe)
            edit = text_edits.replacement(state.text, fixed) if fixed is not None else None
            state.fix_all = (key, edit)
        edit = state.fix_all[1]
        if edit is None:
            return None
        index = LineIndex(state.text, self.encoding)
        title = "trainlint: Fix all auto-fixable problems" + (" (including unsafe fixes)" if unsafe else "")
        return types.CodeAction(title=title, kind=FIX_ALL_KIND,
                                edit=self._workspace_edit(uri, state, [edit], index))

    def _workspace_edit(self, uri: str, state: _Document, edits: Sequence[text_edits.Edit],
                        index: LineIndex) -> types.WorkspaceEdit:
        """Edits on the version they were computed for: a client that supports versioned edits refuses
        them if the document changed since."""
        lsp_edits = [types.TextEdit(range=_range(index, start, end), new_text=new_text)
                     for start, end, new_text in edits]
        if get_capability(self.client_capabilities, "workspace.workspace_edit.document_changes", False):
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=state.version),
                edits=lsp_edits)])
        return types.WorkspaceEdit(changes={uri: lsp_edits})

    # -- configuration -----------------------------------------------------------------------------

    async def pull_settings(self) -> bool:
        """Ask the client for the "trainlint" section (workspace/configuration), when it can answer."""
        if not get_capability(self.client_capabilities, "workspace.configuration", False):
            return False
        try:
            result = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)]))
        except Exception as error:  # noqa: BLE001 - a client that cannot answer keeps what it sent before
            self.log(f"trainlint: workspace/configuration failed: {error}", types.MessageType.Warning)
            return False
        value = result[0] if result else None
        if not value:
            return False
        return self.apply_settings(value, "workspace/configuration")

    async def watch_configuration(self) -> None:
        """Re-lint open documents when a pyproject.toml changes, if the client can watch files for us."""
        if not get_capability(self.client_capabilities,
                              "workspace.did_change_watched_files.dynamic_registration", False):
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/pyproject.toml")])
        try:
            await self.client_register_capability_async(types.RegistrationParams(registrations=[
                types.Registration(id=_WATCHER_ID, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                   register_options=options)]))
        except Exception as error:  # noqa: BLE001
            self.log(f"trainlint: could not watch pyproject.toml files: {error}", types.MessageType.Warning)


_PYTHON_IDS = ("python", "py", "python3")


def lintable(uri: str, language_id: str | None) -> bool:
    """Python files on disk and unsaved Python buffers. Not a notebook's cell sent as a document of its
    own (`vscode-notebook-cell:`), nor a diff's old side (`git:`): linted alone, out of their
    context, they would give findings the CLI never gives."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in ("file", "untitled"):
        return False
    if language_id:
        return language_id.lower() in _PYTHON_IDS
    return uri.lower().endswith((".py", ".pyi"))


def _path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def _wants(only: Sequence[str] | None, kind: str) -> bool:
    """Does the client's `only` filter admit actions of `kind`? Kinds are hierarchical: `source.fixAll`
    admits `source.fixAll.trainlint`."""
    if not only:
        return True
    return any(kind == wanted or kind.startswith(f"{wanted}.") for wanted in only)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def finding_offsets(finding: Finding, index: LineIndex) -> tuple[int, int]:
    start = index.offset_of_location(finding.location.row, finding.location.column)
    end = max(start, index.offset_of_location(finding.end_location.row, finding.end_location.column))
    if end == start:  # a point (a syntax error): mark the character there, if the line has one
        line, _ = index.position(start)
        if start < index.line_content_end(line):
            end = start + 1
    return start, end


def _range(index: LineIndex, start: int, end: int) -> types.Range:
    (start_line, start_character), (end_line, end_character) = index.position(start), index.position(end)
    return types.Range(start=types.Position(line=start_line, character=start_character),
                       end=types.Position(line=end_line, character=end_character))


def to_diagnostic(finding: Finding, index: LineIndex) -> types.Diagnostic:
    start, end = finding_offsets(finding, index)
    url = finding.url
    return types.Diagnostic(
        range=_range(index, start, end),
        message=finding.message,
        severity=types.DiagnosticSeverity.Error if finding.is_error else types.DiagnosticSeverity.Warning,
        code=finding.code,
        code_description=types.CodeDescription(href=url) if url else None,
        source=NAME,
    )


def build_server() -> TrainlintServer:
    server = TrainlintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: TrainlintServer, params: types.InitializeParams) -> None:
        if params.initialization_options is not None:
            ls.apply_settings(params.initialization_options, "initializationOptions")

    @server.feature(types.INITIALIZED)
    async def initialized(ls: TrainlintServer, params: types.InitializedParams) -> None:
        await ls.watch_configuration()
        if await ls.pull_settings():
            ls.relint_all()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: TrainlintServer, params: types.DidChangeConfigurationParams) -> None:
        changed = False
        if params.settings:
            changed = ls.apply_settings(params.settings, "workspace/didChangeConfiguration")
        changed = await ls.pull_settings() or changed
        if changed:
            ls.relint_all()

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: TrainlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.relint_all()  # a pyproject.toml changed: every open document may lint differently

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TrainlintServer, params: types.DidOpenTextDocumentParams) -> None:
        if lintable(params.text_document.uri, params.text_document.language_id):
            ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TrainlintServer, params: types.DidChangeTextDocumentParams) -> None:
        if params.text_document.uri in ls.documents:  # a document we lint (see `lintable`)
            ls.schedule(params.text_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: TrainlintServer, params: types.DidSaveTextDocumentParams) -> None:
        if params.text_document.uri in ls.documents:
            ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TrainlintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(ls: TrainlintServer, params: types.DidOpenNotebookDocumentParams) -> None:
        ls.schedule_notebook(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(ls: TrainlintServer, params: types.DidChangeNotebookDocumentParams) -> None:
        ls.schedule_notebook(params.notebook_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_did_save(ls: TrainlintServer, params: types.DidSaveNotebookDocumentParams) -> None:
        ls.schedule_notebook(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_did_close(ls: TrainlintServer, params: types.DidCloseNotebookDocumentParams) -> None:
        notebooks.clear(ls, params.notebook_document.uri)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND], resolve_provider=False))
    async def code_action(ls: TrainlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return await ls.code_actions(params)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: TrainlintServer, params: None) -> None:
        for state in [*ls.documents.values(), *ls.notebooks.values()]:
            if state.pending is not None:
                state.pending.cancel()
        ls.linter.shutdown(wait=False, cancel_futures=True)

    return server
