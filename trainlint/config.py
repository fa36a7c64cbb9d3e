"""Configuration: `[tool.trainlint]` in pyproject.toml (or `--config FILE`), validated, with ruff's keys."""
from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .rules import ALL_RULES, RULES_BY_CODE, RULES_BY_NAME, Rule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr", ".direnv", ".eggs", ".git", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox", ".pytest_cache",
    ".ruff_cache", ".svn", ".tox", ".venv", "venv", "__pycache__", "__pypackages__", "_build", "build", "dist",
    "node_modules", "site-packages",
)
_LIST_KEYS = ("select", "ignore", "extend-select", "exclude", "extend-exclude")


class ConfigError(Exception):
    """Bad configuration or bad usage: the CLI prints it and exits with 2."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("TL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    root: Path | None = None  # patterns are relative to this folder
    source: Path | None = None  # the config file, if any

    def enabled_rules(self, path: str | Path | None = None) -> list[Rule]:
        selected = [r for r in ALL_RULES if _matches(r.code, self.select + self.extend_select)]
        ignored = self.ignore + self.ignored_for(path)
        return [r for r in selected if not _matches(r.code, ignored)]

    def ignored_for(self, path: str | Path | None) -> tuple[str, ...]:
        if path is None or not self.per_file_ignores:
            return ()
        codes: list[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            if self.matches(pattern, Path(path)):
                codes.extend(pattern_codes)
        return tuple(codes)

    def options_for(self, rule: Rule) -> dict[str, Any]:
        return {**rule.options, **self.rule_options.get(rule.name, {})}

    def is_excluded(self, path: Path) -> bool:
        return any(self.matches(pattern, path) for pattern in self.exclude + self.extend_exclude)

    def matches(self, pattern: str, path: Path) -> bool:
        """ruff's semantics: a pattern matches the file's name, or its path relative to the config's folder."""
        if fnmatch.fnmatch(path.name, pattern):
            return True
        try:
            relative = PurePosixPath(path.resolve().relative_to((self.root or Path.cwd()).resolve()))
        except ValueError:
            relative = PurePosixPath(path.as_posix())
        text = str(relative)
        return fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(text, pattern.rstrip("/") + "/*")


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
                raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes]")
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
            raise ConfigError(f"{where}: unknown key '{key}'")
    return replace(settings, **changes, rule_options=options)


def _rule_options(rule: Rule, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    result = {}
    for key, option in value.items():
        if key not in rule.options:
            known = ", ".join(sorted(rule.options)) or "none"
            raise ConfigError(f"{where}: unknown option '{key}' (options of {rule.code}: {known})")
        default = rule.options[key]
        if isinstance(default, dict):
            if not isinstance(option, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in option.values()):
                raise ConfigError(f"{where}: '{key}' must be a table of numbers, got {option!r}")
            option = {**default, **{k: float(v) for k, v in option.items()}}
        elif isinstance(default, bool):
            if not isinstance(option, bool):
                raise ConfigError(f"{where}: '{key}' must be true or false, got {option!r}")
        elif isinstance(default, (int, float)):
            if isinstance(option, bool) or not isinstance(option, (int, float)):
                raise ConfigError(f"{where}: '{key}' must be a number, got {option!r}")
        elif isinstance(default, (list, tuple)):
            if not isinstance(option, list) or not all(isinstance(v, str) for v in option):
                raise ConfigError(f"{where}: '{key}' must be a list of strings, got {option!r}")
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


def load_config_file(path: Path) -> Settings:
    """Settings from an explicit `--config` file: a pyproject.toml or a trainlint.toml-style file."""
    data = read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("trainlint", {})
        where = "[tool.trainlint]"
    else:
        table = data.get("tool", {}).get("trainlint", data)
        where = str(path.name)
    return settings_from_table(table, path.parent.resolve(), path, f"{path}: {where}")


class SettingsResolver:
    """The settings for each file: the nearest pyproject.toml with [tool.trainlint] above it."""

    def __init__(self, config: Path | None = None, overrides: dict[str, Any] | None = None) -> None:
        self.fixed = load_config_file(config) if config is not None else None
        self.overrides = overrides or {}
        self.cache: dict[Path, Settings] = {}

    def for_path(self, path: Path) -> Settings:
        if self.fixed is not None:
            return self._override(self.fixed)
        directory = path.resolve().parent if not path.is_dir() else path.resolve()
        return self._for_dir(directory)

    def _for_dir(self, directory: Path) -> Settings:
        if directory in self.cache:
            return self.cache[directory]
        candidate = directory / "pyproject.toml"
        settings = None
        if candidate.is_file():
            data = read_toml(candidate)
            table = data.get("tool", {}).get("trainlint")
            if table is not None:
                settings = self._override(settings_from_table(table, directory, candidate,
                                                              f"{candidate}: [tool.trainlint]"))
        if settings is None:
            parent = directory.parent
            settings = self._for_dir(parent) if parent != directory else self._override(Settings(root=Path.cwd()))
        self.cache[directory] = settings
        return settings

    def _override(self, settings: Settings) -> Settings:
        """Command-line flags win: --select replaces, --ignore and --extend-select add (as in ruff)."""
        changes = {}
        if self.overrides.get("select") is not None:
            changes["select"] = tuple(self.overrides["select"])
        if self.overrides.get("ignore"):
            changes["ignore"] = settings.ignore + tuple(self.overrides["ignore"])
        if self.overrides.get("extend_select"):
            changes["extend_select"] = settings.extend_select + tuple(self.overrides["extend_select"])
        return replace(settings, **changes) if changes else settings
