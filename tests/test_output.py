"""Output formats (full, concise, json, github, sarif), the summary, --statistics, the problem matcher.

Findings come from the real engine: each test writes small scripts to a temporary folder and runs the
CLI there, so paths in the output are the relative ones a user would see.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from samples import BUGGY, FIXED

from trainlint.cli import main
from trainlint.config import Settings
from trainlint.diagnostics import FileResult, FixInfo
from trainlint.engine import check_file, lint_source
from trainlint.output import Report, github, sarif, snippet, write_report
from trainlint.output.summary import summary_line
from trainlint.rules import ALL_RULES

SYNTAX_ERROR = "import torch\ndef broken(:\n    loss.backward()\n"
# Where the engine places the E999 is the parser's business, not the formatters': ask it.
[_E999] = lint_source(SYNTAX_ERROR, "broken.py")
E999_AT = f"{_E999.location.row}:{_E999.location.column}"
NOT_UTF8 = b'import torch\nname = "caf\xe9"\n'  # latin-1 bytes, no coding cookie: E902 at 2:12

SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
MATCHER = Path(__file__).resolve().parents[1] / "trainlint" / "data" / "problem-matcher.json"
ANSI = "\x1b["


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """Colour and progress must depend only on what each test sets."""
    for name in ("NO_COLOR", "FORCE_COLOR", "CI", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bug.py").write_text(BUGGY)
    return tmp_path


def notebook(cells: list[str]) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                   "source": source.splitlines(keepends=True)} for source in cells],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    })


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- concise -------------------------------------------------------------------------------------

def test_concise_prints_one_line_per_finding_then_the_summary(project, capsys):
    code, out, _ = run(capsys, "--output-format", "concise", "bug.py")
    lines = out.splitlines()
    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith("bug.py:6:5: TL001 `opt`'s gradients are never cleared")
    assert lines[1] == "Found 1 finding (1 fixable with --fix)"


def test_concise_quiet_prints_the_findings_only(project, capsys):
    (project / "broken.py").write_text(SYNTAX_ERROR)
    _, out, _ = run(capsys, "--output-format", "concise", "--quiet", "bug.py", "broken.py")
    assert [line.split(" ")[:2] for line in out.splitlines()] == [[f"broken.py:{E999_AT}:", "E999"],
                                                                 ["bug.py:6:5:", "TL001"]]


def test_concise_says_all_checks_passed_on_clean_code(project, capsys):
    (project / "clean.py").write_text(FIXED)
    code, out, _ = run(capsys, "--output-format", "concise", "clean.py")
    assert (code, out) == (0, "All checks passed!\n")


# --- full ----------------------------------------------------------------------------------------

def test_full_shows_the_source_with_a_caret_under_the_backward_call(project, capsys):
    code, out, _ = run(capsys, "bug.py")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("bug.py:6:5: TL001 [*] `opt`'s gradients")
    source = lines.index("6 |     loss.backward()")
    assert lines[source + 1] == "  |     ^^^^^^^^^^^^^^^ TL001"
    assert lines[source + 1].index("^") == lines[source].index("loss.backward()")
    assert "5 |     loss = model(torch.randn(2, 4)).sum()" in lines  # context before
    assert "7 |     opt.step()" in lines  # and after
    assert "  = help: Call `opt.zero_grad()` at the start of each iteration" in lines
    assert lines[-1] == "Found 1 finding (1 fixable with --fix)"
    assert ANSI not in out


def test_full_is_coloured_when_forced_and_plain_under_no_color(project, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, coloured, _ = run(capsys, "bug.py")
    assert ANSI in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain, _ = run(capsys, "bug.py")
    assert ANSI not in plain
    assert "  |     ^^^^^^^^^^^^^^^ TL001" in plain.splitlines()


def test_full_output_through_a_real_pipe_is_plain_and_unwrapped(project):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    proc = subprocess.run([sys.executable, "-m", "trainlint", "check", "bug.py"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert ANSI not in proc.stdout
    header = proc.stdout.splitlines()[0]
    assert len(header) > 80 and header.endswith("before `opt.step()` (line 7)")  # no wrapping at 80 columns


def test_full_does_not_mark_markup_or_numbers_in_messages(project, capsys, monkeypatch):
    """rich must print text as given: `[bold]` is not markup, and numbers and paths are not highlighted."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    [finding] = lint_source(BUGGY, "bug.py")
    odd = dataclasses.replace(finding, message="see [bold]x[/bold] at 0.5 in /tmp/a.py :smile:")
    out = io.StringIO()
    write_report(Report(stream=out), [FileResult("bug.py", [odd])])
    header = out.getvalue().splitlines()[0]
    assert ANSI in header  # colour is on: the code is styled...
    assert header.endswith(" see [bold]x[/bold] at 0.5 in /tmp/a.py :smile:")  # ...the message untouched


def test_full_summary_counts_fixed_and_remaining_after_fix(project, capsys):
    (project / "bug2.py").write_text(BUGGY)
    (project / "broken.py").write_text(SYNTAX_ERROR)
    code, out, _ = run(capsys, "--fix", "bug.py", "bug2.py", "broken.py")
    assert code == 1
    assert out.splitlines()[-1] == "Found 3 findings (2 fixed, 1 remaining)"
    assert "opt.zero_grad()" in (project / "bug2.py").read_text()
    assert f"broken.py:{E999_AT}: E999" in out and "TL001" not in out


def test_full_quiet_prints_findings_without_summary(project, capsys):
    _, out, _ = run(capsys, "--quiet", "bug.py")
    assert out.startswith("bug.py:6:5: TL001")
    assert "Found" not in out


def test_full_shows_the_cell_source_under_notebook_findings(project, capsys):
    (project / "nb.ipynb").write_text(notebook(["import torch\n", BUGGY]))
    _, out, _ = run(capsys, "nb.ipynb")
    lines = out.splitlines()
    assert lines[0].startswith("nb.ipynb:cell 2:6:5: TL001")
    assert lines[1:7] == [  # the cell's rows, not the .ipynb's JSON
        "  |",
        "4 | for x in range(3):",
        "5 |     loss = model(torch.randn(2, 4)).sum()",
        "6 |     loss.backward()",
        "  |     ^^^^^^^^^^^^^^^ TL001",
        "7 |     opt.step()",
    ]


def test_full_draws_a_span_over_several_lines_with_a_margin(project):
    """A finding that spans a whole loop gets annotate-snippets' `/`, `|` and `|___^` margin."""
    [finding] = lint_source(BUGGY, "bug.py")
    loop = dataclasses.replace(finding, location=dataclasses.replace(finding.location, row=4, column=1),
                               end_location=dataclasses.replace(finding.end_location, row=7, column=15))
    text = snippet.render(loop, BUGGY.split("\n")).plain.splitlines()
    assert text[text.index("4 | / for x in range(3):") + 1] == "5 | |     loss = model(torch.randn(2, 4)).sum()"
    assert text[text.index("7 | |     opt.step()") + 1] == "  | |______________^ TL001"
    assert "3 |   opt = torch.optim.SGD(model.parameters(), lr=0.1)" in text


def test_unsafe_fixes_are_counted_apart_until_opted_in(project):
    [finding] = lint_source(BUGGY, "bug.py")
    unsafe = dataclasses.replace(finding, fix=FixInfo("unsafe", "Lower the learning rate", finding.fix.edits))
    results = [FileResult("bug.py", [finding, unsafe])]
    findings = [finding, unsafe]
    assert summary_line(Report(), findings, results) == \
        "Found 2 findings (1 fixable with --fix; 1 more with --fix --unsafe-fixes)"
    assert summary_line(Report(unsafe_fixes=True), findings, results) == "Found 2 findings (2 fixable with --fix)"
    out = io.StringIO()
    write_report(Report(stream=out, quiet=True), [FileResult("bug.py", [unsafe])])
    assert "[*]" not in out.getvalue()
    assert "= help: Lower the learning rate" in out.getvalue()  # the fix is still explained


# --- statistics ----------------------------------------------------------------------------------

def test_statistics_count_per_code_instead_of_listing_findings(project, capsys):
    (project / "bug2.py").write_text(BUGGY)
    (project / "broken.py").write_text(SYNTAX_ERROR)
    _, out, _ = run(capsys, "--statistics", "bug.py", "bug2.py", "broken.py")
    assert out.splitlines() == [
        "  2  TL001  [*] missing-zero-grad",
        "  1  E999   [ ] syntax-error",
        "Found 3 findings (2 fixable with --fix)",
    ]


def test_statistics_in_json(project, capsys):
    _, out, _ = run(capsys, "--statistics", "--output-format", "json", "bug.py")
    assert json.loads(out) == [{"code": "TL001", "name": "missing-zero-grad", "count": 1, "fixable": True}]


# --- json ----------------------------------------------------------------------------------------

def test_json_has_ruff_fields_and_the_finding_position(project, capsys):
    (project / "broken.py").write_text(SYNTAX_ERROR)
    code, out, _ = run(capsys, "--output-format", "json", "bug.py", "broken.py")
    entries = json.loads(out)  # stdout is the JSON and nothing else
    assert code == 1
    by_code = {entry["code"]: entry for entry in entries}
    tl001 = by_code["TL001"]
    assert set(tl001) == {"code", "message", "filename", "location", "end_location", "fix", "noqa_row", "url",
                          "cell"}
    assert tl001["filename"] == "bug.py"
    assert tl001["location"] == {"row": 6, "column": 5}
    assert tl001["end_location"] == {"row": 6, "column": 20}
    assert tl001["noqa_row"] == 6
    assert tl001["cell"] is None
    assert tl001["url"].endswith("/TL001.md")
    assert tl001["fix"]["applicability"] == "safe"
    assert tl001["fix"]["message"] == "Call `opt.zero_grad()` at the start of each iteration"
    error = by_code["E999"]
    assert (error["filename"], error["fix"], error["url"]) == ("broken.py", None, None)


def _apply(source: str, edits: list[dict]) -> str:
    """Apply JSON text edits (1-based rows and columns, end exclusive) from the last to the first."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: dict) -> int:
        return starts[position["row"] - 1] + position["column"] - 1

    for edit in sorted(edits, key=lambda e: (e["location"]["row"], e["location"]["column"]), reverse=True):
        source = source[:offset(edit["location"])] + edit["content"] + source[offset(edit["end_location"]):]
    return source


def test_json_fix_edits_turn_the_script_into_the_fixed_one(project, capsys):
    _, out, _ = run(capsys, "--output-format", "json", "bug.py")
    [entry] = json.loads(out)
    fixed = _apply(BUGGY, entry["fix"]["edits"])
    assert "    opt.zero_grad()\n    loss = model" in fixed
    assert lint_source(fixed, "bug.py") == []


def test_json_reports_notebook_cells(project, capsys):
    (project / "nb.ipynb").write_text(notebook(["import torch\n", BUGGY]))
    _, out, _ = run(capsys, "--output-format", "json", "nb.ipynb")
    [entry] = json.loads(out)
    assert (entry["cell"], entry["location"]) == (2, {"row": 6, "column": 5})


def test_fix_refusals_go_to_stderr_and_keep_json_parseable(project):
    result = check_file(Path("bug.py"), Settings())
    result.fix_error = "the fixed code would not parse"
    out, err = io.StringIO(), io.StringIO()
    write_report(Report(format="json", stream=out, error_stream=err), [result])
    assert len(json.loads(out.getvalue())) == 1
    assert err.getvalue() == "bug.py: fixes not applied: the fixed code would not parse\n"


# --- github --------------------------------------------------------------------------------------

def test_github_prints_one_error_command_per_finding(project, capsys):
    (project / "broken.py").write_text(SYNTAX_ERROR)
    _, out, _ = run(capsys, "--output-format", "github", "bug.py", "broken.py")
    lines = out.splitlines()
    assert len(lines) == 2  # no summary: every line is a workflow command
    row, column = E999_AT.split(":")
    assert lines[0] == (f"::error title=trainlint (E999),file=broken.py,line={row},col={column},"
                        f"endLine={row},endColumn={column}::E999 {_E999.message}")
    assert lines[1].startswith("::error title=trainlint (TL001),file=bug.py,line=6,col=5,endLine=6,endColumn=20"
                               "::TL001 `opt`'s gradients are never cleared")


def test_github_escapes_properties_and_message(project):
    [finding] = lint_source(BUGGY, "dir,v2/a:b%.py")
    odd = dataclasses.replace(finding, message="100% wrong\r\nsecond line: a, b")
    line = github.command(odd)
    assert "\n" not in line and "\r" not in line
    assert ",file=dir%2Cv2/a%3Ab%25.py," in line
    assert line.endswith("::TL001 100%25 wrong%0D%0Asecond line: a, b")  # data keeps `:` and `,`


def test_github_puts_notebook_findings_on_the_file(project, capsys):
    (project / "nb.ipynb").write_text(notebook([BUGGY]))
    _, out, _ = run(capsys, "--output-format", "github", "nb.ipynb")
    assert out.startswith("::error title=trainlint (TL001),file=nb.ipynb::TL001 ")
    assert out.rstrip().endswith("(cell 1, line 6, column 5)")


# --- sarif ---------------------------------------------------------------------------------------

def test_sarif_validates_and_describes_rules_findings_and_file_errors(project, capsys):
    (project / "broken.py").write_text(SYNTAX_ERROR)
    (project / "latin1.py").write_bytes(NOT_UTF8)
    _, out, _ = run(capsys, "--output-format", "sarif", "bug.py", "broken.py", "latin1.py")
    log = json.loads(out)
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(log), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)

    [run_] = log["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "trainlint"
    assert [rule["id"] for rule in driver["rules"]] == [rule.code for rule in ALL_RULES]
    tl001 = driver["rules"][0]
    assert tl001["fullDescription"]["text"].startswith("Checks for training loops that call `backward()`")
    assert tl001["help"]["markdown"] == ALL_RULES[0].page()
    assert tl001["helpUri"].endswith("/TL001.md")

    results = {r["ruleId"]: r for r in run_["results"]}
    finding = results["TL001"]
    assert driver["rules"][finding["ruleIndex"]]["id"] == "TL001"
    assert finding["level"] == "warning"
    location = finding["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "bug.py"
    assert location["region"] == {"startLine": 6, "startColumn": 5, "endLine": 6, "endColumn": 20}
    [replacement] = finding["fixes"][0]["artifactChanges"][0]["replacements"]
    assert replacement["insertedContent"]["text"] == "    opt.zero_grad()\n"

    for code, uri in (("E999", "broken.py"), ("E902", "latin1.py")):
        assert results[code]["level"] == "error"
        assert "ruleIndex" not in results[code]
        assert results[code]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri
    assert results["E902"]["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    notified = [n["descriptor"]["id"] for n in run_["invocations"][0]["toolExecutionNotifications"]]
    assert sorted(notified) == ["E902", "E999"]


def test_sarif_schema_check_is_not_vacuous():
    schema = json.loads(SCHEMA.read_text())
    broken = sarif.log([])
    broken["runs"][0]["results"] = [{"level": "warning"}]  # a result without its required message
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_sarif_uris_are_relative_posix_or_file_uris():
    assert sarif.artifact_uri("./src/my train.py") == "src/my%20train.py"
    absolute = Path("/tmp/x.py").resolve()
    assert sarif.artifact_uri(str(absolute)) == absolute.as_uri()


# --- problem matcher -----------------------------------------------------------------------------

def _python_regex(javascript: str) -> re.Pattern:
    """GitHub and VS Code read the pattern as a JS regex; Python spells named groups `(?P<`."""
    return re.compile(re.sub(r"\(\?<(?![=!])", "(?P<", javascript))


def _matchers() -> list[dict]:
    return json.loads(MATCHER.read_text())["problemMatcher"]


def test_problem_matcher_reads_every_concise_line(project, capsys):
    (project / "broken.py").write_text(SYNTAX_ERROR)
    (project / "latin1.py").write_bytes(NOT_UTF8)
    (project / "nb.ipynb").write_text(notebook(["import torch\n", BUGGY]))
    files = ["bug.py", "broken.py", "latin1.py", "nb.ipynb"]
    _, concise_out, _ = run(capsys, "--output-format", "concise", "--quiet", *files)
    _, json_out, _ = run(capsys, "--output-format", "json", *files)
    expected = json.loads(json_out)
    [plain, cells] = _matchers()
    assert plain["owner"] == "trainlint"
    plain_pattern, cell_pattern = plain["pattern"][0], cells["pattern"][0]
    plain_re, cell_re = _python_regex(plain_pattern["regexp"]), _python_regex(cell_pattern["regexp"])

    lines = concise_out.splitlines()
    assert len(lines) == len(expected) == 4
    for line, entry in zip(lines, expected):
        match, cell_match = plain_re.match(line), cell_re.match(line)
        if entry["cell"] is None:
            assert match and not cell_match, line
            assert match.group(plain_pattern["file"]) == entry["filename"]
            assert int(match.group(plain_pattern["line"])) == entry["location"]["row"]
            assert int(match.group(plain_pattern["column"])) == entry["location"]["column"]
            assert match.group(plain_pattern["code"]) == entry["code"]
            assert match.group(plain_pattern["message"]) == entry["message"]
        else:  # the notebook form must not be read as a line of a file called "nb.ipynb:cell 2"
            assert cell_match and not match, line
            assert cell_match.group(cell_pattern["file"]) == "nb.ipynb"
            assert cell_match.group(cell_pattern["code"]) == "TL001"
            assert cell_match.group(cell_pattern["message"]).startswith("cell 2:6:5: TL001 ")


def test_problem_matcher_ignores_the_summary(project, capsys):
    _, out, _ = run(capsys, "--output-format", "concise", "bug.py")
    summary = out.splitlines()[-1]
    assert summary.startswith("Found ")
    assert not any(_python_regex(m["pattern"][0]["regexp"]).match(summary) for m in _matchers())


def test_problem_matcher_ships_with_the_package():
    import trainlint
    installed = Path(trainlint.__file__).parent / "data" / "problem-matcher.json"
    assert installed.is_file() and json.loads(installed.read_text())["problemMatcher"]


# --- progress ------------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_for_full_output_on_a_terminal_with_many_files(monkeypatch):
    terminal = _Terminal()
    with Report(error_stream=terminal).progress(25) as advance:
        assert advance is not None
        for _ in range(25):
            advance()
    assert terminal.getvalue()  # something was drawn
    for report, total in ((Report(error_stream=_Terminal()), 5),
                          (Report(format="json", error_stream=_Terminal()), 25),
                          (Report(format="concise", error_stream=_Terminal()), 25),
                          (Report(error_stream=io.StringIO()), 25)):
        with report.progress(total) as advance:
            assert advance is None
    monkeypatch.setenv("CI", "true")
    with Report(error_stream=_Terminal()).progress(25) as advance:
        assert advance is None
