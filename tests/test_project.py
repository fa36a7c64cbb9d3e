"""The project layer: a training run followed across the modules of its project (read, never imported).

Each test writes a small multi-module project of its own in the shape real projects have (train.py calls
engine.train_one_epoch, a Trainer inherits validate() from a base class in another module, optim.py builds
the optimizer, a package re-exports its helpers, a src/ layout), and checks what `trainlint check` reports
for the file being linted alone and for the whole folder.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from trainlint.cli import main


def write(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text("[tool.trainlint]\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def check(capsys, *paths: str) -> list[str]:
    main(["check", "--no-cache", "--output-format", "concise", "--exit-zero", *paths])
    return [line for line in capsys.readouterr().out.splitlines() if ": TL" in line or ": E9" in line]


TRAIN = """\
    import torch
    from engine import train_one_epoch

    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 3
    for epoch in range(3):
        train_one_epoch(model, opt, loader)
    """
ENGINE_NO_ZERO_GRAD = """\
    import torch


    def train_one_epoch(model, optimizer, loader):
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    """


# -- TL001 ------------------------------------------------------------------------------------------------

def test_tl001_reports_the_call_of_a_helper_from_another_module_that_never_clears(project, capsys):
    """train.py -> engine.train_one_epoch: backward and step, no zero_grad. Linting train.py alone (as
    pre-commit does with the staged file) reports at the call, naming the helper and where it lives."""
    write(project, {"train.py": TRAIN, "engine.py": ENGINE_NO_ZERO_GRAD})
    [line] = check(capsys, "train.py")
    assert line.startswith("train.py:8:5: TL001 `train_one_epoch()` (engine.py:4), called here: ")
    assert "(line 8 of engine.py)" in line


def test_tl001_whole_folder_reports_the_helper_itself_once(project, capsys):
    """Linting the folder reports the bug in engine.py (with its fix), not a second time at the call."""
    write(project, {"train.py": TRAIN, "engine.py": ENGINE_NO_ZERO_GRAD})
    [line] = check(capsys, ".")
    assert line.startswith("engine.py:7:9: TL001 ")


def test_tl001_quiet_when_the_helper_clears_through_a_sibling_package(project, capsys):
    """utils/optim.py's zero_grads(opt) clears the optimizer: called from the loop in scripts/train.py."""
    write(project, {
        "scripts/train.py": """\
            import torch
            from utils.optim import zero_grads

            model = torch.nn.Linear(4, 1)
            o = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in range(3):
                zero_grads(o)
                model(torch.randn(2, 4)).sum().backward()
                o.step()
            """,
        "utils/__init__.py": "",
        "utils/optim.py": """\
            def zero_grads(optimizer):
                optimizer.zero_grad(set_to_none=True)
            """,
    })
    assert check(capsys, "scripts/train.py") == []


def test_tl001_reports_when_a_sibling_package_helper_clears_nothing(project, capsys):
    write(project, {
        "scripts/train.py": """\
            import torch
            from utils.optim import zero_grads

            model = torch.nn.Linear(4, 1)
            o = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in range(3):
                zero_grads(o)
                model(torch.randn(2, 4)).sum().backward()
                o.step()
            """,
        "utils/__init__.py": "",
        "utils/optim.py": """\
            def zero_grads(optimizer):
                return len(optimizer.param_groups)  # clears nothing
            """,
    })
    [line] = check(capsys, "scripts/train.py")
    assert line.startswith("scripts/train.py:8:5: TL001 ")


def test_tl001_follows_a_factory_in_another_module(project, capsys):
    """`o = build_optimizer(model)` from optim.py returns a torch optimizer: `o.step()` is its step (the
    name `o` alone says nothing)."""
    write(project, {
        "train.py": """\
            import torch
            from optim import build_optimizer

            model = torch.nn.Linear(4, 1)
            o = build_optimizer(model)
            for x in range(3):
                model(torch.randn(2, 4)).sum().backward()
                o.step()
            """,
        "optim.py": """\
            import torch


            def build_optimizer(model):
                return torch.optim.AdamW(model.parameters(), lr=1e-3)
            """,
    })
    [line] = check(capsys, "train.py")
    assert line.startswith("train.py:7:5: TL001 ")


@pytest.mark.parametrize("layout", ["relative", "src", "reexport", "module-attribute"])
def test_tl001_resolves_relative_src_and_reexported_imports(project, capsys, layout):
    engine = ENGINE_NO_ZERO_GRAD
    if layout == "relative":
        files = {"pkg/__init__.py": "", "pkg/engine.py": engine,
                 "pkg/train.py": TRAIN.replace("from engine import", "from .engine import")}
        target = "pkg/train.py"
    elif layout == "src":
        files = {"src/mypkg/__init__.py": "", "src/mypkg/engine.py": engine,
                 "train.py": TRAIN.replace("from engine import", "from mypkg.engine import")}
        target = "train.py"
    elif layout == "reexport":
        files = {"pkg/__init__.py": "from .loops import train_one_epoch\n", "pkg/loops.py": engine,
                 "train.py": TRAIN.replace("from engine import", "from pkg import")}
        target = "train.py"
    else:
        files = {"engine.py": engine,
                 "train.py": TRAIN.replace("from engine import train_one_epoch", "import engine").replace(
                     "    train_one_epoch(", "    engine.train_one_epoch(")}
        target = "train.py"
    write(project, files)
    [line] = check(capsys, target)
    assert line.startswith(f"{target}:8:5: TL001 ") and "train_one_epoch()" in line


def test_missing_cyclic_and_unparsable_modules_make_nothing_known(project, capsys):
    """An import that resolves to nothing, a cycle between two modules, and a module with a syntax error:
    what they would provide is unknown (silent), and the importing file gets no error."""
    write(project, {
        "train.py": """\
            import torch
            from broken import train_one_epoch
            from missing import helper
            from a import ping

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                opt.zero_grad()
                train_one_epoch(model, opt)
                helper(model)
                ping(model)
                model(torch.randn(2, 4)).sum().backward()
                opt.step()
            """,
        "broken.py": "def train_one_epoch(model, opt:\n    opt.step()\n",
        "a.py": "from b import pong\n\n\ndef ping(m):\n    return pong(m)\n",
        "b.py": "from a import ping\n\n\ndef pong(m):\n    return ping(m)\n",
    })
    assert check(capsys, "train.py") == []


# -- TL002, TL004, TL005 ------------------------------------------------------------------------------------

STEP_HELPER = """\
    import torch


    def train_step(model, optimizer, batch):
        optimizer.zero_grad()
        loss = model(batch).sum()
        {body}
    """
CALLER = """\
    import torch
    from steps import train_step

    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for batch in [torch.randn(2, 4)] * 3:
        train_step(model, opt, batch)
    """


@pytest.mark.parametrize("code, body, reported", [
    ("TL002", "optimizer.step()\n        loss.backward()", True),
    ("TL002", "loss.backward()\n        optimizer.step()", False),
    ("TL005", "loss.backward()\n        optimizer.step()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
     True),
    ("TL005", "loss.backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        optimizer.step()",
     False),
])
def test_step_order_and_clipping_inside_a_helper_of_another_module(project, capsys, code, body, reported):
    write(project, {"train.py": CALLER, "steps.py": STEP_HELPER.replace("{body}", body)})
    lines = [line for line in check(capsys, "train.py") if f" {code} " in line]
    assert len(lines) == (1 if reported else 0)
    if reported:
        assert lines[0].startswith(f"train.py:7:5: {code} `train_step()` (steps.py:4), called here: ")


def test_tl002_follows_a_scheduler_factory_in_another_module(project, capsys):
    """`sched = build_scheduler(opt)` returns a torch LR scheduler: stepping it before the optimizer is
    reported (the name alone does not say which kind of scheduler it is)."""
    write(project, {
        "train.py": """\
            import torch
            from optim import build_scheduler

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            sched = build_scheduler(opt)
            for x in range(3):
                sched.step()
                opt.zero_grad()
                model(torch.randn(2, 4)).sum().backward()
                opt.step()
            """,
        "optim.py": """\
            import torch


            def build_scheduler(optimizer):
                return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
            """,
    })
    [line] = check(capsys, "train.py")
    assert line.startswith("train.py:8:5: TL002 ")


@pytest.mark.parametrize("accumulate, reported", [("total += loss", True), ("total += loss.item()", False)])
def test_tl004_loss_kept_by_a_helper_of_another_module(project, capsys, accumulate, reported):
    write(project, {
        "train.py": """\
            import torch
            from engine import train_one_epoch

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                print(train_one_epoch(model, opt))
            """,
        "engine.py": f"""\
            import torch


            def train_one_epoch(model, optimizer):
                total = 0.0
                for x in [torch.randn(2, 4)] * 3:
                    optimizer.zero_grad()
                    loss = model(x).sum()
                    loss.backward()
                    optimizer.step()
                    {accumulate}
                return float(total)
            """,
    })
    lines = [line for line in check(capsys, "train.py") if " TL004 " in line]
    assert len(lines) == (1 if reported else 0)


# -- TL007 ----------------------------------------------------------------------------------------------------

EVALUATE = """\
    import torch


    def evaluate(model, data):
        model.eval()
        with torch.no_grad():
            return model(data).mean().item()
    """


@pytest.mark.parametrize("restores", [False, True])
def test_tl007_evaluate_from_another_module_leaves_eval_mode_for_the_next_epoch(project, capsys, restores):
    evaluate = EVALUATE if not restores else EVALUATE.replace(
        "            return model(data).mean().item()", "            value = model(data).mean().item()\n"
        "        model.train()\n        return value")
    write(project, {
        "train.py": """\
            import torch
            from evaluation import evaluate

            model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                for x in [torch.randn(2, 4)] * 3:
                    opt.zero_grad()
                    model(x).sum().backward()
                    opt.step()
                evaluate(model, torch.randn(2, 4))
            """,
        "evaluation.py": evaluate,
    })
    lines = check(capsys, "train.py")
    if restores:
        assert lines == []
    else:
        [line] = lines
        assert line.startswith("train.py:11:5: TL007 `evaluate()` (evaluation.py:4), called here: ")


def test_tl007_fix_in_the_linted_file_is_offered_for_an_eval_in_another_module(project, capsys):
    """The eval() is in evaluation.py, the fix (model.train() before the training loop) is in train.py: it
    edits only the file being linted, so it is offered and applied."""
    write(project, {
        "train.py": """\
            import torch
            from evaluation import evaluate

            model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                for x in [torch.randn(2, 4)] * 3:
                    opt.zero_grad()
                    model(x).sum().backward()
                    opt.step()
                evaluate(model, torch.randn(2, 4))
            """,
        "evaluation.py": EVALUATE,
    })
    main(["check", "--no-cache", "--fix", "train.py"])
    capsys.readouterr()
    assert "    model.train()\n    for x in" in (project / "train.py").read_text()
    assert (project / "evaluation.py").read_text() == textwrap.dedent(EVALUATE)
    assert check(capsys, "train.py") == []


def test_tl007_trainer_inherits_validate_from_a_base_class_in_another_module(project, capsys):
    write(project, {
        "trainer.py": """\
            import torch
            from base import BaseTrainer


            class Trainer(BaseTrainer):
                def fit(self, epochs):
                    for epoch in range(epochs):
                        for x, y in self.loader:
                            self.optimizer.zero_grad()
                            torch.nn.functional.mse_loss(self.model(x), y).backward()
                            self.optimizer.step()
                        self.validate()
            """,
        "base.py": """\
            import torch


            class BaseTrainer:
                def __init__(self, model, optimizer, loader):
                    self.model, self.optimizer, self.loader = model, optimizer, loader

                def validate(self):
                    self.model.eval()
                    with torch.no_grad():
                        return sum(self.model(x).sum().item() for x, _ in self.loader)
            """,
    })
    [line] = check(capsys, "trainer.py")
    assert line.startswith("trainer.py:12:13: TL007 `validate()` (base.py:8), called here: ")


# -- fixes and the cache ------------------------------------------------------------------------------------

def test_a_fix_that_belongs_in_the_helper_is_not_applied_from_the_caller(project, capsys):
    write(project, {"train.py": TRAIN, "engine.py": ENGINE_NO_ZERO_GRAD})
    main(["check", "--no-cache", "--fix", "train.py"])
    capsys.readouterr()
    assert (project / "engine.py").read_text() == textwrap.dedent(ENGINE_NO_ZERO_GRAD)
    assert (project / "train.py").read_text() == textwrap.dedent(TRAIN)


def test_cached_findings_follow_changes_of_the_imported_module(project, capsys):
    write(project, {"train.py": TRAIN, "engine.py": ENGINE_NO_ZERO_GRAD})
    main(["check", "--output-format", "concise", "--exit-zero", "train.py"])
    assert " TL001 " in capsys.readouterr().out
    (project / "engine.py").write_text(textwrap.dedent(ENGINE_NO_ZERO_GRAD).replace(
        "    for x, y in loader:\n", "    for x, y in loader:\n        optimizer.zero_grad()\n"))
    main(["check", "--output-format", "concise", "--exit-zero", "train.py"])
    assert "All checks passed!" in capsys.readouterr().out


def test_star_import_of_a_config_module_binds_torch(project, capsys):
    """`from config import *` where config.py does `import torch`: `torch.optim.SGD` is torch's."""
    write(project, {
        "config.py": "import torch\nLR = 0.1\n",
        "train.py": """\
            from config import *

            model = torch.nn.Linear(4, 1)
            o = torch.optim.SGD(model.parameters(), lr=LR)
            for x in range(3):
                model(torch.randn(2, 4)).sum().backward()
                o.step()
            """,
    })
    [line] = check(capsys, "train.py")
    assert line.startswith("train.py:6:5: TL001 ")
