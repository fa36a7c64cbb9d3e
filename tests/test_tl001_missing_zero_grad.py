"""TL001 missing-zero-grad: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_script

import trainlint

BUGS = fixtures("TL001")


codes = partial(rows, code="TL001")


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_gradients_accumulate_and_the_fix_stops_it(path, tmp_path):
    buggy = run_script(path)
    assert buggy["steps"] > 1
    assert buggy["stale_gradient"] > 1e-4, "the buggy fixture should apply accumulated gradients"
    fixed = run_script(autofixed(path, tmp_path))
    assert fixed["steps"] == buggy["steps"]
    assert fixed["stale_gradient"] < 1e-6, "after the fix each step must apply only its batch's gradient"


def test_fix_inserts_zero_grad_as_first_statement_of_the_loop():
    source = textwrap.dedent("""\
        import torch
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in range(3):
            loss = model(torch.randn(2, 4)).sum()
            loss.backward()
            opt.step()
        """)
    fixed = trainlint.fix_source(source)
    assert fixed.splitlines()[3:5] == ["for x in range(3):", "    opt.zero_grad()"]


def test_message_names_the_optimizer_and_the_step_line():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import torch
        model = torch.nn.Linear(4, 1)
        opt_g = torch.optim.Adam(model.parameters())
        for x in range(3):
            model(x).sum().backward()
            opt_g.step()
        """))
    assert "`opt_g`" in finding.message and "line 6" in finding.message
    assert (finding.location.row, finding.location.column) == (5, 5)


def test_reports_accelerate_backward():
    assert codes("""\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator()
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters())
        model, optimizer = accelerator.prepare(model, optimizer)
        for batch in loader:
            loss = model(batch).sum()
            accelerator.backward(loss)
            optimizer.step()
        """) == [(9, "TL001")]


def test_reports_helper_function_called_from_the_loop_with_fix_before_backward():
    source = """\
        import torch
        def train_step(model, optimizer, batch):
            loss = model(batch).sum()
            loss.backward()
            optimizer.step()

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for batch in loader:
            train_step(model, optimizer, batch)
        """
    assert codes(source) == [(4, "TL001")]
    fixed = trainlint.fix_source(textwrap.dedent(source))
    assert "    optimizer.zero_grad()\n    loss.backward()" in fixed


def test_reports_each_optimizer_of_a_gan_separately():
    assert len(codes("""\
        import torch
        netG, netD = torch.nn.Linear(2, 4), torch.nn.Linear(4, 1)
        optG = torch.optim.Adam(netG.parameters())
        optD = torch.optim.Adam(netD.parameters())
        for real in loader:
            lossD = netD(real).mean()
            lossD.backward()
            optD.step()
            lossG = netD(netG(z)).mean()
            lossG.backward()
            optG.step()
        """)) == 2


def test_reports_gradients_cleared_once_per_epoch_but_stepped_every_batch():
    assert codes("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            for x in loader:
                model(x).sum().backward()
                optimizer.step()
        """) == [(6, "TL001")]


QUIET = {
    "zero_grad_at_end_of_iteration": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            model(x).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
    "gradient_accumulation_guard": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, (x, y) in enumerate(loader):
            loss = model(x).sum() / 4
            loss.backward()
            if (i + 1) % 4 == 0:
                optimizer.step()
                optimizer.zero_grad()
        """,
    "grad_set_to_none_loop": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            for p in model.parameters():
                p.grad = None
            model(x).sum().backward()
            optimizer.step()
        """,
    "model_zero_grad_set_to_none": """\
        import torch
        net = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for x in loader:
            net.zero_grad(set_to_none=True)
            net(x).sum().backward()
            optimizer.step()
        """,
    "zero_grad_in_helper_called_from_loop": """\
        import torch
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            def reset(self):
                self.optimizer.zero_grad()
            def run(self, loader):
                for x in loader:
                    self.reset()
                    self.model(x).sum().backward()
                    self.optimizer.step()
        """,
    "lightning_training_step_has_no_loop": """\
        import torch
        import pytorch_lightning as pl
        class Net(pl.LightningModule):
            def training_step(self, batch, batch_idx):
                opt = self.optimizers()
                loss = self.model(batch).sum()
                self.manual_backward(loss)
                opt.step()
                return loss
        """,
    "env_step_is_not_an_optimizer_step": """\
        import torch
        for episode in range(10):
            obs = env.reset()
            action = policy(obs)
            obs, reward, done, info = env.step(action)
            loss = -reward * policy.log_prob(action)
            loss.backward()
        """,
    "user_class_backward_is_not_autograd": """\
        import torch
        class Robot:
            def backward(self): pass
        robot = Robot()
        optimizer = torch.optim.SGD(params, lr=0.1)
        for i in range(3):
            robot.backward()
            optimizer.step()
        """,
    "lbfgs_closure_clears": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.LBFGS(model.parameters())
        for epoch in range(10):
            def closure():
                optimizer.zero_grad()
                loss = model(x).sum()
                loss.backward()
                return loss
            optimizer.step(closure)
        """,
    "optimizer_handed_to_an_unknown_function": """\
        import torch
        from mylib import reset_grads
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in loader:
            reset_grads(optimizer)
            model(x).sum().backward()
            optimizer.step()
        """,
    "deepspeed_engine_step_clears_itself": """\
        import torch
        import deepspeed
        model_engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=params)
        for batch in loader:
            loss = model_engine(batch)
            model_engine.backward(loss)
            model_engine.step()
        """,
    "full_batch_gradient_over_an_inner_loop": """\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            optimizer.zero_grad()
            for x in loader:
                model(x).sum().backward()
            optimizer.step()
        """,
    "closure_shared_with_a_scheduler_probe": """\
        import torch
        def run(constructor):
            optimizer = constructor([weight])
            def fn():
                optimizer.zero_grad()
                loss = weight.sum()
                loss.backward()
                return loss
            fn()
            for i in range(20):
                if i % 2:
                    fn()
                optimizer.step(fn)
        run(torch.optim.SGD)
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []


def test_quiet_when_the_optimizer_and_its_tensor_are_made_anew_each_iteration():
    """Nothing accumulates when every iteration builds a new tensor and a new optimizer over it: the fresh
    tensor has no gradient yet. diffusers pipeline_stable_diffusion_pix2pix_zero.py, reduced:

        for i, t in enumerate(timesteps):
            x_in = latent_model_input.detach().clone()
            x_in.requires_grad = True
            opt = torch.optim.SGD([x_in], lr=cross_attention_guidance_amount)
            with torch.enable_grad():
                noise_pred = self.unet(x_in, t, ...).sample
                loss.loss.backward(retain_graph=False)
                opt.step()
    """
    assert rows("""\
        import torch
        def edit(unet, latents, timesteps, amount):
            for t in timesteps:
                x_in = latents.detach().clone()
                x_in.requires_grad = True
                opt = torch.optim.SGD([x_in], lr=amount)
                with torch.enable_grad():
                    unet(x_in, t).pow(2).mean().backward()
                    opt.step()
                latents = x_in.detach()
        """, code="TL001") == []
    assert rows("""\
        import torch
        def attack(model, batches):
            for x, y in batches:
                delta = torch.zeros_like(x, requires_grad=True)
                opt = torch.optim.Adam([delta], lr=0.01)
                torch.nn.functional.cross_entropy(model(x + delta), y).backward()
                opt.step()
        """, code="TL001") == []


def test_reports_a_new_optimizer_each_iteration_over_a_tensor_that_outlives_it():
    """A new optimizer does not clear the gradient of a tensor made before the loop: it keeps adding up."""
    assert rows("""\
        import torch
        def attack(model, batches):
            delta = torch.zeros(3, requires_grad=True)
            for x in batches:
                opt = torch.optim.SGD([delta], lr=0.01)
                model(x + delta).sum().backward()
                opt.step()
        """, code="TL001") == [(6, "TL001")]


def test_reports_a_new_optimizer_each_iteration_over_a_model():
    """The model's parameters outlive the iteration: their gradients add up whatever optimizer steps them."""
    assert rows("""\
        import torch
        model = torch.nn.Linear(4, 1)
        for x in [torch.randn(2, 4)] * 3:
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            model(x).sum().backward()
            opt.step()
        """, code="TL001") == [(5, "TL001")]
