"""Linting one open document: settings as the CLI finds them, then `lint_source` (in a worker thread).

Nothing here knows the protocol; `analyse` never raises, so a bug in a rule costs the user that
document's diagnostics and a log line, not the server.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, Settings, SettingsResolver
from ..diagnostics import Finding
from ..engine import fix_source, lint_source
from ..files import may_hold_training_code
from .settings import ClientSettings


@dataclass
class Outcome:
    """What linting a document gave: findings, or why there are none."""

    findings: list[Finding] = field(default_factory=list)
    settings: Settings | None = None
    config_error: str | None = None  # the pyproject.toml is wrong: no findings, tell the user once
    internal_error: str | None = None  # a traceback: trainlint failed on this document
    skipped: str | None = None  # linted not at all (excluded, or no framework mentioned)


def settings_for(path: Path | None, client: ClientSettings) -> Settings:
    """The settings the CLI would use for `path` (nearest pyproject.toml with [tool.trainlint]), with the
    editor's select/ignore on top as the command line's flags would be. Raises ConfigError."""
    resolver = SettingsResolver(None, client.overrides())
    return resolver.for_path(path if path is not None else Path.cwd() / "untitled.py")


def excluded(settings: Settings, path: Path) -> bool:
    """Is the file, or a folder between it and its configuration's folder, excluded? ruff's server skips
    excluded files too, so that a library file opened from `.venv` is not linted. Folders above the
    configuration's folder are not looked at (a checkout inside `~/build/` is not excluded)."""
    if settings.is_excluded(path):
        return True
    if settings.root is None:
        return False
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(settings.root))
    if root not in real.parents:
        return False
    folder = real.parent
    while folder != root:
        if settings.is_excluded(folder):
            return True
        folder = folder.parent
    return False


def analyse(path: Path | None, text: str, client: ClientSettings, fix_edits: bool = False) -> Outcome:
    """Lint the document. The fixes' text edits (`fix_edits`) cost ~40% more than the findings alone, so
    diagnostics are published without them and the quick fixes ask for them separately."""
    try:
        try:
            settings = settings_for(path, client)
        except ConfigError as error:
            return Outcome(config_error=str(error))
        if path is not None and excluded(settings, path):
            return Outcome(settings=settings, skipped="excluded by the configuration")
        if not may_hold_training_code(text):
            return Outcome(settings=settings, skipped="mentions no training framework")
        name = str(path) if path is not None else "<untitled>"
        return Outcome(lint_source(text, name, settings, fix_edits=fix_edits), settings)
    except Exception:  # noqa: BLE001 - the server outlives any bug in a rule
        return Outcome(internal_error=traceback.format_exc())


def analyse_notebook(path: Path | None, cells: list[tuple[str, str]], client: ClientSettings) -> Outcome:
    """Lint an open notebook, given its cells as (kind, source) in order ("code" cells are Python), the
    way the CLI lints an .ipynb file: its code cells as one text (IPython syntax neutralised), so a loop in
    one cell sees the optimizer built in another. The findings carry their cell number (1-based, every
    cell counted) and rows within that cell."""
    from ..notebook import notebook_source  # only when a notebook is open

    try:
        try:
            settings = settings_for(path, client)
        except ConfigError as error:
            return Outcome(config_error=str(error))
        if path is not None and excluded(settings, path):
            return Outcome(settings=settings, skipped="excluded by the configuration")
        source = notebook_source(cells)
        if not may_hold_training_code(source.text):
            return Outcome(settings=settings, skipped="mentions no training framework")
        name = str(path) if path is not None else "<untitled>.ipynb"
        return Outcome(source.locate_findings(lint_source(source.text, name, settings, fix_edits=False)), settings)
    except Exception:  # noqa: BLE001 - the server outlives any bug in a rule
        return Outcome(internal_error=traceback.format_exc())


def fix_all(path: Path | None, text: str, settings: Settings, unsafe: bool) -> str | None:
    """The document with every fix applied (unsafe ones too when the editor allows them), or None when
    the fixes cannot be trusted (FixError) or the text does not parse."""
    name = str(path) if path is not None else "<untitled>"
    try:
        return fix_source(text, name, settings, unsafe=unsafe)
    except Exception:  # noqa: BLE001 - FixError, a parse error, or a bug: no fix-all action either way
        return None
