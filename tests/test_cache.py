"""The cache: on by default at the project root, keyed by everything a file's findings depend on, never stale,
never an error (corrupt, truncated or unwritable), safe with several runs at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from samples import BUGGY, FIXED

from trainlint.cli import main
from trainlint.engine import cache as cache_module
from trainlint.engine import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv(cache_module.ENV_VAR, raising=False)
    (tmp_path / "pyproject.toml").write_text("[tool.trainlint]\n")
    (tmp_path / "train.py").write_text(BUGGY)
    return tmp_path


def check(capsys, *args: str) -> tuple[int, str]:
    code = main(["check", "--output-format", "concise", *args])
    return code, capsys.readouterr().out


@pytest.fixture
def analyses(monkeypatch):
    """Counts the files really analysed (not answered from the cache)."""
    calls = []
    original = run.analyse

    def counting(source, path, *args, **kwargs):
        calls.append(Path(path).name)
        return original(source, path, *args, **kwargs)

    monkeypatch.setattr(run, "analyse", counting)
    return calls


def entries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and p.parent.name != directory.name]


def test_cache_is_created_at_the_project_root_and_kept_out_of_git(project, capsys):
    (project / "sub").mkdir()
    os.chdir(project / "sub")
    code, out = check(capsys, "../train.py")
    assert code == 1 and "TL001" in out
    cache = project / ".trainlint_cache"
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert len(entries(cache)) == 1


def test_unchanged_file_is_answered_from_the_cache_with_the_same_findings(project, capsys, analyses):
    first = check(capsys, "--output-format", "json")
    assert analyses == ["train.py"]
    second = check(capsys, "--output-format", "json")
    assert analyses == ["train.py"]  # not analysed again
    assert first == second and json.loads(second[1])[0]["fix"]["edits"]


@pytest.mark.parametrize("change", ["content", "settings", "version", "path"])
def test_anything_the_findings_depend_on_changes_the_key(project, capsys, analyses, monkeypatch, change):
    check(capsys)
    if change == "content":
        (project / "train.py").write_text(BUGGY.replace("lr=0.1", "lr=0.2"))
    elif change == "settings":
        (project / "pyproject.toml").write_text('[tool.trainlint]\nignore = ["TL001"]\n')
    elif change == "version":
        monkeypatch.setattr(cache_module, "__version__", "99.0")
    else:
        (project / "train.py").rename(project / "other.py")
    code, out = check(capsys)
    assert len(analyses) == 2
    assert (code, "TL001" in out) == ((0, False) if change == "settings" else (1, True))


def test_no_cache_reads_and_writes_nothing(project, capsys, analyses):
    check(capsys, "--no-cache")
    check(capsys, "--no-cache")
    assert analyses == ["train.py", "train.py"] and not (project / ".trainlint_cache").exists()


def test_cache_dir_option_and_environment_variable(project, capsys, monkeypatch):
    check(capsys, "--cache-dir", "elsewhere")
    assert len(entries(project / "elsewhere")) == 1 and not (project / ".trainlint_cache").exists()
    monkeypatch.setenv(cache_module.ENV_VAR, str(project / "from-env"))
    check(capsys)
    assert len(entries(project / "from-env")) == 1


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"findings": [[1, 2]]}', b'{"findings": 3}', b"\xff\xfe"])
def test_corrupt_or_truncated_entry_is_ignored_and_rebuilt(project, capsys, analyses, damage):
    code, out = check(capsys)
    [entry] = entries(project / ".trainlint_cache")
    entry.write_bytes(damage)
    assert check(capsys) == (code, out)
    assert analyses == ["train.py", "train.py"]
    assert json.loads(entry.read_text())["findings"]  # rebuilt


def test_unwritable_cache_is_not_an_error(project, capsys):
    (project / ".trainlint_cache").write_text("a file where the folder should be")
    code, out = check(capsys)
    assert code == 1 and "TL001" in out


def test_fix_is_applied_even_when_the_findings_are_cached(project, capsys):
    check(capsys)  # caches the findings of the buggy file
    code, _ = check(capsys, "--fix")
    assert code == 0 and (project / "train.py").read_text() == FIXED
    assert check(capsys) == (0, "All checks passed!\n")


def test_concurrent_runs_share_the_cache_safely(project):
    """pre-commit starts several processes at once: each must give the same, complete result."""
    for i in range(12):
        (project / f"script_{i}.py").write_text(BUGGY if i % 2 else FIXED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "trainlint", "check", "--output-format", "concise", "."]
    processes = [subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    alone = subprocess.run(command + ["--no-cache"], cwd=project, env=env, stdout=subprocess.PIPE, text=True,
                           timeout=300).stdout
    assert all(out == alone for out in outputs) and alone.count("TL001") == 7
    assert not [p for p in (project / ".trainlint_cache").rglob(".tmp-*")]
