"""TL014 optimizer-rebuilt-in-loop: detection, silence where a new optimizer is meant, and runtime-verified
fixes (the optimizer's state, or the schedule, carries on across epochs once built before the loop)."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import autofixed, fix_snippet, fixtures, lint_snippet, rows, run_both

BUGS = fixtures("TL014")

codes = partial(rows, code="TL014")
findings = partial(lint_snippet, code="TL014")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_state_restarts_every_epoch_and_the_fix_carries_it_on(path, tmp_path):
    buggy, repaired = run_both(path, autofixed(path, tmp_path, unsafe=True))
    if "step_counts" in buggy:  # the optimizer's step count at the end of each epoch
        per_epoch = buggy["batches_per_epoch"]
        assert buggy["step_counts"] == [per_epoch] * len(buggy["step_counts"]), "the state must restart"
        assert repaired["step_counts"] == [per_epoch * (i + 1) for i in range(len(repaired["step_counts"]))]
    else:  # the learning rate at the start of each epoch
        assert buggy["distinct_rates"] == 1, "the schedule must be stuck at its first value"
        assert repaired["distinct_rates"] == len(repaired["rates"]) > 1


def test_reports_adam_built_per_epoch_and_hoists_it():
    source = """\
        import torch
        model = Net()
        for epoch in range(args.epochs):
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        """
    [finding] = findings(source)
    assert (finding.location.row, finding.location.column) == (5, 17)
    assert "epoch loop (line 3)" in finding.message and "`model`" in finding.message
    assert finding.fix.applicability == "unsafe"
    assert fix_snippet(source, unsafe=True).splitlines()[2:5] == [
        "optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)",
        "for epoch in range(args.epochs):", "    model.train()"]


def test_reports_optimizer_built_before_every_step():
    assert codes("""\
        import torch
        for x, y in loader:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        """) == [(3, "TL014")]


def test_reports_optimizer_built_in_the_epoch_helper():
    """The epoch loop calls a helper that builds the optimizer: rebuilt every epoch, no fix (not in the loop's
    own body)."""
    source = """\
        import torch
        def train_epoch(model, loader):
            optimizer = torch.optim.Adam(model.parameters())
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        model = Net()
        for epoch in range(10):
            train_epoch(model, loader)
        """
    [finding] = findings(source)
    assert finding.location.row == 3 and finding.fix is None


def test_reports_scheduler_rebuilt_per_epoch_over_a_persistent_optimizer():
    assert codes("""\
        import torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(90):
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)
            train(model, optimizer)
            scheduler.step()
        """) == [(4, "TL014")]


def test_no_fix_when_the_constructor_reads_the_epoch():
    source = """\
        import torch
        for epoch in range(90):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3 * 0.9 ** epoch)
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """
    [finding] = findings(source)
    assert finding.fix is None


QUIET = {
    "optimizer_built_once": """\
        import torch
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "fresh_optimizer_over_a_per_sample_tensor": """\
        import torch
        for x, y in loader:
            delta = torch.zeros_like(x, requires_grad=True)
            attack = torch.optim.Adam([delta], lr=0.01)
            for _ in range(10):
                attack.zero_grad()
                (-loss_fn(model(x + delta), y)).backward()
                attack.step()
        """,
    "per_image_optimisation_of_the_input": """\
        import torch
        for epoch in range(epochs):
            image = content.clone().requires_grad_(True)
            optimizer = torch.optim.LBFGS([image])
            optimizer.step(closure)
        """,
    "one_optimizer_per_fold_with_a_fresh_model": """\
        import torch
        for fold, (train_idx, val_idx) in enumerate(kfold.split(X)):
            model = Net()
            optimizer = torch.optim.Adam(model.parameters())
            for epoch in range(10):
                for x, y in loaders[fold]:
                    optimizer.zero_grad()
                    loss_fn(model(x), y).backward()
                    optimizer.step()
        """,
    "rebuilt_once_when_unfreezing": """\
        import torch
        optimizer = torch.optim.Adam(model.head.parameters())
        for epoch in range(20):
            if epoch == 5:
                for p in model.backbone.parameters():
                    p.requires_grad = True
                optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "gradual_unfreezing_every_epoch": """\
        import torch
        for epoch in range(5):
            unfreeze_layers(model, epoch)
            optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "stage_loop_around_the_epochs": """\
        import torch
        for stage in stages:
            optimizer = torch.optim.Adam(model.parameters(), lr=stage.lr)
            for epoch in range(stage.epochs):
                for x in loader:
                    optimizer.zero_grad()
                    model(x).sum().backward()
                    optimizer.step()
        """,
    "weights_restored_every_trial": """\
        import torch
        for lr in candidate_rates:
            model.load_state_dict(initial_state)
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "plain_sgd_keeps_no_state": """\
        import torch
        for epoch in range(10):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * 0.9 ** epoch)
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "scheduler_over_the_fold_optimizer": """\
        import torch
        for fold in range(5):
            model = Net()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)
            for epoch in range(90):
                train(model, optimizer)
                scheduler.step()
        """,
    "keras_optimizer_for_a_model_per_trial": """\
        import keras
        import tensorflow as tf
        for epoch in range(3):
            model = build_model()
            optimizer = keras.optimizers.Adam(1e-3)
            for x, y in dataset:
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
}


@pytest.mark.parametrize("name", sorted(QUIET))
def test_quiet_when(name):
    assert codes(QUIET[name]) == []
