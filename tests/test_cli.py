"""The command line as a user meets it: commands, options with ruff's names and meanings, exit codes,
and parallel runs that give exactly what a sequential run gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from samples import BUGGY, FIXED

import trainlint
from trainlint import engine
from trainlint.cli import main
from trainlint.config import Settings
from trainlint.rules import ALL_RULES

TL001_LINE = "bug.py:6:5: TL001 "


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    (tmp_path / "bug.py").write_text(BUGGY)
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def finding_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": TL" in line or ": E9" in line]


# --- check ---------------------------------------------------------------------------------------

def test_check_without_paths_lints_the_current_folder_and_exits_1(project, capsys):
    (project / "sub").mkdir()
    (project / "sub" / "other.py").write_text(BUGGY)
    code, out, _ = run(capsys, "check", "--output-format", "concise")
    assert code == 1
    assert finding_lines(out)[0].startswith(TL001_LINE)
    assert any(line.startswith(os.path.join("sub", "other.py") + ":6:5: TL001 ") for line in finding_lines(out))


def test_tl001_is_reported_at_the_backward_call(project, capsys):
    code, out, _ = run(capsys, "check", "bug.py", "--output-format", "concise")
    [line] = finding_lines(out)
    assert line.startswith("bug.py:6:5: TL001 ")


def test_clean_file_exits_0_and_prints_no_finding(project, capsys):
    (project / "bug.py").write_text(FIXED)
    code, out, _ = run(capsys, "check", "--output-format", "concise")
    assert code == 0
    assert finding_lines(out) == []


def test_exit_zero_keeps_the_findings_but_exits_0(project, capsys):
    code, out, _ = run(capsys, "check", "--exit-zero", "--output-format", "concise")
    assert code == 0
    assert finding_lines(out)[0].startswith(TL001_LINE)


def test_quiet_prints_findings_without_the_summary(project, capsys):
    _, loud, _ = run(capsys, "check", "--output-format", "concise")
    code, quiet, _ = run(capsys, "check", "--quiet", "--output-format", "concise")
    assert code == 1
    assert "Found 1 finding" in loud
    assert quiet.strip().splitlines() == finding_lines(loud)


def test_statistics_counts_findings_per_rule(project, capsys):
    (project / "two.py").write_text(BUGGY)
    code, out, _ = run(capsys, "check", "--statistics", "--output-format", "concise")
    assert code == 1
    [row] = [line for line in out.splitlines() if "TL001" in line]
    assert row.split()[0] == "2" and "missing-zero-grad" in row
    assert "bug.py:6:5" not in out  # statistics replace the list of findings


def test_json_output_is_a_list_of_findings_with_ruffs_fields(project, capsys):
    code, out, _ = run(capsys, "check", "--output-format", "json")
    assert code == 1
    [finding] = json.loads(out)
    assert finding["code"] == "TL001" and finding["filename"] == "bug.py"
    assert finding["location"] == {"row": 6, "column": 5}
    assert finding["fix"]["applicability"] == "safe"


@pytest.mark.parametrize("selector", ["TL001", "TL0", "TL", "ALL"])
def test_select_accepts_codes_and_prefixes(project, capsys, selector):
    code, out, _ = run(capsys, "check", "--select", selector, "--output-format", "concise")
    assert code == 1
    assert finding_lines(out)[0].startswith(TL001_LINE)


def test_ignore_drops_the_rule(project, capsys):
    code, out, _ = run(capsys, "check", "--ignore", "TL001", "--output-format", "concise")
    assert code == 0
    assert finding_lines(out) == []


def test_extend_select_adds_to_an_empty_selection(project, capsys):
    code, out, _ = run(capsys, "check", "--select", "TL002", "--output-format", "concise")
    assert finding_lines(out) == [] and code == 0
    code, out, _ = run(capsys, "check", "--select", "TL002", "--extend-select", "TL001", "--output-format", "concise")
    assert code == 1 and finding_lines(out)[0].startswith(TL001_LINE)


def test_select_takes_a_comma_separated_list_in_any_case(project, capsys):
    code, out, _ = run(capsys, "check", "--select", "tl002, tl001", "--output-format", "concise")
    assert code == 1 and finding_lines(out)[0].startswith(TL001_LINE)


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_rule_code_on_the_command_line_exits_2_naming_it(project, capsys, option):
    code, out, err = run(capsys, "check", option, "TL999")
    assert code == 2
    assert "TL999" in err and option in err
    assert out == ""


def test_unknown_option_exits_2(project, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--frobnicate"])
    assert exit_info.value.code == 2
    assert "--frobnicate" in capsys.readouterr().err


def test_unknown_output_format_exits_2(project, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--output-format", "xml"])
    assert exit_info.value.code == 2


def test_no_command_prints_help_and_exits_2(project, capsys):
    code, _, err = run(capsys)
    assert code == 2
    assert "check" in err


@pytest.mark.parametrize("output_format", ["full", "concise", "json", "github", "sarif"])
def test_every_output_format_runs_and_keeps_the_exit_code(project, capsys, output_format):
    code, out, _ = run(capsys, "check", "--output-format", output_format)
    assert code == 1
    assert "TL001" in out and "bug.py" in out


def test_nonexistent_path_is_reported_and_the_other_paths_are_still_linted(project, capsys):
    code, out, _ = run(capsys, "check", "missing.py", "bug.py", "--output-format", "concise")
    assert code == 1
    lines = finding_lines(out)
    assert any(line.startswith("missing.py:1:1: E902 ") and "No such file" in line for line in lines)
    assert any(line.startswith(TL001_LINE) for line in lines)


def test_the_same_file_named_twice_is_linted_once(project, capsys):
    code, out, _ = run(capsys, "check", "bug.py", "./bug.py", str(project / "bug.py"), ".", "--output-format", "concise")
    assert len(finding_lines(out)) == 1


# --- --fix, --diff, --unsafe-fixes --------------------------------------------------------------

def test_fix_repairs_the_file_and_exits_0_when_nothing_remains(project, capsys):
    code, out, _ = run(capsys, "check", "--fix", "--output-format", "concise")
    assert code == 0
    assert (project / "bug.py").read_text() == FIXED
    assert "1 fixed" in out


def test_diff_prints_the_fix_writes_nothing_and_exits_1(project, capsys):
    code, out, _ = run(capsys, "check", "--diff")
    assert code == 1
    assert (project / "bug.py").read_text() == BUGGY
    assert "--- bug.py\n+++ bug.py\n" in out
    assert "+    opt.zero_grad()\n" in out


def test_diff_on_clean_code_prints_nothing_and_exits_0(project, capsys):
    (project / "bug.py").write_text(FIXED)
    code, out, _ = run(capsys, "check", "--diff")
    assert (code, out) == (0, "")


class _UnsafeRule:
    """A throwaway rule: `risky()` is reported, and the unsafe fix renames it `careful()`."""

    code, name, summary, fix, options, frameworks = "TL901", "risky-call", "risky() is risky", "unsafe", {}, ()

    def check(self, model, options):
        import ast

        from trainlint.fixes import UNSAFE, Fix, Replace
        from trainlint.rules import Violation

        for node in ast.walk(model.module):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "risky":
                yield Violation(node, "risky() is risky", Fix("Call careful()", [Replace(node.func, "careful")], UNSAFE))


@pytest.fixture
def unsafe_rule(monkeypatch):
    rule = _UnsafeRule()
    monkeypatch.setattr("trainlint.config.ALL_RULES", (*ALL_RULES, rule))
    monkeypatch.setattr("trainlint.config.RULES_BY_CODE", {**{r.code: r for r in ALL_RULES}, rule.code: rule})
    return rule


def test_unsafe_fixes_are_applied_only_with_unsafe_fixes(project, capsys, unsafe_rule):
    script = project / "risky.py"
    script.write_text("import torch\nrisky()\n")
    code, out, _ = run(capsys, "check", "--fix", "risky.py", "--output-format", "concise")
    assert code == 1 and script.read_text() == "import torch\nrisky()\n"
    assert "risky.py:2:1: TL901" in out
    code, out, _ = run(capsys, "check", "--fix", "--unsafe-fixes", "risky.py", "--output-format", "concise")
    assert code == 0 and script.read_text() == "import torch\ncareful()\n"


# --- rule, rules, version -----------------------------------------------------------------------

def test_rules_lists_every_rule_with_code_name_and_fix_kind(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    for rule in ALL_RULES:
        [row] = [line for line in out.splitlines() if line.startswith(rule.code + " ")]
        assert rule.name in row and row.split()[2] == rule.fix and rule.fix in ("safe", "unsafe", "none")


@pytest.mark.parametrize("name", ["TL001", "tl001", "missing-zero-grad"])
def test_rule_prints_the_rules_page(capsys, name):
    code, out, _ = run(capsys, "rule", name)
    assert code == 0
    assert out.startswith("# TL001 missing-zero-grad\n")
    assert "## Why is this bad?" in out and "## Example" in out


def test_unknown_rule_exits_2(capsys):
    code, _, err = run(capsys, "rule", "TL999")
    assert code == 2 and "TL999" in err


def test_version_is_the_packages(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"trainlint {trainlint.__version__}"


def test_python_dash_m_and_the_console_script_behave_alike(project):
    script = Path(sys.executable).with_name("trainlint")
    commands = [[sys.executable, "-m", "trainlint"]] + ([[str(script)]] if script.exists() else [])
    for command in commands:
        version = subprocess.run([*command, "--version"], capture_output=True, text=True)
        assert (version.returncode, version.stdout.strip()) == (0, f"trainlint {trainlint.__version__}")
        check = subprocess.run([*command, "check", "--output-format", "concise"], cwd=project,
                               capture_output=True, text=True)
        assert check.returncode == 1 and check.stdout.startswith(TL001_LINE), check.stderr
        bad = subprocess.run([*command, "check", "--select", "NOPE"], cwd=project, capture_output=True, text=True)
        assert bad.returncode == 2 and "NOPE" in bad.stderr


def test_closed_stdout_ends_quietly(project):
    """`trainlint check | head -1` must not end in a BrokenPipeError traceback."""
    for i in range(30):
        (project / f"copy{i}.py").write_text(BUGGY)
    process = subprocess.run(f"{sys.executable} -m trainlint check --output-format concise | head -1",
                             shell=True, cwd=project, capture_output=True, text=True)
    assert process.stdout.count("\n") == 1
    assert "Traceback" not in process.stderr


# --- parallel -----------------------------------------------------------------------------------

def test_parallel_run_gives_exactly_the_sequential_results(tmp_path):
    variants = [BUGGY, FIXED, BUGGY.replace("opt", "optimizer"), "import torch\ndef broken(:\n    loss.backward()\n",
                BUGGY + "\n\nfor y in range(2):\n    model(torch.randn(2, 4)).sum().backward()\n    opt.step()\n",
                "import os\n"]
    files = []
    for i in range(12):
        path = tmp_path / f"script_{i:02d}.py"
        path.write_text(variants[i % len(variants)])
        files.append((path, Settings()))
    sequential = list(engine.check_files(files, jobs=1))
    parallel = list(engine.check_files(files, jobs=4))
    assert len(files) >= engine.pool._PARALLEL_THRESHOLD
    assert [r.filename for r in parallel] == [str(path) for path, _ in files]
    assert parallel == sequential
    assert sum(len(r.findings) for r in parallel) >= 8


def test_parallel_fix_and_diff_match_sequential(tmp_path):
    for mode in ("diff", "fix"):
        results = {}
        for jobs in (1, 3):
            folder = tmp_path / f"{mode}{jobs}"
            folder.mkdir()
            files = []
            for i in range(10):
                path = folder / f"s{i}.py"
                path.write_text(BUGGY if i % 2 else FIXED)
                files.append((path, Settings()))
            out = list(engine.check_files(files, fix=mode == "fix", diff=mode == "diff", jobs=jobs))
            results[jobs] = ([(Path(r.filename).name, r.findings and [f.code for f in r.findings], r.fixed,
                               r.written) for r in out], [p.read_text() for p, _ in files])
        assert results[1] == results[3]
