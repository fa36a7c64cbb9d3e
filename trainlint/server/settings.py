"""The editor's settings for the server: `initializationOptions`, `workspace/didChangeConfiguration`, or a
`workspace/configuration` pull of the "trainlint" section. The project's pyproject.toml still decides
everything else; these only say what an editor user may want differently from the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, validate_selectors

SECTION = "trainlint"


@dataclass(frozen=True)
class ClientSettings:
    unsafe_fixes: bool = False  # offer unsafe fixes as quick fixes, and apply them in fix-all
    select: tuple[str, ...] | None = None  # as `--select`: replaces the configuration's selection
    ignore: tuple[str, ...] = ()  # as `--ignore`
    extend_select: tuple[str, ...] = ()  # as `--extend-select`

    def overrides(self) -> dict[str, Any]:
        """For SettingsResolver, with the command line's meaning."""
        return {"select": list(self.select) if self.select is not None else None,
                "ignore": list(self.ignore), "extend_select": list(self.extend_select)}


_KEYS = {"unsafeFixes": "unsafe_fixes", "select": "select", "ignore": "ignore", "extendSelect": "extend_select"}


def unwrap(options: Any) -> dict[str, Any] | None:
    """The settings table, whether a client sends it bare (`{"unsafeFixes": true}`), under the server's
    name (`{"trainlint": {...}}`, as Neovim's and Zed's `settings` do) or under `settings` (ruff's
    `initializationOptions` shape)."""
    if not isinstance(options, dict):
        return None
    for key in ("settings", SECTION):
        inner = options.get(key)
        if isinstance(inner, dict):
            return unwrap(inner) or inner
    return options


def parse(options: Any, base: ClientSettings | None = None) -> tuple[ClientSettings, list[str]]:
    """Settings from a client's table, on top of `base`, and a problem per key that was not understood
    (an unknown key, a wrong type, an unknown rule code): that key keeps its value from `base`."""
    base = base or ClientSettings()
    table = unwrap(options)
    if table is None:
        return base, ([] if options is None else [f"settings must be an object, got {options!r}"])
    values: dict[str, Any] = {
        "unsafe_fixes": base.unsafe_fixes, "select": base.select, "ignore": base.ignore,
        "extend_select": base.extend_select}
    problems: list[str] = []
    for key, value in table.items():
        name = _KEYS.get(key)
        if name is None:
            problems.append(f"unknown setting '{key}' (settings: {', '.join(_KEYS)})")
        elif name == "unsafe_fixes":
            if isinstance(value, bool):
                values[name] = value
            else:
                problems.append(f"'{key}' must be true or false, got {value!r}")
        elif value is None and name == "select":
            values[name] = None
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"'{key}' must be a list of rule codes, got {value!r}")
        else:
            codes = tuple(v.strip().upper() for v in value if v.strip())
            try:
                values[name] = validate_selectors(codes, f"'{key}'")
            except ConfigError as error:
                problems.append(str(error))
    return ClientSettings(**values), problems
