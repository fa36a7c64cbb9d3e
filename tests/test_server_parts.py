"""The language server's protocol-free parts: position conversion, the edits its actions make, the
editor's settings, and linting a document (settings as the CLI finds them; errors never escape)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trainlint
from trainlint.server import documents
from trainlint.server.edits import apply, noqa_edit, replacement
from trainlint.server.positions import UTF8, UTF16, UTF32, LineIndex
from trainlint.server.settings import ClientSettings, parse

ROOT = Path(__file__).resolve().parents[1]


# -- positions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, expected", [(UTF16, 5), (UTF8, 7), (UTF32, 4)])
def test_a_character_outside_the_bmp_counts_per_encoding(encoding, expected):
    # x="😋": the closing quote is character 4 in Python, 5 in UTF-16, 7 in UTF-8.
    index = LineIndex('a\nx="😋"\n', encoding)
    assert index.location_to_position(2, 5) == (1, expected)
    assert index.offset(1, expected) == 2 + 4


def test_a_position_inside_a_surrogate_pair_is_the_start_of_its_character():
    index = LineIndex('x="😋"', UTF16)
    assert index.offset(0, 4) == 3  # between the two UTF-16 units of the emoji


@pytest.mark.parametrize("text", ["a\r\nb\r\nc", "a\rb\rc", "a\nb\nc"])
def test_lines_end_at_each_kind_of_newline(text):
    index = LineIndex(text)
    assert index.line_count == 3
    assert index.location_to_position(3, 1) == (2, 0)
    assert [index.line_text(n) for n in range(3)] == ["a", "b", "c"]


def test_form_feed_and_line_separator_do_not_end_a_line():
    # str.splitlines() would split here; Python, trainlint and LSP do not.
    index = LineIndex("a\x0cb\u2028c\nd")
    assert index.line_count == 2
    assert index.location_to_position(2, 1) == (1, 0)


def test_positions_past_the_end_are_clamped():
    index = LineIndex("ab\ncd")
    assert index.location_to_position(1, 40) == (0, 2)  # past the line: its end, not the next line
    assert index.location_to_position(9, 1) == (1, 2)  # past the last line: the end of the text
    assert index.offset(0, 99) == 2
    assert index.offset(7, 0) == 5


def test_the_end_of_a_text_with_a_final_newline_is_on_the_empty_last_line():
    index = LineIndex("ab\r\n")
    assert index.position(4) == (1, 0)
    assert index.position(3) == (0, 2)  # never between \r and \n


# -- the noqa action ---------------------------------------------------------------------------------

def _noqa(text: str, row: int, code: str = "TL001") -> str | None:
    edit = noqa_edit(text, row, code)
    return None if edit is None else apply(text, [edit])


def test_noqa_is_appended_at_the_end_of_the_line_without_trailing_spaces():
    assert _noqa("x = 1\nloss.backward()   \ny = 2\n", 2) == "x = 1\nloss.backward()  # noqa: TL001\ny = 2\n"


def test_noqa_keeps_crlf_and_a_missing_final_newline():
    assert _noqa("a = 1\r\nloss.backward()\r\n", 2) == "a = 1\r\nloss.backward()  # noqa: TL001\r\n"
    assert _noqa("loss.backward()", 1) == "loss.backward()  # noqa: TL001"


@pytest.mark.parametrize("comment, merged", [
    ("# noqa: E501", "# noqa: E501, TL001"),
    ("# NOQA:E501,W291", "# NOQA:E501,W291, TL001"),
    ("# type: ignore  # noqa: E501", "# type: ignore  # noqa: E501, TL001"),
    ("# noqa: E501 long line", "# noqa: E501, TL001 long line"),
])
def test_noqa_merges_with_an_existing_noqa_comment(comment, merged):
    assert _noqa(f"loss.backward()  {comment}\n", 1) == f"loss.backward()  {merged}\n"


def test_another_comment_gets_the_noqa_after_it():
    assert _noqa("loss.backward()  # see #12\n", 1) == "loss.backward()  # see #12  # noqa: TL001\n"


def test_a_hash_inside_a_string_is_not_a_comment():
    text = 'log("# noqa: E501"); loss.backward()\n'
    assert _noqa(text, 1) == 'log("# noqa: E501"); loss.backward()  # noqa: TL001\n'


@pytest.mark.parametrize("text, row", [
    ('loss = f("""\nx""")\n', 1),  # the line ends inside a triple-quoted string
    ("loss = a + \\\n    b\n", 1),  # a backslash continuation
    ("loss.backward()  # noqa\n", 1),  # a bare noqa already silences everything
    ("loss.backward()  # noqa: TL001\n", 1),
    ("x = (\n", 1),  # does not tokenize
    ("x = 1\n", 5),  # no such line
])
def test_no_noqa_action_where_a_comment_would_change_the_code(text, row):
    assert noqa_edit(text, row, "TL001") is None


def test_a_noqa_comment_inside_brackets_is_fine():
    text = "loss = criterion(\n    out, y)\n"
    assert _noqa(text, 1) == "loss = criterion(  # noqa: TL001\n    out, y)\n"


def test_the_noqa_action_really_silences_the_finding():
    source = textwrap.dedent("""\
        import torch
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in range(3):
            loss = model(torch.randn(2, 4)).sum()
            loss.backward()  # noqa: E501
            opt.step()
    """)
    (finding,) = trainlint.lint_source(source)
    assert trainlint.lint_source(_noqa(source, finding.noqa_row, finding.code)) == []


# -- the fix-all edit --------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc\n", "a\nb\nx\nc\n"),
    ("a\nb", "a\nb\nc"),
    ("a\r\nb\r\n", "z\r\na\r\nb\r\n"),
    ("a\nb\nc\n", "c\n"),
    ("", "x\n"),
])
def test_the_fix_all_edit_turns_the_text_into_the_fixed_text(before, after):
    edit = replacement(before, after)
    assert apply(before, [edit]) == after


def test_the_fix_all_edit_replaces_only_the_changed_lines():
    start, end, new = replacement("a\nb\nc\nd\n", "a\nb\nX\nd\n")
    assert ("a\nb\nc\nd\n"[start:end], new) == ("c\n", "X\n")
    assert replacement("same\n", "same\n") is None


# -- editor settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {"unsafeFixes": True, "select": ["tl001"]},
    {"settings": {"unsafeFixes": True, "select": ["TL001"]}},
    {"trainlint": {"unsafeFixes": True, "select": ["TL001"]}},
    {"settings": {"trainlint": {"unsafeFixes": True, "select": ["TL001"]}}},
])
def test_settings_are_read_in_every_shape_clients_send(options):
    settings, problems = parse(options)
    assert problems == []
    assert settings == ClientSettings(unsafe_fixes=True, select=("TL001",))


def test_a_bad_setting_is_reported_and_keeps_its_previous_value():
    base = ClientSettings(unsafe_fixes=True)
    settings, problems = parse({"unsafeFixes": "yes", "ignore": ["TL999"], "colour": 1}, base)
    assert settings == base
    assert len(problems) == 3
    assert any("TL999" in p for p in problems) and any("colour" in p for p in problems)


# -- linting a document ------------------------------------------------------------------------------

BUGGY = textwrap.dedent("""\
    import torch
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in range(3):
        loss = model(torch.randn(2, 4)).sum()
        loss.backward()
        opt.step()
""")


def test_a_document_is_linted_with_its_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.trainlint]\nignore = ["TL001"]\n')
    assert documents.analyse(tmp_path / "train.py", BUGGY, ClientSettings()).findings == []
    outcome = documents.analyse(tmp_path / "train.py", BUGGY, ClientSettings(select=("TL001",)))
    assert [f.code for f in outcome.findings] == ["TL001"]  # the editor's select, as --select


def test_a_configuration_error_is_an_outcome_not_an_exception(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.trainlint]\nselect = 3\n")
    outcome = documents.analyse(tmp_path / "train.py", BUGGY, ClientSettings())
    assert outcome.findings == [] and "select" in outcome.config_error


def test_excluded_folders_below_the_configuration_are_not_linted(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.trainlint]\nextend-exclude = ["legacy"]\n')
    outcome = documents.analyse(tmp_path / "legacy" / "old" / "train.py", BUGGY, ClientSettings())
    assert outcome.skipped and outcome.findings == []
    assert documents.analyse(tmp_path / "train.py", BUGGY, ClientSettings()).findings


def test_folders_above_the_configuration_do_not_exclude(tmp_path):
    project = tmp_path / "build" / "project"  # `build` is a default exclude, but it is above the project
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.trainlint]\n")
    assert documents.analyse(project / "train.py", BUGGY, ClientSettings()).findings


def test_a_crash_inside_linting_is_an_outcome_with_its_traceback(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a rule")

    monkeypatch.setattr(documents, "lint_source", broken)
    outcome = documents.analyse(tmp_path / "train.py", BUGGY, ClientSettings())
    assert outcome.findings == [] and "RuntimeError: a bug in a rule" in outcome.internal_error


def test_fix_all_refuses_a_file_that_does_not_parse():
    assert documents.fix_all(None, "import torch\nloss.backward()\nfor x in\n", trainlint.Settings(), unsafe=False) is None


def test_the_check_command_does_not_load_the_protocol_library():
    code = "import sys, trainlint.cli; sys.exit(any(m.split('.')[0] in ('pygls', 'lsprotocol') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).returncode == 0
