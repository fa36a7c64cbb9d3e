"""The cache: a file's findings, kept by what they depend on, so an unchanged file is not analysed again.

Like ruff's: on by default, in `.trainlint_cache/` at the project root (the folder of the configuration file,
else the current folder), with a `.gitignore` that keeps it out of version control and a `CACHEDIR.TAG`
that keeps it out of backups. `--no-cache` turns it off; `--cache-dir DIR` or `TRAINLINT_CACHE_DIR` move it.

An entry's key is a hash of what its findings depend on: trainlint's version, the settings that apply to the
file (its rules and their options), its path and its text. The entry also lists the project modules its
analysis read (helpers it follows into other modules, and what they mention) with a digest of each: a
change to any of them makes the entry a miss. So an entry is never stale. Entries are small
JSON files, one per key, written atomically (a temporary file, then a rename), so concurrent runs (pre-commit
starts several) never see half an entry. A corrupt, truncated or unreadable entry is ignored and rebuilt;
a cache folder that cannot be written is not used; neither is ever an error.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .. import __version__
from ..config import Settings
from ..diagnostics import Finding, FixInfo, Location, TextEdit

CACHE_DIR_NAME = ".trainlint_cache"
ENV_VAR = "TRAINLINT_CACHE_DIR"
_FORMAT = 2  # the layout of an entry; bump when it changes


def default_dir(root: Path | None) -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return (root or Path.cwd()) / CACHE_DIR_NAME


def settings_fingerprint(settings: Settings, path: str) -> str:
    """What of the settings changes a file's findings: the rules enabled for it and their options."""
    rules = settings.enabled_rules(path)
    return json.dumps([[rule.code, settings.options_for(rule)] for rule in rules], sort_keys=True, default=repr)


class Cache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries = directory / f"v{_FORMAT}-{__version__}"
        self.usable = True
        self._prepared = False

    def key(self, path: str, data: bytes, settings: Settings, imports: str = "") -> str:
        digest = hashlib.sha256()
        for part in (__version__, settings_fingerprint(settings, path), path, imports):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def _entry(self, key: str) -> Path:
        return self.entries / key[:2] / key

    def get(self, key: str, filename: str, digest=None) -> list[Finding] | None:
        """The findings stored under `key` (for `filename`), or None when there is no good entry. `digest(path)`
        gives the current digest of a project module the entry depended on: any change is a miss."""
        if not self.usable:
            return None
        try:
            raw = json.loads(self._entry(key).read_text(encoding="utf-8"))
            for path, expected in raw["deps"]:
                if digest is None or digest(path) != expected:
                    return None  # a module the findings came through has changed (or cannot be checked)
            return [_finding(item, filename) for item in raw["findings"]]
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None  # missing, corrupt, truncated or from another layout: analyse the file again

    def put(self, key: str, findings: list[Finding], deps: dict[str, str] | None = None) -> None:
        if not self.usable:
            return
        try:
            self._prepare()
            folder = self.entries / key[:2]
            folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"deps": sorted((deps or {}).items()), "findings": [_item(f) for f in findings]},
                              separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, folder / key)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError:
            self.usable = False  # read-only or full: go on without a cache

    def _prepare(self) -> None:
        if self._prepared:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", "# Automatically created by trainlint.\n*\n"),
                           ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"
                                            "# This file is a cache directory tag created by trainlint.\n")):
            marker = self.directory / name
            if not marker.exists():
                marker.write_text(text, encoding="utf-8")
        self._prepared = True


def _item(finding: Finding) -> list:
    fix = finding.fix
    return [finding.code, finding.name, finding.message, finding.location.row, finding.location.column,
            finding.end_location.row, finding.end_location.column, finding.noqa_row, finding.cell,
            list(finding.origin) if finding.origin else None,
            None if fix is None else [fix.applicability, fix.message,
                                      [[e.content, e.location.row, e.location.column, e.end_location.row,
                                        e.end_location.column] for e in fix.edits]]]


def _finding(item: list, filename: str) -> Finding:
    code, name, message, row, column, end_row, end_column, noqa_row, cell, origin, fix = item
    info = None
    if fix is not None:
        applicability, fix_message, edits = fix
        info = FixInfo(str(applicability), str(fix_message),
                       tuple(TextEdit(str(c), Location(int(r), int(k)), Location(int(er), int(ek)))
                             for c, r, k, er, ek in edits))
    return Finding(str(code), str(name), str(message), filename, Location(int(row), int(column)),
                   Location(int(end_row), int(end_column)), info, noqa_row, cell,
                   (str(origin[0]), int(origin[1])) if origin else None)
