"""Notebooks: IPython syntax is linted as what it is (not a syntax error), findings name the cell, and
`--fix` / `--diff` change only the fixed cells' sources, every other byte of the .ipynb kept.

The notebooks are written here in the layouts real tools write: nbformat's (indent 1, sorted keys,
non-ASCII as is, a final newline), an unsorted indent-2 file with CRLF line ends, a one-line file, and an
ASCII-only file with \\u escapes; with cell ids, execution counts, stream and image outputs, metadata.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import ast

import pytest
from samples import BUGGY

from trainlint.cli import main
from trainlint.fixes import Fix, InsertBefore, Replace, statement
from trainlint.notebook import notebook_source, read_notebook, rewrite_notebook
from trainlint.rules import ALL_RULES, Rule, Violation

SETUP = "import torch\nmodel = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
LOOP = "for x in range(3):\n    loss = model(torch.randn(2, 4)).sum()\n    loss.backward()\n    opt.step()"
FIXED_LOOP = LOOP.replace("for x in range(3):\n", "for x in range(3):\n    opt.zero_grad()\n")
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


# --- writing notebooks as the tools do -----------------------------------------------------------------

def nbformat_layout(notebook: dict) -> bytes:
    """What nbformat.write produces (JupyterLab, Notebook, nbconvert): indent 1, sorted keys, UTF-8."""
    return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))
            + "\n").encode()


def windows_layout(notebook: dict) -> bytes:
    """An editor that keeps its own key order, indents by 2 and saves with CRLF, with no final newline."""
    return json.dumps(notebook, indent=2, ensure_ascii=False).replace("\n", "\r\n").encode()


def one_line_layout(notebook: dict) -> bytes:
    return json.dumps(notebook).encode()  # json.dumps's defaults: ", " and ": ", non-ASCII escaped


def ascii_layout(notebook: dict) -> bytes:
    return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


LAYOUTS = {"nbformat": nbformat_layout, "windows": windows_layout, "one_line": one_line_layout,
           "ascii": ascii_layout}


def code_cell(source: str, number: int, *, as_string: bool = False) -> dict:
    return {
        "cell_type": "code",
        "execution_count": number,
        "id": f"cell-{number:04d}",
        "metadata": {"tags": ["train"], "collapsed": False},
        "outputs": [
            {"name": "stdout", "output_type": "stream", "text": ["loss 0.25 — ok ✓\n", "done\n"]},
            {"data": {"image/png": PNG, "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
             "metadata": {"needs_background": "light"}, "output_type": "display_data"},
        ],
        "source": source if as_string else source.splitlines(True),
    }


def markdown_cell(text: str, number: int) -> dict:
    return {"cell_type": "markdown", "id": f"md-{number:04d}", "metadata": {}, "source": text.splitlines(True)}


def notebook(*cells: str | tuple[str, str], as_string: bool = False) -> dict:
    """A notebook of these cells: a string is a code cell, ("markdown", text) a markdown one."""
    built = []
    for number, cell in enumerate(cells, start=1):
        if isinstance(cell, tuple):
            built.append(markdown_cell(cell[1], number))
        else:
            built.append(code_cell(cell, number, as_string=as_string))
    return {
        "cells": built,
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                     "language_info": {"name": "python", "version": "3.11.7"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def with_source(original: dict, index: int, source: str) -> dict:
    """`original` with cell `index`'s source replaced, in the cell's own representation."""
    changed = copy.deepcopy(original)
    cell = changed["cells"][index]
    cell["source"] = source.splitlines(True) if isinstance(cell["source"], list) else source
    return changed


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def concise(capsys, path: str = "nb.ipynb") -> list[str]:
    _, out, _ = run(capsys, "--output-format", "concise", "--quiet", path)
    return out.splitlines()


# --- --fix rewrites the fixed cell and nothing else ---------------------------------------------------

MIXED = notebook(
    ("markdown", "# Training a tiny model — naïve version ✨\n\nSee *below*."),
    "!pip install -q -U \\\n    torch \\\n    torchvision\n%matplotlib inline\n" + SETUP,
    ("markdown", "## The loop"),
    "# train\n" + LOOP,
    "print('résumé', model.weight)",
)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fix_rewrites_only_the_fixed_cell_every_other_byte_kept(project, capsys, layout):
    write = LAYOUTS[layout]
    path = project / "nb.ipynb"
    path.write_bytes(write(MIXED))
    code, out, err = run(capsys, "--fix", "--output-format", "concise", "nb.ipynb")
    assert (code, err) == (0, "")
    assert out.strip() == "Found 1 finding (1 fixed, 0 remaining)"
    # The file is exactly what the same tool would write with only cell 4's source changed.
    assert path.read_bytes() == write(with_source(MIXED, 3, "# train\n" + FIXED_LOOP))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0 and path.read_bytes() == write(
        with_source(MIXED, 3, "# train\n" + FIXED_LOOP))  # a second --fix changes nothing


def test_string_sources_stay_strings(project, capsys):
    original = notebook(SETUP, LOOP, as_string=True)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    fixed = json.loads(path.read_bytes())
    assert fixed["cells"][1]["source"] == FIXED_LOOP
    assert path.read_bytes() == nbformat_layout(with_source(original, 1, FIXED_LOOP))


def test_crlf_lines_inside_a_cell_are_kept_and_new_lines_follow_them(project, capsys):
    """nbformat stores sources as given; a cell pasted from Windows keeps its CRLF line ends."""
    loop = LOOP.replace("\n", "\r\n") + "\r\n"
    original = notebook(SETUP, loop)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    assert "".join(json.loads(path.read_bytes())["cells"][1]["source"]) == FIXED_LOOP.replace("\n", "\r\n") + "\r\n"


def test_fix_keeps_magic_and_shell_lines_of_the_fixed_cell_byte_for_byte(project, capsys):
    cell = ("%%time\n"
            "for x in range(3):\n"
            "    !echo \"step {x}\" \\\n"
            "        >> log.txt\n"
            "    loss = model(torch.randn(2, 4)).sum()\n"
            "    %time loss.backward()\n"
            "    loss.backward()\n"
            "    opt.step()\n"
            "files = !ls\n"
            "model?")
    original = notebook("%matplotlib inline\n" + SETUP, cell)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    assert concise(capsys) == [
        "nb.ipynb:cell 2:7:5: TL001 `opt`'s gradients are never cleared in this loop: every `backward()` adds "
        "to the previous iterations' gradients before `opt.step()` (cell 2, line 8)"]
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    expected = cell.replace("for x in range(3):\n", "for x in range(3):\n    opt.zero_grad()\n")
    assert path.read_bytes() == nbformat_layout(with_source(original, 1, expected))


def test_non_ascii_text_is_kept_byte_for_byte(project, capsys):
    original = notebook(("markdown", "Ünïcödé — 日本語 🚀"), SETUP + "# größe: 4 → 1\n", "# 训练\n" + LOOP)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    data = path.read_bytes()
    assert data == nbformat_layout(with_source(original, 2, "# 训练\n" + FIXED_LOOP))
    assert "日本語 🚀".encode() in data and b"\\u" not in data


def test_a_file_with_a_bom_keeps_it(project, capsys):
    path = project / "nb.ipynb"
    original = notebook(SETUP, LOOP)
    path.write_bytes(b"\xef\xbb\xbf" + nbformat_layout(original))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + nbformat_layout(with_source(original, 1, FIXED_LOOP))


def test_fix_keeps_the_file_mode(project, capsys):
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(notebook(SETUP, LOOP)))
    path.chmod(0o640)
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    assert path.stat().st_mode & 0o777 == 0o640
    assert not [p for p in project.iterdir() if "trainlint-tmp" in p.name]


def test_removing_the_first_statement_of_a_cell_keeps_the_cells_apart(project, capsys):
    """Removing a cell's first line also removes the blank line that separates it from the cell before
    in the joined text; the cells stay as they were, less that line."""
    original = notebook(
        "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\nscaler.fit(X_train)",
        ("markdown", "Now the validation set:"),
        "scaler.fit(X_val)\nX_val_s = scaler.transform(X_val)",
    )
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", "--output-format", "concise", "nb.ipynb")
    assert (code, err) == (0, ""), out
    assert path.read_bytes() == nbformat_layout(with_source(original, 2, "X_val_s = scaler.transform(X_val)"))


# --- --diff ---------------------------------------------------------------------------------------------

def test_diff_shows_each_changed_cell_as_source_not_json(project, capsys):
    path = project / "nb.ipynb"
    data = nbformat_layout(notebook(SETUP, ("markdown", "Two loops:"), LOOP, "print(1)", "# again\n" + LOOP))
    path.write_bytes(data)
    code, out, err = run(capsys, "--diff", "nb.ipynb")
    assert (code, err) == (1, "")
    assert out == (
        "--- nb.ipynb:cell 3\n"
        "+++ nb.ipynb:cell 3\n"
        "@@ -1,4 +1,5 @@\n"
        " for x in range(3):\n"
        "+    opt.zero_grad()\n"
        "     loss = model(torch.randn(2, 4)).sum()\n"
        "     loss.backward()\n"
        "     opt.step()\n"
        "\\ No newline at end of file\n"
        "--- nb.ipynb:cell 5\n"
        "+++ nb.ipynb:cell 5\n"
        "@@ -1,5 +1,6 @@\n"
        " # again\n"
        " for x in range(3):\n"
        "+    opt.zero_grad()\n"
        "     loss = model(torch.randn(2, 4)).sum()\n"
        "     loss.backward()\n"
        "     opt.step()\n"
        "\\ No newline at end of file\n")
    assert path.read_bytes() == data


def test_diff_on_a_clean_notebook_prints_nothing(project, capsys):
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, FIXED_LOOP)))
    assert run(capsys, "--diff", "nb.ipynb") == (0, "", "")


# --- IPython syntax is not a syntax error -----------------------------------------------------------------

# (lines before the loop, in the loop's cell). Each keeps the TL001 of the loop on its own row.
IPYTHON_LINES = {
    "shell": "!nvidia-smi",
    "shell_capture": "!!ls",
    "shell_continued": "!pip install -q -U \\\n    torch \\\n    diffusers",
    "line_magic": "%matplotlib inline",
    "cd_magic": "%cd /tmp",
    "time_magic": "%time y = model(torch.randn(2, 4))",
    "pip_magic_continued": "%pip install \\\n  torch",
    "system_assign": "files = !ls *.py",
    "attribute_system_assign": "model.files = !ls",
    "magic_assign": "env = %env",
    "annotated_magic_assign": "home: str = %env HOME",
    "help_before": "?model",
    "help_after": "model?",
    "help_more": "model.weight??",
    "autocall": "/print model",
    "quote_autocall": ",print a b",
    "get_ipython": "get_ipython().system('ls')",
    "in_a_block": "if torch.cuda.is_available():\n    !nvidia-smi\nelse:\n    %env CUDA_VISIBLE_DEVICES=",
}


@pytest.mark.parametrize("name", list(IPYTHON_LINES))
def test_ipython_lines_are_not_syntax_errors_and_rows_stay_right(project, capsys, name):
    lines = IPYTHON_LINES[name]
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(notebook(SETUP, ("markdown", "Train:"), lines + "\n" + LOOP)))
    row = len(lines.splitlines()) + 3
    [line] = concise(capsys)
    assert line.startswith(f"nb.ipynb:cell 3:{row}:5: TL001 ")


@pytest.mark.parametrize("magic", ["%%time", "%%timeit -n 1 -r 1", "%%capture output"])
def test_cell_magics_that_run_python_are_linted_below_their_line(project, capsys, magic):
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(notebook(SETUP, magic + "\n" + LOOP)))
    [line] = concise(capsys)
    assert line.startswith("nb.ipynb:cell 2:4:5: TL001 ")


@pytest.mark.parametrize("cell", [
    "%%bash\nfor f in *.py; do echo \"$f (\"; done",
    "%%writefile train.py\nimport torch\ndef broken(:\n",
    "%%html\n<div class=\"x\">torch</div>",
    "%%javascript\nconsole.log('torch');",
    "%%sh\nls (",
    "%%script bash\necho {",
    "\n%%bash\necho (",  # a cell magic after blank lines is still the cell's magic
    ">>> import torch\n>>> x = torch.ones(2)",  # a pasted session: IPython strips its prompts
])
def test_cells_that_are_not_python_are_skipped_and_cells_keep_their_numbers(project, capsys, cell):
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(notebook(SETUP, cell, LOOP)))
    [line] = concise(capsys)
    assert line.startswith("nb.ipynb:cell 3:3:5: TL001 ")


def test_fix_inside_a_block_with_a_shell_line(project, capsys):
    """`!pip` inside an `if` body: the block stays valid and the fix lands in the loop below it."""
    cell = "if True:\n    !pip install torch\n" + LOOP
    original = notebook(SETUP, cell)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    expected = "if True:\n    !pip install torch\n" + FIXED_LOOP
    assert path.read_bytes() == nbformat_layout(with_source(original, 1, expected))


@pytest.mark.parametrize("source", [
    "x = (1\n     % 2)\n",  # an operator that starts a continuation line
    "if (1\n    != 2):\n    pass\n",
    "s = '''\n!not a command\n%nor a magic\n'''\n",
    "s = 'one \\\n!line'\n",  # a string continued with a backslash
    "y = 1 + \\\n    2\n",
    "x = 1  # why?\n",  # a question in a comment is not help
    "d = {'a': 1,\n     '=!': 2}\n",
])
def test_python_that_looks_like_ipython_is_left_alone(source):
    text = notebook_source([("code", source)]).text
    assert text == source + "\n"
    compile(text, "<cell>", "exec")


def test_ipython_lines_become_statements_at_their_indentation_and_rows_stay():
    cell = "if a:\n    !pip install \\\n  torch\n    x = !ls\n%time f()\nobj?"
    text = notebook_source([("code", cell)]).text
    assert text == ("if a:\n    pass  # !pip install \\\n    pass  # torch\n    x = None  # !ls\n"
                    "pass  # %time f()\npass  # obj?\n\n")
    compile(text, "<cell>", "exec")


# --- what cannot go back into one cell is refused, and the file left as it was ----------------------

class _IPythonTouchingRule(Rule):
    """A throwaway rule whose fix edits a neutralised IPython line, or splits a continued one."""

    code = "TL951"
    name = "ipython-touching-fix"
    summary = "test rule"
    fix = "safe"
    mode: ClassVar[str] = "replace"

    def check(self, model, options):
        text = model.source.text
        if "between" in text or "rewritten" in text or "# !pip" not in text:
            return  # fixed once already: the engine's next pass must find nothing more
        for call in [n for n in ast.walk(model.module)
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "marker"]:
            shell = [s for s in model.module.body if isinstance(s, ast.Pass)]
            if self.mode == "replace":  # rewrite the neutralised `pass  # !pip install \` line
                edit = Replace(shell[0], "pass  # rewritten")
            else:  # insert between `!pip install \` and its continuation line
                edit = InsertBefore(shell[1], statement("print('between')"))
            yield Violation(call, "marker() is flagged", Fix("Rewrite", [edit]))


@pytest.fixture
def touching_rule(monkeypatch):
    rule = _IPythonTouchingRule()
    monkeypatch.setattr("trainlint.config.ALL_RULES", (*ALL_RULES, rule))
    monkeypatch.setattr("trainlint.config.RULES_BY_CODE", {**{r.code: r for r in ALL_RULES}, rule.code: rule})
    return rule


@pytest.mark.parametrize("mode, reason", [
    ("replace", "a fix changes the IPython line `!pip install \\` (cell 1, line 1)"),
    ("split", "a fix inserts a line where it would break an IPython line (cell 1, line 2)"),
])
def test_fix_that_would_touch_an_ipython_line_is_refused_and_the_file_untouched(project, capsys, touching_rule,
                                                                             mode, reason):
    touching_rule.mode = mode
    path = project / "nb.ipynb"
    data = nbformat_layout(notebook("!pip install \\\n  torch\nimport torch\nmarker()", LOOP))
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns
    code, out, err = run(capsys, "--fix", "--output-format", "concise", "nb.ipynb")
    assert code == 1
    assert err == f"nb.ipynb: fixes not applied: {reason}\n"
    assert "nb.ipynb:cell 1:4:1: TL951" in out and "nb.ipynb:cell 2:3:5: TL001" in out  # still reported
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
    code, out, err = run(capsys, "--diff", "nb.ipynb")
    assert (code, out, err) == (1, "", f"nb.ipynb: fixes not applied: {reason}\n")


# --- mapping a fixed text back to the cells (the API an editor integration uses) ---------------------------

def test_cells_after_attributes_lines_inserted_at_a_cell_boundary_by_their_side_of_the_separator():
    source = notebook_source([("code", "a = 1"), ("markdown", "x"), ("code", "b = 2\n")])
    assert source.text == "a = 1\n\nb = 2\n\n"
    assert source.locate(3) == (3, 1)
    assert source.cells_after("a = 1\nnew()\n\nb = 2\n\n") == {0: "a = 1\nnew()"}
    assert source.cells_after("a = 1\n\nnew()\nb = 2\n\n") == {2: "new()\nb = 2\n"}
    with pytest.raises(ValueError, match="after the last cell"):
        source.cells_after("a = 1\n\nb = 2\n\nnew()\n")
    with pytest.raises(ValueError, match="blank line between cell 1 and the next code cell"):
        source.cells_after("a = 1\nnew()\nb = 2\n\n")  # the separator replaced


def test_cells_after_refuses_to_put_code_above_a_cell_magic_or_inside_a_continued_command():
    source = notebook_source([("code", "x = 0"), ("code", "%%time\ny = 1\n"),
                              ("code", "!pip install \\\n  torch\nz = 1")])
    with pytest.raises(ValueError, match=r"cell 2, line 1"):
        source.cells_after(source.text.replace("\n\npass  # %%time", "\n\nnew()\npass  # %%time"))
    assert source.cells_after(source.text.replace("y = 1", "new()\ny = 1")) == {1: "%%time\nnew()\ny = 1\n"}
    with pytest.raises(ValueError, match=r"cell 3, line 2"):
        source.cells_after(source.text.replace("\npass  # torch", "\nnew()\npass  # torch"))


def test_cells_after_keeps_the_ending_style_of_the_cell():
    source = notebook_source([("code", "a = 1\r\nb = 2\r\n"), ("code", "c = 3")])
    assert source.cells_after(source.text.replace("b = 2", "b = 2\nnew()")) == {0: "a = 1\r\nb = 2\r\nnew()\r\n"}
    assert source.cells_after(source.text.replace("c = 3", "c = 3\nnew()")) == {1: "c = 3\nnew()"}


def test_findings_carry_fix_edits_in_the_rows_of_their_cell(project, capsys):
    """JSON consumers (an editor's code action) apply the edit to the cell named by `cell`."""
    cell = "%matplotlib inline\n" + LOOP
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, ("markdown", "x"), cell)))
    _, out, _ = run(capsys, "--output-format", "json", "nb.ipynb")
    [finding] = json.loads(out)
    assert (finding["cell"], finding["location"]) == (3, {"row": 4, "column": 5})
    [edit] = finding["fix"]["edits"]
    lines = cell.splitlines(True)
    start, end = edit["location"]["row"] - 1, edit["end_location"]["row"] - 1
    assert "".join(lines[:start]) + edit["content"] + "".join(lines[end:]) == \
        "%matplotlib inline\n" + FIXED_LOOP


def test_a_fix_in_another_cell_than_its_finding_is_offered_without_edits_and_still_applied(project, capsys):
    """`model.eval()` in a helper's cell, the missing `model.train()` in the loop's cell: edits in the
    loop cell's rows would be read as rows of the helper's cell, so JSON gives none; --fix applies it."""
    model = ("import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))\n"
             "opt = torch.optim.SGD(model.parameters(), lr=0.1)")
    helper = "def evaluate():\n    model.eval()\n    with torch.no_grad():\n        return model(torch.randn(2, 4)).sum()"
    loop = ("for epoch in range(3):\n    loss = model(torch.randn(2, 4)).sum()\n    opt.zero_grad()\n"
            "    loss.backward()\n    opt.step()\n    evaluate()")
    original = notebook(model, helper, loop)
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(original))
    _, out, _ = run(capsys, "--output-format", "json", "nb.ipynb")
    [finding] = json.loads(out)
    assert (finding["code"], finding["cell"], finding["location"]["row"]) == ("TL007", 2, 2)
    assert finding["fix"]["applicability"] == "safe" and finding["fix"]["edits"] == []
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    fixed_loop = loop.replace("for epoch in range(3):\n", "for epoch in range(3):\n    model.train()\n")
    assert path.read_bytes() == nbformat_layout(with_source(original, 2, fixed_loop))


# --- rewrite_notebook --------------------------------------------------------------------------------------

def test_rewrite_writes_an_empty_list_source_in_the_file_s_indentation():
    original = notebook(SETUP, "")
    data = nbformat_layout(original)
    assert b'"source": []' in data
    rewritten = rewrite_notebook(data, {1: "x = 1\ny = 2"})
    assert rewritten == nbformat_layout(with_source(original, 1, "x = 1\ny = 2"))


def test_rewrite_refuses_what_it_cannot_place():
    data = nbformat_layout(notebook(SETUP))
    with pytest.raises(ValueError, match="no cell 3"):
        rewrite_notebook(data, {2: "x = 1"})
    missing = json.dumps({"cells": [{"cell_type": "code"}], "metadata": {}}).encode()
    with pytest.raises(ValueError, match="no source"):
        rewrite_notebook(missing, {0: "x = 1"})


def test_rewrite_replaces_the_source_json_loads_keeps_when_a_key_is_repeated():
    data = b'{"cells": [{"cell_type": "code", "source": "old = 0", "source": "a = 1"}], "metadata": {}}'
    rewritten = rewrite_notebook(data, {0: "b = 2"})
    assert rewritten == b'{"cells": [{"cell_type": "code", "source": "old = 0", "source": "b = 2"}], "metadata": {}}'


def test_read_notebook_reads_what_rewrite_wrote():
    data = nbformat_layout(notebook(SETUP, "%%time\n" + LOOP))
    source = read_notebook(data)
    assert source.cells_after(source.text) == {}
    assert rewrite_notebook(data, {}) == data


# --- every output format names the cell --------------------------------------------------------------------

def test_every_format_names_the_cell_and_the_ipynb_file(project, capsys):
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, ("markdown", "x"), LOOP)))
    _, full, _ = run(capsys, "nb.ipynb")
    assert full.startswith("nb.ipynb:cell 3:3:5: TL001 [*] ")
    assert "3 |     loss.backward()\n  |     ^^^^^^^^^^^^^^^ TL001" in full  # the excerpt is the cell's source
    _, github, _ = run(capsys, "--output-format", "github", "nb.ipynb")
    assert github.startswith("::error title=trainlint (TL001),file=nb.ipynb::TL001 ")
    assert github.rstrip().endswith("(cell 3, line 3, column 5)")
    _, sarif, _ = run(capsys, "--output-format", "sarif", "nb.ipynb")
    [result] = json.loads(sarif)["runs"][0]["results"]
    assert result["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": "nb.ipynb"}}}]
    assert result["message"]["text"].endswith("(cell 3, line 3, column 5)")
    assert "fixes" not in result  # SARIF regions would count in the JSON file, not in the cell


# --- the fixed notebook still runs -------------------------------------------------------------------------

def test_the_fixed_cells_run_and_no_longer_accumulate_gradients(project, capsys):
    setup = ("import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(4, 1)\n"
             "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nx = torch.randn(8, 4)\ngrads = []")
    loop = ("for step in range(3):\n"
            "    loss = model(x).sum()\n"
            "    loss.backward()\n"
            "    grads.append(model.weight.grad.clone())\n"
            "    opt.step()")
    report = "print('STALE', not all(torch.allclose(g, grads[0]) for g in grads))"
    path = project / "nb.ipynb"
    path.write_bytes(nbformat_layout(notebook(setup, ("markdown", "Train"), loop, report)))

    def run_cells() -> str:
        cells = [c for c in json.loads(path.read_bytes())["cells"] if c["cell_type"] == "code"]
        code = "\n".join("".join(c["source"]) for c in cells)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run_cells() == "STALE True"  # the bug: each backward() adds to the last step's gradient
    assert run(capsys, "--fix", "nb.ipynb")[0] == 0
    assert run_cells() == "STALE False"


# --- cells IPython runs although Python would not (ecosystem review) ---------------------------------------

@pytest.mark.parametrize("cell", [" device = 'cpu'\n device", "\tx = 1\n\tprint(x)",
                                  " def f(a):\n    return a\n\nprint(f(1))"])
def test_a_cell_ipython_dedents_is_not_a_syntax_error(project, capsys, cell):
    """Cells whose lines all start indented (IPython 9 removes the common indentation), or whose first line
    alone is (IPython 8 removed that much from every line having it): IPython runs them."""
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, cell, LOOP)))
    lines = concise(capsys)
    assert not [line for line in lines if " E999 " in line]
    assert [line.split(" TL")[0] for line in lines] == ["nb.ipynb:cell 3:3:5:"]


@pytest.mark.parametrize("cell", [" # set up the tools\n !curl -s https://example.org/key | sudo apt-key add -\n"
                                  " !sudo apt-get update",
                                  "  !pip install -q timm\n  import timm",
                                  "\t%env CUDA_VISIBLE_DEVICES=0\n\tfiles = !ls data\n\tprint(files)"])
def test_e999_quiet_when_an_indented_cell_of_ipython_escapes_runs_once_dedented(project, capsys, cell):
    """Every line of the cell indented by the same space, the first one a comment and the rest shell
    escapes (` # install the compiler` / ` !curl ... | sudo apt-key add -` / ` !sudo apt-get update`):
    IPython removes the indentation before it reads the escapes, so the cell runs."""
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, cell, LOOP)))
    lines = concise(capsys)
    assert not [line for line in lines if " E999 " in line]
    assert [line.split(" TL")[0] for line in lines] == ["nb.ipynb:cell 3:3:5:"]


def test_e999_reports_an_indented_cell_of_escapes_that_is_wrong_once_dedented(project, capsys):
    """Dedenting is no excuse: a cell that does not compile once dedented and neutralised stays an E999."""
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(SETUP, " !pip install timm\n x = (", LOOP)))
    assert [line for line in concise(capsys) if " E999 " in line]


def test_findings_in_a_dedented_cell_keep_the_cells_columns_and_fixes_leave_it_alone(project, capsys):
    indented = "\n".join("  " + line for line in LOOP.split("\n"))
    path = project / "nb.ipynb"
    data = nbformat_layout(notebook(SETUP, indented))
    path.write_bytes(data)
    [line] = concise(capsys)
    assert line.startswith("nb.ipynb:cell 2:3:7: TL001")  # `loss.backward()` at its column in the cell
    code, out, err = run(capsys, "--fix", "--output-format", "concise", "nb.ipynb")
    assert "dedents" in err and path.read_bytes() == data


@pytest.mark.parametrize("cell", ["pip install torch", "ls ./data/train/", "  pip install -q diffusers"])
def test_a_one_line_automagic_cell_is_not_a_syntax_error(project, capsys, cell):
    """`pip install torch` alone in a cell: IPython runs a line magic without its `%` (automagic)."""
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook(cell, SETUP, LOOP)))
    lines = concise(capsys)
    assert [line.split(" TL")[0] for line in lines] == ["nb.ipynb:cell 3:3:5:"]


def test_python_named_like_a_magic_is_still_python(project, capsys):
    """`time = 3` or `ls = []` parse as Python: they are not automagic."""
    (project / "nb.ipynb").write_bytes(nbformat_layout(notebook("time = 3", SETUP, LOOP)))
    assert [line.split(" TL")[0] for line in concise(capsys)] == ["nb.ipynb:cell 3:3:5:"]
    assert notebook_source([("code", "time = 3")]).text == "time = 3\n\n"
