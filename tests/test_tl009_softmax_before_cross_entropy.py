"""TL009 softmax-before-cross-entropy: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fix_is_unsafe, fixtures, lint_snippet, rows, run_both

import trainlint

BUGS = fixtures("TL009")

codes = partial(rows, code="TL009")
HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def lint(body: str) -> list[tuple[int, str]]:
    return codes(HEADER + textwrap.dedent(body))


def fixed(body: str, unsafe: bool = False) -> str:
    source = HEADER + textwrap.dedent(body)
    return trainlint.fix_source(source, unsafe=unsafe)[len(HEADER):]


def test_there_are_fixtures_for_each_fix():
    assert len(BUGS) >= 4


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_training_stalls_and_the_fix_restores_it(path, tmp_path):
    buggy, repaired = run_both(path, autofixed(path, tmp_path, unsafe=fix_is_unsafe(path)))
    assert buggy["logit_gradient"] * 2.5 < repaired["logit_gradient"], "softmax twice must shrink the gradient"
    assert buggy["loss"] > 2 * repaired["loss"], "the buggy run must stall well above the fixed run's loss"
    assert repaired["accuracy"] > buggy["accuracy"] + 0.1


# -- what is reported ----------------------------------------------------------------------------------------
def test_reports_functional_softmax_in_the_loss_argument_and_fix_drops_it():
    body = """\
        for x, y in loader:
            loss = F.cross_entropy(F.softmax(model(x), dim=1), y)
        """
    assert lint(body) == [(5, "TL009")]
    assert "loss = F.cross_entropy(model(x), y)" in fixed(body)


@pytest.mark.parametrize("softmax", ["torch.softmax(out, 1)", "out.softmax(dim=-1)", "F.softmax(out)",
                                     "nn.functional.softmax(out, dim=1)", "torch.nn.functional.softmax(out, 1)"])
def test_reports_each_spelling_of_softmax(softmax):
    assert lint(f"""\
        criterion = nn.CrossEntropyLoss()
        out = model(x)
        loss = criterion({softmax}, y)
        """) == [(6, "TL009")]


def test_reports_a_name_bound_to_softmax_and_fix_passes_the_logits():
    body = """\
        criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
        for x, y in loader:
            logits = model(x)
            probs = F.softmax(logits, dim=1)
            loss = criterion(probs, y)
            acc = (probs.argmax(1) == y).float().mean()
        """
    assert lint(body) == [(8, "TL009")]
    out = fixed(body)
    assert "loss = criterion(logits, y)" in out and "probs = F.softmax(logits, dim=1)" in out


def test_fix_binds_an_expression_to_a_new_name_when_the_softmax_input_is_not_a_name():
    """The probabilities are also used for the accuracy, so they stay; the loss gets the logits."""
    body = """\
        criterion = nn.CrossEntropyLoss()
        for x, y in loader:
            outputs = F.softmax(model(x), dim=1)
            loss = criterion(outputs, y)
            correct += (outputs.argmax(1) == y).sum().item()
        """
    assert lint(body) == [(7, "TL009")]
    assert textwrap.dedent("""\
        for x, y in loader:
            logits = model(x)
            outputs = F.softmax(logits, dim=1)
            loss = criterion(logits, y)
        """) in fixed(body)


def test_fix_picks_a_name_the_function_does_not_use():
    body = """\
        def step(model, x, y, logits):
            probs = model(x).softmax(1)
            return F.cross_entropy(probs, y)
        """
    assert lint(body) == [(6, "TL009")]
    assert "    scores = model(x)\n    probs = scores.softmax(1)\n    return F.cross_entropy(scores, y)" in fixed(body)


def test_fix_parenthesizes_an_operation_that_becomes_a_receiver():
    body = """\
        loss = F.cross_entropy(F.softmax(a + b, dim=-1).view(-1, 4), y.view(-1))
        """
    assert lint(body) == [(4, "TL009")]
    assert "loss = F.cross_entropy((a + b).view(-1, 4), y.view(-1))" in fixed(body)


def test_fix_uses_the_logits_name_only_while_it_holds_the_same_value():
    """`logits` is reassigned between the softmax and the loss: the fix binds the softmax's input anew."""
    body = """\
        probs = F.softmax(logits, dim=1)
        logits = logits.detach()
        loss = F.cross_entropy(probs, y)
        """
    assert lint(body) == [(6, "TL009")]
    out = fixed(body)
    assert "scores = logits\nprobs = F.softmax(scores, dim=1)\nlogits = logits.detach()\n" in out
    assert "loss = F.cross_entropy(scores, y)" in out


def test_reports_softmax_passed_by_keyword():
    assert lint("""\
        probs = F.softmax(model(x), 1)
        loss = F.cross_entropy(target=y, input=probs)
        """) == [(5, "TL009")]


def test_reports_nll_loss_given_softmax_and_fix_makes_it_log_softmax():
    body = """\
        criterion = nn.NLLLoss()
        loss = criterion(F.softmax(model(x), dim=1), y)
        loss2 = F.nll_loss(model(x).softmax(1), y)
        """
    assert lint(body) == [(5, "TL009"), (6, "TL009")]
    out = fixed(body)
    assert "loss = criterion(F.log_softmax(model(x), dim=1), y)" in out
    assert "loss2 = F.nll_loss(model(x).log_softmax(1), y)" in out


def test_reports_sequential_ending_in_softmax_with_an_unsafe_fix():
    body = """\
        model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(dim=1))
        criterion = nn.CrossEntropyLoss()
        for x, y in loader:
            loss = criterion(model(x), y)
        """
    assert lint(body) == [(7, "TL009")]
    [finding] = lint_snippet(HEADER + textwrap.dedent(body), code="TL009")
    assert finding.fix.applicability == "unsafe"
    assert "`nn.Softmax(dim=1)` (line 4)" in finding.message
    assert fixed(body) == textwrap.dedent(body), "the model's output changes: not a safe fix"
    assert "nn.Linear(32, 4), nn.LogSoftmax(dim=1))" in fixed(body, unsafe=True)


def test_reports_a_module_whose_forward_returns_softmax_through_an_attribute():
    body = """\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(10, 4)
                self.softmax = nn.Softmax(dim=1)

            def forward(self, x):
                return self.softmax(self.fc(x))

        net = Net()
        criterion = nn.CrossEntropyLoss()
        outputs = net(x)
        loss = criterion(outputs, y)
        """
    assert lint(body) == [(16, "TL009")]
    assert "self.softmax = nn.LogSoftmax(dim=1)" in fixed(body, unsafe=True)


def test_reports_a_lightning_training_step_calling_self():
    assert lint("""\
        import pytorch_lightning as pl

        class Classifier(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = nn.Linear(10, 4)

            def forward(self, x):
                return F.softmax(self.layer(x), dim=-1)

            def training_step(self, batch, batch_idx):
                x, y = batch
                y_hat = self(x)
                return F.cross_entropy(y_hat, y)
        """) == [(17, "TL009")]


def test_reports_through_a_training_helper_s_parameters():
    assert lint("""\
        model = nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1))

        def train(net, loader, criterion, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(net(x), y).backward()
                optimizer.step()

        train(model, loader, nn.CrossEntropyLoss(), optimizer)
        """) == [(9, "TL009")]


def test_reports_a_model_wrapped_in_data_parallel_and_moved():
    assert lint("""\
        model = nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1))
        model = nn.DataParallel(model).cuda()
        loss = nn.CrossEntropyLoss()(model(x), y)
        """) == [(6, "TL009")]


def test_reports_a_softmax_left_over_from_the_previous_iteration():
    """The loop body is read twice: what the end of an iteration binds reaches the next one's start."""
    assert lint("""\
        out = model(x0)
        for x, y in loader:
            loss = F.cross_entropy(out, y)
            out = F.softmax(model(x), 1)
        """) == []  # the first iteration gets the logits: unknown, so silent
    assert lint("""\
        out = F.softmax(model(x0), 1)
        for x, y in loader:
            loss = F.cross_entropy(out, y)
            out = F.softmax(model(x), 1)
        """) == [(6, "TL009")]


# -- what is not -----------------------------------------------------------------------------------------------
def test_quiet_when_log_softmax_goes_to_nll_loss():
    assert lint("""\
        loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
        loss2 = nn.NLLLoss()(torch.log(F.softmax(model(x), dim=1) + 1e-8), y)
        loss3 = F.cross_entropy(F.log_softmax(model(x), dim=1), y)
        """) == []


def test_quiet_when_softmax_is_only_for_predictions_and_the_loss_gets_logits():
    assert lint("""\
        criterion = nn.CrossEntropyLoss()
        for x, y in loader:
            logits = model(x)
            probs = F.softmax(logits, dim=1)
            loss = criterion(logits, y)
            preds = probs.argmax(dim=1)
        """) == []


def test_quiet_when_softmax_is_the_target():
    """Distillation: soft labels from the teacher are the target, the student's logits the input."""
    assert lint("""\
        soft = F.softmax(teacher(x) / 4.0, dim=1)
        loss = F.cross_entropy(student(x), soft)
        loss2 = nn.CrossEntropyLoss()(student(x), target=F.softmax(teacher(x), 1))
        """) == []


def test_quiet_when_only_one_branch_applies_the_softmax():
    assert lint("""\
        out = model(x)
        if use_probabilities:
            out = F.softmax(out, dim=1)
        loss = F.cross_entropy(out, y)
        """) == []


def test_quiet_when_forward_returns_softmax_only_outside_training():
    assert lint("""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(10, 4)

            def forward(self, x):
                logits = self.fc(x)
                if self.training:
                    return logits
                return F.softmax(logits, dim=1)

        net = Net()
        loss = F.cross_entropy(net(x), y)
        """) == []


def test_quiet_when_an_attribute_named_softmax_is_a_log_softmax():
    assert lint("""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(10, 4)
                self.softmax = nn.LogSoftmax(dim=1)

            def forward(self, x):
                return self.softmax(self.fc(x))

        loss = nn.NLLLoss()(Net()(x), y)
        """) == []


def test_quiet_when_the_model_comes_from_elsewhere():
    assert lint("""\
        model = torch.load("model.pt")
        loss = F.cross_entropy(model(x), y)

        def step(net, x, y):
            return F.cross_entropy(net(x), y)
        """) == []


def test_quiet_when_the_softmax_output_goes_to_bce_loss():
    assert lint("""\
        model = nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1))
        loss = nn.BCELoss()(model(x), y)
        loss2 = F.mse_loss(F.softmax(model(x), 1), y)
        """) == []


def test_quiet_in_test_code():
    source = HEADER + "loss = F.cross_entropy(F.softmax(model(x), 1), y)\n"
    assert codes(source) == [(4, "TL009")]
    findings = trainlint.lint_source(textwrap.dedent(source), path="tests/test_losses.py")
    assert [f for f in findings if f.code == "TL009"] == []


def test_message_names_the_loss_and_where_the_softmax_is_written():
    [finding] = lint_snippet(HEADER + textwrap.dedent("""\
        probs = F.softmax(logits, dim=1)
        loss = nn.CrossEntropyLoss()(probs, y)
        """), code="TL009")
    assert "`CrossEntropyLoss` expects logits" in finding.message
    assert "through `probs`, from `F.softmax(logits, dim=1)` (line 4)" in finding.message
    assert (finding.location.row, finding.location.column) == (5, 30)


def test_quiet_for_a_validation_loss_under_no_grad_while_the_training_loss_is_reported():
    """A Sequential ending in nn.Softmax with an early-stopping validation loss (a course notebook):
        loss = criterion(model(x_train), y_train) ... with torch.no_grad(): val_loss = criterion(model(x_test), y)
    The training loss carries the finding; the validation loss is a consequence."""
    assert lint("""\
        model = nn.Sequential(nn.Linear(4, 50), nn.ReLU(), nn.Linear(50, 3), nn.Softmax(dim=1))
        criterion = nn.CrossEntropyLoss()
        for epoch in range(100):
            output = model(x_train)
            loss = criterion(output, y_train)
            loss.backward()
            with torch.no_grad():
                y_val = model(x_test)
                val_loss = criterion(y_val, y_test)
        """) == [(8, "TL009")]


def test_quiet_for_a_loss_turned_into_a_number_or_computed_in_an_evaluation_hook():
    """Permutation importance in a course notebook: `error = loss_fn(F.softmax(pred, dim=1), y.long()).item()`
    is a metric, not a training loss."""
    assert lint("""\
        pred = F.softmax(model(x), dim=1)
        error = nn.CrossEntropyLoss()(pred, y.long()).item()
        total = float(F.cross_entropy(pred, y))

        class Module(torch.nn.Module):
            def validation_step(self, batch, batch_idx):
                x, y = batch
                return F.cross_entropy(F.softmax(self.net(x), 1), y)

        @torch.no_grad()
        def evaluate(x, y):
            return F.cross_entropy(F.softmax(model(x), 1), y)
        """) == []


def test_reports_a_softmax_head_returned_in_a_tuple_and_unpacked():
    """PyTorch-GAN's AC-GAN discriminator: `self.aux_layer = nn.Sequential(nn.Linear(...), nn.Softmax())`,
    `return validity, label`, then `real_pred, real_aux = discriminator(real_imgs)` and
    `auxiliary_loss(real_aux, labels)` with `auxiliary_loss = torch.nn.CrossEntropyLoss()`."""
    assert lint("""\
        class Discriminator(nn.Module):
            def __init__(self):
                super().__init__()
                self.adv_layer = nn.Sequential(nn.Linear(128, 1), nn.Sigmoid())
                self.aux_layer = nn.Sequential(nn.Linear(128, 10), nn.Softmax())

            def forward(self, features):
                validity = self.adv_layer(features)
                label = self.aux_layer(features)
                return validity, label

        discriminator = Discriminator()
        adversarial_loss = torch.nn.BCELoss()
        auxiliary_loss = torch.nn.CrossEntropyLoss()
        for imgs, labels in loader:
            real_pred, real_aux = discriminator(imgs)
            d_loss = (adversarial_loss(real_pred, valid) + auxiliary_loss(real_aux, labels)) / 2
            d_loss.backward()
            out = discriminator(imgs)
            loss = auxiliary_loss(out[1], labels) + auxiliary_loss(out[0], labels)
        """) == [(20, "TL009"), (23, "TL009")]


def test_quiet_when_a_tuple_is_unpacked_into_a_different_number_of_names():
    assert lint("""\
        class Net(nn.Module):
            def forward(self, x):
                return x, F.softmax(x, 1)

        features, *rest = Net()(x)
        loss = F.cross_entropy(rest, y)
        a, b, c = Net()(x)
        loss2 = F.cross_entropy(b, y)
        """) == []


def test_quiet_when_a_layer_of_the_model_is_replaced():
    assert lint("""\
        model = nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1))
        model[1] = nn.Identity()
        loss = F.cross_entropy(model(x), y)
        net = nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1))
        net.head = nn.Identity()
        loss2 = F.cross_entropy(net(x), y)
        """) == []
