"""TL017 scheduler-never-stepped: detection, silence wherever the scheduler may be stepped, and the symptom
(the learning rate never changes) measured on the buggy fixtures and gone on their hand-corrected twins."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import FIXTURES, fixtures, lint_snippet, reported, rows, run_both

BUGS = fixtures("TL017")

codes = partial(rows, code="TL017")
findings = partial(lint_snippet, code="TL017")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_learning_rate_never_changes_and_stepping_changes_it(path):
    """No fix is offered (where to step depends on the schedule's unit): the hand-corrected `ok_` twin shows
    the schedule working, and trainlint is silent on it."""
    corrected = FIXTURES / "TL017" / path.name.replace("bug_", "ok_", 1)
    assert reported(corrected, "TL017") == set()
    buggy, working = run_both(path, corrected)
    assert len(buggy["rates"]) == len(working["rates"]) > 1
    assert buggy["distinct_rates"] == 1, "the learning rate must stay at its first value"
    assert working["distinct_rates"] > 1
    if "weight_change" in buggy:  # a warmup from 0: nothing is learned at all
        assert buggy["weight_change"] == 0.0 < working["weight_change"]


def test_message_names_the_scheduler():
    [finding] = findings("""\
        import torch
        from torch.optim.lr_scheduler import CosineAnnealingLR
        optimizer = torch.optim.Adam(model.parameters())
        sched = CosineAnnealingLR(optimizer, T_max=100)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
        """)
    assert (finding.location.row, finding.location.column) == (4, 9)
    assert finding.message.startswith("`CosineAnnealingLR(...)` (line 4) builds a learning-rate scheduler")
    assert "`sched`" in finding.message and finding.fix is None


def test_reports_scheduler_only_read_for_its_learning_rate():
    """`get_last_lr()` and `state_dict()` read the scheduler; neither steps it."""
    assert codes("""\
        import torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [30, 60])
        for epoch in range(90):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            print(scheduler.get_last_lr())
        torch.save(scheduler.state_dict(), "sched.pt")
        """) == [(3, "TL017")]


def test_reports_bare_scheduler_expression():
    assert codes("""\
        import torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
        """) == [(3, "TL017")]


def test_reports_lightning_scheduler_left_out_of_the_return():
    assert codes("""\
        import torch
        import pytorch_lightning as pl
        class Net(pl.LightningModule):
            def configure_optimizers(self):
                optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
                scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
                return optimizer
        """) == [(6, "TL017")]


def test_reports_keras_schedule_no_optimizer_is_given():
    assert codes("""\
        import keras
        schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
        model.fit(x_train, y_train, epochs=10)
        """) == [(2, "TL017")]


QUIET = {
    "stepped_per_epoch": """\
        import torch
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)
        for epoch in range(90):
            train(model, optimizer)
            scheduler.step()
        """,
    "plateau_stepped_with_a_metric": """\
        import torch
        from torch.optim import lr_scheduler
        scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, "min")
        for epoch in range(90):
            val_loss = evaluate(model)
            scheduler.step(val_loss)
        """,
    "stepped_under_a_condition": """\
        import torch
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=1000)
        for i, x in enumerate(loader):
            if args.schedule and scheduler is not None:
                scheduler.step()
        """,
    "returned_from_configure_optimizers": """\
        import torch
        import pytorch_lightning as pl
        class Net(pl.LightningModule):
            def configure_optimizers(self):
                optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
                scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
                return {"optimizer": optimizer, "lr_scheduler": scheduler}
        """,
    "given_to_a_trainer": """\
        import torch
        from transformers import Trainer, get_linear_schedule_with_warmup
        scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)
        trainer = Trainer(model=model, args=args, optimizers=(optimizer, scheduler))
        trainer.train()
        """,
    "passed_to_a_helper": """\
        import torch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
        for epoch in range(10):
            train_one_epoch(model, loader, optimizer, scheduler)
        """,
    "stored_on_self": """\
        import torch
        class Trainer:
            def __init__(self, model):
                self.optimizer = torch.optim.Adam(model.parameters())
                self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 10)
        """,
    "chained_into_sequential_lr": """\
        import torch
        from torch.optim.lr_scheduler import LinearLR, CosineAnnealingLR, SequentialLR
        warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(optimizer, T_max=95)
        scheduler = SequentialLR(optimizer, [warmup, cosine], milestones=[5])
        for epoch in range(100):
            scheduler.step()
        """,
    "stepped_in_a_closure": """\
        import torch
        def main():
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
            def on_epoch_end():
                scheduler.step()
            run(callback=on_epoch_end)
        """,
    "module_scheduler_stepped_in_a_function": """\
        import torch
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
        def train(epoch):
            for x in loader:
                optimizer.step()
            scheduler.step()
        """,
    "timm_scheduler_stepped_per_update": """\
        from timm.scheduler import CosineLRScheduler
        lr_scheduler = CosineLRScheduler(optimizer, t_initial=100)
        for x in loader:
            optimizer.step()
            lr_scheduler.step_update(num_updates=num_updates)
        """,
    "keras_schedule_given_to_an_optimizer": """\
        import keras
        schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=1000)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
        """,
    "keras_callback_in_a_callbacks_list": """\
        import keras
        reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5)
        callbacks = [reduce_lr, keras.callbacks.EarlyStopping(patience=3)]
        model.fit(x, y, validation_split=0.1, callbacks=callbacks)
        """,
    "scheduler_in_a_dict": """\
        import torch
        schedulers = {}
        for name, opt in optimizers.items():
            s = torch.optim.lr_scheduler.StepLR(opt, 10)
            schedulers[name] = s
        """,
    "module_level_scheduler_of_a_config_module": """\
        import torch
        import torch.optim.lr_scheduler as lrs
        model = resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        lr_scheduler = lrs.MultiStepLR(optimizer, milestones=[30, 60, 90], gamma=0.1)
        """,
    "scheduler_in_a_test": """\
        import torch
        def test_scheduler_builds():
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
            assert optimizer.param_groups[0]["lr"] == 0.1
        """,
}


@pytest.mark.parametrize("name", sorted(QUIET))
def test_quiet_when(name):
    assert codes(QUIET[name]) == []
