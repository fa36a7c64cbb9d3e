"""TL005 clip-after-step: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import (
    autofixed,
    fix_snippet,
    fixtures,
    lint_snippet,
    rows,
    run_both,
)

BUGS = fixtures("TL005")


findings = partial(lint_snippet, code="TL005")
codes = partial(rows, code="TL005")
fixed = fix_snippet


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_clipping_has_no_effect_and_the_fix_bounds_the_update(path, tmp_path):
    """Every batch's true gradient norm is far above max_norm, so a working clip makes every applied norm
    exactly max_norm. Misplaced, the applied norm exceeds it (or, on scaled AMP gradients, collapses to
    max_norm / scale)."""
    buggy, repaired = run_both(path, autofixed(path, tmp_path))
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


# -- Keras / TensorFlow custom steps: tf.clip_by_* after apply_gradients() ---------------------------
def test_tensorflow_clip_by_global_norm_after_apply_gradients_is_reported_and_moved():
    """Formerly a quiet case (tf.clip_by_* was out of scope): the clipped list is never applied."""
    source = """\
        import tensorflow as tf
        optimizer = tf.keras.optimizers.Adam()
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
        """
    [finding] = findings(source)
    assert (finding.location.row, finding.location.column) == (8, 16)
    assert finding.message == ("`tf.clip_by_global_norm()` (line 8) clips `grads` after "
                               "`optimizer.apply_gradients(...)` (line 7) has applied it: the update is not "
                               "clipped, so the clipping has no effect")
    assert fixed(source).splitlines()[5:8] == [
        "    grads = tape.gradient(loss, model.trainable_variables)",
        "    grads, _ = tf.clip_by_global_norm(grads, 1.0)",
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))",
    ]


KERAS_DETECTED = {
    # keras.io (Keras 3) "writing a training loop from scratch in TensorFlow": optimizer.apply(grads, weights).
    "keras3_optimizer_apply_then_clip": ("""\
        import keras
        import tensorflow as tf
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        for step, (x, y) in enumerate(train_dataset):
            with tf.GradientTape() as tape:
                loss_value = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            grads = [tf.clip_by_value(g, -1.0, 1.0) for g in grads]
        """, 9),
    # A helper step (e.g. under @tf.function) clipping each gradient in a comprehension.
    "clip_by_norm_comprehension_in_a_tf_function": ("""\
        import tensorflow as tf
        @tf.function
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            gradients = [tf.clip_by_norm(g, 5.0) for g in gradients]
            return loss
        """, 8),
    # "Customizing what happens in fit()": a train_step override; the pairs are clipped after the apply.
    "clip_by_value_on_pairs_in_a_train_step_override": ("""\
        import keras
        import tensorflow as tf
        class CustomModel(keras.Model):
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    loss = self.compute_loss(y=y, y_pred=self(x, training=True))
                grads_and_vars = list(zip(tape.gradient(loss, self.trainable_variables), self.trainable_variables))
                self.optimizer.apply_gradients(grads_and_vars)
                grads_and_vars = [(tf.clip_by_value(g, -1.0, 1.0), v) for g, v in grads_and_vars]
                return {"loss": loss}
        """, 10),
    "clipped_list_bound_to_a_new_name_and_logged": ("""\
        import tensorflow as tf
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            clipped, gnorm = tf.clip_by_global_norm(grads, 1.0)
            tf.summary.scalar("grad_norm", gnorm)
        """, 7),
    "clip_result_thrown_away": ("""\
        import tensorflow as tf
        from tensorflow import clip_by_global_norm
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            clip_by_global_norm(grads, 1.0)
        """, 8),
    "global_norm_clip_indexed_after_apply_under_a_settled_flag": ("""\
        import tensorflow as tf
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            if args.clip_grad:
                grads = tf.clip_by_global_norm(grads, args.clip_grad)[0]
        """, 8),
}


@pytest.mark.parametrize("case", KERAS_DETECTED, ids=KERAS_DETECTED.keys())
def test_reports_each_tensorflow_shape(case):
    source, line = KERAS_DETECTED[case]
    assert codes(source) == [(line, "TL005")]


def test_tensorflow_fix_applies_the_clipped_list_when_it_has_another_name():
    """Only moving `clipped, gnorm = ...` above the apply would still apply the raw `grads`."""
    lines = fixed(KERAS_DETECTED["clipped_list_bound_to_a_new_name_and_logged"][0]).splitlines()
    assert lines[4:8] == [
        "    grads = tape.gradient(loss, model.trainable_variables)",
        "    clipped, gnorm = tf.clip_by_global_norm(grads, 1.0)",
        "    opt.apply_gradients(zip(clipped, model.trainable_variables))",
        '    tf.summary.scalar("grad_norm", gnorm)',
    ]


def test_tensorflow_message_names_keras3_apply():
    [finding] = findings(KERAS_DETECTED["keras3_optimizer_apply_then_clip"][0])
    assert "after `optimizer.apply(...)` (line 8)" in finding.message
    assert fixed(KERAS_DETECTED["keras3_optimizer_apply_then_clip"][0]).splitlines()[7:9] == [
        "    grads = [tf.clip_by_value(g, -1.0, 1.0) for g in grads]",
        "    optimizer.apply(grads, model.trainable_weights)"]


def test_tensorflow_fix_keeps_a_thrown_away_clip_result():
    lines = fixed(KERAS_DETECTED["clip_result_thrown_away"][0]).splitlines()
    assert lines[6:8] == ["    grads, _ = clip_by_global_norm(grads, 1.0)",
                          "    opt.apply_gradients(zip(grads, model.trainable_variables))"]


def test_tensorflow_fix_moves_the_comprehension_and_the_pairs():
    lines = fixed(KERAS_DETECTED["clip_by_norm_comprehension_in_a_tf_function"][0]).splitlines()
    assert lines[6:8] == ["    gradients = [tf.clip_by_norm(g, 5.0) for g in gradients]",
                          "    optimizer.apply_gradients(zip(gradients, model.trainable_variables))"]
    lines = fixed(KERAS_DETECTED["clip_by_value_on_pairs_in_a_train_step_override"][0]).splitlines()
    assert lines[8:10] == [
        "        grads_and_vars = [(tf.clip_by_value(g, -1.0, 1.0), v) for g, v in grads_and_vars]",
        "        self.optimizer.apply_gradients(grads_and_vars)"]


def test_no_tensorflow_fix_for_a_clip_under_an_if_the_apply_is_not_in():
    [finding] = findings(KERAS_DETECTED["global_norm_clip_indexed_after_apply_under_a_settled_flag"][0])
    assert finding.fix is None


def test_no_tensorflow_fix_when_the_gradients_are_read_in_between():
    """Moving the clip would change what the histogram logs."""
    [finding] = findings("""\
        import tensorflow as tf
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            hist = [tf.summary.histogram("g", g) for g in grads]
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
        """)
    assert finding.fix is None


KERAS_QUIET = {
    # keras.io "writing a training loop from scratch": clip between tape.gradient and apply_gradients.
    "clip_between_tape_gradient_and_apply": """\
        import tensorflow as tf
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            grads = [tf.clip_by_value(g, -5.0, 5.0) for g in grads]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "clip_inside_the_apply_gradients_argument": """\
        import tensorflow as tf
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip([tf.clip_by_norm(g, 1.0) for g in grads], model.trainable_variables))
        optimizer.apply_gradients(zip(tf.clip_by_global_norm(grads, 1.0)[0], model.trainable_variables))
        """,
    # The optimizer clips itself; a leftover clip after the apply changes nothing that matters.
    "optimizer_with_clipnorm_or_global_clipnorm": """\
        import keras
        import tensorflow as tf
        optimizer = keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0)
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
        """,
    "compiled_optimizer_with_clipnorm_and_a_train_step_override": """\
        import keras
        import tensorflow as tf
        class M(keras.Model):
            def train_step(self, data):
                with tf.GradientTape() as tape:
                    loss = self.compute_loss(y=data[1], y_pred=self(data[0]))
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                grads = [tf.clip_by_norm(g, 1.0) for g in grads]
                return {"loss": loss}
        model = M()
        model.compile(optimizer=keras.optimizers.SGD(clipnorm=1.0), loss="mse")
        """,
    # Only the norm is wanted (for logging): the clipped list is thrown away on purpose.
    "global_norm_measured_after_apply": """\
        import numpy as np
        import tensorflow as tf
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        _, grad_norm = tf.clip_by_global_norm(grads, 1.0)
        norm = tf.clip_by_global_norm(grads, 1.0)[1]
        clipped, total = tf.clip_by_global_norm(grads, np.inf)
        """,
    # keras.io ddpm / simsiam: clip_by_value on images after the step is not gradient clipping.
    "clip_by_value_on_data_after_apply": """\
        import tensorflow as tf
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        images = tf.clip_by_value(images * 127.5 + 127.5, 0.0, 255.0)
        x_recon = [tf.clip_by_value(x, -1.0, 1.0) for x in samples]
        """,
    # A GAN: the discriminator's update is applied, then the generator's gradients are clipped and applied.
    "gan_generator_clipped_before_its_own_apply": """\
        import tensorflow as tf
        d_grads = d_tape.gradient(d_loss, disc.trainable_variables)
        d_opt.apply_gradients(zip(d_grads, disc.trainable_variables))
        g_grads = g_tape.gradient(g_loss, gen.trainable_variables)
        g_grads, _ = tf.clip_by_global_norm(g_grads, 1.0)
        g_opt.apply_gradients(zip(g_grads, gen.trainable_variables))
        """,
    # New gradients are computed between the apply and the clip (the clip belongs to the next update).
    "clip_of_gradients_computed_after_the_apply": """\
        import tensorflow as tf
        for x, y in dataset:
            if grads is not None:
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
        """,
    # The clipped list leaves the step: the caller (or the next call) decides what is applied.
    "clipped_list_returned_or_kept_for_the_next_update": """\
        import tensorflow as tf
        class Trainer:
            def step(self, grads):
                if self.pending is not None:
                    self.optimizer.apply_gradients(zip(self.pending, self.variables))
                self.optimizer.apply_gradients(zip(grads, self.variables))
                self.pending = [tf.clip_by_norm(g, 1.0) for g in grads]
            def apply_and_clip(self, grads):
                self.optimizer.apply_gradients(zip(grads, self.variables))
                return [tf.clip_by_norm(g, 1.0) for g in grads]
        """,
    # `apply` of something that is not a Keras optimizer (pandas, a user's object) is not an update.
    "apply_methods_of_other_objects": """\
        import pandas as pd
        import tensorflow as tf
        grads = tape.gradient(loss, model.trainable_variables)
        frame.apply(grads)
        transform.apply(grads, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    "keras3_guide_loop_with_clip_before_apply": """\
        import keras
        import tensorflow as tf
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        for step, (x, y) in enumerate(train_dataset):
            with tf.GradientTape() as tape:
                loss_value = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss_value, model.trainable_weights)
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply(grads, model.trainable_weights)
        """,
    # TF1 and TF2 shapes from public code (reduced): clipping pair by pair, or only the gradients that exist,
    # before the apply.
    "clip_pairs_in_a_loop_or_skip_missing_gradients_before_apply": """\
        import tensorflow as tf
        grads = optimizer.compute_gradients(model_loss)
        for i, (g, v) in enumerate(grads):
            if g is not None:
                grads[i] = (tf.clip_by_norm(g, 5), v)
        train_op = optimizer.apply_gradients(grads)
        grads = tape.gradient(total_loss, trainable_vars)
        grads = [tf.clip_by_norm(g, 1.0) if g is not None else None for g in grads]
        grads_and_vars = [(g, v) for g, v in zip(grads, trainable_vars) if g is not None]
        self.optimizer.apply_gradients(grads_and_vars)
        """,
    "apply_and_clip_in_exclusive_branches": """\
        import tensorflow as tf
        grads = tape.gradient(loss, model.trainable_variables)
        if warmup:
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        else:
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
    # The same list clipped after one apply and applied again (a second optimizer) later in the pass.
    "clipped_list_applied_by_a_later_apply": """\
        import tensorflow as tf
        grads = tape.gradient(loss, shared_variables)
        warm_opt.apply_gradients(zip(grads, shared_variables))
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        main_opt.apply_gradients(zip(grads, shared_variables))
        """,
}


@pytest.mark.parametrize("source", KERAS_QUIET.values(), ids=KERAS_QUIET.keys())
def test_quiet_on_correct_tensorflow_code(source):
    assert codes(source) == []
