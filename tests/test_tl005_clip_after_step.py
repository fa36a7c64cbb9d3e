"""TL005 clip-after-step: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap

import pytest

import trainlint
from runtime import autofixed, expected_findings, fixtures, reported, run_script

BUGS = fixtures("TL005")


def findings(source: str):
    return [f for f in trainlint.lint_source(textwrap.dedent(source)) if f.code == "TL005"]


def codes(source: str) -> list[tuple[int, str]]:
    return [(f.location.row, f.code) for f in findings(source)]


def fixed(source: str) -> str:
    return trainlint.fix_source(textwrap.dedent(source))


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_reports_exactly_the_marked_lines(path):
    assert reported(path, "TL005") == expected_findings(path)


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_fixed_fixture_has_no_finding_and_fix_is_idempotent(path, tmp_path):
    result = autofixed(path, tmp_path)
    assert reported(result, "TL005") == set()
    assert trainlint.fix_source(result.read_text()) == result.read_text()


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_clipping_has_no_effect_and_the_fix_bounds_the_update(path, tmp_path):
    """Every batch's true gradient norm is far above max_norm, so a working clip makes every applied norm
    exactly max_norm. Misplaced, the applied norm exceeds it (or, on scaled AMP gradients, collapses to
    max_norm / scale)."""
    buggy = run_script(path)
    repaired = run_script(autofixed(path, tmp_path))
    max_norm = buggy["max_norm"]
    assert repaired["steps"] == buggy["steps"] > 1
    if "amp_no_unscale" in path.stem:
        assert buggy["largest_applied_norm"] < 0.01 * max_norm, "clipping scaled gradients shrinks the update"
    else:
        assert buggy["largest_applied_norm"] > 10 * max_norm, "the applied update must exceed max_norm"
    assert repaired["largest_applied_norm"] <= max_norm * (1 + 1e-5)
    assert repaired["smallest_applied_norm"] >= max_norm * (1 - 1e-5)


# -- detection ------------------------------------------------------------------------------------
def test_message_and_position():
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """)
    assert (finding.location.row, finding.location.column) == (8, 5)
    assert finding.message.startswith(
        "`torch.nn.utils.clip_grad_norm_()` (line 8) runs after `optimizer.step()` (line 7)")


def test_clip_grad_value_imported_by_name_after_step():
    source = """\
        import torch
        from torch.nn.utils import clip_grad_value_
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
            clip_grad_value_(model.parameters(), clip_value=0.5)
        """
    assert codes(source) == [(9, "TL005")]
    assert fixed(source).endswith("    clip_grad_value_(model.parameters(), clip_value=0.5)\n    optimizer.step()\n")


def test_amp_clip_before_backward_moves_after_it_and_unscales():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.cuda.amp.GradScaler()
        for x in loader:
            optimizer.zero_grad()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.scale(model(x).sum()).backward()
            scaler.step(optimizer)
            scaler.update()
        """
    assert codes(source) == [(7, "TL005")]
    assert ("    scaler.scale(model(x).sum()).backward()\n    scaler.unscale_(optimizer)\n"
            "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
            "    scaler.step(optimizer)\n") in fixed(source)


def test_clip_before_backward_does_not_add_a_second_unscale():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler()
        for x in loader:
            optimizer.zero_grad()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.scale(model(x).sum()).backward()
            scaler.unscale_(optimizer)
            scaler.step(optimizer)
            scaler.update()
        """
    assert codes(source) == [(7, "TL005")]
    assert fixed(source).count("unscale_") == 1
    assert ("    scaler.unscale_(optimizer)\n    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
            "    scaler.step(optimizer)\n") in fixed(source)


def test_amp_split_if_else_paths_are_reported_without_fix():
    """A fix would call `scaler.unscale_()` on the non-AMP path too, where `scaler` may be None."""
    [finding] = findings("""\
        import torch
        from torch import nn
        model = nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler() if use_amp else None
        for x in loader:
            optimizer.zero_grad()
            loss = model(x).sum()
            if use_amp:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if use_amp:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
        """)
    assert finding.location.row == 13 and "scaled gradients" in finding.message and finding.fix is None


def test_amp_clip_every_micro_batch_is_reported_without_fix():
    """Unscaling every micro-batch would raise (unscale_ twice before update), so no fix is offered."""
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler()
        for i, x in enumerate(loader):
            scaler.scale(model(x).sum()).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if (i + 1) % 4 == 0:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
        """)
    assert finding.location.row == 7 and finding.fix is None


def test_amp_clip_inside_accumulation_guard_gets_unscale():
    source = """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler()
        for i, x in enumerate(loader):
            scaler.scale(model(x).sum()).backward()
            if (i + 1) % 4 == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
        """
    assert codes(source) == [(8, "TL005")]
    assert ("        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
            in fixed(source))


def test_clip_after_the_step_of_either_arm_of_a_config_if():
    """`if args.amp: ... scaler.step() else: ... optimizer.step()`, then the clip: it is after the step on
    both paths (no fix: the step is not a statement of the clip's block)."""
    [finding] = findings("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        scaler = torch.amp.GradScaler()
        for x in loader:
            optimizer.zero_grad()
            loss = model(x).sum()
            if args.amp:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """)
    assert finding.location.row == 15 and "runs after" in finding.message and finding.fix is None


def test_amp_clip_in_a_trainer_whose_train_method_shares_its_name_with_a_flag():
    """Reduced from pytorch/examples minGPT-ddp: `Trainer.train()` runs the epochs and `_run_batch(..., train)`
    takes a `train` flag; the flag must not make the method look called (it is the entry point)."""
    source = """\
        import torch
        class Trainer:
            def __init__(self, model, use_amp):
                self.model = model
                self.optimizer = torch.optim.AdamW(model.parameters())
                self.scaler = torch.amp.GradScaler(enabled=use_amp)
                self.use_amp = use_amp
            def _run_batch(self, source, targets, train: bool = True):
                with torch.set_grad_enabled(train):
                    _, loss = self.model(source, targets)
                if train:
                    self.optimizer.zero_grad(set_to_none=True)
                    if self.use_amp:
                        self.scaler.scale(loss).backward()
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                        self.scaler.step(self.optimizer)
                        self.scaler.update()
                    else:
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                        self.optimizer.step()
                return loss.item()
            def _run_epoch(self, loader, train=True):
                for source, targets in loader:
                    self._run_batch(source, targets, train)
            def train(self):
                for epoch in range(10):
                    self._run_epoch(self.train_loader, train=True)
        """
    assert codes(source) == [(15, "TL005")]
    assert ("                self.scaler.scale(loss).backward()\n"
            "                self.scaler.unscale_(self.optimizer)\n"
            "                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n") in fixed(source)


# -- silence on correct code ----------------------------------------------------------------------
QUIET = {
    "backward_clip_step": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        """,
    # karpathy/nanoGPT: micro-step loop, then unscale_ and clip under `if grad_clip`, then scaler.step
    "micro_steps_then_unscale_clip_step": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
        scaler = torch.cuda.amp.GradScaler(enabled=(dtype == "float16"))
        grad_clip = 1.0
        while True:
            for micro_step in range(8):
                loss = model(X).sum() / 8
                scaler.scale(loss).backward()
            if grad_clip != 0.0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        """,
    "clip_inside_accumulation_guard_before_step": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, x in enumerate(loader):
            (model(x).sum() / 4).backward()
            if (i + 1) % 4 == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
        """,
    "accumulated_clip_and_step_at_top_of_iteration": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, x in enumerate(loader):
            if i > 0 and i % 4 == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
            model(x).sum().backward()
        """,
    "amp_if_else_with_unscale_in_the_amp_arm": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler() if use_amp else None
        for x in loader:
            optimizer.zero_grad()
            loss = model(x).sum()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
        """,
    "norm_measured_after_step_with_infinite_max_norm": """\
        import math
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            other = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)
        """,
    # HF accelerate: its own clip_grad_norm_ unscales; not torch's function
    "accelerate_clip_under_sync_gradients": """\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator(mixed_precision="fp16")
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters())
        model, optimizer = accelerator.prepare(model, optimizer)
        for batch in loader:
            with accelerator.accumulate(model):
                accelerator.backward(model(batch).sum())
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
        """,
    "gan_generator_clipped_after_the_discriminator_step": """\
        import torch
        netG, netD = torch.nn.Linear(2, 4), torch.nn.Linear(4, 1)
        optD = torch.optim.Adam(netD.parameters())
        optG = torch.optim.Adam(netG.parameters())
        for real in loader:
            optD.zero_grad()
            netD(real).mean().backward()
            optD.step()
            optG.zero_grad()
            netD(netG(z)).mean().backward()
            torch.nn.utils.clip_grad_norm_(netG.parameters(), 1.0)
            optG.step()
        """,
    "clip_of_the_other_network_after_its_step": """\
        import torch
        actor, critic = torch.nn.Linear(4, 2), torch.nn.Linear(4, 1)
        actor_opt = torch.optim.Adam(actor.parameters())
        critic_opt = torch.optim.Adam(critic.parameters())
        for batch in loader:
            critic(batch).mean().backward()
            actor(batch).mean().backward()
            critic_opt.step()
            torch.nn.utils.clip_grad_norm_(actor.parameters(), 0.5)
            actor_opt.step()
        """,
    # Keras / TensorFlow custom loop: tf.clip_by_* is not torch clipping
    "tensorflow_clip_by_global_norm": """\
        import tensorflow as tf
        optimizer = tf.keras.optimizers.Adam()
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
        """,
    "torch_clip_in_a_tensorflow_loop_without_optimizer_step": """\
        import torch
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-0.1)
        """,
    "clip_then_backward_of_a_second_loss_then_clip_again": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            aux(x).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []
