"""Shapes of public code trainlint got wrong before it was checked on repositories nobody here wrote
(bench/ecosystem): each test reproduces one shape in code of our own, with the reduced real source in its
docstring, and is named by the behaviour it pins down."""
from __future__ import annotations

import textwrap

import pytest

import trainlint


def lint(source: str, path: str = "<string>", code: str | None = None) -> list[tuple[int, str]]:
    findings = trainlint.lint_source(textwrap.dedent(source), path=path)
    return [(f.location.row, f.code) for f in findings if code is None or f.code == code]


# -- test code ------------------------------------------------------------------------------------------------
HIGH_LR_LOOP = """\
    import torch

    def make_trainer():
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1.0)
        for x in range(3):
            model(torch.randn(2, 4)).sum().backward()
            opt.step()
    """


@pytest.mark.parametrize("path", ["tests/helpers.py", "test/utils.py", "pkg/tests/common.py", "test_train.py",
                                  "trainer_test.py", "conftest.py"])
def test_rules_premised_on_a_training_run_are_quiet_in_test_code(path):
    """Lightning's tests/helpers: `def make_trainer(): ... Adam(lr=1.0)` and loops without zero_grad, on
    purpose, in functions not named test_*."""
    assert lint(HIGH_LR_LOOP, path) == []


@pytest.mark.parametrize("path", ["train.py", "test.py", "scripts/testing_utils_train.py"])
def test_scripts_named_like_tests_are_still_linted(path):
    """`test.py` is the evaluation script of most research repositories, not a unit test."""
    assert sorted(code for _, code in lint(HIGH_LR_LOOP, path)) == ["TL001", "TL006"]


# -- branches -------------------------------------------------------------------------------------------------
def test_tl001_reports_the_fp32_arm_when_only_the_bf16_arm_clears():
    """A bf16/fp32 pair of arms where only one clears:
        if args.bf16:
            optimizer.zero_grad(); with autocast(): loss = ...; loss.backward(); optimizer.step()
        else:
            loss = ...; loss.backward(); optimizer.step()
    """
    assert lint("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in [torch.randn(2, 4)] * 3:
            if args.bf16:
                optimizer.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = model(x).sum()
                loss.backward()
                optimizer.step()
            else:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
        """, code="TL001") == [(13, "TL001")]


def test_tl001_quiet_when_both_arms_clear():
    assert lint("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in [torch.randn(2, 4)] * 3:
            optimizer.zero_grad()
            if args.bf16:
                model(x).sum().backward()
                optimizer.step()
            else:
                model(x).sum().backward()
                optimizer.step()
        """) == []


def test_tl002_settles_if_scheduler_in_the_function_scope():
    """`if scheduler:` on a parameter of the training function takes the same arm on every iteration:
        def train(model, loader, optimizer, scheduler=None):
            for batch in loader:
                if scheduler: scheduler.step()
                loss.backward(); optimizer.step()
    """
    assert lint("""\
        import torch

        def train(model, loader, optimizer, scheduler=None):
            for x in loader:
                if scheduler:
                    scheduler.step()
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()

        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1)
        train(model, [torch.randn(2, 4)] * 3, opt, sched)
        """, code="TL002") == [(6, "TL002")]


# -- entry points and forwards --------------------------------------------------------------------------------
def test_trainer_method_named_train_is_analysed_although_the_file_calls_model_train():
    """A trainer whose method is called `train`, in a file that also calls `self.model.train()`:
        class Trainer:
            def train(self):
                self.model.train()
                for batch in self.loader: loss.backward(); self.optimizer.step()   # no zero_grad
    """
    assert lint("""\
        import torch

        class Trainer:
            def __init__(self, model, loader):
                self.model = model
                self.loader = loader
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

            def train(self):
                self.model.train()
                for x in self.loader:
                    self.model(x).sum().backward()
                    self.optimizer.step()
        """, code="TL001") == [(12, "TL001")]


def test_tl007_counts_self_model_calls_as_the_models_forward():
    """`self.model(x)` and `self.net(x)` are forwards of the model `self.model.eval()` leaves in eval mode."""
    assert lint("""\
        import torch

        class Trainer:
            def __init__(self, net, optimizer, loader):
                self.net, self.optimizer, self.loader = net, optimizer, loader

            def fit(self):
                for epoch in range(3):
                    for x in self.loader:
                        self.optimizer.zero_grad()
                        self.net(x).sum().backward()
                        self.optimizer.step()
                    self.evaluate()

            def evaluate(self):
                self.net.eval()
                with torch.no_grad():
                    return [self.net(x) for x in self.loader]
        """, code="TL007") == [(16, "TL007")]


# -- helpers we cannot see into -------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["zero_grad(self.model_params)", "utils.zero_grads(opt)",
                                  "misc.clear_grads(model.parameters())"])
def test_tl001_quiet_when_an_unseen_helper_named_for_clearing_gets_the_optimizer_or_parameters(call):
    """DCGAN-style code from another package: `zero_grad(self.model_params)` / `utils.zero_grads(opt)`."""
    assert lint(f"""\
        import torch
        import utils, misc
        from helpers import zero_grad

        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in [torch.randn(2, 4)] * 3:
            {call}
            model(x).sum().backward()
            opt.step()
        """, code="TL001") == []


# -- bindings -------------------------------------------------------------------------------------------------
def test_tl002_knows_pytorch_transformers_warmup_schedules():
    """`from pytorch_transformers import WarmupLinearSchedule`: a LambdaLR, stepped after the optimizer."""
    assert lint("""\
        import torch
        from pytorch_transformers import AdamW, WarmupLinearSchedule

        model = torch.nn.Linear(4, 1)
        optimizer = AdamW(model.parameters(), lr=5e-5)
        scheduler = WarmupLinearSchedule(optimizer, warmup_steps=10, t_total=100)
        for x in [torch.randn(2, 4)] * 3:
            scheduler.step()
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
        """, code="TL002") == [(8, "TL002")]


def test_tl006_a_projects_own_adamw_takes_torchs_defaults():
    """A repository that ships its own `class AdamW(Optimizer)` (a copy of the paper's algorithm)."""
    assert lint("""\
        import torch

        class AdamW(torch.optim.Optimizer):
            def __init__(self, params, lr=1e-3):
                super().__init__(params, dict(lr=lr))

        model = torch.nn.Linear(4, 1)
        optimizer = AdamW(model.parameters(), lr=0.5)
        """, code="TL006") == [(8, "TL006")]


def test_tl003_knows_a_well_known_scaler_used_without_its_import():
    """A notebook fragment whose import cell is not part of the file:
        scaler = StandardScaler(); X_test = scaler.fit_transform(X_test)"""
    assert lint("""\
        import torch
        X_train, X_test = load()
        scaler = StandardScaler()
        X_test = scaler.fit_transform(X_test)
        """, code="TL003") == [(4, "TL003")]


def test_tl003_imported_data_names_have_their_training_counterpart():
    """`from data import X_train, X_test`, then `scaler.fit(X_test)`: the fix fits on X_train."""
    source = """\
        import torch
        from sklearn.preprocessing import StandardScaler
        from data import X_train, X_test

        scaler = StandardScaler()
        scaler.fit(X_test)
        """
    assert lint(source, code="TL003") == [(6, "TL003")]
    assert "scaler.fit(X_train)" in trainlint.fix_source(textwrap.dedent(source))


# -- Lightning --------------------------------------------------------------------------------------------
LIGHTNING_STEP = """\
    import torch
    import lightning as L

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1){manual}

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch).sum()
            torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
            return loss
    """


def test_tl005_reports_clipping_inside_an_automatic_lightning_training_step():
    """A LightningModule that clips in training_step: Lightning's backward runs after it returns.
        def training_step(self, batch, idx):
            loss = ...; torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0); return loss"""
    assert lint(LIGHTNING_STEP.replace("{manual}", ""), code="TL005") == [(11, "TL005")]


def test_tl005_quiet_in_a_lightning_training_step_with_manual_optimisation():
    source = LIGHTNING_STEP.replace("{manual}", "\n            self.automatic_optimization = False")
    assert lint(source, code="TL005") == []


# -- clearing through collections, wrappers and helpers (ecosystem review, TL001) ---------------------------
def test_tl001_quiet_when_every_optimizer_of_a_collection_is_cleared_in_a_helper():
    """A trainer that clears `for optimizer in self.optimizers: optimizer.zero_grad()` in one helper and steps
    `for optimizer in self.optimizers: optimizer.step()` elsewhere, the loop name bound twice in a function."""
    assert lint("""\
        import torch

        class Trainer:
            def __init__(self, model, optimizers, loader):
                self.model, self.optimizers, self.loader = model, optimizers, loader

            def _microbatches(self, chunks):
                for optimizer in self.optimizers:
                    optimizer.zero_grad(set_to_none=True)
                for chunk in chunks:
                    self.model(chunk).sum().backward()
                for optimizer in self.optimizers:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)

            def fit(self):
                for batch in self.loader:
                    self._microbatches(batch.chunk(2))
                    for optimizer in self.optimizers:
                        optimizer.step()
        """, code="TL001") == []


def test_tl001_quiet_when_a_scheduler_is_unpacked_beside_the_optimizer():
    """`self.optimizer, self.lr_scheduler = optimizers` (the (optimizer, scheduler) pair of HF trainers): the
    scheduler is not an optimizer whose gradients go uncleared."""
    assert lint("""\
        class Trainer:
            def __init__(self, model, optimizers, loader):
                self.model, self.loader = model, loader
                self.optimizer, self.lr_scheduler = optimizers

            def train(self):
                optimizer = self.optimizer
                for batch in self.loader:
                    for chunk in batch.chunk(2):
                        self.model(chunk).sum().backward()
                        optimizer.step()
                        optimizer.zero_grad()
                    self.lr_scheduler.step()
        """, code="TL001") == []


def test_tl001_quiet_when_an_optimizer_wrapper_clears_the_optimizer_it_wraps():
    """A NoamOpt-style wrapper whose `zero_grad()` forwards to the wrapped optimizer, stepped through AMP's
    `scaler.step(wrapper)`."""
    assert lint("""\
        import torch

        class Warmup:
            def __init__(self, optimizer):
                self.optimizer = optimizer

            def step(self):
                self.optimizer.step()

            def zero_grad(self):
                self.optimizer.zero_grad()

        model = torch.nn.Linear(4, 1)
        optimizer = Warmup(torch.optim.Adam(model.parameters()))
        scaler = torch.amp.GradScaler()
        for x in [torch.randn(8, 4)] * 3:
            optimizer.zero_grad()
            scaler.scale(model(x).sum()).backward()
            scaler.step(optimizer)
            scaler.update()
        """, code="TL001") == []


def test_tl001_quiet_when_a_helper_of_another_module_zeroes_the_grads_by_hand(tmp_path):
    """guided-diffusion's fp16 helpers: `zero_grad(params)` in another module does `p.grad.zero_()` for each
    parameter, called by the trainer before `backward()`."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "fp16.py").write_text(textwrap.dedent("""\
        def zero_grad(params):
            for p in params:
                if p.grad is not None:
                    p.grad.detach_()
                    p.grad.zero_()
        """))
    source = """\
        import torch
        from fp16 import zero_grad

        model = torch.nn.Linear(4, 1)
        params = list(model.parameters())
        opt = torch.optim.AdamW(params)
        for x in [torch.randn(8, 4)] * 3:
            zero_grad(params)
            model(x).sum().backward()
            opt.step()
        """
    (tmp_path / "train.py").write_text(textwrap.dedent(source))
    assert lint(source, str(tmp_path / "train.py"), code="TL001") == []


def test_tl001_quiet_when_the_helper_clears_the_model_the_caller_built_the_optimizer_on():
    """`model.zero_grad()` in `train_epoch(model, ...)` while the caller built the optimizer on `qa_model`."""
    assert lint("""\
        import torch

        def train_epoch(model, loader, optimizer):
            for x in loader:
                model(x).sum().backward()
                optimizer.step()
                model.zero_grad()

        def train(qa_model, loader, epochs):
            qa_optimizer = torch.optim.AdamW(qa_model.parameters(), lr=1e-4)
            for epoch in range(epochs):
                train_epoch(qa_model, loader, qa_optimizer)

        train(torch.nn.Linear(4, 1), [torch.randn(8, 4)] * 3, 2)
        """, code="TL001") == []
