"""TL011 accumulation-loss-not-scaled: detection, silence on normalised accumulation, and runtime-verified
fixes (each accumulated step applies the gradient of the large batch it stands for)."""
from __future__ import annotations

from functools import partial

import pytest
from runtime import autofixed, fix_snippet, fixtures, lint_snippet, rows, run_both

BUGS = fixtures("TL011")

codes = partial(rows, code="TL011")
findings = partial(lint_snippet, code="TL011")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_steps_are_n_times_too_large_and_the_fix_averages(path, tmp_path):
    """Applied gradient over the gradient of the mean loss on the same micro-batches taken as one batch: N
    before the fix, 1 after."""
    buggy, repaired = run_both(path, autofixed(path, tmp_path, unsafe=True))
    n = buggy["accumulated"]
    assert buggy["steps"] == repaired["steps"] > 1
    assert all(abs(r - n) < 1e-3 for r in buggy["applied_over_large_batch"])
    assert all(abs(r - 1) < 1e-3 for r in repaired["applied_over_large_batch"])


def test_reports_backward_and_divides_the_loss():
    source = """\
        import torch
        for step, batch in enumerate(loader):
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            if (step + 1) % args.gradient_accumulation_steps == 0:
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        """
    [finding] = findings(source)
    assert (finding.location.row, finding.location.column) == (5, 5)
    assert "`args.gradient_accumulation_steps`" in finding.message and "line 7" in finding.message
    assert finding.fix.applicability == "unsafe"
    assert "    (loss / args.gradient_accumulation_steps).backward()\n" in fix_snippet(source, unsafe=True)
    assert fix_snippet(source) == fix_snippet(source, unsafe=False)


def test_reports_scaled_backward_and_divides_inside_scale():
    source = """\
        import torch
        scaler = torch.cuda.amp.GradScaler()
        for i, (x, y) in enumerate(loader):
            with torch.autocast("cuda"):
                loss = criterion(model(x), y)
            scaler.scale(loss).backward()
            if (i + 1) % accum == 0 or i + 1 == len(loader):
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
        """
    assert codes(source) == [(6, "TL011")]
    assert "    scaler.scale(loss / accum).backward()\n" in fix_snippet(source, unsafe=True)


def test_reports_zero_grad_under_its_own_modulo_guard():
    source = """\
        import torch
        for i, (x, y) in enumerate(loader):
            if i % 8 == 0:
                optimizer.zero_grad()
            (criterion(model(x), y) + 0.1 * reg(model)).backward()
            if i % 8 == 7:
                optimizer.step()
        """
    assert codes(source) == [(5, "TL011")]
    assert "    ((criterion(model(x), y) + 0.1 * reg(model)) / 8).backward()\n" in fix_snippet(source, unsafe=True)


def test_reports_counter_incremented_in_the_loop():
    assert codes("""\
        import torch
        micro = 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            micro += 1
            if micro % ACCUM == 0:
                optimizer.step()
                optimizer.zero_grad()
        """) == [(5, "TL011")]


ACCUMULATION = """\
    import torch
    import torch.nn.functional as F
    criterion = torch.nn.CrossEntropyLoss({criterion})
    for i, (x, y) in enumerate(loader):
        loss = criterion(model(x), y){divided}
{middle}
        {backward}
        if (i + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    """


def accumulation(criterion="", divided="", middle="", backward="loss.backward()"):
    middle = "\n".join("    " + line for line in middle.splitlines()) if middle else ""
    return ACCUMULATION.format(criterion=criterion, divided=divided, middle=middle, backward=backward)


QUIET = {
    "loss_divided_when_built": accumulation(divided=" / accum_steps"),
    "loss_divided_in_place": accumulation(middle="loss /= accum_steps"),
    "loss_divided_under_a_flag": accumulation(middle="if accum_steps > 1:\n    loss = loss / accum_steps"),
    "loss_divided_in_the_backward_call": accumulation(backward="(loss / accum_steps).backward()"),
    "loss_scaled_by_a_factor": accumulation(backward="(loss * (1.0 / accum_steps)).backward()"),
    "sum_reduced_loss": accumulation(criterion="reduction='sum'"),
    "sum_reduced_loss_normalised_by_tokens_elsewhere": accumulation(
        criterion="reduction='sum'", middle="n_tokens += y.numel()"),
    "gradients_divided_before_the_step": """\
        import torch
        for i, (x, y) in enumerate(loader):
            criterion(model(x), y).backward()
            if (i + 1) % accum_steps == 0:
                for p in model.parameters():
                    p.grad /= accum_steps
                optimizer.step()
                optimizer.zero_grad()
        """,
    "accelerate_accumulate": """\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator(gradient_accumulation_steps=4)
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        """,
    "accelerator_backward_under_a_modulo_guard": """\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator(gradient_accumulation_steps=args.accum)
        for step, batch in enumerate(loader):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if step % args.accum == 0:
                optimizer.step()
                optimizer.zero_grad()
        """,
    "loss_from_a_helper_that_divides": """\
        import torch
        def compute_loss(model, batch):
            return model(**batch).loss / ACCUM
        for step, batch in enumerate(loader):
            loss = compute_loss(model, batch)
            loss.backward()
            if (step + 1) % ACCUM == 0:
                optimizer.step()
                optimizer.zero_grad()
        """,
    "loss_handed_through_an_unknown_call": accumulation(middle="loss = reduce_loss(loss, world_size)"),
    "zero_grad_every_iteration": """\
        import torch
        for i, (x, y) in enumerate(loader):
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            if (i + 1) % 4 == 0:
                optimizer.step()
        """,
    "backward_inside_the_guard": """\
        import torch
        for i, (real, _) in enumerate(loader):
            optimizer_d.zero_grad()
            d_loss(real).backward()
            optimizer_d.step()
            if i % n_critic == 0:
                optimizer_g.zero_grad()
                g_loss().backward()
                optimizer_g.step()
        """,
    "logging_interval_not_a_step_guard": """\
        import torch
        for i, (x, y) in enumerate(loader):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            if i % 100 == 0:
                print(loss.item())
        """,
    "modulo_by_one": """\
        import torch
        for i, (x, y) in enumerate(loader):
            criterion(model(x), y).backward()
            if (i + 1) % 1 == 0:
                optimizer.step()
                optimizer.zero_grad()
        """,
}


@pytest.mark.parametrize("name", sorted(QUIET))
def test_quiet_when(name):
    assert codes(QUIET[name]) == []
