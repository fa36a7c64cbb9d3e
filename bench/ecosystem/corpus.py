"""The pinned corpus (repos.toml), read the same way by checkout.py and run.py."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
MARKER = ".trainlint-ecosystem"  # in each materialised tree: "commit <sha>", and "missing <path>" lines


@dataclass(frozen=True)
class Repo:
    name: str  # owner/name
    commit: str
    group: str
    paths: tuple[str, ...] = ()  # lint only these folders; empty: the whole repository


class CorpusError(Exception):
    pass


def folder_name(name: str) -> str:
    """owner/name -> owner__name, the folder under .ecosystem/."""
    return name.replace("/", "__")


def load_repos(path: Path) -> list[Repo]:
    """The [[repo]] tables of repos.toml, checked: a typo here would silently drop a repository."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    repos = []
    seen = set()
    for index, table in enumerate(data.get("repo", []), start=1):
        where = f"{path}: [[repo]] #{index}"
        unknown = set(table) - {"name", "commit", "group", "paths"}
        if unknown:
            raise CorpusError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name, commit, group = table.get("name"), table.get("commit"), table.get("group")
        if not isinstance(name, str) or not _NAME.match(name):
            raise CorpusError(f"{where}: name must be 'owner/name', got {name!r}")
        if not isinstance(commit, str) or not _COMMIT.match(commit):
            raise CorpusError(f"{where} ({name}): commit must be 40 lowercase hex digits, got {commit!r}")
        if not isinstance(group, str) or not group:
            raise CorpusError(f"{where} ({name}): group must be a non-empty string")
        paths = table.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) and p and not p.startswith("/")
                                                  and ".." not in Path(p).parts for p in paths):
            raise CorpusError(f"{where} ({name}): paths must be a list of relative folder names")
        if name in seen:
            raise CorpusError(f"{where}: {name} is listed twice")
        seen.add(name)
        repos.append(Repo(name, commit, group, tuple(paths)))
    return repos


def select_repos(repos: list[Repo], names: str | None, group: str | None) -> list[Repo]:
    """`--repos a,b` and `--group g`; an unknown name or group is an error, not an empty run."""
    chosen = repos
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        known = {r.name for r in repos}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit(f"unknown repository: {', '.join(unknown)} (see repos.toml)")
        chosen = [r for r in chosen if r.name in wanted]
    if group:
        groups = {r.group for r in repos}
        if group not in groups:
            raise SystemExit(f"unknown group {group!r} (groups: {', '.join(sorted(groups))})")
        chosen = [r for r in chosen if r.group == group]
    return chosen


def marker_commit(tree: Path) -> str | None:
    """The commit a materialised tree was written from, or None if it is not a complete tree
    (checkout.py writes the marker last)."""
    try:
        lines = (tree / MARKER).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("commit "):
            return line.split(None, 1)[1].strip()
    return None
