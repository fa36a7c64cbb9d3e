"""Files that cannot be linted: each gets one clear line (E902 unreadable, E999 syntax error) in every
output format, the other files are still linted, and the run exits non-zero. Nothing hangs or crashes."""
from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from samples import BUGGY

from trainlint import engine, files
from trainlint.cli import main
from trainlint.config import Settings

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    (tmp_path / "good.py").write_text(BUGGY)
    return tmp_path


def check(capsys, *args: str, output_format: str = "concise") -> tuple[int, str, str]:
    code = main(["check", "--output-format", output_format, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def concise_line(out: str, filename: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith(filename + ":")]
    return line


def json_entry(out: str, filename: str) -> dict:
    [entry] = [entry for entry in json.loads(out) if entry["filename"] == filename]
    return entry


def notebook(cells: list[str], **metadata) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                  "source": source} for source in cells],
                       "metadata": metadata or {"kernelspec": {"language": "python", "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5})


# Each bad file: (name, bytes, code, row, column, words the message must hold)
BAD_FILES = [
    ("syntax.py", b"import torch\ndef broken(:\n    loss.backward()\n", "E999", 2, 12, "SyntaxError"),
    ("latin.py", b'import torch\nname = "caf\xe9"\n', "E902", 2, 12, "not valid utf-8"),
    ("broken.ipynb", b'{"cells": [ {"cell_type": "code", "source": "import torch"} \n', "E902", 2, 1,
     "not valid JSON"),
    ("nul.py", b"import torch\x00\n", "E902", 1, 1, "binary"),
    ("cookie.py", b"# -*- coding: no-such-codec -*-\nimport torch\n", "E902", 1, 1, "no-such-codec"),
    # An unknown codec is refused even when the bytes mention no framework: its text cannot be known.
    ("cookie_plain.py", b"# coding: no-such-codec\nimport os\n", "E902", 1, 1, "unknown encoding (no-such-codec)"),
    ("utf16.py", codecs.BOM_UTF16_LE + BUGGY.encode("utf-16-le"), "E902", 1, 1,
     "Python cannot read UTF-16 source files"),
    ("utf16be.py", codecs.BOM_UTF16_BE + BUGGY.encode("utf-16-be"), "E902", 1, 1,
     "Python cannot read UTF-16 source files"),
    ("utf32.py", BUGGY.encode("utf-32"), "E902", 1, 1, "Python cannot read UTF-32 source files"),
    ("utf16_cookie.py", b"# -*- coding: utf-16 -*-\n" + BUGGY.encode(), "E902", 1, 1,
     "Python cannot read UTF-16 source files"),
    ("utf16_no_bom.py", BUGGY.encode("utf-16-le"), "E902", 1, 1, "Python cannot read UTF-16 source files"),
]


@pytest.mark.parametrize("name, data, code, row, column, words", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_gets_one_clear_line_in_concise_and_json_and_the_run_goes_on(
        project, capsys, name, data, code, row, column, words):
    (project / name).write_bytes(data)
    exit_code, out, _ = check(capsys)
    assert exit_code == 1
    line = concise_line(out, name)
    assert line.startswith(f"{name}:{row}:{column}: {code} ")
    assert words.lower() in line.lower()
    assert concise_line(out, "good.py").startswith("good.py:6:5: TL001")

    exit_code, out, _ = check(capsys, output_format="json")
    assert exit_code == 1
    entry = json_entry(out, name)
    assert (entry["code"], entry["location"]) == (code, {"row": row, "column": column})
    assert words.lower() in entry["message"].lower() and "\n" not in entry["message"]
    assert json_entry(out, "good.py")["code"] == "TL001"


@pytest.mark.parametrize("output_format", ["full", "github", "sarif"])
def test_bad_files_are_named_in_the_other_formats_too(project, capsys, output_format):
    for name, data, *_ in BAD_FILES:
        (project / name).write_bytes(data)
    exit_code, out, _ = check(capsys, output_format=output_format)
    assert exit_code == 1
    for name, _data, code, *_ in BAD_FILES:
        assert name in out and code in out


def test_only_bad_files_still_exit_nonzero_even_with_exit_code_free_formats(project, capsys):
    (project / "good.py").unlink()
    (project / "syntax.py").write_text("import torch\nloss.backward()\nx = (\n")
    assert check(capsys)[0] == 1
    assert check(capsys, "--diff")[0] == 1


def test_file_with_a_latin1_coding_cookie_is_read_and_linted(project, capsys):
    (project / "good.py").write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + BUGGY.encode())
    exit_code, out, _ = check(capsys)
    assert exit_code == 1 and concise_line(out, "good.py").startswith("good.py:8:5: TL001")


def test_utf16_file_with_a_training_bug_is_not_skipped_without_a_word(project, capsys):
    """The byte prefilter looked for b"torch" in the raw bytes, where UTF-16 has b"t\\x00o\\x00r...": the file
    was skipped as if it were not a training script. Reduced shape (UTF-16-LE with its BOM):

        import torch
        ...
        for x in range(3):
            loss.backward()
            opt.step()
    """
    (project / "good.py").unlink()
    (project / "train.py").write_bytes(codecs.BOM_UTF16_LE + BUGGY.encode("utf-16-le"))
    exit_code, out, _ = check(capsys)
    assert exit_code == 1
    assert concise_line(out, "train.py") == ("train.py:1:1: E902 Python cannot read UTF-16 source files: "
                                             "save this file as UTF-8 (it starts with a UTF-16 byte order mark)")


def test_utf16_file_that_mentions_no_framework_is_skipped_like_any_other(project, capsys):
    (project / "good.py").unlink()
    (project / "setup_helpers.py").write_bytes("import os\nprint(os.getcwd())\n".encode("utf-16"))
    assert check(capsys) == (0, "All checks passed!\n", "")


def test_utf16_notebook_is_read_like_a_utf8_one(project, capsys):
    """JSON may be UTF-16 (with a BOM); a notebook is parsed as JSON, not read as Python source."""
    (project / "good.py").unlink()
    (project / "train.ipynb").write_bytes(notebook(["import torch\nmodel = torch.nn.Linear(4, 1)\n"
                                                    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
                                                    "for x in range(3):\n"
                                                    "    model(torch.randn(2, 4)).sum().backward()\n"
                                                    "    opt.step()\n"]).encode("utf-16"))
    exit_code, out, _ = check(capsys)
    assert exit_code == 1 and "TL001" in concise_line(out, "train.ipynb")


def test_file_larger_than_the_limit_is_refused_without_reading_it(project, capsys):
    big = project / "huge.py"
    with open(big, "wb") as handle:
        handle.write(b"import torch\n")
        handle.truncate(files.MAX_FILE_BYTES + 1)
    exit_code, out, _ = check(capsys)
    assert exit_code == 1
    line = concise_line(out, "huge.py")
    assert line.startswith("huge.py:1:1: E902 ") and "too large" in line and "MiB" in line


def test_large_but_acceptable_file_is_linted(project, capsys):
    body = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(3000))
    (project / "good.py").write_text(body + BUGGY)
    exit_code, out, _ = check(capsys)
    assert exit_code == 1 and concise_line(out, "good.py").startswith("good.py:9006:5: TL001")


@pytest.mark.parametrize("source, words", [
    ("import torch\nloss.backward()\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n", "too many nested parentheses"),
    ("import torch\nloss.backward()\nx = " + "[" * 3000 + "]" * 3000 + "\n", "too many nested parentheses"),
    ("import torch\nloss.backward()\nx = " + "+".join(["1"] * 30000) + "\n", "nested too deeply"),
    ("import torch\nloss.backward()\nx = (\n" + "+\n".join(["1"] * 30000) + ")\n", "nested too deeply"),
])
def test_pathologically_nested_code_is_an_error_not_a_crash(tmp_path, source, words):
    """Python's own parser refuses such input (as it does when running it): one E999 for the file, and the run
    goes on. Run in a subprocess so that a regression that kills the process shows as a failure."""
    (tmp_path / "deep.py").write_text(source)
    (tmp_path / "good.py").write_text(BUGGY)
    process = subprocess.run([sys.executable, "-m", "trainlint", "check", "--output-format", "concise", "."],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert process.returncode == 1, process.stderr
    line = concise_line(process.stdout, "deep.py")
    assert line.startswith("deep.py:") and " E999 " in line and words in line
    assert concise_line(process.stdout, "good.py").startswith("good.py:6:5: TL001")


def test_nonexistent_path_is_an_error_for_that_path(project, capsys):
    exit_code, out, _ = check(capsys, "nope.py", "nodir", "good.py")
    assert exit_code == 1
    assert concise_line(out, "nope.py") == "nope.py:1:1: E902 No such file or directory"
    assert concise_line(out, "nodir") == "nodir:1:1: E902 No such file or directory"
    assert concise_line(out, "good.py").startswith("good.py:6:5: TL001")


def test_dangling_symlink_is_reported_whether_named_or_found(project, capsys):
    (project / "dangling.py").symlink_to(project / "gone.py")
    exit_code, out, _ = check(capsys)  # found while walking the folder
    assert exit_code == 1
    line = concise_line(out, "dangling.py")
    assert line.startswith("dangling.py:1:1: E902 Cannot read file: ") and "No such file" in line
    exit_code, out, _ = check(capsys, "dangling.py", "good.py")  # named on the command line
    assert concise_line(out, "dangling.py") == "dangling.py:1:1: E902 Broken symbolic link"
    assert exit_code == 1


def test_folder_named_like_a_python_file_is_walked_not_read(project, capsys):
    (project / "pkg.py").mkdir()
    (project / "pkg.py" / "inner.py").write_text(BUGGY)
    exit_code, out, _ = check(capsys, "pkg.py")
    assert exit_code == 1
    inner = str(Path("pkg.py") / "inner.py")
    assert concise_line(out, inner).startswith(f"{inner}:6:5: TL001")
    assert "E902" not in out
    assert files.discover([project / "pkg.py"], _resolver())[1] == []
    with pytest.raises(files.ReadError, match="Is a directory"):
        files.read_source(project / "pkg.py")


def _resolver():
    from trainlint.config import SettingsResolver
    return SettingsResolver()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_named_like_a_python_file_does_not_hang_the_run(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "good.py").write_text(BUGGY)
    process = subprocess.run([sys.executable, "-m", "trainlint", "check", "--output-format", "concise", "."],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert process.returncode == 1
    assert concise_line(process.stdout, "pipe.py") == "pipe.py:1:1: E902 Not a regular file"
    assert concise_line(process.stdout, "good.py").startswith("good.py:6:5: TL001")


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode (covered by the symlink and FIFO tests)")
def test_unreadable_file_is_reported(project, capsys):
    secret = project / "secret.py"
    secret.write_text(BUGGY)
    secret.chmod(0)
    try:
        exit_code, out, _ = check(capsys)
    finally:
        secret.chmod(0o644)
    assert exit_code == 1
    assert concise_line(out, "secret.py") == "secret.py:1:1: E902 Cannot read file: Permission denied"


@pytest.mark.parametrize("data, words", [
    (notebook(["import torch\n"], kernelspec=None), None),  # null metadata: linted as Python
    (notebook(["import torch\n"], kernelspec={"language": "R"}), None),  # not Python: nothing to lint
    (json.dumps({"cells": [{"cell_type": "code", "source": [1, 2]}], "metadata": {}, "note": "torch"}),
     "cell 1 has a source that is not text"),
    (json.dumps({"cells": {"a": 1}, "torch": 1}), "no list of cells"),
    (json.dumps(["torch"]), "no list of cells"),
])
def test_odd_notebooks_are_read_or_refused_clearly(project, capsys, data, words):
    (project / "odd.ipynb").write_text(data)
    exit_code, out, _ = check(capsys, "odd.ipynb")
    if words is None:
        assert exit_code == 0 and out.strip() == "All checks passed!"
    else:
        assert exit_code == 1
        line = concise_line(out, "odd.ipynb")
        assert line.startswith("odd.ipynb:1:1: E902 ") and words in line


def test_notebook_findings_carry_the_cell_number(project, capsys):
    cells = ["import torch\nmodel = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
             "%matplotlib inline\nfor x in range(3):\n    loss = model(torch.randn(2, 4)).sum()\n"
             "    loss.backward()\n    opt.step()\n"]
    (project / "nb.ipynb").write_text(notebook(cells))
    exit_code, out, _ = check(capsys, "nb.ipynb")
    assert exit_code == 1
    assert concise_line(out, "nb.ipynb").startswith("nb.ipynb:cell 2:4:5: TL001")
    _, out, _ = check(capsys, "nb.ipynb", output_format="json")
    entry = json_entry(out, "nb.ipynb")
    assert (entry["cell"], entry["location"]["row"]) == (2, 4)


def test_internal_error_in_a_rule_is_reported_for_that_file_and_the_run_goes_on(project, capsys, monkeypatch):
    original = engine.run.check_file

    def flaky(path, *args, **kwargs):
        if Path(path).name == "boom.py":
            raise KeyError("surprise\nwith a newline")
        return original(path, *args, **kwargs)

    monkeypatch.setattr(engine.run, "check_file", flaky)
    (project / "boom.py").write_text(BUGGY)
    exit_code, out, _ = check(capsys)
    assert exit_code == 1
    line = concise_line(out, "boom.py")
    assert line.startswith("boom.py:1:1: E902 Internal error") and "KeyError" in line and "please report" in line
    assert concise_line(out, "good.py").startswith("good.py:6:5: TL001")


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork to carry the patched function into workers")
def test_worker_that_dies_costs_only_its_file(tmp_path, monkeypatch):
    """A crash that kills a worker process (as a native stack overflow would) must not stop the run:
    the file that kills it is found and reported, every other file keeps its result."""
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("workers do not inherit the patch without fork")
    original = engine.run.check_file

    def deadly(path, *args, **kwargs):
        if Path(path).name == "deadly.py":
            os._exit(11)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(engine.run, "check_file", deadly)
    paths = [tmp_path / f"s{i:02d}.py" for i in range(11)] + [tmp_path / "deadly.py"]
    for path in paths:
        path.write_text(BUGGY)
    results = list(engine.check_files([(p, Settings()) for p in sorted(paths)], jobs=2))
    by_name = {Path(r.filename).name: r for r in results}
    assert len(results) == 12
    [error] = by_name["deadly.py"].findings
    assert error.code == "E902" and "crashed" in error.message
    assert all([f.code for f in r.findings] == ["TL001"] for name, r in by_name.items() if name != "deadly.py")
