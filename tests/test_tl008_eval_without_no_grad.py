"""TL008 eval-without-no-grad: detection, silence on correct code and on phases that need autograd, and
runtime-verified fixes (the evaluation records no graph once trainlint's fix is applied)."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fix_is_unsafe, fixtures, rows, run_both

import trainlint

BUGS = fixtures("TL008")
codes = partial(rows, code="TL008")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_evaluation_records_graphs_and_the_fix_stops_it(path, tmp_path):
    buggy, fixed = run_both(path, autofixed(path, tmp_path, unsafe=fix_is_unsafe(path)))
    assert buggy["outputs"] >= 4
    assert buggy["outputs_with_graph"] == buggy["outputs"], "every evaluation output should carry a graph"
    assert buggy["saved_bytes"] > 10_000, "autograd should save activations for a backward that never runs"
    assert fixed["outputs"] == buggy["outputs"]
    assert fixed["outputs_with_graph"] == 0 and fixed["saved_bytes"] == 0
    if "kept_graph_nodes" in buggy:
        assert buggy["kept_graph_nodes"] > 10 and fixed["kept_graph_nodes"] == 0


# -- positives -----------------------------------------------------------------------------------------
HEAD = textwrap.dedent("""\
    import torch
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    """)


def test_reports_the_validation_loop_after_training():
    assert codes(HEAD + textwrap.dedent("""\
    for epoch in range(3):
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        for x, y in val_loader:
            val_loss = torch.nn.functional.mse_loss(model(x), y).item()
    """)) == [(10, "TL008")]


def test_reports_an_evaluate_helper_through_its_loader_parameter():
    """`test(model, loader)` is named to evaluate; the loop over its parameter is bound to `test_loader`."""
    assert codes(HEAD + textwrap.dedent("""\
    def test(net, loader):
        net.eval()
        correct = 0
        for x, y in loader:
            correct += (net(x).argmax(1) == y).sum().item()
        return correct
    print(test(model, test_loader))
    """)) == [(8, "TL008")]


def test_reports_inference_after_eval():
    assert codes(HEAD + textwrap.dedent("""\
    model.load_state_dict(torch.load("model.pt"))
    model.eval()
    predictions = model(torch.randn(16, 4))
    """)) == [(6, "TL008")]


def test_reports_a_call_on_held_out_data():
    assert codes(HEAD + textwrap.dedent("""\
    for epoch in range(10):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(X_train), y_train).backward()
        optimizer.step()
        val_loss = torch.nn.functional.mse_loss(model(X_val), y_val)
        print(val_loss.item())
    """)) == [(8, "TL008")]


def test_reports_the_evaluation_loop_of_a_trainer_method():
    assert codes("""\
    import torch
    class Trainer:
        def __init__(self, model, loader):
            self.model = model
            self.val_loader = loader
        def validate(self):
            self.model.eval()
            return [self.model(x) for x in []] + [self.model(x) for x, _ in self.val_loader]
        def evaluate(self):
            self.model.eval()
            outputs = []
            for x, _ in self.val_loader:
                outputs.append(self.model(x))
            return outputs
    Trainer(torch.nn.Linear(4, 1), loader).evaluate()
    """) == [(13, "TL008")]


# -- fixes ---------------------------------------------------------------------------------------------
def test_fix_wraps_the_loop_in_no_grad_keeping_comments_and_tabs():
    source = "import torch\nmodel = torch.nn.Linear(4, 1)\nmodel.eval()\nif True:\n" \
             "\tfor x in test_loader:  # the test set\n\t\t# keep the outputs\n\t\tout = model(x)\n\n" \
             "\t\tprint(out.sum().item())\n"
    fixed = trainlint.fix_source(source)
    assert fixed == ("import torch\nmodel = torch.nn.Linear(4, 1)\nmodel.eval()\nif True:\n"
                     "\twith torch.no_grad():\n\t\tfor x in test_loader:  # the test set\n\t\t\t# keep the outputs\n"
                     "\t\t\tout = model(x)\n\n\t\t\tprint(out.sum().item())\n")


def test_fix_decorates_the_evaluate_function_below_its_other_decorators():
    source = textwrap.dedent("""\
        import torch as th
        class Runner:
            model = th.nn.Linear(4, 1)
            @classmethod
            def evaluate(cls, loader):
                cls.model.eval()
                return [cls.model(x) for x in loader] and [cls.model(x).sum().item() for x in []]
            @staticmethod
            def predict(model, loader):
                model.eval()
                for x in loader:
                    print(model(x))
        Runner.predict(th.nn.Linear(4, 1), loader)
        """)
    fixed = trainlint.fix_source(source)
    assert "    @staticmethod\n    @th.no_grad()\n    def predict(model, loader):\n" in fixed
    assert codes(fixed) == []


def test_fix_uses_a_no_grad_imported_by_name():
    source = """\
        from torch import nn, no_grad
        model = nn.Linear(4, 1)
        model.eval()
        out = model(X_test)
        """
    assert "with no_grad():\n    out = model(X_test)\n" in trainlint.fix_source(textwrap.dedent(source))


def test_no_fix_when_the_statements_hold_a_string_spanning_lines():
    [finding] = trainlint.lint_source(textwrap.dedent('''\
        import torch
        model = torch.nn.Linear(4, 1)
        model.eval()
        for x in val_loader:
            print("""output
        """, model(x))
        '''))
    assert finding.code == "TL008" and finding.fix is None


def test_fix_is_unsafe_when_the_function_returns_its_outputs_to_callers_elsewhere():
    source = textwrap.dedent("""\
        import torch
        def predict(model, loader):
            model.eval()
            return torch.cat([model(x) for x in []] + [model(x) for x in loader])
        def evaluate(model, loader):
            model.eval()
            outputs = []
            for x in loader:
                outputs.append(model(x))
            return outputs
        """)
    [finding] = [f for f in trainlint.lint_source(source, path="utils.py") if f.code == "TL008"]
    assert finding.location.row == 9 and finding.fix.applicability == "unsafe"
    assert trainlint.fix_source(source) == source
    assert "@torch.no_grad()\ndef evaluate" in trainlint.fix_source(source, unsafe=True)


# -- hard negatives -------------------------------------------------------------------------------------
QUIET = {
    "no_grad_block": """\
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                out = model(x)
        """,
    "inference_mode_and_set_grad_enabled_false": """\
        model.eval()
        with torch.inference_mode():
            for x, y in val_loader:
                out = model(x)
        with torch.set_grad_enabled(False):
            for x, y in test_loader:
                out = model(x)
        """,
    "decorated_evaluate": """\
        @torch.no_grad()
        def evaluate(loader):
            model.eval()
            for x, y in loader:
                out = model(x)
        @torch.inference_mode()
        def predict(loader):
            model.eval()
            return [model(x) for x in []] + [model(x) for x, _ in loader]
        evaluate(val_loader)
        predict(test_loader)
        """,
    "caller_holds_no_grad": """\
        def validate(loader):
            model.eval()
            for x, y in loader:
                out = model(x)
        with torch.no_grad():
            validate(val_loader)
        """,
    "adversarial_examples": """\
        def test_fgsm(model, loader, eps):
            model.eval()
            for x, y in loader:
                x.requires_grad = True
                loss = torch.nn.functional.cross_entropy(model(x), y)
                model.zero_grad()
                loss.backward()
                x_adv = x + eps * x.grad.sign()
                print((model(x_adv).argmax(1) == y).float().mean())
        test_fgsm(model, test_loader, 0.1)
        """,
    "saliency_with_autograd_grad": """\
        model.eval()
        for x, y in test_loader:
            x = x.clone().requires_grad_()
            score = model(x).max()
            saliency, = torch.autograd.grad(score, x)
        """,
    "input_gradients_through_an_attack_library": """\
        import torchattacks
        attack = torchattacks.PGD(model, eps=8 / 255)
        model.eval()
        for x, y in test_loader:
            x_adv = attack(x, y)
            print((model(x_adv).argmax(1) == y).float().mean())
        """,
    "enable_grad_and_grad_chosen_per_phase": """\
        model.eval()
        with torch.enable_grad():
            for x, y in val_loader:
                out = model(x)
        for phase in ["train", "val"]:
            for x, y in loaders[phase]:
                with torch.set_grad_enabled(phase == "train"):
                    out = model(x)
        """,
    "grad_switched_off_for_the_whole_script": """\
        torch.set_grad_enabled(False)
        model.eval()
        for x, y in test_loader:
            out = model(x)
        """,
    "no_grad_entered_by_hand": """\
        import contextlib
        def inference_on_dataset(model, loader):
            with contextlib.ExitStack() as stack:
                model.eval()
                stack.enter_context(torch.no_grad())
                for x in loader:
                    out = model(x)
        inference_on_dataset(model, test_loader)
        """,
    "outputs_feed_a_later_backward": """\
        model.eval()
        teacher_out = model(X_test)
        model.train()
        loss = torch.nn.functional.mse_loss(student(X_test), teacher_out)
        loss.backward()
        """,
    "frozen_model": """\
        model.requires_grad_(False)
        model.eval()
        for x, y in test_loader:
            out = model(x)
        """,
    "loss_module_call": """\
        criterion = torch.nn.MSELoss()
        with torch.no_grad():
            val_pred = model(X_val)
        val_loss = criterion(val_pred, y_val)
        """,
    "training_loop_named_like_a_test": """\
        for x, y in val_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        """,
    "predict_helper_used_for_training": """\
        def predict(x):
            return model(x)
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(predict(x), y).backward()
            optimizer.step()
        """,
}


@pytest.mark.parametrize("body", QUIET.values(), ids=list(QUIET))
def test_quiet_on_correct_code(body):
    assert codes(HEAD + textwrap.dedent(body)) == []


def test_quiet_inside_a_models_own_forward():
    """timm's attention blocks: `x = self.proj(x)` inside `forward` of an nn.Module is a layer of the model,
    whatever `x` was named elsewhere in the file."""
    assert codes("""\
        import torch
        from torch import nn
        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(4, 4)
            def forward(self, x):
                return self.proj(x)
        x_test = torch.randn(2, 4)
        x = x_test
        """) == []


def test_quiet_on_a_keras_model_in_a_tensorflow_validation_loop():
    """Keras has no counterpart on TensorFlow: outside a GradientTape nothing records a graph."""
    assert codes("""\
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        for x, y in val_dataset:
            val_logits = model(x, training=False)
        """) == []


# -- shapes from public code (bench/ecosystem) ----------------------------------------------------------
def test_quiet_on_loss_modules_called_after_the_model_ran_under_no_grad():
    """DeepSpeedExamples' GLUE evaluation: the logits come from a no_grad block, the loss module runs outside it.
        with torch.no_grad():
            logits = model(input_ids, segment_ids, input_mask, labels=None)
        loss_fct = FocalLoss(...) if args.focal else CrossEntropyLoss()
        tmp_eval_loss = loss_fct(logits.view(-1, num_labels), label_ids.view(-1))
    """
    assert codes(HEAD + textwrap.dedent("""\
        class FocalLoss(torch.nn.Module):
            def forward(self, x, y):
                return x.sum()
        model.eval()
        for x, y in eval_dataloader:
            with torch.no_grad():
                logits = model(x)
            loss_fct = FocalLoss() if focal else torch.nn.CrossEntropyLoss()
            tmp_eval_loss = loss_fct(logits, y)
        """)) == []


def test_quiet_under_a_decorator_or_context_whose_name_says_it_switches_autograd():
    """yolov5's val.py: `@smart_inference_mode()` (a helper returning torch.inference_mode or torch.no_grad);
    notebooks that get `torch` from a star import (`from torch_snippets import *`) and write
    `with torch.no_grad():` / `@torch.no_grad()` with a `torch` trainlint cannot resolve."""
    assert codes(HEAD + textwrap.dedent("""\
        from utils.torch_utils import smart_inference_mode
        from torch_snippets import *
        @smart_inference_mode()
        def run(model, dataloader):
            model.eval()
            for im, targets in dataloader:
                preds = model(im)
        @torch_alias.no_grad()
        def validate_batch(model, x):
            model.eval()
            return model(x)
        def test_predictions(frcnn, x):
            with torch_alias.no_grad():
                frcnn.eval()
                return frcnn(x)
        run(model, val_loader)
        validate_batch(model, X_val)
        test_predictions(model, X_test)
        """)) == []


def test_quiet_on_a_warm_up_call_whose_result_is_dropped():
    """yolov7's test.py: `model(torch.zeros(1, 3, imgsz, imgsz).to(device))  # run once` after eval(): the
    graph of a result nobody keeps is freed at once."""
    assert codes(HEAD + textwrap.dedent("""\
        model.eval()
        model(torch.zeros(1, 4))
        """)) == []


def test_quiet_on_a_call_whose_output_is_only_asked_for_its_shape():
    """Lightning's barlow-twins tutorial: `for batch in dataloader: img, label = batch;
    print(encoder(img).shape); break` over CIFAR10(train=False) shows the embedding's shape: the output is dropped
    at once, its graph with it. Keeping the output (`emb = model(x)`) is still reported."""
    assert codes(HEAD + textwrap.dedent("""\
        for x, y in test_loader:
            print(model(x).shape)
            n = model(x).size(0)
            break
        """)) == []
    assert codes(HEAD + textwrap.dedent("""\
        for x, y in test_loader:
            emb = model(x)
            print(emb.shape)
        """)) == [(5, "TL008")]


def test_quiet_on_a_name_reused_for_data_that_is_not_held_out():
    """ignite's CycleGAN notebook: `x = torch.rand(4, 3, 256, 256); y = g(x)` checks shapes in one cell, while
    another cell binds `x` to a test batch: `x` is not held-out data everywhere."""
    assert codes(HEAD + textwrap.dedent("""\
        x = torch.rand(4, 4)
        y = model(x)
        x = batch["test_A"]
        """)) == []


def test_quiet_on_a_shape_check_of_a_freshly_built_model():
    """udacity's Simple_RNN notebook: `test_rnn = RNN(1, 1, 10, 2)` then `test_out, test_h = test_rnn(test_input,
    None)` to print the output's shape: a model built and called, never trained, loaded or put in a mode, holds no
    learned weights; trying it out on an input named `test_input` evaluates nothing. The trained model's call on
    held-out data is still reported."""
    assert codes(HEAD + textwrap.dedent("""\
        class RNN(torch.nn.Module):
            def forward(self, x, h):
                return x, h
        test_rnn = RNN()
        test_out, test_h = test_rnn(test_input, None)
        print(test_out.size())
        tried = torch.nn.Linear(4, 1)
        print(tried(X_test).shape)
        """)) == []
    assert codes(HEAD + textwrap.dedent("""\
        model.load_state_dict(torch.load("model.pt"))
        preds = model(X_test)
        """)) == [(5, "TL008")]


def test_quiet_on_building_a_model_whose_class_is_named_like_one():
    """LLMs-from-scratch: `gpt = GPTModel(cfg)` after `model.eval()` builds a model, it runs none."""
    assert codes(HEAD + textwrap.dedent("""\
        class GPTModel(torch.nn.Module):
            pass
        model.eval()
        other = GPTModel()
        """)) == []


def test_quiet_on_a_lightning_model_frozen_for_inference():
    """A Kaggle notebook: `model.eval(); model.freeze()` (requires_grad off for every parameter) before
    predicting the test set."""
    assert codes(HEAD + textwrap.dedent("""\
        model.eval()
        model.freeze()
        for batch in test_loader:
            pred = model(batch)
        """)) == []


def test_reports_a_helper_of_another_module_at_the_call_that_runs_it_here(tmp_path):
    """LLMs-from-scratch's notebook calls `calc_loss_loader(val_loader, gpt, device)` (gpt_train.py) without
    no_grad, and `train_model_simple()` of the same module, which runs it under no_grad: the finding belongs
    to the first call, not to the first call trainlint happens to see. (A function of another module is
    followed only when it trains or is named as an evaluation, the bound that keeps library-scale projects
    fast: here the helper is named `evaluate_loader`; `calc_loss_loader` itself is not followed.)"""
    (tmp_path / "gpt_train.py").write_text(textwrap.dedent("""\
        import torch
        def evaluate_loader(data_loader, model):
            total = 0.0
            for x, y in data_loader:
                total += torch.nn.functional.cross_entropy(model(x), y).item()
            return total
        def train_model_simple(model, train_loader, val_loader, optimizer):
            for x, y in train_loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                evaluate_loader(val_loader, model)
        """))
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent("""\
        import torch
        from gpt_train import evaluate_loader, train_model_simple
        gpt = torch.nn.Linear(4, 2)
        optimizer = torch.optim.AdamW(gpt.parameters())
        train_model_simple(gpt, train_loader, val_loader, optimizer)
        val_loss = evaluate_loader(val_loader, gpt)
        """))
    findings = [f for f in trainlint.lint_source(script.read_text(), path=str(script)) if f.code == "TL008"]
    assert [f.location.row for f in findings] == [6]
    assert findings[0].message.startswith("`evaluate_loader()` (")


def test_reports_when_the_results_of_a_local_helper_hold_the_model_outputs():
    """kaggle-hms-public's infer.py: `eeg_ids, logits = predict(model, test_loader)` — a helper of the same file
    is followed, so what it returns is no opaque user of the model (as `attack = PGD(model)` would be)."""
    assert codes(HEAD + textwrap.dedent("""\
        def predict(model, test_loader):
            model.eval()
            outputs = []
            for batch in test_loader:
                outputs.append(model(batch).detach().numpy())
            return outputs
        outputs = predict(model, test_loader)
        """)) == [(8, "TL008")]


def test_fix_after_eval_wraps_only_the_statements_up_to_the_last_call_of_the_model():
    source = HEAD + textwrap.dedent("""\
        model.eval()
        print("evaluating")
        preds = model(X_test)
        probs = preds.softmax(-1)
        print(probs.argmax(-1))
        """)
    fixed = trainlint.fix_source(source)
    assert fixed.endswith('print("evaluating")\nwith torch.no_grad():\n    preds = model(X_test)\n'
                          'probs = preds.softmax(-1)\nprint(probs.argmax(-1))\n')


def test_quiet_in_a_pytest_test_outside_a_tests_folder():
    """LLMs-from-scratch's ch04/06_swa/tests.py: `def test_swa_matches_base_model(...)` compares two models'
    outputs; pytest runs it, nothing in the file calls it."""
    assert codes(HEAD + textwrap.dedent("""\
        def test_outputs_match(loader):
            model.eval()
            for x in loader:
                out = model(x)
                assert out.shape == (8, 1)
        """)) == []


def test_reports_a_test_epoch_helper_that_asserts_nothing():
    """Research code's utils.py: `def test_epoch(model, loader)` evaluates with autograd on and is called from
    train.py, not from its own file; it is no pytest test (it asserts nothing), so it is judged."""
    assert codes(HEAD + textwrap.dedent("""\
        def test_epoch(loader):
            model.eval()
            total = 0.0
            for x, y in loader:
                total += torch.nn.functional.mse_loss(model(x), y).item()
            return total
        """)) == [(8, "TL008")]
