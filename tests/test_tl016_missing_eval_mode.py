"""TL016 missing-eval-mode: detection, silence on correct code and on train mode kept on purpose, and
runtime-verified fixes (the evaluation runs in eval mode once trainlint's fix is applied, and training still
runs in train mode)."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_both

import trainlint

BUGS = fixtures("TL016")
codes = partial(rows, code="TL016")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_evaluation_runs_in_train_mode_and_the_fix_stops_it(path, tmp_path):
    buggy, fixed = run_both(path, autofixed(path, tmp_path))
    assert buggy["eval_forwards"] >= 2
    assert buggy["in_train_mode"] == buggy["eval_forwards"], "every evaluation forward should run in train mode"
    # dropout: the same batch gives other outputs; batch norm: the running statistics learn the held-out data
    assert buggy["repeat_gap"] > 1e-3 or buggy["running_mean_drift"] > 1e-3
    assert fixed["eval_forwards"] == buggy["eval_forwards"]
    assert fixed["in_train_mode"] == 0
    assert fixed["repeat_gap"] == 0.0 and fixed["running_mean_drift"] == 0.0
    assert fixed["train_forwards_in_eval_mode"] == 0, "the fix must leave training in train mode"


HEAD = textwrap.dedent("""\
    import torch
    from torch import nn
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    def train_epoch():
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    """)


# -- positives -----------------------------------------------------------------------------------------
def test_reports_a_validation_loop_after_training():
    assert codes(HEAD + textwrap.dedent("""\
        for epoch in range(3):
            train_epoch()
            with torch.no_grad():
                for x, y in val_loader:
                    print(torch.nn.functional.mse_loss(model(x), y).item())
        """)) == [(15, "TL016")]


def test_reports_a_model_class_holding_dropout_in_an_evaluate_helper():
    assert codes("""\
        import torch
        import torch.nn.functional as F
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 2)
            def forward(self, x):
                return self.fc(F.dropout(x, 0.5, training=self.training))
        def evaluate(net, loader):
            correct = 0
            with torch.no_grad():
                for x, y in loader:
                    correct += (net(x).argmax(1) == y).sum().item()
            return correct
        net = Net()
        opt = torch.optim.Adam(net.parameters())
        for epoch in range(2):
            for x, y in train_loader:
                opt.zero_grad()
                F.cross_entropy(net(x), y).backward()
                opt.step()
            print(evaluate(net, val_loader))
        """) == [(13, "TL016")]


def test_reports_a_test_script_that_never_calls_eval():
    assert codes("""\
        import torch
        import torchvision
        model = torchvision.models.resnet18(num_classes=10)
        model.load_state_dict(torch.load("resnet.pt"))
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        """) == [(8, "TL016")]


def test_message_names_the_train_call_and_the_layer():
    [finding] = lint(HEAD + textwrap.dedent("""\
        train_epoch()
        with torch.no_grad():
            val = torch.nn.functional.mse_loss(model(X_val), y_val).item()
        """))
    assert "`model.train()` (line 6)" in finding.message and "`BatchNorm1d` (line 3)" in finding.message


def lint(source: str):
    return [f for f in trainlint.lint_source(textwrap.dedent(source)) if f.code == "TL016"]


# -- fixes ---------------------------------------------------------------------------------------------
def test_fix_puts_eval_before_and_train_after_the_loop_and_creates_no_tl007():
    source = HEAD + textwrap.dedent("""\
        for epoch in range(3):
            train_epoch()
            with torch.no_grad():
                for x, y in val_loader:
                    print(torch.nn.functional.mse_loss(model(x), y).item())
            for x, y in train_loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        """)
    fixed = trainlint.fix_source(source)
    assert ("    with torch.no_grad():\n        model.eval()\n        for x, y in val_loader:\n"
            "            print(torch.nn.functional.mse_loss(model(x), y).item())\n        model.train()\n") in fixed
    assert [f.code for f in trainlint.lint_source(fixed) if f.code in ("TL007", "TL016")] == []


def test_fix_in_an_evaluate_function_surrounds_the_statement_that_evaluates():
    source = HEAD + textwrap.dedent("""\
        def validate(net, loader):
            total = 0.0
            with torch.no_grad():
                for x, y in loader:
                    total += torch.nn.functional.mse_loss(net(x), y).item()
            return total / len(loader)
        for epoch in range(3):
            train_epoch()
            print(validate(model, val_loader))
        """)
    fixed = trainlint.fix_source(source)
    assert "    total = 0.0\n    net.eval()\n    with torch.no_grad():\n" in fixed
    assert "            total += torch.nn.functional.mse_loss(net(x), y).item()\n    net.train()\n    return" in fixed


def test_no_fix_when_the_evaluation_returns_from_inside():
    [finding] = lint(HEAD + textwrap.dedent("""\
        def validate(loader):
            with torch.no_grad():
                for x, y in loader:
                    if torch.nn.functional.mse_loss(model(x), y).item() > 10:
                        return False
            return True
        train_epoch()
        validate(val_loader)
        """))
    assert finding.fix is None


# -- hard negatives -------------------------------------------------------------------------------------
QUIET = {
    "eval_before_train_after": """\
        for epoch in range(3):
            train_epoch()
            model.eval()
            with torch.no_grad():
                for x, y in val_loader:
                    print(torch.nn.functional.mse_loss(model(x), y).item())
            model.train()
        """,
    "eval_inside_the_helper": """\
        def evaluate(loader):
            model.eval()
            with torch.no_grad():
                return sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
        def validate(loader):
            model.eval()
            with torch.no_grad():
                for x, y in loader:
                    print((model(x).argmax(1) == y).float().mean())
        for epoch in range(3):
            train_epoch()
            validate(val_loader)
        """,
    "monte_carlo_dropout": """\
        train_epoch()
        model.train()  # keep dropout on: Monte Carlo estimate of the uncertainty
        with torch.no_grad():
            for x, y in test_loader:
                samples = torch.stack([model(x) for _ in range(20)])
                print(((samples.mean(0) - y) ** 2).mean())
        """,
    "mode_set_on_submodules": """\
        train_epoch()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        with torch.no_grad():
            for x, y in val_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
        """,
    "model_handed_to_code_we_cannot_see": """\
        from engine import evaluate_external
        train_epoch()
        evaluate_external(model, val_loader)
        with torch.no_grad():
            for x, y in test_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
        """,
    "train_with_a_flag": """\
        train_epoch()
        model.train(args.train_bn)
        with torch.no_grad():
            for x, y in val_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
        """,
    "no_loss_or_metric": """\
        train_epoch()
        with torch.no_grad():
            for x, y in val_loader:
                features.append(model(x))
        """,
}


@pytest.mark.parametrize("body", QUIET.values(), ids=list(QUIET))
def test_quiet_on_correct_code(body):
    assert codes(HEAD + textwrap.dedent(body)) == []


def test_quiet_on_a_model_without_dropout_or_batch_norm():
    assert codes("""\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            for x, y in val_loader:
                print(torch.nn.functional.mse_loss(model(x), y).item())
        """) == []


def test_quiet_on_a_model_we_cannot_trace_to_how_it_is_built():
    """A whole pickled module (`torch.load`) comes back in the mode it was saved in."""
    assert codes("""\
        import torch
        model = torch.load("model.pt")
        with torch.no_grad():
            for x, y in test_loader:
                print((model(x).argmax(1) == y).float().mean())
        """) == []


def test_quiet_on_keras_which_runs_layers_in_inference_mode_unless_told():
    assert codes("""\
        import keras
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        for x, y in val_dataset:
            print(keras.losses.mean_squared_error(y, model(x)))
        """) == []


# -- shapes from public code (bench/ecosystem) ----------------------------------------------------------
def test_quiet_when_a_notebook_redefines_the_model_class():
    """udacity's "Inference and Validation" notebook defines `class Classifier` without dropout, trains it with
    a no_grad validation loop and no eval(), then redefines `Classifier` with `nn.Dropout` further down: which
    class the loop's model is cannot be told from the last definition."""
    assert codes("""\
        import torch
        from torch import nn
        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)
        model = Classifier()
        optimizer = torch.optim.Adam(model.parameters())
        for x, y in trainloader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            for x, y in testloader:
                print((model(x).argmax(1) == y).float().mean())
        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)
                self.dropout = nn.Dropout(0.2)
        """) == []
