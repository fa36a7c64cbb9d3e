"""The pre-commit hook, for real: `pre-commit try-repo` installs trainlint from a git repository into a
fresh virtualenv (pip, from PyPI for libcst/rich) and runs the `trainlint` hook on a user's repository.

The hook repository is a snapshot of this working tree (package, pyproject.toml, README,
.pre-commit-hooks.yaml) committed to a temporary git repository: try-repo on the project root itself
would only see tracked files, so a new module or the hooks file not yet committed would be missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from samples import BUGGY, FIXED

ROOT = Path(__file__).resolve().parents[1]



def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def snapshot_of_this_project(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    destination.mkdir()
    shutil.copytree(ROOT / "trainlint", destination / "trainlint", ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, destination / name)
    git(destination, "init", "-q")
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "-m", "snapshot")
    return destination


def try_repo(hook_repo: Path, user_repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "trainlint", "--all-files"],
                          cwd=user_repo, env=env, capture_output=True, text=True, timeout=600)


def test_hooks_file_declares_the_trainlint_hook():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    for line in ("- id: trainlint", "name: trainlint", "entry: trainlint check", "language: python",
                 "types_or: [python, jupyter]", "require_serial: false", "args: []"):
        assert line in text


def notebook(source: str) -> str:
    """A one-cell notebook as nbformat writes it."""
    cell = {"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [],
            "source": source.splitlines(True)}
    return json.dumps({"cells": [cell], "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def run_with_config(hook_repo: Path, user_repo: Path, home: Path, args: list[str]) -> subprocess.CompletedProcess:
    """`pre-commit run` with a config that pins the hook repository at its commit and passes `args`."""
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    (user_repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: trainlint\n"
        f"        args: {json.dumps(args)}\n")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=user_repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_precommit_hook_fails_on_missing_zero_grad_and_passes_once_fixed(tmp_path):
    hook_repo = snapshot_of_this_project(tmp_path / "trainlint-hook")
    user_repo = tmp_path / "user"
    user_repo.mkdir()
    (user_repo / "train.py").write_text(BUGGY)
    (user_repo / "nb.ipynb").write_text(notebook(BUGGY))
    (user_repo / "notes.txt").write_text("not python\n")
    git(user_repo, "init", "-q")
    git(user_repo, "add", "-A")
    git(user_repo, "commit", "-q", "-m", "buggy")

    failing = try_repo(hook_repo, user_repo, tmp_path / "pre-commit-home")
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert "trainlint" in output and "Failed" in output
    assert "train.py:6:5" in output and "TL001" in output
    assert "nb.ipynb:cell 1:6:5" in output  # pre-commit hands notebooks to the hook too

    # With --fix the hook fixes both (and fails once, so the fix can be reviewed), then passes.
    fixing = run_with_config(hook_repo, user_repo, tmp_path / "pre-commit-home", ["--fix"])
    assert fixing.returncode == 1, fixing.stdout + fixing.stderr
    assert "files were modified by this hook" in fixing.stdout
    assert (user_repo / "train.py").read_text() == FIXED
    assert (user_repo / "nb.ipynb").read_text() == notebook(FIXED)
    git(user_repo, "add", "-A")
    git(user_repo, "commit", "-q", "-m", "fixed")
    passing = try_repo(hook_repo, user_repo, tmp_path / "pre-commit-home")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout
