"""Configuration: `[tool.trainlint]` in pyproject.toml (or `--config FILE`), validated, with ruff's keys."""
from __future__ import annotations

import difflib
import fnmatch
import functools
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .rules import ALL_RULES, RULES_BY_CODE, RULES_BY_NAME, Rule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

# ruff's default excludes (plus __pycache__ and our cache): tools' and environments' folders, never a user's scripts.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox", ".trainlint_cache", ".venv",
    ".vscode",
    "__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages", "venv",
)
_LIST_KEYS = ("select", "ignore", "extend-select", "exclude", "extend-exclude", "src")


class ConfigError(Exception):
    """Bad configuration or bad usage: the CLI prints it and exits with 2."""


@dataclass(frozen=True)
class Selection:
    """One layer of rule selection (a config file's, or the command line's), with ruff's meaning:
    a layer with `select` starts afresh, one without it adjusts what the layers before it chose."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def apply(self, enabled: set[str]) -> set[str]:
        """Within a layer the more specific selector wins (TL001 beats TL); on a tie, ignore wins."""
        updates: dict[str, bool] = {}
        chosen = (self.select or ()) + self.extend_select
        for specificity in sorted({_specificity(s) for s in chosen + self.ignore}):
            for selector in chosen:
                if _specificity(selector) == specificity:
                    updates.update((code, True) for code in _codes_matching(selector))
            for selector in self.ignore:
                if _specificity(selector) == specificity:
                    updates.update((code, False) for code in _codes_matching(selector))
        if self.select is not None:
            return {code for code, on in updates.items() if on}
        result = set(enabled)
        for code, on in updates.items():
            (result.add if on else result.discard)(code)
        return result


def _specificity(selector: str) -> int:
    return 0 if selector == "ALL" else len(selector)


def _codes_matching(selector: str) -> list[str]:
    return [rule.code for rule in ALL_RULES if selector == "ALL" or rule.code.startswith(selector)]


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("TL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    src: tuple[str, ...] = ()  # folders where the project's absolute imports are found (ruff's `src`)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    root: Path | None = None  # patterns are relative to this folder
    source: Path | None = None  # the config file, if any
    cli: Selection | None = None  # the command line's --select/--extend-select/--ignore, applied last

    def enabled_rules(self, path: str | Path | None = None) -> list[Rule]:
        """The rules for `path`: the config's selection, then the command line's, then per-file-ignores."""
        enabled = Selection(self.select, self.extend_select, self.ignore).apply(set())
        if self.cli is not None:
            enabled = self.cli.apply(enabled)
        ignored = self.ignored_for(path)
        return [r for r in ALL_RULES if r.code in enabled and not _matches(r.code, ignored)]

    def ignored_for(self, path: str | Path | None) -> tuple[str, ...]:
        if path is None or not self.per_file_ignores:
            return ()
        codes: list[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            if self.matches(pattern, Path(path)):
                codes.extend(pattern_codes)
        return tuple(codes)

    def source_folders(self) -> tuple[Path, ...]:
        """The configured `src` folders, absolute (relative to the configuration's folder)."""
        base = self.root or Path.cwd()
        return tuple(Path(os.path.abspath(base / folder)) for folder in self.src)

    def options_for(self, rule: Rule) -> dict[str, Any]:
        return {**rule.options, **self.rule_options.get(rule.name, {})}

    def is_excluded(self, path: Path) -> bool:
        names, paths = _compiled(self.exclude + self.extend_exclude)
        if names.match(os.path.normcase(path.name)):
            return True
        return paths.match(os.path.normcase(self._relative(path))) is not None

    def matches(self, pattern: str, path: Path) -> bool:
        """ruff's semantics: a pattern matches the file's name, or its path relative to the config's folder."""
        return fnmatch.fnmatch(path.name, pattern) or _matches_path(self._relative(path), pattern)

    def _relative(self, path: Path) -> str:
        parent, name = os.path.split(os.path.abspath(path))
        absolute = os.path.join(_real(parent), name)  # the folder's links resolved (once per folder), not the file's
        root = _real(str(self.root or Path.cwd()))
        try:
            relative = os.path.relpath(absolute, root)
        except ValueError:  # another drive (Windows)
            return Path(absolute).as_posix()
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return Path(absolute).as_posix()
        return Path(relative).as_posix()


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern, re.Pattern]:
    """One regular expression for a file's name and one for its relative path, as `fnmatch` and
    `_matches_path` would test each pattern: a discovery of thousands of files tests them all."""
    never = r"(?!)"
    names = "|".join(fnmatch.translate(os.path.normcase(p)) for p in patterns) or never
    paths = "|".join(fnmatch.translate(os.path.normcase(q)) for p in patterns
                     for q in (p, p.rstrip("/") + "/*")) or never
    return re.compile(names), re.compile(paths)


def _matches_path(relative: str, pattern: str) -> bool:
    return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern.rstrip("/") + "/*")


def _matches(code: str, selectors: tuple[str, ...]) -> bool:
    return any(s == "ALL" or code.startswith(s) for s in selectors)


def validate_selectors(selectors: tuple[str, ...] | list[str], key: str) -> tuple[str, ...]:
    for selector in selectors:
        if selector != "ALL" and not any(code.startswith(selector) for code in RULES_BY_CODE):
            raise ConfigError(f"{key}: unknown rule code or prefix '{selector}'")
    return tuple(selectors)


def _string_list(table: dict, key: str, where: str) -> tuple[str, ...]:
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings, got {value!r}")
    return tuple(value)


def settings_from_table(table: dict[str, Any], root: Path, source: Path | None = None,
                        where: str = "[tool.trainlint]") -> Settings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    settings = Settings(root=root, source=source)
    changes: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if key in _LIST_KEYS:
            values = _string_list(table, key, where)
            if key in ("select", "ignore", "extend-select"):
                validate_selectors(values, f"{where} {key}")
            changes[key.replace("-", "_")] = values
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes], got {value!r}")
            pairs = []
            for pattern, codes in value.items():
                codes = _string_list(value, pattern, f"{where} per-file-ignores")
                validate_selectors(codes, f"{where} per-file-ignores '{pattern}'")
                pairs.append((pattern, codes))
            changes["per_file_ignores"] = tuple(pairs)
        elif key in RULES_BY_NAME or key in RULES_BY_CODE:
            rule = RULES_BY_NAME.get(key) or RULES_BY_CODE[key]
            options[rule.name] = _rule_options(rule, value, f"{where}.{key}")
        else:
            raise ConfigError(f"{where}: unknown key '{key}'{_did_you_mean(key)}")
    return replace(settings, **changes, rule_options=options)


def _did_you_mean(key: str) -> str:
    known = [*_LIST_KEYS, "per-file-ignores", *RULES_BY_NAME]
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (keys: {', '.join((*_LIST_KEYS, 'per-file-ignores'))}, or a rule's name for its options)"


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _rule_options(rule: Rule, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of options, got {_type_name(value)} ({value!r})")
    result = {}
    for key, option in value.items():
        if key not in rule.options:
            known = ", ".join(sorted(rule.options)) or "none"
            raise ConfigError(f"{where}: unknown option '{key}' (options of {rule.code} {rule.name}: {known})")
        default = rule.options[key]
        got = f"got {_type_name(option)} ({option!r})"

        def problem(expected: str) -> str:
            return f"{where}: '{key}' must be {expected}, {got}"  # noqa: B023 - used at once
        if isinstance(default, dict):
            if not isinstance(option, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in option.values()):
                raise ConfigError(problem("a table of numbers"))
            option = {**default, **{k: float(v) for k, v in option.items()}}
        elif isinstance(default, bool):
            if not isinstance(option, bool):
                raise ConfigError(problem("true or false"))
        elif isinstance(default, int):
            if isinstance(option, bool) or not isinstance(option, int):
                raise ConfigError(problem("an integer"))
        elif isinstance(default, float):
            if isinstance(option, bool) or not isinstance(option, (int, float)):
                raise ConfigError(problem("a number"))
            option = float(option)
        elif isinstance(default, str):
            if not isinstance(option, str):
                raise ConfigError(problem("a string"))
        elif isinstance(default, (list, tuple)):
            if not isinstance(option, list) or not all(isinstance(v, str) for v in option):
                raise ConfigError(problem("a list of strings"))
            option = type(default)(option)
        result[key] = option
    return result


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def _trainlint_table(data: dict[str, Any], path: Path) -> Any:
    tool = data.get("tool")
    if tool is None:
        return None
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: [tool] must be a table")
    return tool.get("trainlint")


def load_config_file(path: Path) -> Settings:
    """Settings from an explicit `--config` file: a pyproject.toml ([tool.trainlint]) or a file whose
    top-level keys are trainlint's (a `trainlint.toml`)."""
    data = read_toml(path)
    table = _trainlint_table(data, path)
    if path.name == "pyproject.toml":
        table, where = (table if table is not None else {}), f"{path}: [tool.trainlint]"
    elif table is not None:
        where = f"{path}: [tool.trainlint]"
    else:
        table, where = data, str(path)
    return settings_from_table(table, path.parent.resolve(), path, where)


class SettingsResolver:
    """The settings for each file: the nearest pyproject.toml with [tool.trainlint] above it (or the one
    `--config` file for every file), with the command line's selection applied on top."""

    def __init__(self, config: Path | None = None, overrides: dict[str, Any] | None = None) -> None:
        self.overrides = overrides or {}
        self.fixed = self._override(load_config_file(config)) if config is not None else None
        self.cache: dict[Path, Settings] = {}

    def for_path(self, path: Path) -> Settings:
        if self.fixed is not None:
            return self.fixed
        absolute = Path(os.path.abspath(path))
        directory = absolute if absolute.is_dir() else absolute.parent
        return self._for_dir(directory)

    def _for_dir(self, directory: Path) -> Settings:
        cached = self.cache.get(directory)
        if cached is not None:
            return cached
        candidate = directory / "pyproject.toml"
        settings = None
        if candidate.is_file():
            table = _trainlint_table(read_toml(candidate), candidate)
            if table is not None:
                settings = self._override(settings_from_table(table, directory, candidate,
                                                              f"{candidate}: [tool.trainlint]"))
        if settings is None:
            parent = directory.parent
            settings = self._for_dir(parent) if parent != directory else self._override(Settings(root=Path.cwd()))
        self.cache[directory] = settings
        return settings

    def _override(self, settings: Settings) -> Settings:
        """The command line comes last, as in ruff: --select starts afresh (the config's select,
        extend-select and ignore no longer count), --extend-select and --ignore adjust what is selected."""
        select = self.overrides.get("select")
        extend_select = tuple(self.overrides.get("extend_select") or ())
        ignore = tuple(self.overrides.get("ignore") or ())
        if select is None and not extend_select and not ignore:
            return settings
        cli = Selection(tuple(select) if select is not None else None, extend_select, ignore)
        return replace(settings, cli=cli)
