"""TL007 missing-train-mode: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_script

import trainlint

BUGS = fixtures("TL007")
TORCH_BUGS = fixtures("TL007", "bug_torch_")  # the Keras fixtures' runtime checks: test_tl007_keras.py


codes = partial(rows, code="TL007")


@pytest.mark.parametrize("path", TORCH_BUGS, ids=lambda p: p.stem)
def test_runtime_training_runs_in_eval_mode_and_the_fix_stops_it(path, tmp_path):
    buggy = run_script(path)
    assert buggy["train_forwards"] >= 8
    assert buggy["in_eval_mode"] >= 4, "some training forwards should run with model.training == False"
    fixed = run_script(autofixed(path, tmp_path))
    assert fixed["train_forwards"] == buggy["train_forwards"]
    assert fixed["in_eval_mode"] == 0, "after the fix every training forward must run in train mode"


def test_fix_inserts_train_before_the_training_phase_of_the_epoch():
    source = textwrap.dedent("""\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        def evaluate():
            model.eval()
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            evaluate()
        """)
    fixed = trainlint.fix_source(source)
    assert fixed.splitlines()[5:8] == ["for epoch in range(3):", "    model.train()", "    for x in loader:"]


def test_fix_uses_the_name_the_loop_uses():
    """The eval() is written on a helper's parameter (`net`); the fix goes into main(), where it is `model`."""
    source = textwrap.dedent("""\
        import torch
        def evaluate(net):
            net.eval()
            with torch.no_grad():
                return net(val_x)
        def main():
            model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            evaluate(model)
            for epoch in range(3):
                for x in loader:
                    optimizer.zero_grad()
                    model(x).sum().backward()
                    optimizer.step()
        main()
        """)
    [finding] = trainlint.lint_source(source)
    assert finding.location.row == 3
    assert "`net.eval()` (line 3, in `evaluate()`) leaves `model` in eval mode" in finding.message
    assert "        model.train()\n        for x in loader:" in trainlint.fix_source(source)


def test_message_names_the_eval_the_loop_and_the_step():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import torch
        net = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                opt.zero_grad()
                net(x).sum().backward()
                opt.step()
            net.eval()
        """))
    assert finding.code == "TL007"
    assert "`net.eval()` (line 9)" in finding.message
    assert "next iteration of the loop on line 4" in finding.message
    assert "`opt.step()` (line 8)" in finding.message


DETECTED = {
    "eval_under_an_if_in_the_epoch_loop": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.Adam(model.parameters())
        def evaluate():
            model.eval()
            with torch.no_grad():
                return model(val_x).mean()
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            if epoch % 5 == 0:
                evaluate()
        """,
    "train_only_under_an_if_that_may_not_run": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(10):
            if epoch == 0:
                model.train()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            model.eval()
        """,
    "train_false_is_eval": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            model.train(mode=False)
        """,
    "self_evaluate_in_fit": """\
        import torch
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            def evaluate(self):
                self.model.eval()
            def fit(self, loader):
                for epoch in range(3):
                    for x in loader:
                        self.optimizer.zero_grad()
                        self.model(x).sum().backward()
                        self.optimizer.step()
                    self.evaluate()
        """,
    "validation_called_inside_an_f_string": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.Adam(model.parameters())
        def validate():
            model.eval()
            with torch.no_grad():
                return model(val_x).mean().item()
        model.train()
        for epoch in range(10):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            print(f"epoch {epoch}: val loss {validate():.3f}")
        """,
    "model_of_an_imported_class_known_by_its_parameters": """\
        import torch
        from models import Translator
        def train(model, loader, optim):
            for src, tgt in loader:
                logits = model(src, tgt)
                optim.zero_grad()
                loss_fn(logits, tgt).backward()
                optim.step()
        def validate(model, loader):
            model.eval()
            with torch.no_grad():
                for src, tgt in loader:
                    model(src, tgt)
        def main(opts):
            model = Translator(opts).to(opts.device)
            optim = torch.optim.Adam(model.parameters(), lr=1e-4)
            for epoch in range(opts.epochs):
                train(model, train_dl, optim)
                validate(model, valid_dl)
        """,  # pytorch/examples language_translation, with train()'s model.train() removed
    "imported_model_class_wrapped_in_ddp": """\
        import torch
        from torch.nn.parallel import DistributedDataParallel as DDP
        from model import GPT
        model = GPT(config)
        if ddp:
            model = DDP(model, device_ids=[rank])
        optimizer = model.configure_optimizers(weight_decay, learning_rate)
        @torch.no_grad()
        def estimate_loss():
            model.eval()
            return [model(X, Y) for _ in range(10)]
        while True:
            if iter_num % eval_interval == 0:
                losses = estimate_loss()
            logits, loss = model(X, Y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        """,  # nanoGPT train.py with estimate_loss()'s model.train() removed
    "eval_every_n_steps_in_a_while_loop": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.AdamW(model.parameters())
        model.train()
        step = 0
        while step < 1000:
            x = next(batches)
            loss = model(x).sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step % 100 == 0:
                model.eval()
                with torch.no_grad():
                    val = model(val_x).mean()
            step += 1
        """,
}


@pytest.mark.parametrize("source", DETECTED.values(), ids=DETECTED.keys())
def test_reports(source):
    assert [code for _, code in codes(source)] == ["TL007"]


QUIET = {
    "train_at_the_top_of_each_epoch": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            model.train()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            model.eval()
        """,
    "train_inside_the_training_helper": """\
        import torch
        def train(model, loader, optimizer):
            model.train()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        def test(model, loader):
            model.eval()
            with torch.no_grad():
                for x in loader:
                    model(x)
        def main():
            model = Net()
            optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
            for epoch in range(1, 15):
                train(model, train_loader, optimizer)
                test(model, test_loader)
        main()
        """,  # pytorch/examples mnist
    "helper_restores_the_previous_mode": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        def evaluate(net):
            was_training = net.training
            net.eval()
            with torch.no_grad():
                out = net(val_x)
            net.train(was_training)
            return out
        model.train()
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            evaluate(model)
        """,
    "helper_switches_back_to_train_at_its_end": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.AdamW(model.parameters())
        @torch.no_grad()
        def estimate_loss():
            model.eval()
            losses = [model(x).mean() for x in val_batches]
            model.train()
            return losses
        while True:
            if iter_num % eval_interval == 0:
                losses = estimate_loss()
            loss = model(next_batch()).sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            iter_num += 1
        """,  # nanoGPT train.py
    "never_calls_eval": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "eval_after_the_last_training_step": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            print(model(test_x))
        """,
    "eval_of_a_deep_copy": """\
        import copy
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            snapshot = copy.deepcopy(model).eval()
        """,
    "eval_of_an_ema_copy": """\
        import torch
        from timm.utils import ModelEmaV2
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        model_ema = ModelEmaV2(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            model.train()
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
                model_ema.update(model)
            model_ema.module.eval()
            with torch.no_grad():
                model_ema.module(val_x)
        """,
    "frozen_teacher_in_eval_mode_while_the_student_trains": """\
        import torch
        teacher = torch.nn.Linear(4, 2)
        student = torch.nn.Linear(4, 2)
        teacher.eval()
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
        for epoch in range(3):
            student.train()
            for x in loader:
                optimizer.zero_grad()
                loss = (student(x) - teacher(x)).pow(2).mean()
                loss.backward()
                optimizer.step()
        """,
    "frozen_backbone_feeds_a_trained_head": """\
        import torch
        import torchvision
        backbone = torchvision.models.resnet18(weights="DEFAULT")
        backbone.eval()
        head = torch.nn.Linear(1000, 10)
        optimizer = torch.optim.Adam(head.parameters())
        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(head(backbone(x)), y)
                loss.backward()
                optimizer.step()
        """,
    "optimising_the_input_of_a_model_in_eval_mode": """\
        import torch
        cnn = torch.nn.Conv2d(3, 8, 3)
        cnn.eval()
        input_img = torch.rand(1, 3, 32, 32, requires_grad=True)
        optimizer = torch.optim.LBFGS([input_img])
        for step in range(300):
            def closure():
                optimizer.zero_grad()
                loss = cnn(input_img).pow(2).mean()
                loss.backward()
                return loss
            optimizer.step(closure)
        """,  # neural style transfer, adversarial examples
    "phase_loop_with_train_and_eval_arms": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(25):
            for phase in ["train", "val"]:
                if phase == "train":
                    model.train()
                else:
                    model.eval()
                for inputs, labels in dataloaders[phase]:
                    optimizer.zero_grad()
                    with torch.set_grad_enabled(phase == "train"):
                        outputs = model(inputs)
                        loss = criterion(outputs, labels)
                        if phase == "train":
                            loss.backward()
                            optimizer.step()
        """,  # the PyTorch transfer-learning tutorial
    "run_epoch_with_a_train_flag": """\
        import torch
        def run_epoch(model, loader, optimizer, train):
            model.train(mode=train)
            for x in loader:
                loss = model(x).sum()
                if train:
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            run_epoch(model, train_loader, optimizer, True)
            run_epoch(model, val_loader, optimizer, False)
        """,
    "evaluate_only_run_returns_before_training": """\
        import torch
        def validate(model):
            model.eval()
            with torch.no_grad():
                return model(val_x)
        def main(args):
            model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            if args.evaluate:
                validate(model)
                return
            for epoch in range(3):
                for x in loader:
                    optimizer.zero_grad()
                    model(x).sum().backward()
                    optimizer.step()
        """,  # pytorch/examples imagenet
    "evaluate_only_run_exits_before_training": """\
        import sys
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        if args.eval_only:
            model.eval()
            print(model(val_x))
            sys.exit(0)
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "eval_then_break_on_early_stop": """\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(100):
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            if patience_exhausted():
                model.eval()
                break
        """,
    "train_and_test_are_separate_entry_points": """\
        import torch
        def train(rank, args, model):
            optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
            for epoch in range(args.epochs):
                model.train()
                for x in loader:
                    optimizer.zero_grad()
                    model(x).sum().backward()
                    optimizer.step()
        def test(args, model):
            model.eval()
            with torch.no_grad():
                model(test_x)
        """,  # pytorch/examples mnist_hogwild (called from another file)
    "eval_written_into_the_training_path_to_freeze_batch_norm": """\
        import torch
        def train_epoch(model, loader, optimizer, freeze_bn):
            model.train()
            if freeze_bn:
                model.eval()  # fine-tuning: keep the pretrained batch-norm statistics
            for x in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            train_epoch(model, loader, optimizer, freeze_bn=True)
        """,
    "train_restored_through_a_chained_to": """\
        import torch
        transformer = TransformerNet().to(device)
        optimizer = torch.optim.Adam(transformer.parameters(), 1e-3)
        for e in range(2):
            for batch_id, (x, _) in enumerate(train_loader):
                optimizer.zero_grad()
                transformer(x).sum().backward()
                optimizer.step()
                if (batch_id + 1) % checkpoint_interval == 0:
                    transformer.eval().cpu()
                    torch.save(transformer.state_dict(), path)
                    transformer.to(device).train()
        """,  # pytorch/examples fast_neural_style
    "an_unrelated_model_is_evaluated": """\
        import torch
        encoder = torch.nn.Linear(4, 4)
        probe = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                optimizer.zero_grad()
                encoder(x).sum().backward()
                optimizer.step()
            probe.eval()
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []
