"""`--fix` never loses or corrupts a file: it keeps the encoding, BOM, newlines, mode and symlinks,
writes atomically, refuses (and says so) when the result cannot be trusted, settles in one run, and
`--diff` / the JSON fix edits show exactly what `--fix` writes. Notebooks: tests/test_notebooks.py."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import ClassVar

import ast

import pytest
from samples import BUGGY, FIXED

from trainlint.cli import main
from trainlint.fixes import Fix, InsertBefore, Replace, statement, write_atomic
from trainlint.rules import ALL_RULES, Rule, Violation

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def fix(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", "--fix", "--output-format", "concise", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def diff(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", "--diff", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def no_temp_files_left(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if "trainlint-tmp" in p.name]


def test_fix_inserts_zero_grad_first_in_the_loop_and_a_second_fix_changes_nothing(project, capsys):
    path = project / "train.py"
    path.write_text(BUGGY)
    assert fix(capsys)[0] == 0
    assert path.read_text() == FIXED
    before = path.stat()
    code, out, _ = fix(capsys)
    assert code == 0 and out.strip() == "All checks passed!"
    assert path.read_bytes() == FIXED.encode() and path.stat().st_mtime_ns == before.st_mtime_ns
    assert no_temp_files_left(project)


def test_fix_keeps_latin1_encoding_with_its_coding_cookie(project, capsys):
    source = "# -*- coding: latin-1 -*-\n# Modèle entraîné à la main\n" + BUGGY
    path = project / "train.py"
    path.write_bytes(source.encode("latin-1"))
    assert fix(capsys)[0] == 0
    data = path.read_bytes()
    assert data == ("# -*- coding: latin-1 -*-\n# Modèle entraîné à la main\n" + FIXED).encode("latin-1")


def test_fix_keeps_the_utf8_bom(project, capsys):
    path = project / "train.py"
    path.write_bytes(b"\xef\xbb\xbf" + ("# é\n" + BUGGY).encode())
    assert fix(capsys)[0] == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + ("# é\n" + FIXED).encode()


def test_fix_keeps_crlf_newlines_including_on_the_inserted_line(project, capsys):
    path = project / "train.py"
    path.write_bytes(BUGGY.replace("\n", "\r\n").encode())
    assert fix(capsys)[0] == 0
    assert path.read_bytes() == FIXED.replace("\n", "\r\n").encode()


def test_fix_keeps_the_file_mode(project, capsys):
    path = project / "train.py"
    path.write_text(BUGGY)
    path.chmod(0o755)
    assert fix(capsys)[0] == 0
    assert path.read_text() == FIXED
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_fix_follows_a_symlink_and_keeps_it(project, capsys):
    real = project / "real_train.py"
    real.write_text(BUGGY)
    link = project / "link" / "train.py"
    link.parent.mkdir()
    link.symlink_to(real)
    assert fix(capsys, str(link))[0] == 0
    assert link.is_symlink() and real.read_text() == FIXED


def test_fix_keeps_a_missing_final_newline(project, capsys):
    path = project / "train.py"
    path.write_text(BUGGY.rstrip("\n"))
    assert fix(capsys)[0] == 0
    assert path.read_text() == FIXED.rstrip("\n")


VARIANTS = {
    "lf": BUGGY,
    "crlf": BUGGY.replace("\n", "\r\n"),
    "no-final-newline": BUGGY.rstrip("\n"),
    "in-a-decorated-function": ("import functools\nimport torch\n\n\n# trains\n@functools.lru_cache()\n\n"
                                "def main(model, opt):\n    # the loop\n    for x in range(3):\n"
                                "        loss = model(torch.randn(2, 4)).sum()\n        loss.backward()\n"
                                "        opt.step()\n\n\nmodel = torch.nn.Linear(4, 1)\n"
                                "main(model, torch.optim.SGD(model.parameters(), lr=0.1))\n# end\n"),
    "in-a-method": ("import torch\n\n\nclass Trainer:\n    def __init__(self):\n"
                    "        self.model = torch.nn.Linear(4, 1)\n"
                    "        self.opt = torch.optim.Adam(self.model.parameters())\n\n"
                    "    def fit(self):\n        for x in range(3):\n"
                    "            self.model(torch.randn(2, 4)).sum().backward()\n"
                    "            self.opt.step()\n"),
    "form-feed": "import os\n\x0c\n" + BUGGY,
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_diff_shows_exactly_what_fix_writes(project, capsys, name):
    """Apply the printed diff with `patch` to a copy of the original: it must equal --fix's file."""
    original = VARIANTS[name].encode()
    (project / "train.py").write_bytes(original)
    code, patch_text, _ = diff(capsys, "train.py")
    assert code == 1 and patch_text.startswith("--- train.py\n+++ train.py\n")
    assert (project / "train.py").read_bytes() == original  # --diff writes nothing
    assert fix(capsys, "train.py")[0] == 0
    written = (project / "train.py").read_bytes()
    assert written != original

    copy = project / "copy"
    copy.mkdir()
    (copy / "train.py").write_bytes(original)
    (copy / "fix.patch").write_bytes(patch_text.encode())
    if shutil.which("patch"):
        subprocess.run(["patch", "-p0", "--binary", "-s", "-i", "fix.patch"], cwd=copy, check=True)
    else:
        subprocess.run(["git", "apply", "--unsafe-paths", "fix.patch"], cwd=copy, check=True)
    assert (copy / "train.py").read_bytes() == written


@pytest.mark.parametrize("name", list(VARIANTS))
def test_json_fix_edits_applied_to_the_file_give_what_fix_writes(project, capsys, name):
    original = VARIANTS[name]
    (project / "train.py").write_bytes(original.encode())
    main(["check", "--output-format", "json", "train.py"])
    [finding] = [f for f in json.loads(capsys.readouterr().out) if f["code"] == "TL001"]
    [edit] = finding["fix"]["edits"]
    lines = original.encode().decode().splitlines(keepends=True) if "\x0c" not in original else \
        [line + "\n" for line in original.split("\n")][:-1]
    start, end = edit["location"]["row"] - 1, edit["end_location"]["row"] - 1
    assert edit["location"]["column"] == edit["end_location"]["column"] == 1
    edited = "".join(lines[:start]) + edit["content"] + "".join(lines[end:])
    fix(capsys, "train.py")
    assert (project / "train.py").read_bytes().decode() == edited


# --- refusals: the file stays untouched and the user is told which file and why ------------------

class _BadFixRule(Rule):
    """A throwaway rule whose fix is broken in a chosen way, to prove the engine refuses it."""

    code = "TL950"
    name = "bad-fix"
    summary = "test rule"
    fix = "safe"
    mode: ClassVar[str] = "unparsable"

    def check(self, model, options):
        for line in model.module.body:
            if not (isinstance(line, ast.Expr) and isinstance(line.value, ast.Call)
                    and isinstance(line.value.func, ast.Name) and line.value.func.id == "marker"):
                continue
            call = line.value
            if self.mode == "unparsable":  # `if()`
                edit = Replace(call.func, "if")
            elif self.mode == "not-python":  # parses, but Python will not compile it
                edit = Replace(line, statement("return marker"))
            elif self.mode == "unencodable":
                edit = Replace(call.func, "λ_marker")
            else:  # "endless": the fix keeps the finding, so fixes would never settle
                edit = InsertBefore(line, statement("pass"))
            yield Violation(call, "marker() is flagged", Fix("Rewrite marker()", [edit]))


@pytest.fixture
def bad_fix_rule(monkeypatch):
    rule = _BadFixRule()
    monkeypatch.setattr("trainlint.config.ALL_RULES", (*ALL_RULES, rule))
    monkeypatch.setattr("trainlint.config.RULES_BY_CODE", {**{r.code: r for r in ALL_RULES}, rule.code: rule})
    return rule


@pytest.mark.parametrize("mode, reason", [
    ("unparsable", "would not parse"),
    ("not-python", "would not compile"),
    ("endless", "did not remove the finding"),
])
def test_a_fix_that_fails_validation_is_left_out_and_the_others_are_applied(project, capsys, bad_fix_rule, mode,
                                                                             reason):
    """One bad fix never blocks the others in the file: it is refused (its finding stays, the user is told
    which fix and why), and every other fix is written."""
    bad_fix_rule.mode = mode
    path = project / "train.py"
    path.write_bytes(("# -*- coding: latin-1 -*-\n" + BUGGY + "marker()\n").encode("latin-1"))
    code, out, err = fix(capsys)
    assert code == 1
    assert path.read_bytes() == ("# -*- coding: latin-1 -*-\n" + FIXED + "marker()\n").encode("latin-1")
    [message] = [line for line in err.splitlines() if "train.py" in line]
    assert message.startswith("train.py: fix not applied: TL950 at line 9") and reason in message
    assert "TL001" not in out and "train.py:10:1: TL950" in out  # the refused fix's finding is still reported
    assert no_temp_files_left(project)


def test_fixed_text_that_cannot_be_encoded_leaves_the_file_untouched_and_says_why(project, capsys, bad_fix_rule):
    bad_fix_rule.mode = "unencodable"
    path = project / "train.py"
    original = ("# -*- coding: latin-1 -*-\n" + BUGGY + "marker()\n").encode("latin-1")
    path.write_bytes(original)
    (project / "other.py").write_text(BUGGY)
    mtime = path.stat().st_mtime_ns
    code, out, err = fix(capsys)
    assert code == 1
    assert path.read_bytes() == original and path.stat().st_mtime_ns == mtime
    [message] = [line for line in err.splitlines() if "train.py" in line]
    assert message.startswith("train.py: fixes not applied: ") and "cannot be encoded as iso-8859-1" in message
    assert "train.py:7:5: TL001" in out and "train.py:9:1: TL950" in out  # still reported
    assert (project / "other.py").read_text() == FIXED  # the other file is fixed all the same
    assert no_temp_files_left(project)
    code, out, err = diff(capsys, "train.py")
    assert code == 1 and "train.py: fixes not applied:" in err and out == ""


def test_file_changed_after_it_was_read_is_not_overwritten(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("old\n")
    info = path.stat()
    signature = (info.st_ino, info.st_size, info.st_mtime_ns)
    path.write_text("someone else's edit\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    with pytest.raises(OSError, match="changed on disk"):
        write_atomic(path, b"fixed\n", expect=signature)
    assert path.read_text() == "someone else's edit\n"
    assert no_temp_files_left(tmp_path)


def test_write_atomic_leaves_no_trace_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text("old\n")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new\n")
    assert path.read_text() == "old\n" and no_temp_files_left(tmp_path)


@pytest.mark.skipif(IS_ROOT, reason="root may write read-only files")
def test_read_only_file_is_not_rewritten(project, capsys):
    path = project / "train.py"
    path.write_text(BUGGY)
    path.chmod(0o444)
    code, _, err = fix(capsys)
    assert code == 1 and path.read_text() == BUGGY
    assert "train.py: fixes not applied: could not write the fixed file" in err
