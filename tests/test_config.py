"""Configuration: `[tool.trainlint]` in the nearest pyproject.toml that has it (or `--config FILE`),
validated with errors that name the key, and ruff's meaning for select / ignore / extend-select."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from samples import BUGGY

from trainlint.cli import main
from trainlint.config import (
    ConfigError,
    Settings,
    SettingsResolver,
    settings_from_table,
)
from trainlint.rules import ALL_RULES, RULES_BY_CODE, RULES_BY_NAME, Rule


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bug.py").write_text(BUGGY)
    return tmp_path


def pyproject(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(body)
    return path


def run(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["check", "--output-format", "concise", *args])
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if ": TL" in line or ": E9" in line]
    return code, lines, captured.err


def codes(lines: list[str]) -> list[str]:
    return [line.split(": ", 1)[1].split()[0] for line in lines]


# --- selection ----------------------------------------------------------------------------------

def test_config_ignore_silences_the_rule(project, capsys):
    pyproject(project, '[tool.trainlint]\nignore = ["TL001"]\n')
    assert run(capsys) == (0, [], "")


def test_config_select_by_prefix(project, capsys):
    pyproject(project, '[tool.trainlint]\nselect = ["TL0"]\n')
    code, lines, _ = run(capsys)
    assert code == 1 and codes(lines) == ["TL001"]


def test_config_extend_select_adds_to_select(project, capsys):
    pyproject(project, '[tool.trainlint]\nselect = ["TL002"]\nextend-select = ["TL001"]\n')
    code, lines, _ = run(capsys)
    assert codes(lines) == ["TL001"]


def test_command_line_select_replaces_the_config_selection_including_its_ignore(project, capsys):
    """As in ruff: `--select` starts afresh, so a config's ignore does not hide what the user asked for."""
    pyproject(project, '[tool.trainlint]\nignore = ["TL001"]\n')
    code, lines, _ = run(capsys, "--select", "TL001")
    assert code == 1 and codes(lines) == ["TL001"]


def test_command_line_extend_select_reenables_a_rule_the_config_ignores(project, capsys):
    pyproject(project, '[tool.trainlint]\nignore = ["TL001"]\n')
    assert codes(run(capsys, "--extend-select", "TL001")[1]) == ["TL001"]


def test_command_line_ignore_adds_to_the_config(project, capsys):
    pyproject(project, '[tool.trainlint]\nselect = ["TL001"]\n')
    assert run(capsys, "--ignore", "TL001") == (0, [], "")


@pytest.mark.parametrize("select, ignore, enabled", [
    (("TL",), ("TL001",), False),  # the more specific ignore wins
    (("TL001",), ("TL",), True),  # the more specific select wins
    (("TL001",), ("TL001",), False),  # a tie: ignore wins
    (("ALL",), ("TL0",), False),
    (("ALL",), (), True),
])
def test_more_specific_selector_wins_within_a_layer(select, ignore, enabled):
    settings = Settings(select=select, ignore=ignore)
    assert ("TL001" in [r.code for r in settings.enabled_rules("x.py")]) is enabled


def test_nearest_pyproject_with_the_table_applies(project, capsys):
    pyproject(project, '[tool.trainlint]\nignore = ["TL001"]\n')
    plain = project / "plain"
    plain.mkdir()
    pyproject(plain, '[project]\nname = "plain"\n')  # no [tool.trainlint]: the parent's config applies
    (plain / "bug.py").write_text(BUGGY)
    own = project / "own"
    own.mkdir()
    pyproject(own, '[tool.trainlint]\nselect = ["TL001"]\n')  # its own table: the parent's does not
    (own / "bug.py").write_text(BUGGY)
    code, lines, _ = run(capsys, ".")
    assert code == 1
    assert [line.split(":")[0] for line in lines] == [str(Path("own") / "bug.py")]


def test_config_option_uses_the_given_file_instead_of_pyproject(project, capsys):
    pyproject(project, '[tool.trainlint]\nignore = ["TL001"]\n')
    (project / "strict.toml").write_text('select = ["TL001"]\n')  # top-level keys in a non-pyproject file
    assert codes(run(capsys, "--config", "strict.toml")[1]) == ["TL001"]
    other = project / "other"
    other.mkdir()
    pyproject(other, '[tool.trainlint]\nselect = ["TL001"]\n')
    assert codes(run(capsys, "--config", str(other / "pyproject.toml"))[1]) == ["TL001"]


def test_missing_config_file_exits_2(project, capsys):
    code, lines, err = run(capsys, "--config", "nope.toml")
    assert code == 2 and "nope.toml" in err


# --- files --------------------------------------------------------------------------------------

def test_exclude_and_extend_exclude_skip_folders_and_files(project, capsys):
    for folder in ("generated", "vendor", "src"):
        (project / folder).mkdir()
        (project / folder / "train.py").write_text(BUGGY)
    pyproject(project, '[tool.trainlint]\nextend-exclude = ["generated", "bug.py"]\n')
    code, lines, _ = run(capsys)
    assert sorted(line.split(":")[0] for line in lines) == [str(Path("src/train.py")), str(Path("vendor/train.py"))]
    pyproject(project, '[tool.trainlint]\nexclude = ["vendor/*"]\n')  # replaces the defaults
    code, lines, _ = run(capsys)
    assert sorted(line.split(":")[0] for line in lines) == sorted(
        ["bug.py", str(Path("generated/train.py")), str(Path("src/train.py"))])


def test_default_excludes_skip_virtualenvs(project, capsys):
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "torchy.py").write_text(BUGGY)
    assert [line.split(":")[0] for line in run(capsys)[1]] == ["bug.py"]


def test_an_excluded_file_named_explicitly_is_still_linted(project, capsys):
    pyproject(project, '[tool.trainlint]\nextend-exclude = ["bug.py"]\n')
    assert run(capsys)[1] == []
    assert codes(run(capsys, "bug.py")[1]) == ["TL001"]


def test_per_file_ignores_match_paths_relative_to_the_config(project, capsys, monkeypatch):
    (project / "scripts").mkdir()
    (project / "scripts" / "legacy.py").write_text(BUGGY)
    pyproject(project, '[tool.trainlint]\n[tool.trainlint.per-file-ignores]\n"scripts/*.py" = ["TL001"]\n')
    code, lines, _ = run(capsys)
    assert [line.split(":")[0] for line in lines] == ["bug.py"]
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")  # run from elsewhere: the pattern keeps its meaning
    code, lines, _ = run(capsys, str(Path("..") / "scripts" / "legacy.py"), str(Path("..") / "bug.py"))
    assert [line.split(":")[0] for line in lines] == [str(Path("..") / "bug.py")]


# --- errors: exit 2, naming the key -----------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ('[tool.trainlint]\nselec = ["TL001"]\n', ["unknown key 'selec'", "did you mean 'select'"]),
    ('[tool.trainlint]\nselect = ["TL999"]\n', ["select", "TL999"]),
    ('[tool.trainlint]\nignore = ["XX"]\n', ["ignore", "XX"]),
    ('[tool.trainlint]\nselect = "TL001"\n', ["'select' must be a list of strings"]),
    ('[tool.trainlint]\nextend-exclude = [1]\n', ["'extend-exclude' must be a list of strings"]),
    ('[tool.trainlint]\nper-file-ignores = ["a"]\n', ["'per-file-ignores' must be a table"]),
    ('[tool.trainlint.per-file-ignores]\n"a.py" = ["TL999"]\n', ["per-file-ignores", "TL999"]),
    ('[tool.trainlint.missing-zero-grad]\nstrict = true\n', ["unknown option 'strict'", "TL001"]),
    ('[tool.trainlint.no-such-rule]\nx = 1\n', ["unknown key 'no-such-rule'"]),
    ('[tool.trainlint]\nmissing-zero-grad = 3\n', ["missing-zero-grad", "must be a table"]),
    ('[tool.trainlint\nselect = []\n', ["invalid TOML"]),
])
def test_bad_configuration_exits_2_with_a_message_naming_the_problem(project, capsys, body, expected):
    path = pyproject(project, body)
    code, lines, err = run(capsys)
    assert code == 2, err
    assert lines == []
    assert err.startswith("trainlint: error: ") and str(path) in err
    for text in expected:
        assert text in err
    assert err.count("\n") == 1


class _TunableRule(Rule):
    """A throwaway rule that only declares options, to test their validation."""

    code = "TL900"
    name = "tunable"
    summary = "test rule"
    options: ClassVar[dict] = {"threshold": 0.5, "patience": 3, "strict": False, "mode": "fast",
                               "names": ("opt",), "limits": {"adam": 0.01}}

    def check(self, model, options):
        return iter(())


@pytest.fixture
def tunable(monkeypatch):
    rule = _TunableRule()
    monkeypatch.setitem(RULES_BY_NAME, rule.name, rule)
    monkeypatch.setitem(RULES_BY_CODE, rule.code, rule)
    return rule


def test_rule_options_are_merged_over_the_defaults(tunable, tmp_path):
    table = {"tunable": {"threshold": 1, "names": ["a", "b"], "limits": {"sgd": 2}, "mode": "slow"}}
    options = settings_from_table(table, tmp_path).options_for(tunable)
    assert options == {"threshold": 1.0, "patience": 3, "strict": False, "mode": "slow", "names": ("a", "b"),
                       "limits": {"adam": 0.01, "sgd": 2.0}}
    assert settings_from_table({"TL900": {"strict": True}}, tmp_path).options_for(tunable)["strict"] is True


@pytest.mark.parametrize("key, value, expected", [
    ("threshold", "high", "'threshold' must be a number"),
    ("threshold", True, "'threshold' must be a number"),
    ("patience", 2.5, "'patience' must be an integer"),
    ("strict", 1, "'strict' must be true or false"),
    ("mode", 3, "'mode' must be a string"),
    ("names", "opt", "'names' must be a list of strings"),
    ("limits", {"adam": "x"}, "'limits' must be a table of numbers"),
    ("colour", 1, "unknown option 'colour'"),
])
def test_rule_option_of_the_wrong_type_is_refused_naming_it(tunable, tmp_path, key, value, expected):
    with pytest.raises(ConfigError) as error:
        settings_from_table({"tunable": {key: value}}, tmp_path, where="pyproject.toml: [tool.trainlint]")
    assert expected in str(error.value)
    assert "[tool.trainlint].tunable" in str(error.value)


def test_resolver_caches_per_folder_and_applies_the_command_line(tmp_path):
    pyproject(tmp_path, '[tool.trainlint]\nignore = ["TL001"]\n')
    (tmp_path / "a").mkdir()
    resolver = SettingsResolver(overrides={"select": ["TL001"]})
    first = resolver.for_path(tmp_path / "a" / "x.py")
    assert first is resolver.for_path(tmp_path / "a" / "y.py")
    assert [r.code for r in first.enabled_rules(tmp_path / "a" / "x.py")] == ["TL001"]
    assert [r.code for r in SettingsResolver().for_path(tmp_path / "x.py").enabled_rules()] == [
        r.code for r in ALL_RULES if r.code != "TL001"]
