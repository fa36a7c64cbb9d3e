"""TL002 wrong-step-order: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import autofixed, fix_snippet, fixtures, lint_snippet, rows, run_script

BUGS = fixtures("TL002")


findings = partial(lint_snippet, code="TL002")
codes = partial(rows, code="TL002")
fixed = fix_snippet


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_symptom_shows_and_the_fix_removes_it(path, tmp_path):
    buggy = run_script(path)
    repaired = run_script(autofixed(path, tmp_path))
    assert repaired["steps"] == buggy["steps"] > 1
    if "stale_gradient" in buggy:
        # optimizer.step() before backward(), or zero_grad() between them: the update is not this batch's gradient
        assert buggy["stale_gradient"] > 1e-3, "the buggy fixture should step with stale or zero gradients"
        assert repaired["stale_gradient"] < 1e-6, "after the fix each step applies its own batch's gradient"
        if "parameter_change" in buggy:
            assert buggy["parameter_change"] == 0.0, "zero gradients: the parameters never move"
            assert repaired["parameter_change"] > 1e-3
    else:
        # scheduler.step() first: the learning rates are the schedule's, shifted by one step
        assert buggy["first_lr"] != pytest.approx(buggy["expected_first_lr"]), "the first value must be skipped"
        assert buggy["lr_error"] > 1e-6
        assert buggy["order_warnings"] >= 1, "PyTorch itself warns about this order"
        assert repaired["first_lr"] == pytest.approx(repaired["expected_first_lr"])
        assert repaired["lr_error"] < 1e-12
        assert repaired["order_warnings"] == 0


# -- detection ------------------------------------------------------------------------------------
def test_step_after_zero_grad_before_backward_says_no_gradient():
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x, y in loader:
            optimizer.zero_grad()
            optimizer.step()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
        """)
    assert (finding.location.row, finding.location.column) == (6, 5)
    assert "`optimizer.step()` (line 6) runs before `loss.backward()` (line 8)" in finding.message
    assert "no gradient" in finding.message and "line 5" in finding.message


def test_scaler_step_before_backward_moves_with_its_update():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler()
        for x, y in loader:
            optimizer.zero_grad()
            scaler.step(optimizer)
            scaler.update()
            loss = model(x).sum()
            scaler.scale(loss).backward()
        """
    assert codes(source) == [(7, "TL002")]
    assert fixed(source).endswith(
        "    scaler.scale(loss).backward()\n    scaler.step(optimizer)\n    scaler.update()\n")


def test_step_moved_after_the_clipping_that_follows_backward():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.step()
            optimizer.zero_grad()
            model(x).sum().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """
    assert codes(source) == [(5, "TL002")]
    assert fixed(source).endswith("clip_grad_norm_(model.parameters(), 1.0)\n    optimizer.step()\n")


def test_model_zero_grad_between_backward_and_step():
    assert codes("""\
        import torch
        net = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(net.parameters())
        for x in loader:
            net(x).sum().backward()
            net.zero_grad()
            optimizer.step()
        """) == [(6, "TL002")]


def test_zero_grad_before_an_accumulation_guarded_step_is_reported_without_fix():
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, x in enumerate(loader):
            model(x).sum().backward()
            optimizer.zero_grad()
            if (i + 1) % 4 == 0:
                optimizer.step()
        """)
    assert finding.location.row == 6 and finding.fix is None


def test_zero_grad_moves_after_scaler_update():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.cuda.amp.GradScaler()
        for x in loader:
            scaler.scale(model(x).sum()).backward()
            optimizer.zero_grad()
            scaler.step(optimizer)
            scaler.update()
        """
    assert codes(source) == [(7, "TL002")]
    assert fixed(source).endswith("    scaler.step(optimizer)\n    scaler.update()\n    optimizer.zero_grad()\n")


def test_hf_scheduler_before_optimizer_step_under_accelerate():
    source = """\
        import torch
        from accelerate import Accelerator
        from transformers import get_linear_schedule_with_warmup
        accelerator = Accelerator()
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
        lr_scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)
        model, optimizer, loader, lr_scheduler = accelerator.prepare(model, optimizer, loader, lr_scheduler)
        for epoch in range(3):
            for step, batch in enumerate(loader):
                loss = model(batch).sum()
                accelerator.backward(loss)
                lr_scheduler.step()
                optimizer.step()
                optimizer.zero_grad()
        """
    [finding] = findings(source)
    assert finding.location.row == 13 and "shifted by one step" in finding.message
    assert "        optimizer.step()\n        lr_scheduler.step()\n        optimizer.zero_grad()" in fixed(source)


def test_scheduler_every_micro_batch_before_an_accumulated_step():
    assert codes("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=100)
        for i, x in enumerate(loader):
            scheduler.step()
            model(x).sum().backward()
            if (i + 1) % 4 == 0:
                optimizer.step()
                optimizer.zero_grad()
        """) == [(6, "TL002")]


def test_epoch_scheduler_before_inline_batch_loop_moves_after_it():
    source = """\
        import torch
        from torch.optim import lr_scheduler
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[30, 60])
        for epoch in range(90):
            scheduler.step()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            evaluate(model)
        """
    [finding] = findings(source)
    assert finding.location.row == 7 and "start of the epoch" in finding.message
    assert "        optimizer.step()\n    scheduler.step()\n    evaluate(model)\n" in fixed(source)


def test_epoch_scheduler_before_a_trainer_method_that_runs_the_batches():
    assert codes("""\
        import torch
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=10)
            def train_epoch(self, loader):
                for x in loader:
                    self.optimizer.zero_grad()
                    self.model(x).sum().backward()
                    self.optimizer.step()
            def fit(self, loader, epochs):
                for epoch in range(epochs):
                    self.scheduler.step()
                    self.train_epoch(loader)
        """) == [(14, "TL002")]


def test_callback_passed_to_spawn_is_analysed():
    """`mp.spawn(train, ...)`: a function only handed to another call is still an entry point."""
    assert codes("""\
        import torch
        import torch.multiprocessing as mp
        def train(rank, model, loader):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
            for epoch in range(10):
                scheduler.step()
                for x in loader:
                    optimizer.zero_grad()
                    model(x).sum().backward()
                    optimizer.step()
        mp.spawn(train, args=(model, loader), nprocs=2)
        """) == [(7, "TL002")]


def test_scheduler_at_the_start_of_a_train_epoch_function_nothing_calls():
    """Reduced from many tutorials: `def train(epoch): model.train(); scheduler.step(); for batch ...`,
    with the epoch loop in another file."""
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        def train(epoch):
            model.train()
            scheduler.step()
            for batch_idx, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """)
    assert finding.location.row == 7 and "the loop below it" in finding.message
    assert finding.fix is not None


@pytest.mark.parametrize("guard", ["args.use_scheduler", "scheduler is not None", "not config.no_schedule",
                                   "USE_SCHEDULER"])
def test_a_configuration_flag_does_not_hide_the_scheduler(guard):
    assert codes(f"""\
        import torch
        USE_SCHEDULER = True
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        for epoch in range(10):
            if {guard}:
                scheduler.step()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """) == [(8, "TL002")]


# -- silence on correct code ----------------------------------------------------------------------
QUIET = {
    # pytorch/examples mnist & imagenet: epoch-level scheduler after train() and validate()
    "scheduler_at_end_of_epoch_after_helpers": """\
        import torch
        from torch.optim.lr_scheduler import StepLR
        def train(model, loader, optimizer):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        def main():
            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
            scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
            for epoch in range(1, 15):
                train(model, loader, optimizer)
                test(model)
                scheduler.step()
        """,
    # HF accelerate examples: per-iteration scheduler between step and zero_grad, in an accumulation guard
    "per_iteration_scheduler_after_step_in_accumulation_guard": """\
        import torch
        from transformers import get_linear_schedule_with_warmup
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
        lr_scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)
        for step, batch in enumerate(loader):
            loss = model(batch).sum() / 4
            loss.backward()
            if step % 4 == 0:
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
        """,
    "reduce_lr_on_plateau_after_validation": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min")
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            val_loss = validate(model)
            scheduler.step(val_loss)
        """,
    "scheduler_stepped_with_an_explicit_epoch_at_start_of_epoch": """\
        import torch
        from timm.scheduler import create_scheduler_v2
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        lr_scheduler, num_epochs = create_scheduler_v2(optimizer)
        for epoch in range(num_epochs):
            lr_scheduler.step(epoch)
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "zero_grad_after_step_at_end_of_iteration": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        for x in loader:
            model(x).sum().backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        """,
    # the step comes first but only applies what earlier iterations accumulated: ambiguous, stay silent
    "accumulated_step_at_top_of_iteration": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, x in enumerate(loader):
            if i > 0 and i % 4 == 0:
                optimizer.step()
                optimizer.zero_grad()
            model(x).sum().backward()
        """,
    # minGPT / timm: AMP and plain paths in the two arms of an if/else
    "amp_and_plain_paths_in_if_else": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler() if use_amp else None
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        for x in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = model(x).sum()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            scheduler.step()
        """,
    # weiaicunzai/pytorch-cifar100: warmup scheduler stepped only while warming up
    "guarded_warmup_scheduler": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        warmup_scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=100)
        for epoch in range(200):
            for i, x in enumerate(loader):
                if epoch < 1:
                    warmup_scheduler.step()
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "epoch_scheduler_at_start_skipping_the_first_epoch": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)
        for epoch in range(90):
            if epoch > 0:
                scheduler.step()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "resume_fast_forwards_the_schedule": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)
        for _ in range(start_epoch):
            scheduler.step()
        for epoch in range(start_epoch, 90):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            scheduler.step()
        """,
    # a scheduler we only know by its name (a library's own class) may set the rate before the step
    "unknown_scheduler_object_first": """\
        import torch
        def train_loop(model, optimizer, lr_scheduler, loader):
            for x in loader:
                lr_scheduler.step()
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "nanogpt_style_manual_lr_at_start_of_iteration": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
        for it in range(1000):
            lr = get_lr(it)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model(x).sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        """,
    "lbfgs_closure": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.LBFGS(model.parameters())
        for epoch in range(10):
            def closure():
                optimizer.zero_grad()
                loss = model(x).sum()
                loss.backward()
                return loss
            optimizer.step(closure)
        """,
    # pytorch/examples dcgan: the generator's zero_grad after the discriminator's step
    "gan_zero_grads_of_the_other_network": """\
        import torch
        netG, netD = torch.nn.Linear(2, 4), torch.nn.Linear(4, 1)
        optimizerD = torch.optim.Adam(netD.parameters())
        optimizerG = torch.optim.Adam(netG.parameters())
        for real in loader:
            netD.zero_grad()
            errD = netD(real).mean()
            errD.backward()
            netG.zero_grad()
            optimizerD.step()
            errG = netD(netG(z)).mean()
            errG.backward()
            optimizerG.step()
        """,
    "zero_grad_and_continue_on_non_finite_loss": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            if not torch.isfinite(loss):
                optimizer.zero_grad()
                continue
            optimizer.step()
            optimizer.zero_grad()
        """,
    "gradients_restored_by_hand_after_zero_grad": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            model(x).sum().backward()
            grads = [p.grad.clone() for p in model.parameters()]
            optimizer.zero_grad()
            for p, g in zip(model.parameters(), project(grads)):
                p.grad = g
            optimizer.step()
        """,
    "gradients_set_by_hand_before_the_step": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            grads = torch.autograd.grad(model(x).sum(), list(model.parameters()))
            for p, g in zip(model.parameters(), grads):
                p.grad = g
            optimizer.step()
            probe_loss(x).backward()
        """,
    "one_optimizer_zero_grad_between_another_ones_backward_and_step": """\
        import torch
        actor, critic = torch.nn.Linear(4, 2), torch.nn.Linear(4, 1)
        actor_opt = torch.optim.Adam(actor.parameters())
        critic_opt = torch.optim.Adam(critic.parameters())
        for batch in loader:
            critic_loss = critic(batch).mean()
            critic_loss.backward()
            actor_opt.zero_grad()
            critic_opt.step()
            critic_opt.zero_grad()
            actor(batch).mean().backward()
            actor_opt.step()
        """,
    # the guard changes between epochs: a local computed from the epoch, or an argument of the helper
    "scheduler_under_a_flag_computed_each_epoch": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        def train(epoch, step_scheduler):
            warm = epoch < 5
            if warm or step_scheduler:
                scheduler.step()
            if step_scheduler:
                scheduler.step()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        for epoch in range(10):
            train(epoch, epoch > 0)
        """,
    "scheduler_stepped_in_another_entry_point": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        def on_epoch_end():
            scheduler.step()
        def train_epoch():
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []
