"""TL013 amp-scaler-bypassed: detection, silence on correct AMP code, and runtime-verified fixes."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import autofixed, fix_snippet, fixtures, lint_snippet, rows, run_both

BUGS = fixtures("TL013")

codes = partial(rows, code="TL013")
findings = partial(lint_snippet, code="TL013")


@pytest.mark.parametrize("path", [p for p in BUGS if "bypasses" in p.stem], ids=lambda p: p.stem)
def test_runtime_step_applies_scaled_gradients_and_the_fix_unscales_them(path, tmp_path):
    """Each step's applied gradient over the true (unscaled) gradient of its batch: the loss scale before the
    fix, 1 after it."""
    buggy, repaired = run_both(path, autofixed(path, tmp_path))
    assert buggy["steps"] == repaired["steps"] > 1
    assert min(r for r in buggy["applied_over_true"] if r == r) >= 1000, "scaled gradients are applied as they are"
    assert all(abs(r - 1) < 1e-3 for r in repaired["applied_over_true"])
    assert repaired["weight_norm"] < 100 < buggy["weight_norm"]


@pytest.mark.parametrize("path", [p for p in BUGS if "update" in p.stem], ids=lambda p: p.stem)
def test_runtime_missing_update_stops_training_and_the_fix_runs_every_step(path, tmp_path):
    buggy, repaired = run_both(path, autofixed(path, tmp_path))
    assert buggy["steps"] < buggy["expected_steps"] and "update()" in buggy["error"]
    assert repaired["steps"] == repaired["expected_steps"] and repaired["error"] is None


LOOP = """\
    import torch
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.cuda.amp.GradScaler({args})
    for x, y in loader:
        optimizer.zero_grad()
        with torch.autocast("cuda"):
            loss = model(x).sum()
{body}
    """


def loop(body: str, args: str = "") -> str:
    return LOOP.format(args=args, body="\n".join("        " + line for line in body.splitlines()))


# -- detection ------------------------------------------------------------------------------------
def test_reports_plain_step_after_scaled_backward_and_fixes_it():
    source = loop("scaler.scale(loss).backward()\noptimizer.step()")
    [finding] = findings(source)
    assert (finding.location.row, finding.location.column) == (10, 5)
    assert "`scaler.step(optimizer)`" in finding.message and "line 9" in finding.message
    assert fix_snippet(source).endswith("    scaler.scale(loss).backward()\n    scaler.step(optimizer)\n"
                                        "    scaler.update()\n")


def test_reports_scaler_enabled_by_a_flag():
    assert codes(loop("scaler.scale(loss).backward()\noptimizer.step()", "enabled=args.amp")) == [(10, "TL013")]


def test_reports_step_after_backward_in_amp_branch_without_fix():
    """`if use_amp: scaler.scale(loss).backward() else: loss.backward()` then one `optimizer.step()`: the AMP
    run steps scaled gradients; `scaler.step()` would be wrong for the other arm if the scaler is always on."""
    source = loop("if use_amp:\n    scaler.scale(loss).backward()\nelse:\n    loss.backward()\noptimizer.step()")
    [finding] = findings(source)
    assert finding.location.row == 13 and finding.fix is None


def test_reports_step_without_update_and_inserts_it_after_the_last_step():
    source = """\
        import torch
        scaler = torch.amp.GradScaler("cuda")
        opt_d = torch.optim.Adam(disc.parameters())
        opt_g = torch.optim.Adam(gen.parameters())
        for real in loader:
            scaler.scale(disc_loss(real)).backward()
            scaler.step(opt_d)
            scaler.scale(gen_loss(real)).backward()
            scaler.step(opt_g)
        """
    assert codes(source) == [(7, "TL013")]
    assert fix_snippet(source).endswith("    scaler.step(opt_g)\n    scaler.update()\n")


def test_reports_update_once_per_epoch_and_moves_it_into_the_batch_loop():
    source = """\
        import torch
        scaler = torch.amp.GradScaler("cuda")
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                scaler.scale(model(x).sum()).backward()
                scaler.step(optimizer)
            scaler.update()
        """
    assert codes(source) == [(8, "TL013")]
    assert fix_snippet(source).endswith("        scaler.step(optimizer)\n        scaler.update()\n")


def test_reports_scaler_parameter_of_a_helper():
    assert codes("""\
        import torch
        def train(model, loader, optimizer, scaler):
            for x in loader:
                optimizer.zero_grad()
                scaler.scale(model(x).sum()).backward()
                optimizer.step()
        """) == [(6, "TL013")]


# -- hard negatives -------------------------------------------------------------------------------
QUIET = {
    "full_pattern_with_unscale_and_clipping": loop(
        "scaler.scale(loss).backward()\nscaler.unscale_(optimizer)\n"
        "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\nscaler.step(optimizer)\nscaler.update()"),
    "disabled_scaler_called_correctly": loop(
        "scaler.scale(loss).backward()\nscaler.step(optimizer)\nscaler.update()", "enabled=False"),
    "disabled_scaler_with_plain_step": loop("scaler.scale(loss).backward()\noptimizer.step()", "enabled=False"),
    "plain_step_in_the_non_amp_arm": loop(
        "if use_amp:\n    scaler.scale(loss).backward()\n    scaler.step(optimizer)\n    scaler.update()\n"
        "else:\n    loss.backward()\n    optimizer.step()"),
    "amp_and_fp32_paths_in_separate_ifs": loop(
        "if use_amp:\n    scaler.scale(loss).backward()\nelse:\n    loss.backward()\n"
        "if use_amp:\n    scaler.step(optimizer)\n    scaler.update()\nelse:\n    optimizer.step()"),
    "unscaled_by_hand_before_a_plain_step": loop(
        "scaler.scale(loss).backward()\nscaler.unscale_(optimizer)\noptimizer.step()\nscaler.update()"),
    "update_in_the_accumulation_guard": loop(
        "scaler.scale(loss / 4).backward()\nif (i + 1) % 4 == 0:\n    scaler.step(optimizer)\n"
        "    scaler.update()\n    optimizer.zero_grad()"),
    "update_in_a_helper": """\
        import torch
        scaler = torch.amp.GradScaler("cuda")
        optimizer = torch.optim.Adam(model.parameters())
        def finish_step():
            scaler.step(optimizer)
            scaler.update()
        for x in loader:
            optimizer.zero_grad()
            scaler.scale(model(x).sum()).backward()
            finish_step()
        """,
    "scaler_handed_to_an_unknown_function": """\
        import torch
        from utils import step_and_update
        scaler = torch.amp.GradScaler("cuda")
        optimizer = torch.optim.Adam(model.parameters())
        for x in loader:
            optimizer.zero_grad()
            scaler.scale(model(x).sum()).backward()
            scaler.step(optimizer)
            step_and_update(scaler)
        """,
    "projects_own_loss_scaler_class": """\
        import torch
        class DynamicLossScaler:
            def scale(self, loss): return loss * 1024.0
            def step(self, optimizer): optimizer.step()
        scaler = DynamicLossScaler()
        optimizer = FP16Optimizer(model.parameters())
        for x in loader:
            optimizer.zero_grad()
            scaler.scale(model(x).sum()).backward()
            optimizer.step()
        """,
    "step_outside_any_loop": """\
        import torch
        def training_step(model, batch, optimizer, scaler):
            optimizer.zero_grad()
            scaler.scale(model(batch).sum()).backward()
            scaler.step(optimizer)
        """,
}


@pytest.mark.parametrize("name", sorted(QUIET))
def test_quiet_when(name):
    assert codes(QUIET[name]) == []


def test_quiet_when_each_optimizer_steps_in_a_loop_and_the_caller_updates():
    """mosaicml/composer trainer.py: `_train_batch` retries in a `while True:` until it `break`s, steps each
    optimizer in `for optimizer in self.state.optimizers: self.state.scaler.step(optimizer)`, and the batch loop
    that calls it runs `self.state.scaler.update()` after it."""
    assert codes("""\
        import torch
        class Trainer:
            def __init__(self, optimizers):
                self.optimizers = optimizers
                self.scaler = torch.amp.GradScaler("cuda")
            def train_batch(self, batch):
                while True:
                    try:
                        self.scaler.scale(self.model(batch).sum()).backward()
                        for optimizer in self.optimizers:
                            self.scaler.step(optimizer)
                    except RuntimeError:
                        continue
                    break
            def fit(self, loader):
                for batch in loader:
                    self.train_batch(batch)
                    self.scaler.update()
        """) == []


def test_reports_optimizers_stepped_in_a_loop_with_no_update():
    assert codes("""\
        import torch
        scaler = torch.amp.GradScaler("cuda")
        for batch in loader:
            scaler.scale(model(batch).sum()).backward()
            for optimizer in optimizers:
                scaler.step(optimizer)
                optimizer.zero_grad()
        """) == [(6, "TL013")]


def test_no_update_inserted_inside_a_loop_over_optimizers():
    source = """\
        import torch
        scaler = torch.amp.GradScaler("cuda")
        for batch in loader:
            scaler.scale(model(batch).sum()).backward()
            for optimizer in optimizers:
                scaler.step(optimizer)
        """
    [finding] = findings(source)
    assert finding.fix is None
