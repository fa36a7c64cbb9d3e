"""Suppression comments, as in ruff: `# noqa: TL001` on the reported line (TL001 is reported at the
`backward()` call), bare `# noqa`, and `# trainlint: noqa` on a line of its own for the whole file."""
from __future__ import annotations

import json

import pytest

from trainlint.cli import main
from trainlint.engine import fix_source, lint_source

HEAD = """\
import torch
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in range(3):
    loss = model(torch.randn(2, 4)).sum()
"""
BACKWARD = "    loss.backward()"
STEP = "    opt.step()\n"


def script(backward_comment: str = "", step_comment: str = "", before: str = "") -> str:
    return before + HEAD + BACKWARD + backward_comment + "\n" + STEP.rstrip("\n") + step_comment + "\n"


def tl001(source: str) -> list[int]:
    return [f.location.row for f in lint_source(source, "train.py") if f.code == "TL001"]


def test_unsuppressed_finding_is_at_the_backward_call():
    assert tl001(script()) == [6]


@pytest.mark.parametrize("comment", [
    "  # noqa: TL001",
    "  # noqa:TL001",
    "  # NOQA: tl001",
    "  # noqa: TL001, TL004",
    "  # noqa: TL004,TL001",
    "  # noqa: TL004 TL001",
    "  # noqa",
    "  # type: ignore  # noqa: TL001",
])
def test_noqa_on_the_reported_line_suppresses(comment):
    assert tl001(script(backward_comment=comment)) == []


@pytest.mark.parametrize("comment", [
    "  # noqa: TL004",
    "  # noqa: TL0011",
    "  # noqa-ish",
    "  # noqanything",
    "  # see the noqa docs",
])
def test_noqa_for_another_code_or_not_a_noqa_comment_does_not_suppress(comment):
    assert tl001(script(backward_comment=comment)) == [6]


def test_noqa_on_another_line_of_the_loop_does_not_suppress():
    assert tl001(script(step_comment="  # noqa: TL001")) == [6]


@pytest.mark.parametrize("header", ["# trainlint: noqa\n", "#trainlint:noqa\n", "# TRAINLINT: NOQA\n",
                                    "# trainlint: noqa: TL001\n"])
def test_file_level_noqa_suppresses_the_whole_file(header):
    assert tl001(script(before=header)) == []
    source = script() + "\n" + header  # anywhere, as long as it is on its own line
    assert tl001(source) == []


@pytest.mark.parametrize("source", [
    script(before="# trainlint: noqa: TL002\n"),  # another code
    script(before="import os  # trainlint: noqa\n"),  # not on its own line
    script(before='"""\nDo not write `# trainlint: noqa` in examples.\n"""\n'),  # not alone on the line
])
def test_file_level_noqa_needs_its_own_line_and_the_code(source):
    assert tl001(source) != []


def test_noqa_rows_count_like_python_despite_form_feeds_and_crlf():
    """A form feed (^L page break) does not end a line for Python; the noqa must be read on the
    reported row, not one row off."""
    source = script(before="import os\n\x0c\n").replace("loss.backward()", "loss.backward()  # noqa: TL001")
    assert tl001(source) == []
    assert tl001(script(before="import os\n\x0c\n")) == [8]
    crlf = script(backward_comment="  # noqa: TL001").replace("\n", "\r\n")
    assert tl001(crlf) == []


def test_fix_leaves_suppressed_findings_alone():
    source = script(backward_comment="  # noqa: TL001")
    assert fix_source(source, "train.py") == source


def test_noqa_in_a_notebook_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cells = ["import torch\nmodel = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
             "for x in range(3):\n    loss = model(torch.randn(2, 4)).sum()\n    loss.backward()\n    opt.step()\n"]

    def notebook(second_cell: str) -> str:
        return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                      "source": source} for source in (cells[0], second_cell)],
                           "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
                           "nbformat": 4, "nbformat_minor": 5})

    (tmp_path / "nb.ipynb").write_text(notebook(cells[1]))
    assert main(["check", "--output-format", "concise", "nb.ipynb"]) == 1
    assert "nb.ipynb:cell 2:3:5: TL001" in capsys.readouterr().out
    (tmp_path / "nb.ipynb").write_text(notebook(cells[1].replace("backward()", "backward()  # noqa: TL001")))
    assert main(["check", "--output-format", "concise", "nb.ipynb"]) == 0
