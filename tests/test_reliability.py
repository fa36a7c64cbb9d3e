"""Reliability under hostile conditions: symbolic links that lead out of the checked folder, several
`--fix` runs at once on one folder, and the defects the fuzzers (tests/fuzz/) found, each reduced to
its shape and named by behaviour."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from samples import BUGGY, FIXED

import trainlint
from trainlint.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", "--output-format", "concise", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- symbolic links ---------------------------------------------------------------------------------
# The decision (README, Usage; docs/configuration.md): a link named on the command line is followed and
# its target fixed; in a walked folder, linked folders are not entered, and a linked file that resolves
# outside the folder is linted but never written by --fix; a file reached twice is fixed once.


def outside_and_inside(project: Path) -> tuple[Path, Path]:
    outside = project / "shared"
    outside.mkdir()
    (outside / "common_train.py").write_text(BUGGY)
    checked = project / "experiment"
    checked.mkdir()
    return outside, checked


def test_fix_of_a_folder_does_not_write_through_a_symlink_that_leads_outside_it(project, capsys):
    """`trainlint check --fix experiment/` rewrote shared/common_train.py through experiment/train.py ->
    ../shared/common_train.py: a file outside what the user asked to change."""
    outside, checked = outside_and_inside(project)
    (checked / "train.py").symlink_to(outside / "common_train.py")
    code, out, err = run(capsys, "--fix", "experiment")
    assert code == 1
    assert (outside / "common_train.py").read_text() == BUGGY
    assert (checked / "train.py").is_symlink()
    link = str(Path("experiment") / "train.py")
    assert f"{link}:6:5: TL001" in out  # still linted: the finding is true
    target = os.path.realpath(outside / "common_train.py")
    assert f"{link}: fixes not applied: it is a symbolic link to {target}, outside the folder being checked" in err
    code, out, err = run(capsys, "--diff", "experiment")  # --diff shows what --fix would write: nothing
    assert out == "" and "outside the folder being checked" in err


def test_symlink_that_leads_outside_is_fixed_when_named_on_the_command_line(project, capsys):
    outside, checked = outside_and_inside(project)
    (checked / "train.py").symlink_to(outside / "common_train.py")
    code, _, err = run(capsys, "--fix", str(checked / "train.py"))
    assert code == 0, err
    assert (outside / "common_train.py").read_text() == FIXED and (checked / "train.py").is_symlink()


def test_file_reached_through_a_symlink_inside_the_folder_is_fixed_once_under_its_own_name(project, capsys):
    (project / "src").mkdir()
    (project / "src" / "train.py").write_text(BUGGY)
    (project / "a_train.py").symlink_to(project / "src" / "train.py")  # walked first
    code, out, err = run(capsys, "--fix", ".")
    assert code == 0, out + err
    assert (project / "src" / "train.py").read_text() == FIXED and (project / "a_train.py").is_symlink()
    assert "Found 1 finding (1 fixed, 0 remaining)" in out
    (project / "src" / "train.py").write_text(BUGGY)
    code, out, _ = run(capsys, ".")
    assert out.count("TL001") == 1 and out.startswith(str(Path("src") / "train.py") + ":6:5: TL001")


def test_symlinked_folder_inside_the_folder_is_not_walked_unless_named(project, capsys):
    outside, checked = outside_and_inside(project)
    (checked / "vendor").symlink_to(outside, target_is_directory=True)
    (checked / "own.py").write_text("import torch\n")
    code, out, _ = run(capsys, "--fix", "experiment")
    assert (code, out.strip()) == (0, "All checks passed!")
    assert (outside / "common_train.py").read_text() == BUGGY
    code, _, _ = run(capsys, "--fix", str(Path("experiment") / "vendor"))
    assert code == 0 and (outside / "common_train.py").read_text() == FIXED


def test_outside_link_with_only_unsafe_fixes_is_not_refused_without_unsafe_fixes(project, capsys):
    """The note names only fixes that --fix would have applied."""
    outside, checked = outside_and_inside(project)
    (outside / "common_train.py").write_text(
        "import torch\nmodel = torch.nn.Linear(4, 1)\nopt = torch.optim.Adam(model.parameters(), lr=1.0)\n"
        "for x in range(3):\n    opt.zero_grad()\n    model(torch.randn(2, 4)).sum().backward()\n    opt.step()\n")
    (checked / "train.py").symlink_to(outside / "common_train.py")
    code, out, err = run(capsys, "--fix", "experiment")
    assert "TL006" in out and "fixes not applied" not in err
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", "experiment")
    assert "fixes not applied" in err and "lr=1.0" in (outside / "common_train.py").read_text()


# --- concurrent --fix runs --------------------------------------------------------------------------

def buggy_folder(folder: Path) -> list[Path]:
    """A dozen buggy scripts: the shared sample under several names and some rule fixtures."""
    folder.mkdir()
    for i in range(6):
        (folder / f"train_{i}.py").write_text(BUGGY.replace("range(3)", f"range({i + 3})"))
    fixtures = sorted((ROOT / "fixtures").glob("TL00[1245]/bug_torch_*.py"))[:8]
    for path in fixtures:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    return sorted(folder.iterdir())


def test_three_fix_runs_at_once_leave_every_file_correctly_fixed(tmp_path):
    """Each file must end either as it was or fixed exactly as one run fixes it, never half-written or
    fixed twice; with three --fix runs, at least one of them wrote each file."""
    reference = tmp_path / "reference"
    files = buggy_folder(reference)
    originals = {p.name: p.read_text() for p in files}
    expected = {name: trainlint.fix_source(text, path=name) for name, text in originals.items()}
    assert sum(expected[name] != originals[name] for name in originals) >= 10
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        shutil.copytree(reference, folder)
        processes = [subprocess.Popen([sys.executable, "-m", "trainlint", "check", "--fix", "--exit-zero",
                                       "--output-format", "concise", "."], cwd=folder, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, out + err
            assert "Traceback" not in err and "E902" not in out, out + err
        for name, text in expected.items():
            result = (folder / name).read_text()
            assert result == text, f"{name} after three concurrent --fix runs:\n{result}"
            compile(result, name, "exec")
        left = sorted(p.name for p in folder.iterdir() if p.name != ".trainlint_cache")  # the runs' shared cache
        assert left == sorted(originals)  # no temporary file left


# --- defects found by the fuzzers (tests/fuzz) ------------------------------------------------------

def test_tl007_fix_for_a_training_function_called_twice_settles():
    """Mutant examples/train_classifier.py:59:duplicate (`main()` twice under `if __name__ == ...`).
    Each pass inserts one more `model.train()` at the top of the epoch loop and TL007 is reported
    again on `model.eval()` in `evaluate()`. Reduced shape:

        def evaluate(model):
            model.eval()

        def main():
            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(2):
                optimizer.step()
                evaluate(model)

        main()
        main()

    Each call of main() has the bug (evaluate() leaves its own model in eval mode for the next epoch), and
    the first call's eval() says nothing of the second call's fresh model: one finding, whose fix (one
    `model.train()` at the top of the epoch loop) settles. It used to be inserted again on every pass.
    """
    source = ("import torch\n\n\ndef evaluate(model):\n    model.eval()\n\n\ndef main():\n"
                "    model = torch.nn.Linear(4, 1)\n    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "    for epoch in range(2):\n        optimizer.step()\n        evaluate(model)\n\n\nmain()\nmain()\n")
    assert [f.location.row for f in trainlint.lint_source(source) if f.code == "TL007"] == [5]
    fixed = trainlint.fix_source(source)
    assert fixed.count("model.train()") == 1 and trainlint.fix_source(fixed) == fixed
    assert [f for f in trainlint.lint_source(fixed) if f.code == "TL007"] == []


def test_tl007_fix_for_an_eval_method_without_self_settles():
    """Mutants fixtures/TL007/bug_torch_trainer_class.py:24:rename:self->TL007 and
    fixtures/TL003/bug_torch_trainer_class.py:27:rename:self->eval (the first parameter renamed, as in
    an edit in progress). Each pass inserts one more `self.model.train()` in `fit()`. Reduced shape:

        class Trainer:
            def __init__(self, model):
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

            def train_epoch(self):
                self.optimizer.step()

            def evaluate(trainer):
                self.model.eval()

            def fit(self, epochs):
                for epoch in range(epochs):
                    self.train_epoch()
                    self.evaluate()

        trainer = Trainer(model)
        trainer.fit(4)

    The fix loop verifies each fix: one that does not remove its finding is left out, so fixing settles
    (and fixing again changes nothing) whatever the model makes of the broken method.
    """
    source = ("import torch\n\n\nclass Trainer:\n    def __init__(self, model):\n"
                "        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n"
                "    def train_epoch(self):\n        self.optimizer.step()\n\n"
                "    def evaluate(trainer):\n        self.model.eval()\n\n"
                "    def fit(self, epochs):\n        for epoch in range(epochs):\n"
                "            self.train_epoch()\n            self.evaluate()\n\n\n"
                "trainer = Trainer(model)\ntrainer.fit(4)\n")
    fixed = trainlint.fix_source(source)
    assert trainlint.fix_source(fixed) == fixed


def test_lint_of_text_with_a_lone_surrogate_does_not_raise():
    """Found by hand-written hostile inputs (tests/fuzz/test_hostile_text.py leaves surrogates out until
    this passes). A file cannot hold one (decoding is strict), but a string given to the library or by
    an editor can: JSON text `"\\ud800"` decodes to a lone surrogate. Python refuses such text; trainlint
    should report one E999, as for any text Python cannot parse. Reduced shape:

        import torch
        loss.backward()
        name = '<U+D800>'
    """
    findings = trainlint.lint_source("import torch\nloss.backward()\nname = '\ud800'\n")
    assert [f.code for f in findings] == ["E999"]


def test_nul_character_in_a_comment_does_not_pass_as_valid_code():
    """Found by tests/fuzz/test_hostile_text.py (NUL appended to a comment line of the sklearn template).
    Through the CLI the file is refused (E902, NUL bytes); through lint_source it is linted as if valid.
    Reduced shape:

        import torch
        loss.backward()  # note<NUL>
    """
    findings = trainlint.lint_source("import torch\nloss.backward()  # note\x00\nx = 1\n")
    assert [f.code for f in findings] == ["E999"]


# --- no silent limits (E903), inputs libcst could not take -------------------------------------------------
def helpers_calling_each_other(fan_out: int) -> str:
    """Six helpers, each calling the next from `fan_out` places: followed into every call site, the file
    asks for fan_out ** 5 helper walks from 6 * fan_out calls written."""
    lines = ["import torch", "model = torch.nn.Linear(2, 1)", "opt = torch.optim.SGD(model.parameters(), lr=0.1)"]
    for depth in range(6):
        lines.append(f"def f{depth}(x):")
        lines.extend([f"    f{depth + 1}(x)"] * fan_out if depth < 5 else ["    model(x).sum().backward()"])
    lines += ["for x in range(3):", "    f0(x)"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("fmt, expected", [
    ("concise", "explosive.py:1:1: E903 "),
    ("full", "E903"),
    ("json", '"code": "E903"'),
    ("github", "title=trainlint (E903)"),
    ("sarif", '"ruleId": "E903"'),
])
def test_analysis_cut_short_is_said_in_every_format_and_the_run_goes_on(project, capsys, fmt, expected):
    """The fuzzing report's 10 MB file: analysis stopped after 50,000 events without a word. Now a file whose
    helpers multiply beyond the work budget gets E903, in every output format, and other files are linted."""
    (project / "explosive.py").write_text(helpers_calling_each_other(12))
    (project / "good.py").write_text(BUGGY)
    code = main(["check", "--no-cache", "--output-format", fmt, "."])
    out = capsys.readouterr().out
    assert code == 1
    assert expected in out
    assert "Analysis stopped early" in out or fmt == "github" and "Analysis stopped early" in out.replace("%0A", " ")
    assert "good.py" in out


def test_helpers_within_the_budget_get_no_limit_notice():
    assert [f.code for f in trainlint.lint_source(helpers_calling_each_other(4), "t.py")] == []


def test_code_python_compiles_is_never_a_syntax_error():
    """libcst refused 5,000 implicitly concatenated strings (a false E999); the analysis now reads the
    standard library's `ast`, which takes them."""
    source = "import torch\nx = (" + " ".join(['"s"'] * 5000) + ")\nloss.backward()\n"
    compile(source, "x.py", "exec")
    assert [f.code for f in trainlint.lint_source(source, "x.py")] == []
    assert trainlint.fix_source(source, "x.py") == source


def test_unary_chain_python_cannot_compile_is_one_clear_error_like_pythons():
    """A chain of 4,000 unary minus signs: libcst parsed it in quadratic time (7.5 s). CPython 3.11 refuses it
    too (`python x.py`: RecursionError during compilation); trainlint says so in one E999 line at once."""
    source = "import torch\nx = " + "-" * 4000 + "1\nloss.backward()\n"
    with pytest.raises(RecursionError):
        compile(source, "x.py", "exec")
    findings = trainlint.lint_source(source, "x.py")
    assert [f.code for f in findings] == ["E999"] and "nested too deeply" in findings[0].message


@pytest.mark.parametrize("source", ["import torch\nloss.backward()\ndef f(:\n",
                                    "import torch\nloss.backward()\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n"])
def test_library_reports_code_python_cannot_parse_by_its_documented_contract(source):
    """`fix_source` raised TooComplex for deeply nested expressions, which its docstring did not promise. Now:
    `lint_source` returns one E999 finding, `fix_source` raises UnparsableSource (a SyntaxError)."""
    assert [f.code for f in trainlint.lint_source(source, "x.py")] == ["E999"]
    with pytest.raises(trainlint.UnparsableSource) as raised:
        trainlint.fix_source(source, "x.py")
    assert isinstance(raised.value, SyntaxError) and raised.value.finding.code == "E999"
