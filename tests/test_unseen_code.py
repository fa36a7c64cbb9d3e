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


# -- ecosystem review A: shapes TL007 (and TL002) got wrong -----------------------------------------------


def test_tl007_quiet_when_the_optimizer_name_is_rebound_to_a_new_model():
    """A notebook trains `model_0`, evaluates it, then rebinds `optimizer` to `model_1`'s parameters and trains
    `model_1`: the second loop's steps do not train `model_0` (the role of a name assigned twice is the value
    assigned last before the call)."""
    assert lint("""\
        import torch

        X, y = torch.randn(8, 1), torch.randn(8, 1)
        model_0 = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model_0.parameters(), lr=0.01)
        for epoch in range(10):
            model_0.train()
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(model_0(X), y).backward()
            optimizer.step()
            model_0.eval()
            with torch.inference_mode():
                model_0(X)

        model_1 = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model_1.parameters(), lr=0.01)
        for epoch in range(10):
            model_1.train()
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(model_1(X), y).backward()
            optimizer.step()
        """) == []


def test_tl007_quiet_when_the_model_name_is_rebound_to_a_fresh_module():
    """A tutorial trains `model`, evaluates it, then builds `model = nn.Sequential(...)` anew and trains it:
    a freshly built module starts in train mode."""
    assert lint("""\
        import torch

        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 3))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        model.train()
        for epoch in range(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        model.eval()
        with torch.no_grad():
            pred = model(x)

        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 3))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for epoch in range(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        """) == []


def test_tl007_quiet_when_a_factory_returns_a_model_in_eval_mode_and_training_calls_train():
    """`instantiate_model()` ends with `model.eval()`; `train_classifier()` calls `model.train()` each epoch
    before its steps."""
    assert lint("""\
        import torch

        def instantiate_model():
            model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1))
            model.eval()
            return model

        def train_classifier(model, loader, optimizer, num_epochs):
            for epoch in range(num_epochs):
                model.train()
                for x, y in loader:
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()

        model = instantiate_model()
        loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        train_classifier(model, loader, optimizer, num_epochs=3)
        """) == []


def test_tl007_quiet_when_the_loop_trains_other_models_than_the_one_evaluated():
    """A global `model` is ranked in eval mode; `blend()` trains the models of its own list with optimizers built
    over each of them: the global is not what those steps train."""
    assert lint("""\
        import torch

        def build():
            return torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.2))

        def rank(model, x):
            model.eval()
            with torch.no_grad():
                return model(x)

        x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
        model = build()
        rank(model, x)

        def blend(folds):
            models = [build(), build()]
            for model in models:
                for train_idx in folds:
                    optimizer = torch.optim.Adam(model.parameters())
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(model(x[train_idx]), y[train_idx]).backward()
                    optimizer.step()

        blend([[0, 1, 2], [3, 4, 5]])
        """, code="TL007") == []


def test_tl007_quiet_when_eval_runs_in_the_last_iteration_only():
    """`for i, (x, y) in steps: ... if i == len(steps) - 1: model.eval(); validate` with `model.train()` at the
    start of each epoch: no training step of that epoch follows the eval()."""
    assert lint("""\
        import torch

        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.2))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        loader = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))] * 4
        x_val, y_val = torch.randn(8, 4), torch.randint(0, 3, (8,))

        for epoch in range(100):
            steps = list(enumerate(loader))
            model.train()
            for i, (x, y) in steps:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
                if i == len(steps) - 1:
                    model.eval()
                    with torch.no_grad():
                        vloss = torch.nn.functional.cross_entropy(model(x_val), y_val)
                    print(epoch, float(vloss))
        """) == []


def test_tl007_quiet_when_evaluation_unwraps_ddp_and_training_calls_train():
    """`evaluate(model.module if isinstance(model, DDP) else model)`: both arms are the trained model, and
    `train()` switches it back first."""
    assert lint("""\
        import torch
        from torch.nn.parallel import DistributedDataParallel

        def train(model, loader, optimizer):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()

        def evaluate(model, loader):
            model.eval()
            with torch.no_grad():
                return sum(float(model(x).sum()) for x, _ in loader)

        def run(loader, distributed):
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
            if distributed:
                model = DistributedDataParallel(model)
            optimizer = torch.optim.Adam(model.parameters())
            for epoch in range(10):
                train(model, loader, optimizer)
                evaluate(model.module if isinstance(model, DistributedDataParallel) else model, loader)
        """) == []


def test_tl007_quiet_when_a_module_overrides_train_and_it_is_called():
    """A memory module overrides `train(mode)` to flush a store and calls `super().train(mode)`: `memory.train()`
    still restores train mode."""
    assert lint("""\
        import torch

        class Memory(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))

            def train(self, mode: bool = True):
                if self.training and not mode:
                    print("flushing the message store")
                super().train(mode)

        memory = Memory()
        optimizer = torch.optim.Adam(memory.parameters())
        x = torch.randn(8, 4)
        for epoch in range(10):
            memory.train()
            optimizer.zero_grad()
            memory.net(x).pow(2).mean().backward()
            optimizer.step()
            memory.eval()
            with torch.no_grad():
                memory.net(x)
        """) == []


def test_tl007_quiet_when_a_helper_steps_under_a_phase_its_caller_does_not_pass():
    """`model.fit('gnn', ...)` runs only the `if phase == 'gnn':` arm, which calls `self.gnn.train()`; the
    `if phase == 'lm':` arm that steps without it cannot run from this call."""
    assert lint("""\
        import torch

        class Joint(torch.nn.Module):
            def __init__(self, lm, gnn):
                super().__init__()
                self.lm = lm
                self.gnn = gnn

            def fit(self, phase, x, y, optimizer):
                if phase == 'gnn':
                    self.gnn.train()
                    torch.nn.functional.mse_loss(self.gnn(x), y).backward()
                    optimizer.step()
                if phase == 'lm':
                    self.lm.train()
                    torch.nn.functional.mse_loss(self.lm(x), y).backward()
                    optimizer.step()

        gnn = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        model = Joint(torch.nn.Linear(4, 1), gnn)
        gnn_opt = torch.optim.Adam(model.gnn.parameters())
        x, y = torch.randn(8, 4), torch.randn(8, 1)
        for epoch in range(5):
            gnn_opt.zero_grad()
            model.fit('gnn', x, y, gnn_opt)
            model.gnn.eval()
            model.gnn(x)
        """) == []


def test_tl007_keras_quiet_when_the_model_takes_its_own_training_keyword():
    """A subclassed Keras model `call(self, x, is_training=False)` hands `training=is_training` to its
    Dropout; the tape step calls `net(x, is_training=True)`."""
    assert lint("""\
        import tensorflow as tf
        from tensorflow.keras import Model, layers

        class ConvNet(Model):
            def __init__(self):
                super().__init__()
                self.fc = layers.Dense(64)
                self.dropout = layers.Dropout(rate=0.5)
                self.out = layers.Dense(10)

            def call(self, x, is_training=False):
                x = self.dropout(self.fc(x), training=is_training)
                return self.out(x)

        net = ConvNet()
        optimizer = tf.optimizers.Adam(0.001)

        def run_optimization(x, y):
            with tf.GradientTape() as tape:
                pred = net(x, is_training=True)
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, pred, from_logits=True))
            grads = tape.gradient(loss, net.trainable_variables)
            optimizer.apply_gradients(zip(grads, net.trainable_variables))
        """) == []


def test_tl002_quiet_when_a_sum_started_from_zero_is_backpropagated():
    """`optimizer.zero_grad(); reg = 0.; for x in loader: reg += model(x).pow(2).mean(); reg.backward();
    optimizer.step()`: the number becomes a tensor, and its backward() fills the gradients the step uses."""
    assert lint("""\
        import torch

        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]

        def train():
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()

            optimizer.zero_grad()
            reg = 0.
            for x, _ in loader:
                reg += model(x).pow(2).mean()
            reg.backward()
            optimizer.step()

        for epoch in range(10):
            train()
        """) == []


def test_tl007_quiet_when_a_notebook_repeats_an_eval_in_the_last_iteration_with_names_reused():
    """jeffheaton/app_deep_learning notebooks, cell after cell:
        while epoch < 1000 and not done:
            steps = list(enumerate(dataloader_train)); pbar = tqdm.tqdm(steps); model.train()
            for i, (x_batch, y_batch) in pbar:
                ...; optimizer.step()
                if i == len(steps) - 1: model.eval(); validate
    `steps` and `pbar` are assigned once per cell: each loop counts its own `steps`."""
    block = textwrap.dedent("""\
        steps = list(enumerate(loader))
        pbar = tqdm.tqdm(steps)
        model.train()
        for i, (x, y) in pbar:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            if i == len(steps) - 1:
                model.eval()
                with torch.no_grad():
                    model(x)
        """)
    source = textwrap.dedent("""\
        import torch, tqdm
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.2))
        optimizer = torch.optim.Adam(model.parameters())
        loader = [(torch.randn(8, 4), torch.randn(8, 1))] * 4
        done = False
        while not done:
        """) + textwrap.indent(block, "    ") + "for epoch in range(3):\n" + textwrap.indent(block, "    ")
    compile(source, "nb.py", "exec")
    assert lint(source, code="TL007") == []
    assert lint(source.replace("i == len(steps) - 1", "i == 0"), code="TL007") != []


def test_tl007_quiet_when_a_helper_reads_a_global_optimizer_each_cell_rebinds():
    """Atcold/NYU-DLSP20 06-convnet: `def train(epoch, model): model.train(); ...; optimizer.step()` and
    `def test(model): model.eval(); ...`, then cell after cell `model_fnn = FC2Layer(...); optimizer =
    SGD(model_fnn.parameters())` / `model_cnn = CNN(...); optimizer = SGD(model_cnn.parameters())` with
    `for epoch in ...: train(epoch, m); test(m)`. The global `optimizer` the helper steps is the one bound
    before the module-level call that runs it."""
    assert lint("""\
        import torch
        def train(epoch, model):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        def test(model):
            model.eval()
            with torch.no_grad():
                for x, y in loader:
                    model(x)
        loader = [(torch.randn(8, 4), torch.randn(8, 1))]
        model_fnn = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model_fnn.parameters(), lr=0.01)
        for epoch in range(2):
            train(epoch, model_fnn)
            test(model_fnn)
        model_cnn = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model_cnn.parameters(), lr=0.01)
        for epoch in range(2):
            train(epoch, model_cnn)
            test(model_cnn)
        """, code="TL007") == []


def test_tl007_quiet_when_the_model_holds_no_layer_that_depends_on_the_mode():
    """mrdbourke/pytorch-deep-learning 02: `class CircleModelV1(nn.Module)` of three `nn.Linear` layers, or
    `nn.Sequential(nn.Linear(...), nn.ReLU(), ...)`, trained with `model_1.eval()` at the end of each epoch
    and no `train()`: eval mode changes nothing in such a model, so nothing goes wrong."""
    source = """\
        import torch
        from torch import nn
        class CircleModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer_1 = nn.Linear(2, 10)
                self.relu = nn.ReLU()
                self.layer_2 = nn.Linear(10, 1)
            def forward(self, x):
                return self.layer_2(self.relu(self.layer_1(x)))
        model_1 = CircleModel().to("cpu")
        model_2 = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 1))
        for model in (model_1, model_2):
            pass
        X, y = torch.randn(8, 2), torch.randn(8, 1)
        optimizer = torch.optim.SGD(model_1.parameters(), lr=0.1)
        for epoch in range(10):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model_1(X), y).backward()
            optimizer.step()
            model_1.eval()
            with torch.inference_mode():
                model_1(X)
        """
    assert lint(source, code="TL007") == []
    with_dropout = source.replace("self.relu = nn.ReLU()", "self.relu = nn.Dropout(0.2)")
    assert [code for _, code in lint(with_dropout, code="TL007")] == ["TL007"]
    functional = source.replace("return self.layer_2(self.relu(self.layer_1(x)))",
                                "return self.layer_2(nn.functional.dropout(self.layer_1(x), 0.2, self.training))")
    assert [code for _, code in lint(functional, code="TL007")] == ["TL007"]
