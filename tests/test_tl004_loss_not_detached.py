"""TL004 loss-not-detached: detection, silence on correct code, the fix's form, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fix_snippet, fixtures, rows, run_script

import trainlint

BUGS = fixtures("TL004")


codes = partial(rows, code="TL004")


fixed = fix_snippet


def script(source: str) -> str:
    """The common imports, model and optimizer, then `source`."""
    return textwrap.dedent(HEADER) + textwrap.dedent(source)


# -- fixtures: exact findings, fix, runtime symptom --------------------------------------------------------
def _grows(sizes: list[int]) -> bool:
    """The retained graph gets bigger from one iteration to the next (most of the time)."""
    increases = sum(b > a for a, b in zip(sizes, sizes[1:]))
    return increases >= len(sizes) // 2


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_graph_is_retained_and_the_fix_releases_it(path, tmp_path):
    buggy = run_script(path)
    sizes = buggy["retained_nodes"]
    assert buggy["steps"] >= 8
    assert max(sizes) >= 20, "the accumulator should hold the graph of many iterations"
    assert _grows(sizes), f"the retained graph should grow with the iterations: {sizes}"
    repaired = run_script(autofixed(path, tmp_path))
    assert repaired["steps"] == buggy["steps"]
    assert max(repaired["retained_nodes"]) == 0, "after the fix the accumulator must hold no graph at all"


# -- detection ---------------------------------------------------------------------------------------------
HEADER = """\
    import torch
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    """

DETECTED = {
    "augmented_total": ("""\
        running_loss = 0.0
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            running_loss += loss
        """, 8),
    "total_equals_total_plus_loss": ("""\
        total = 0
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            total = total + loss
        """, 8),
    "sample_weighted_total": ("""\
        total_loss = 0.0
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            total_loss += loss * x.size(0)
        """, 8),
    "running_average": ("""\
        smooth_loss = 0.0
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            smooth_loss = 0.98 * smooth_loss + 0.02 * loss
        """, 8),
    "loss_plus_total": ("""\
        total = 0
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            total = loss + total
        """, 8),
    "list_append": ("""\
        losses = []
        for x, y in loader:
            loss = model(x).sum()
            loss.backward()
            losses.append(loss)
        """, 8),
    "history_dict_append": ("""\
        history = {"loss": []}
        for x, y in loader:
            loss = model(x).sum()
            loss.backward()
            history["loss"].append(loss)
        """, 8),
    "subscripted_total": ("""\
        stats = {"loss": 0.0}
        for x, y in loader:
            loss = model(x).sum()
            loss.backward()
            stats["loss"] += loss
        """, 8),
    "accumulated_before_backward": ("""\
        train_loss = 0
        for x, y in loader:
            loss = model(x).sum()
            train_loss += loss
            optimizer.zero_grad()
            loss.backward()
        """, 7),
    "grad_scaler_backward": ("""\
        scaler = torch.amp.GradScaler()
        epoch_loss = 0.0
        for x in loader:
            loss = model(x).sum()
            scaler.scale(loss).backward()
            epoch_loss += loss
        """, 9),
    "accelerate_backward": ("""\
        from accelerate import Accelerator
        accelerator = Accelerator()
        model, optimizer = accelerator.prepare(model, optimizer)
        total_loss = 0
        for batch in loader:
            outputs = model(**batch)
            loss = outputs.loss
            accelerator.backward(loss)
            total_loss += loss
        """, 12),
    "backward_on_scaled_loss_for_accumulation": ("""\
        running_loss = 0.0
        for i, x in enumerate(loader):
            loss = model(x).sum()
            (loss / 4).backward()
            running_loss += loss
        """, 8),
    "guarded_reset_every_n_steps": ("""\
        running_loss = 0.0
        for i, x in enumerate(loader):
            loss = model(x).sum()
            loss.backward()
            running_loss += loss
            if i % 100 == 99:
                print(running_loss / 100)
                running_loss = 0.0
        """, 8),
    "total_in_epoch_loop_outlives_batch_loop": ("""\
        for epoch in range(3):
            train_loss = 0.0
            for x in loader:
                loss = model(x).sum()
                loss.backward()
                train_loss += loss
            print(train_loss)
        """, 9),
    "trainer_method_attribute_list": ("""\
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.losses = []
            def fit(self, loader):
                for x in loader:
                    loss = self.model(x).sum()
                    loss.backward()
                    self.losses.append(loss)
        """, 12),
    # a step method the caller (another file, a framework) runs once per batch
    "step_method_adds_to_an_attribute_it_never_resets": ("""\
        class Agent:
            def __init__(self):
                self.model = torch.nn.Linear(4, 1)
                self.running_loss = 0
            def train(self, data, target):
                loss = torch.nn.functional.mse_loss(self.model(data), target)
                loss.backward()
                self.running_loss += loss
        """, 11),
    "step_function_appends_to_a_module_list": ("""\
        history = []
        def train_step(x):
            loss = model(x).sum()
            loss.backward()
            optimizer.step()
            history.append(loss)
        """, 9),
    # torchtune-style recipe step: the total is only reset every `accum` calls
    "step_method_with_a_guarded_reset": ("""\
        class Finetune:
            def __init__(self):
                self._running_loss = 0.0
                self._step = 0
            def run(self, batch):
                loss = self._loss_fn(self._model(batch), batch) / 4
                self._running_loss += loss
                loss.backward()
                if (self._step + 1) % 4 == 0:
                    print(self._running_loss.item())
                    self._running_loss = 0
                self._step += 1
        """, 10),
    "loop_inside_a_helper_that_returns_the_total": ("""\
        def train_epoch(model, loader):
            train_loss = 0
            for x in loader:
                loss = model(x).sum()
                loss.backward()
                train_loss += loss
            return train_loss / len(loader)
        """, 9),
}


@pytest.mark.parametrize("source,row", DETECTED.values(), ids=DETECTED.keys())
def test_detects(source, row):
    assert codes(script(source)) == [(row, "TL004")]


def test_message_names_the_total_the_loss_and_the_backward_line():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import torch
        model = torch.nn.Linear(4, 1)
        history = {"loss": []}
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            history["loss"].append(loss)
        """))
    assert finding.code == "TL004"
    assert '`history["loss"]` stores `loss`' in finding.message and "line 6" in finding.message
    assert (finding.location.row, finding.location.column) == (7, 5)


def test_message_for_a_step_method_speaks_of_its_calls():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import torch
        class Agent:
            def learn(self, x):
                loss = self.net(x).sum()
                loss.backward()
                self.losses.append(loss)
        """))
    assert "`self.losses` stores `loss`" in finding.message and "across calls of `learn()`" in finding.message


# -- the fix: .item() where a number does, .detach() otherwise ---------------------------------------------
def test_fix_uses_item_for_a_total_that_is_only_printed_and_divided():
    source = """\
    running_loss = 0.0
    for i, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        running_loss += loss
        if i % 100 == 99:
            print("[%d] loss: %.3f" % (i + 1, running_loss / 100))
            running_loss = 0.0
    """
    assert "    running_loss += loss.item()\n" in fixed(script(source))


def test_fix_uses_item_when_backward_runs_on_the_loss_divided_for_accumulation():
    source = """\
    running_loss = 0.0
    for i, x in enumerate(loader):
        loss = model(x).sum()
        (loss / 4).backward()
        running_loss += loss
    print(running_loss / len(loader))
    """
    assert "running_loss += loss.item()" in fixed(script(source))


def test_fix_uses_item_for_a_list_that_is_averaged_with_numpy():
    source = """\
    import numpy as np
    losses = []
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        losses.append(loss)
    print(f"{np.mean(losses):.4f}", len(losses), min(losses))
    """
    assert "losses.append(loss.item())" in fixed(script(source))


def test_fix_uses_detach_for_a_list_stacked_into_a_tensor():
    source = """\
    losses = []
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        losses.append(loss)
    print(torch.stack(losses).mean())
    """
    assert "losses.append(loss.detach())" in fixed(script(source))


def test_fix_uses_detach_when_the_total_is_used_as_a_tensor():
    """A total later read with `.item()` must stay a tensor (a float has no `.item()`)."""
    source = """\
    total = 0
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        total += loss
    print(total.item() / len(loader))
    """
    assert "total += loss.detach()" in fixed(script(source))


def test_fix_uses_detach_when_the_total_is_returned():
    source = """\
    def train_epoch(loader):
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            total += loss
        return total / len(loader)
    """
    assert "total += loss.detach()" in fixed(script(source))


def test_fix_uses_detach_when_backward_runs_on_a_reduction_of_the_loss():
    """`loss.mean().backward()`: `loss` may be a vector, where `.item()` would raise."""
    source = """\
    total = 0
    for x in loader:
        loss = (model(x) - 1) ** 2
        loss.mean().backward()
        total += loss
    print(total)
    """
    assert "total += loss.detach()" in fixed(script(source))


def test_helper_that_accumulates_its_parameter_is_reported_and_fixed_at_the_call():
    """An in-file AverageMeter handed the loss tensor: `self.sum += val * n` keeps every graph."""
    source = """\
        import torch
        class AverageMeter:
            def __init__(self):
                self.sum, self.count = 0, 0
            def update(self, val, n=1):
                self.sum += val * n
                self.count += n
        model = torch.nn.Linear(4, 1)
        losses = AverageMeter()
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            losses.update(loss, x.size(0))
        """
    [finding] = [f for f in trainlint.lint_source(textwrap.dedent(source)) if f.code == "TL004"]
    assert finding.location.row == 13 and "`self.sum` (line 6)" in finding.message
    repaired = fixed(source)
    assert "losses.update(loss.detach(), x.size(0))" in repaired
    assert "self.sum += val * n" in repaired  # the helper's other callers are untouched
    assert codes(repaired) == []


# -- quiet ---------------------------------------------------------------------------------------------------
QUIET = {
    "item": """\
        total = 0.0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            total += loss.item()
            total2 = total2 + loss.cpu().item()
        """,
    "detach_float_data": """\
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            a += loss.detach()
            b += float(loss)
            c += loss.data
            d.append(loss.detach().cpu())
            e.append(loss.tolist())
        """,
    # accelerate examples: `total_loss += loss.detach().float()`
    "detach_then_float": """\
        for batch in loader:
            loss = model(batch).loss
            total_loss += loss.detach().float()
            accelerator.backward(loss)
        """,
    "inside_no_grad": """\
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            with torch.no_grad():
                total += loss
                history.append(loss)
        """,
    "inside_inference_mode_evaluation": """\
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            with torch.inference_mode():
                for xv in val_loader:
                    val_loss = model(xv).sum()
                    total += val_loss
        """,
    "no_grad_decorated_evaluate": """\
        @torch.no_grad()
        def evaluate(loader):
            total = 0
            for x in loader:
                loss = model(x).sum()
                total += loss
            return total
        for x in train_loader:
            loss = model(x).sum()
            loss.backward()
            evaluate(val_loader)
        """,
    # multi-task: the terms are summed into the tensor that backward() runs on
    "multi_task_sum_before_backward": """\
        for x, y in loader:
            total_loss = 0
            for head in heads:
                loss = head(model(x), y)
                total_loss = total_loss + loss
            total_loss.backward()
        """,
    "regularizer_added_to_the_loss": """\
        for x, y in loader:
            loss = model(x).sum()
            loss = loss + reg
            loss += l1 * weight
            loss.backward()
        """,
    # gradient accumulation by design: one backward on the sum, after the inner loop
    "sum_then_backward_after_the_loop": """\
        for step in range(steps):
            sum_loss = 0
            for chunk in chunks:
                loss = model(chunk).sum()
                sum_loss += loss
            (sum_loss / len(chunks)).backward()
        """,
    "sum_over_epoch_then_single_backward": """\
        sum_loss = 0
        for chunk in chunks:
            loss = model(chunk).sum()
            sum_loss += loss
        (sum_loss / n).backward()
        """,
    # pytorch/examples reinforce.py: log-probs stacked into the loss
    "reinforce_log_probs_stacked": """\
        for episode in range(10):
            log_probs = []
            for t in range(100):
                dist = torch.distributions.Categorical(logits=model(state))
                action = dist.sample()
                log_probs.append(dist.log_prob(action))
            loss = -torch.stack(log_probs).sum()
            loss.backward()
        """,
    "reinforce_policy_loss_list_concatenated": """\
        policy_loss = []
        for log_prob, R in zip(saved_log_probs, returns):
            policy_loss.append(-log_prob * R)
        policy_loss = torch.cat(policy_loss).sum()
        policy_loss.backward()
        """,
    "stacked_losses_are_the_backward": """\
        for x in loader:
            for i in range(3):
                loss = model(x).sum()
                losses.append(loss)
                loss.backward(retain_graph=True)
            torch.stack(losses).sum().backward()
        """,
    # the stored losses are backward-ed again later (a second-order / meta objective): the graph is wanted
    "stored_losses_used_by_a_later_backward": """\
        inner_losses = []
        for task in tasks:
            loss = model(task).sum()
            loss.backward(retain_graph=True)
            inner_losses.append(loss)
        torch.stack(inner_losses).mean().backward()
        """,
    "total_used_by_autograd_grad": """\
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward(create_graph=True)
            total = total + loss
        grads = torch.autograd.grad(total, model.parameters())
        """,
    # timm train.py: meters fed numbers
    "average_meter_update_item_and_data": """\
        class AverageMeter:
            def __init__(self):
                self.sum, self.count = 0, 0
            def update(self, val, n=1):
                self.sum += val * n
                self.count += n
        losses_m = AverageMeter()
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            losses_m.update(loss.item(), x.size(0))
            losses_m.update(loss.data, x.size(0))
            reduced_loss = reduce_tensor(loss.data, world_size)
            losses_m.update(reduced_loss.item(), x.size(0))
        """,
    "total_reset_every_iteration": """\
        for x in loader:
            total = 0
            loss = model(x).sum()
            loss.backward()
            total += loss
            print(total)
        """,
    "list_created_in_the_iteration": """\
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            step_log = {"loss": []}
            step_log["loss"].append(loss)
        """,
    "total_reset_at_the_end_of_every_iteration": """\
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            total += loss
            writer.add_scalar("loss", total)
            total = 0
        """,
    "loss_replaced_by_its_number_after_backward": """\
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            loss = loss.item()
            total += loss
        """,
    "loss_replaced_by_a_reduced_copy_after_backward": """\
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            loss = reduce_tensor(loss.data, world_size)
            total += loss
        """,
    # accelerate test_sync.py: losses collected first, backward on each in a later loop
    "losses_collected_for_a_later_backward": """\
        losses = []
        for i in range(4):
            loss = model(x[i]).sum()
            losses.append(loss)
        for i in range(4):
            loss = losses[i]
            accelerator.backward(loss)
        """,
    # accelerate megatron example: eval loop (no no_grad around the append) in the same epoch loop
    "eval_loop_reusing_the_name_loss": """\
        for epoch in range(3):
            for batch in train_loader:
                outputs = model(**batch)
                loss = outputs.loss
                accelerator.backward(loss)
            losses = []
            for batch in eval_loader:
                with torch.no_grad():
                    outputs = model(**batch)
                loss = outputs.loss
                losses.append(accelerator.gather_for_metrics(loss.repeat(8)))
        """,
    # accelerate deepspeed example: the number of a reduced detached copy
    "reduced_step_loss_number": """\
        for batch in loader:
            loss = model(batch).loss
            accelerator.backward(loss)
            step_loss = accelerator.reduce(loss.detach().clone()).item()
            total_loss += step_loss
        """,
    "a_different_tensor_than_the_backward": """\
        train_loss = 0
        for data in loader:
            nll = model.neglog_likelihood(data)
            objective = model(data)
            train_loss += nll
            objective.backward()
        """,
    "helper_returns_the_number": """\
        def train_step(x):
            loss = model(x).sum()
            loss.backward()
            return loss.item()
        total = 0
        for x in loader:
            loss = train_step(x)
            total += loss
        """,
    "tensorflow_tape_loop": """\
        import tensorflow as tf
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, net(x))
            grads = tape.gradient(loss, net.trainable_variables)
            opt.apply_gradients(zip(grads, net.trainable_variables))
            train_loss += loss
        """,
    "step_method_resets_its_total_on_every_call": """\
        class Trainer:
            def __init__(self):
                self.step_loss = 0.0
            def step(self, batch):
                self.step_loss = 0.0
                loss = self.model(batch).sum()
                loss.backward()
                self.step_loss += loss
                print(self.step_loss)
        """,
    "step_method_with_a_local_total": """\
        class Agent:
            def train(self, batches):
                total = 0
                loss = self.model(batches).sum()
                loss.backward()
                total += loss
                return total
        """,
    "step_function_called_once_in_the_file": """\
        history = []
        def train_step(x):
            loss = model(x).sum()
            loss.backward()
            history.append(loss)
        train_step(data)
        """,
    "no_loop": """\
        loss = model(x).sum()
        loss.backward()
        history.append(loss)
        """,
    "gathered_for_metrics": """\
        for batch in loader:
            loss = model(batch).loss
            accelerator.backward(loss)
            losses.append(accelerator.gather(loss))
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(script(source)) == []


# -- the model facts the rule reads ---------------------------------------------------------------------------
def test_occurrences_say_which_names_a_value_holds_with_their_graph():
    import ast

    from trainlint.analysis.autograd import DETACHED, LIVE, UNKNOWN, occurrences

    def expression(code):
        return ast.parse(code, mode="eval").body

    expr = expression("a * n.size(0) + b.mean() - c.item() + f(d) + e.data + float(g) + h[0] + -k")
    modes = {o.key: o.mode for o in occurrences(expr)}
    assert {k for k, m in modes.items() if m == LIVE} == {"a", "b", "k"}
    assert {k for k, m in modes.items() if m == DETACHED} == {"c", "e", "g"}
    assert {"n", "d", "h"} <= {k for k, m in modes.items() if m == UNKNOWN}
    scalar = {o.key for o in occurrences(expression("(loss + aux) / n")) if o.scalar}
    assert scalar == {"loss", "aux", "n"}
    assert not any(o.scalar for o in occurrences(expression("loss.mean()")))


def test_backward_and_accumulate_events_carry_the_tensor_definitions():
    """The same name assigned again (`loss = loss.item()`) is another definition: the rule compares both."""
    import ast

    from trainlint.analysis import ScriptModel
    from trainlint.analysis.events import ACCUMULATE, BACKWARD

    source = textwrap.dedent("""\
        total = 0
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            total += loss
            loss = loss.item()
            total += loss
        """)
    model = ScriptModel(ast.parse(source), source)
    [backward] = model.of_kind(BACKWARD)
    first, second = model.of_kind(ACCUMULATE)
    [ran_on] = backward.detail["tensors"]
    assert (first.detail["refs"][0].identity, first.detail["refs"][0].version) == (ran_on.identity, ran_on.version)
    assert second.detail["refs"][0].version != ran_on.version
    [loop] = model.loops
    assert "loss" in loop.assigned and "total" not in loop.assigned  # `total += ...` only grows it
