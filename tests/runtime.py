"""Running fixtures for real: the buggy script, then trainlint's own fix of it.

Fixtures live in fixtures/<CODE>/ as `bug_<framework>_<case>.py` (with `# expect: CODE` on each line
that must be reported) and `ok_<framework>_<case>.py` (no findings). Each prints a last line
`SYMPTOM {json}` that the rule's test judges.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trainlint

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
_EXPECT = re.compile(r"#\s*expect:\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)")


def fixtures(code: str, prefix: str = "bug_") -> list[Path]:
    return sorted((FIXTURES / code).glob(f"{prefix}*.py"))


def expected_findings(path: Path) -> set[tuple[int, str]]:
    """(row, code) for every `# expect: CODE` marker in the file."""
    found = set()
    for row, line in enumerate(path.read_text().splitlines(), start=1):
        match = _EXPECT.search(line)
        if match:
            found.update((row, code.strip()) for code in match.group(1).split(","))
    return found


def fix_is_unsafe(path: Path) -> bool:
    """A fixture whose fix is only offered as unsafe says so with a `# fix: unsafe` line."""
    return "# fix: unsafe" in path.read_text()


def fix_is_none(path: Path) -> bool:
    """A fixture of a case the rule reports without a fix says so with a `# fix: none` line."""
    return "# fix: none" in path.read_text()


def reported(path: Path, select: str | None = None) -> set[tuple[int, str]]:
    findings = trainlint.lint_source(path.read_text(), path=str(path))
    return {(f.location.row, f.code) for f in findings if select is None or f.code.startswith(select)}


def run_script(path: Path, timeout: int = 300) -> dict:
    """Run a fixture with the fixtures' helpers importable; return its SYMPTOM measurements."""
    env = {**os.environ, "PYTHONPATH": str(FIXTURES), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=path.parent)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SYMPTOM ")]
    assert lines, f"{path.name} printed no SYMPTOM line:\n{proc.stdout[-2000:]}"
    return json.loads(lines[-1][len("SYMPTOM "):])


def autofixed(path: Path, directory: Path, unsafe: bool = False) -> Path:
    """Write trainlint's fix of `path` into `directory` and return the new file."""
    source = path.read_text()
    fixed = trainlint.fix_source(source, path=str(path), unsafe=unsafe)
    assert fixed != source, f"trainlint offered no fix for {path.name}"
    target = directory / path.name
    target.write_text(fixed)
    return target


def run_both(buggy: Path, repaired: Path) -> tuple[dict, dict]:
    """Run the buggy fixture and its fix side by side (each pays TensorFlow's / torch's import once)."""
    with ThreadPoolExecutor(2) as pool:
        return tuple(pool.map(run_script, (buggy, repaired)))


# Inline test snippets: dedented source, findings of one rule.
def lint_snippet(source: str, settings=None, *, code: str | None = None) -> list:
    findings = trainlint.lint_source(textwrap.dedent(source), settings=settings)
    return [f for f in findings if code is None or f.code == code]


def rows(source: str, settings=None, *, code: str | None = None) -> list[tuple[int, str]]:
    return [(f.location.row, f.code) for f in lint_snippet(source, settings, code=code)]


def fix_snippet(source: str, unsafe: bool = False) -> str:
    return trainlint.fix_source(textwrap.dedent(source), unsafe=unsafe)
