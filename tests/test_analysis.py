"""The analysis model on its own: imports, values, roles, structure and events."""
from __future__ import annotations

import textwrap

import ast
import pytest

from trainlint.analysis import ScriptModel
from trainlint.analysis import events as E
from trainlint.analysis.names import normalize


def model_of(source: str) -> ScriptModel:
    source = textwrap.dedent(source)
    return ScriptModel(ast.parse(source), source)


def expression(code: str) -> ast.expr:
    return ast.parse(code, mode="eval").body


def kinds(model: ScriptModel, *only: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.subject) for e in model.events if not only or e.kind in only]


# -- imports and qualified names -----------------------------------------------------------------------

@pytest.mark.parametrize("source, expr, qualname", [
    ("import torch", "torch.optim.Adam", "torch.optim.Adam"),
    ("import torch.optim as optim", "optim.Adam", "torch.optim.Adam"),
    ("from torch import optim as o", "o.SGD", "torch.optim.SGD"),
    ("from torch.optim import AdamW as W", "W", "torch.optim.AdamW"),
    ("import tensorflow as tf", "tf.keras.optimizers.Adam", "keras.optimizers.Adam"),
    ("from tensorflow import keras", "keras.layers.Dense", "keras.layers.Dense"),
    ("from torch.cuda.amp import GradScaler", "GradScaler", "torch.cuda.amp.GradScaler"),
    ("import numpy as np", "torch.optim.Adam", None),
])
def test_qualified_names_follow_imports_and_aliases(source, expr, qualname):
    model = model_of(source)
    assert model.imports.qualify(expression(expr)) == qualname


def test_relative_and_star_imports_are_ignored():
    model = model_of("from . import optim\nfrom torch import *\n")
    assert model.imports.qualify(expression("optim.Adam")) is None


def test_normalize_spellings_of_keras():
    assert normalize("keras.src.optimizers.Adam") == "keras.optimizers.Adam"
    assert normalize("tensorflow.keras") == "keras"


# -- values ---------------------------------------------------------------------------------------------

def number(source: str, expr: str, function: str | None = None) -> float | None:
    model = model_of(source)
    scope = None
    if function:
        scope = next(f for f in model.structure.all_functions if f.name == function)
    return model.values.number(expression(expr), scope)


@pytest.mark.parametrize("expr, value", [("1e-3", 1e-3), ("-2", -2.0), ("3 * 1e-2", 0.03), ("2 ** -3", 0.125),
                                         ("float('0.5')", 0.5), ("(1 + 1) / 4", 0.5)])
def test_literals_and_arithmetic(expr, value):
    assert number("", expr) == pytest.approx(value)


def test_module_constant_and_arithmetic_on_it():
    assert number("BASE_LR = 1e-3\nSCALE = 10\n", "BASE_LR * SCALE") == pytest.approx(0.01)


def test_reassigned_constant_is_unknown():
    assert number("LR = 0.1\nLR = 0.2\n", "LR") is None


def test_argparse_default_through_args_attribute():
    source = """\
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument('--learning-rate', type=float, default=0.05)
        parser.add_argument('--wd', dest='weight_decay', default=1e-4)
        args = parser.parse_args()
        """
    assert number(source, "args.learning_rate") == pytest.approx(0.05)
    assert number(source, "args.weight_decay") == pytest.approx(1e-4)
    assert number(source, "args.missing") is None


def test_argparse_default_through_a_parameter_named_args():
    source = """\
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument('--lr', default=0.1)
        def main(args):
            return args.lr
        """
    assert number(source, "args.lr", function="main") == pytest.approx(0.1)


def test_config_dict_with_literal_key_and_local_assignment():
    source = """\
        config = {"lr": 3e-4, "batch": 32}
        def train():
            lr = config["lr"] * 2
            return lr
        """
    assert number(source, "lr", function="train") == pytest.approx(6e-4)


# -- roles ----------------------------------------------------------------------------------------------

def role(source: str, key: str, function: str | None = None):
    model = model_of(source)
    scope = next((f for f in model.structure.all_functions if f.name == function), None)
    found = model.roles.of(key, scope)
    return found.kind if found else None


def test_roles_from_constructors():
    source = """\
        import torch
        from torch.optim.lr_scheduler import StepLR
        from sklearn.preprocessing import StandardScaler
        net = torch.nn.Sequential(torch.nn.Linear(2, 2)).to("cpu")
        opt = torch.optim.Adam(net.parameters())
        sched = StepLR(opt, 10)
        scaler = torch.cuda.amp.GradScaler()
        data_scaler = StandardScaler()
        """
    assert role(source, "net") == "model"
    assert role(source, "opt") == "optimizer"
    assert role(source, "sched") == "scheduler"
    assert role(source, "scaler") == "grad_scaler"
    assert role(source, "data_scaler") == "data_scaler"


def test_role_of_self_attribute_set_in_init_is_seen_in_other_methods():
    source = """\
        import torch
        class Trainer:
            def __init__(self, model):
                self.optim = torch.optim.SGD(model.parameters(), lr=0.1)
            def step(self):
                self.optim.step()
        """
    assert role(source, "self.optim", "step") == "optimizer"


def test_role_of_local_model_class_and_factory():
    source = """\
        import torch.nn as nn
        class Net(nn.Module):
            pass
        def build():
            return Net()
        model = build()
        """
    assert role(source, "model") == "model"


def test_name_gives_a_role_only_when_the_file_says_nothing_against_it():
    source = """\
        import argparse
        opt = argparse.ArgumentParser().parse_args()
        optimizer = make_optimizer()
        """
    assert role(source, "opt") == "args"
    assert role(source, "optimizer") == "optimizer"
    assert role(source, "env") is None


def test_alias_and_passthrough_wrappers_keep_the_role():
    source = """\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator()
        o = torch.optim.SGD(params, lr=1)
        model, o = accelerator.prepare(model, o)
        same = o
        """
    assert role(source, "same") == "optimizer"
    assert role(source, "accelerator") == "accelerator"


# -- structure and events -------------------------------------------------------------------------------

def test_events_in_order_with_loops_and_guards():
    model = model_of("""\
        import torch
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
        for epoch in range(3):
            model.train()
            for i, (x, y) in enumerate(loader):
                loss = model(x).sum()
                loss.backward()
                if (i + 1) % 2 == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            scheduler.step()
            model.eval()
        """)
    # a module built anew starts in train mode: its construction counts as a train()
    assert kinds(model, E.TRAIN_MODE, E.BACKWARD, E.OPT_STEP, E.ZERO_GRAD, E.SCHED_STEP) == [
        ("train_mode", "model"), ("train_mode", "model"), ("backward", "loss"), ("optimizer_step", "optimizer"),
        ("zero_grad", "optimizer"), ("scheduler_step", "scheduler"), ("train_mode", "model")]
    epoch, batch = model.loops
    assert batch.parent is epoch
    step = model.of_kind(E.OPT_STEP)[0]
    assert step.context.loops == (epoch, batch) and len(step.context.guards) == 1
    assert [e.detail["mode"] for e in model.of_kind(E.TRAIN_MODE)] == [True, True, False]
    assert [e.detail.get("fresh", False) for e in model.of_kind(E.TRAIN_MODE)] == [True, False, False]


def test_helpers_are_inlined_at_the_call_site_in_the_callers_names():
    model = model_of("""\
        import torch
        def train_epoch(net, opt, data):
            for x in data:
                opt.zero_grad()
                net(x).sum().backward()
                opt.step()
        def validate(net):
            net.eval()
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(2):
            train_epoch(model, optimizer, loader)
            validate(model)
        """)
    assert kinds(model, E.ZERO_GRAD, E.OPT_STEP, E.TRAIN_MODE) == [
        ("train_mode", "model"), ("zero_grad", "optimizer"), ("optimizer_step", "optimizer"), ("train_mode", "model")]
    step = model.of_kind(E.OPT_STEP)[0]
    assert step.spelled == "opt" and step.role.kind == "optimizer"
    assert len(step.context.loops) == 2 and step.context.call_chain


def test_methods_called_through_self_and_through_an_instance_are_inlined():
    model = model_of("""\
        import torch
        class Trainer:
            def __init__(self):
                self.optimizer = torch.optim.SGD(params, lr=0.1)
            def evaluate(self):
                self.model.eval()
            def fit(self):
                for epoch in range(2):
                    self.optimizer.step()
                    self.evaluate()
        trainer = Trainer()
        trainer.fit()
        """)
    assert kinds(model, E.OPT_STEP, E.TRAIN_MODE) == [
        ("optimizer_step", "trainer.optimizer"), ("train_mode", "trainer.model")]


def test_no_grad_contexts_and_decorators_switch_grad_off():
    model = model_of("""\
        import torch
        @torch.no_grad()
        def evaluate(model):
            model(x).sum().backward()
        with torch.inference_mode():
            loss.backward()
        with torch.set_grad_enabled(False):
            other.backward()
        final.backward()
        evaluate(net)
        """)
    assert [(e.subject, e.context.grad_enabled) for e in model.of_kind(E.BACKWARD)] == [
        ("loss", False), ("other", False), ("final", True), (None, False)]  # an anonymous loss


def test_backward_variants():
    model = model_of("""\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator()
        scaler = torch.cuda.amp.GradScaler()
        scaler.scale(loss_a).backward()
        accelerator.backward(loss_b)
        torch.autograd.backward(loss_c)
        loss_d.mean().backward()
        self.backward()
        """)
    assert [e.subject for e in model.of_kind(E.BACKWARD)] == ["loss_a", "loss_b", "loss_c", "loss_d"]


def test_steps_zero_grads_and_accumulations():
    model = model_of("""\
        import torch
        optimizer = torch.optim.SGD(params, lr=0.1)
        scaler = torch.cuda.amp.GradScaler()
        scaler.step(optimizer)
        env.step(action)
        for p in params:
            p.grad = None
        running += loss
        total = total + loss.item()
        history["loss"].append(loss)
        losses.append(loss)
        """)
    assert kinds(model, E.OPT_STEP, E.ZERO_GRAD, E.ACCUMULATE) == [
        ("optimizer_step", "optimizer"), ("zero_grad", None), ("accumulate", "running"),
        ("accumulate", "total"), ("accumulate", "history"), ("accumulate", "losses")]


def test_recursive_helpers_terminate():
    model = model_of("""\
        def a(n):
            return b(n)
        def b(n):
            return a(n)
        a(1)
        """)
    assert kinds(model, E.LOCAL_CALL)


def test_closure_free_variables_are_the_enclosing_functions():
    model = model_of("""\
        import torch
        def run():
            optimizer = torch.optim.SGD(params, lr=0.1)
            def closure():
                optimizer.zero_grad()
            for i in range(3):
                optimizer.step(closure)
        run()
        """)
    zero, step = model.of_kind(E.ZERO_GRAD, E.OPT_STEP)
    assert zero.subject == step.subject
