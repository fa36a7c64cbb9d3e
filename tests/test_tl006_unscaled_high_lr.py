"""TL006 unscaled-high-lr: detection, silence on correct code, thresholds as options, and runtime-verified fixes."""
from __future__ import annotations

import math
import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_both, run_script

import trainlint
from trainlint.analysis import knowledge as K
from trainlint.config import ConfigError, Settings, settings_from_table
from trainlint.rules.tl006_unscaled_high_lr import UnscaledHighLr

BUGS = fixtures("TL006")
FINE_TUNING = fixtures("TL006", "bug_torch_finetune")  # their symptom: fine-tuning gains nothing
DIVERGING = [path for path in BUGS if path not in FINE_TUNING]  # theirs: the loss rises


codes = partial(rows, code="TL006")


def with_thresholds(**thresholds) -> Settings:
    return Settings(rule_options={"unscaled-high-lr": {"thresholds": thresholds}})


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_fix_is_unsafe_only(path):
    source = path.read_text()
    assert trainlint.fix_source(source) == source


@pytest.mark.parametrize("path", DIVERGING, ids=lambda p: p.stem)
def test_runtime_loss_rises_and_the_fix_makes_it_fall(path, tmp_path):
    buggy = run_script(path)
    assert math.isnan(buggy["final"]) or buggy["final"] > 2 * buggy["initial"], \
        "the too-high learning rate should end training above its initial loss (or at nan)"
    fixed = run_script(autofixed(path, tmp_path, unsafe=True))
    assert fixed["initial"] == pytest.approx(buggy["initial"])
    assert fixed["final"] < 0.7 * fixed["initial"], "at the default learning rate the loss must fall"


@pytest.mark.parametrize("path", FINE_TUNING, ids=lambda p: p.stem)
def test_runtime_fine_tuning_gains_nothing_and_the_fix_makes_it_work(path, tmp_path):
    """Fine-tuning a checkpoint at a rate far above what suits it: the held-out loss of the new task ends about
    where the pretrained weights started, several times higher than at the fixed rate, which cuts it well down."""
    buggy, fixed = run_both(path, autofixed(path, tmp_path, unsafe=True))
    assert fixed["initial"] == pytest.approx(buggy["initial"])
    assert math.isnan(buggy["final"]) or buggy["final"] > 0.7 * buggy["initial"], \
        "the too-high rate should waste what the checkpoint knew: no real gain on held-out data"
    assert fixed["final"] < 0.4 * fixed["initial"], "at the fixed rate fine-tuning must cut the held-out loss"
    assert math.isnan(buggy["final"]) or buggy["final"] > 3 * fixed["final"]


def test_fix_sets_the_default_where_the_value_is_written():
    source = textwrap.dedent("""\
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.5)
        args = parser.parse_args()
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        """)
    fixed = trainlint.fix_source(source, unsafe=True)
    assert 'parser.add_argument("--lr", type=float, default=0.001)' in fixed
    assert "lr=args.lr" in fixed  # the flag keeps working


def test_fix_keeps_a_string_default_a_string():
    fixed = trainlint.fix_source(textwrap.dedent("""\
        import torch
        config = {"lr": "1.5"}
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.RMSprop(model.parameters(), lr=float(config["lr"]))
        """), unsafe=True)
    assert 'config = {"lr": "0.01"}' in fixed


def test_no_fix_for_a_computed_rate():
    source = textwrap.dedent("""\
        import torch
        BASE_LR = 0.1
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=BASE_LR * 4)
        """)
    [finding] = trainlint.lint_source(source)
    assert finding.code == "TL006" and finding.fix is None
    assert "= 0.4" in finding.message


def test_message_names_the_constructor_the_value_and_where_it_is_set():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import argparse
        from torch import optim
        parser = argparse.ArgumentParser()
        parser.add_argument("--learning-rate", default=0.5, type=float)
        opts = parser.parse_args()
        optimizer = optim.AdamW(model.parameters(), lr=opts.learning_rate)
        """))
    assert "`optim.AdamW`" in finding.message
    assert "lr=opts.learning_rate (= 0.5, set on line 4)" in finding.message
    assert "500x its default of 0.001" in finding.message
    assert (finding.location.row, finding.location.column) == (6, 48)


@pytest.mark.parametrize("optimizer, lr", [
    ("Adam", "1e-1"), ("AdamW", "0.2"), ("NAdam", "0.2"), ("RAdam", "0.5"), ("Adamax", "0.2"),
    ("RMSprop", "1.0"), ("Adagrad", "2"), ("Adafactor", "1.0"), ("SGD", "1.0"), ("SGD", "5"),
    ("Adadelta", "10.0"), ("SparseAdam", "0.1"), ("ASGD", "1.5"),
])
def test_reports_rates_at_or_above_the_limit(optimizer, lr):
    assert codes(f"""\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = torch.optim.{optimizer}(model.parameters(), lr={lr})
        """) == [(3, "TL006")]


@pytest.mark.parametrize("optimizer, lr", [
    ("Adam", "0.01"),  # pytorch/examples gcn, reinforcement_learning/reinforce.py, FSDP2, keras-core torch demos
    ("Adam", "3e-2"),  # pytorch/examples reinforcement_learning/actor_critic.py
    ("Adam", "0.03"),  # pytorch/examples mnist_forward_forward
    ("Adam", "0.099"), ("AdamW", "0.05"), ("Adamax", "0.1"), ("NAdam", "0.15"), ("RMSprop", "0.5"),
    ("Adagrad", "0.1"), ("SGD", "0.9"), ("Adadelta", "5.0"),
])
def test_quiet_below_the_limit_of_100x_the_default(optimizer, lr):
    """10-30x the default is common, deliberate and trains fine on real code: only 100x is reported."""
    assert codes(f"""\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = torch.optim.{optimizer}(model.parameters(), lr={lr})
        """) == []


@pytest.mark.parametrize("constructor", [
    "keras.optimizers.Adam(learning_rate=0.1)",
    "keras.optimizers.Adam(0.5)",
    "keras.optimizers.Adam(lr=0.2)",  # Keras 2 spelling
    "tf.keras.optimizers.RMSprop(learning_rate=0.3)",
    "tf.keras.optimizers.legacy.Adam(learning_rate=1.0)",
    "tf.keras.optimizers.experimental.AdamW(0.1, weight_decay=0.004)",
    "keras.optimizers.Nadam(learning_rate=0.2)",
    "keras.optimizers.Lion(learning_rate=0.1)",
    "keras.optimizers.Adagrad(learning_rate=1.0)",
    "keras.optimizers.Adadelta(learning_rate=10.0)",
    "keras.optimizers.SGD(1.0, momentum=0.9)",
])
def test_reports_keras_optimizers_at_or_above_the_limit(constructor):
    assert codes(f"""\
        import tensorflow as tf
        from tensorflow import keras
        opt = {constructor}
        """) == [(3, "TL006")]


def test_reports_keras_optimizer_inside_compile():
    assert codes("""\
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=0.5),
            loss="mse",
        )
        model.fit(x, y, epochs=10)
        """) == [(4, "TL006")]


def test_reports_imported_keras_class_with_rate_from_a_constant():
    assert codes("""\
        from keras.optimizers import RMSprop
        LEARNING_RATE = 0.25
        model.compile(optimizer=RMSprop(LEARNING_RATE), loss="mse")
        """) == [(3, "TL006")]


def test_keras_message_and_fix_use_keras_names_and_defaults():
    source = textwrap.dedent("""\
        from tensorflow import keras
        opt = keras.optimizers.SGD(2.0)
        """)
    [finding] = trainlint.lint_source(source)
    assert "`keras.optimizers.SGD` runs at learning_rate=2.0, 200x its default of 0.01" in finding.message
    assert "opt = keras.optimizers.SGD(0.01)" in trainlint.fix_source(source, unsafe=True)


def test_reports_a_positional_rate_and_a_module_constant():
    assert codes("""\
        import torch.optim as optim
        LR = 2
        optimizer = optim.SGD(net.parameters(), LR, momentum=0.9)
        """) == [(3, "TL006")]


def test_reports_the_optimizer_without_a_scheduler_when_the_other_has_one():
    """A GAN: the discriminator's schedule says nothing about the generator's rate."""
    assert codes("""\
        import torch
        opt_g = torch.optim.Adam(netG.parameters(), lr=0.1)
        opt_d = torch.optim.Adam(netD.parameters(), lr=0.1)
        sched_d = torch.optim.lr_scheduler.StepLR(opt_d, step_size=10)
        """) == [(2, "TL006")]


def test_reports_an_optimizer_flag_sharing_a_rate_meant_for_manual_sgd():
    """pytorch/examples word_language_model: `--lr` defaults to 20 for the hand-written SGD update (which
    decays the local `lr`); `--use-optimizer` hands the same 20 to AdamW, and nothing decays that."""
    assert codes("""\
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument('--lr', type=float, default=20)
        parser.add_argument('--use-optimizer', action='store_true')
        args = parser.parse_args()
        model = torch.nn.LSTM(4, 4)
        if args.use_optimizer:
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        lr = args.lr
        for epoch in range(10):
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            lr /= 4.0
        """) == [(9, "TL006")]


def test_reports_inside_a_class_reading_a_module_config():
    assert codes("""\
        import torch
        CONFIG = {"lr": 0.3}
        class Trainer:
            def __init__(self, model):
                self.optimizer = torch.optim.AdamW(model.parameters(), lr=CONFIG["lr"])
        """) == [(5, "TL006")]


def test_thresholds_option_by_class_name_and_by_qualified_name():
    source = """\
        import torch
        a = torch.optim.Adam(model.parameters(), lr=0.5)
        b = torch.optim.SGD(model.parameters(), lr=0.5)
        """
    assert codes(source) == [(2, "TL006")]
    assert codes(source, with_thresholds(Adam=1.0)) == []
    assert codes(source, with_thresholds(**{"torch.optim.SGD": 0.5})) == [(2, "TL006"), (3, "TL006")]
    assert codes(source, with_thresholds(Adam=1.0, SGD=0.1)) == [(3, "TL006")]


def test_thresholds_option_can_restore_the_stricter_10x_limit():
    """The documented example: `thresholds = { Adam = 0.01 }` reports Adam at 10x its default again."""
    source = """\
        import torch
        from tensorflow import keras
        a = torch.optim.Adam(model.parameters(), lr=0.01)
        b = keras.optimizers.Adam(learning_rate=0.01)
        c = torch.optim.Adam(model.parameters(), lr=0.005)
        """
    assert codes(source) == []
    assert codes(source, with_thresholds(Adam=0.01)) == [(3, "TL006"), (4, "TL006")]
    assert codes(source, with_thresholds(**{"keras.optimizers.Adam": 0.01})) == [(4, "TL006")]


def test_thresholds_option_turns_on_an_unchecked_keras_optimizer():
    source = """\
        from tensorflow import keras
        opt = keras.optimizers.Ftrl(learning_rate=0.5)
        """
    assert codes(source) == []
    assert codes(source, with_thresholds(Ftrl=0.1)) == [(2, "TL006")]


def test_thresholds_option_is_validated_as_a_table_of_numbers(tmp_path):
    settings = settings_from_table({"unscaled-high-lr": {"thresholds": {"Adam": 0.05, "SGD": 2}}}, tmp_path)
    assert settings.options_for(UnscaledHighLr())["thresholds"] == {"Adam": 0.05, "SGD": 2.0}
    with pytest.raises(ConfigError):
        settings_from_table({"unscaled-high-lr": {"thresholds": {"Adam": "high"}}}, tmp_path)


def test_the_docs_tables_match_the_knowledge_tables():
    torch_table, keras_table = UnscaledHighLr.page().split("| optimizer (Keras)")
    for qualname, limit in K.UNSCALED_LR_LIMITS.items():
        keras = qualname.startswith("keras.")
        table, defaults = (keras_table, K.KERAS_OPTIMIZERS) if keras else (torch_table, K.TORCH_OPTIMIZERS)
        row = next(line for line in table.splitlines() if f"`{qualname.rsplit('.', 1)[-1]}`" in line)
        _, default, reported_at = [cell.strip() for cell in row.strip("|").split("|")]
        assert (float(default), float(reported_at)) == (defaults[qualname], limit), row


def test_adaptive_limits_are_100x_the_default():
    for qualname in ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.NAdam", "torch.optim.RMSprop",
                     "keras.optimizers.Adam", "keras.optimizers.RMSprop", "keras.optimizers.Nadam"):
        default = {**K.TORCH_OPTIMIZERS, **K.KERAS_OPTIMIZERS}[qualname]
        assert K.UNSCALED_LR_LIMITS[qualname] == pytest.approx(100 * default), qualname


QUIET = {
    # The framework's own defaults and rates below the limits.
    "adadelta_at_its_default_of_1": """\
        import torch.optim as optim
        optimizer = optim.Adadelta(model.parameters(), lr=1.0)
        """,  # pytorch/examples mnist
    "sgd_momentum_at_0_1": """\
        import torch
        optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
        """,
    "adam_at_3e_4": """\
        import torch
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        """,
    "no_lr_argument": """\
        import torch
        optimizer = torch.optim.RMSprop(model.parameters())
        """,
    "lbfgs_searches_its_own_step": """\
        import torch.optim as optim
        optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
        """,  # pytorch/examples time_sequence_prediction
    "rprop_adapts_its_own_step": """\
        import torch
        optimizer = torch.optim.Rprop(model.parameters(), lr=0.5)
        """,
    "unknown_rate_from_a_parameter": """\
        import torch
        def build(model, lr):
            return torch.optim.Adam(model.parameters(), lr=lr)
        """,
    "required_flag_without_default": """\
        import argparse, torch
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, required=True)
        args = parser.parse_args()
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        """,
    "parameter_groups_set_their_own_rates": """\
        import torch
        optimizer = torch.optim.Adam([
            {"params": model.backbone.parameters(), "lr": 1e-4},
            {"params": model.head.parameters(), "lr": 1e-3},
        ], lr=1.0)
        """,
    # Unit tests pick rates for the arithmetic or to blow gradients up on purpose (keras-core tests).
    "sgd_at_1_in_a_unittest_method": """\
        from keras_core import optimizers, testing
        class OptimizerTest(testing.TestCase):
            def test_static_loss_scaling(self):
                optimizer = optimizers.SGD(learning_rate=1.0, loss_scale_factor=1024.0)
                optimizer.apply_gradients([(grads, v)])
        """,  # keras_core/optimizers/optimizer_test.py
    "exploding_rate_in_a_test_function": """\
        import torch
        def test_underflow_is_visible():
            optimizer = torch.optim.SGD(model.parameters(), lr=1e9)
        """,
    # Keras: defaults, strings and rates below the limits.
    "keras_optimizer_string_uses_the_default": """\
        import keras
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, epochs=5)
        """,
    "keras_adam_at_10x": """\
        from tensorflow import keras
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        """,
    "keras_adadelta_at_the_documented_1": """\
        from tensorflow import keras
        opt = keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95)
        """,
    "keras_adagrad_at_0_1": """\
        import keras
        opt = keras.optimizers.Adagrad(learning_rate=0.1)
        """,
    "keras_sgd_at_0_5": """\
        import keras
        opt = keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)
        """,
    "keras_ftrl_is_not_checked": """\
        import keras
        opt = keras.optimizers.Ftrl(learning_rate=0.5)
        """,
    # Keras: something scales the rate down.
    "keras_schedule_object": """\
        import keras
        schedule = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=100, decay_rate=0.9)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
        """,
    "keras_schedule_inline_with_warmup": """\
        import tensorflow as tf
        opt = tf.keras.optimizers.Adam(
            learning_rate=tf.keras.optimizers.schedules.CosineDecay(0.0, 1000, warmup_target=0.5, warmup_steps=100))
        """,
    "keras_learning_rate_schedule_subclass": """\
        import keras
        class WarmUpCosine(keras.optimizers.schedules.LearningRateSchedule):
            def __init__(self, base, warmup):
                self.base, self.warmup = base, warmup
            def __call__(self, step):
                return self.base * keras.ops.minimum(1.0, step / self.warmup)
        opt = keras.optimizers.AdamW(learning_rate=WarmUpCosine(0.5, 100))
        """,
    "keras_reduce_lr_on_plateau_callback": """\
        import keras
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mse")
        reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2)
        model.fit(x, y, validation_split=0.2, callbacks=[reduce_lr])
        """,
    "keras_learning_rate_scheduler_callback": """\
        from tensorflow import keras
        model.compile(optimizer=keras.optimizers.RMSprop(0.2), loss="mse")
        model.fit(x, y, callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)])
        """,
    "keras_learning_rate_assign": """\
        import keras
        optimizer = keras.optimizers.Adam(learning_rate=0.3)
        for epoch in range(10):
            optimizer.learning_rate.assign(0.3 * 0.5 ** epoch)
        """,
    "keras_backend_set_value": """\
        from tensorflow import keras
        from tensorflow.keras import backend as K
        model.compile(optimizer=keras.optimizers.Adam(lr=0.3), loss="mse")
        class Decay(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                K.set_value(self.model.optimizer.lr, 0.3 * 0.5 ** epoch)
        """,
    "keras_callback_writes_the_optimizer_rate": """\
        import keras
        class CustomLearningRateScheduler(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.model.optimizer.learning_rate = self.schedule(epoch)
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mse")
        """,  # keras-core guides/writing_your_own_callbacks.py
    "keras_rate_from_a_parameter": """\
        import keras
        def build(lr):
            return keras.optimizers.Adam(learning_rate=lr)
        """,
    # Something scales the rate down after construction.
    "step_lr_scheduler": """\
        import torch
        optimizer = torch.optim.Adadelta(model.parameters(), lr=50.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
        """,
    "one_cycle_keyword_optimizer": """\
        from torch.optim import AdamW
        from torch.optim.lr_scheduler import OneCycleLR
        optimizer = AdamW(model.parameters(), lr=1.0)
        scheduler = OneCycleLR(optimizer=optimizer, max_lr=0.01, total_steps=100)
        """,  # accelerate tests/test_accelerator.py
    "transformers_warmup": """\
        import torch
        from transformers import get_linear_schedule_with_warmup
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
        scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=100, num_training_steps=1000)
        """,
    "timm_scheduler_factory_with_optimizer_second": """\
        import torch
        from timm.scheduler import create_scheduler
        optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
        lr_scheduler, num_epochs = create_scheduler(args, optimizer)
        """,
    "manual_param_group_write": """\
        import torch
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.06)
        for it in range(1000):
            lr = get_lr(it)
            for param_group in optimizer.param_groups:
                param_group['lr'] = lr
        """,  # nanoGPT train.py
    "adjust_learning_rate_helper": """\
        import torch
        def adjust_learning_rate(optimizer, epoch, lr):
            for group in optimizer.param_groups:
                group["lr"] = lr * (0.1 ** (epoch // 30))
        optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
        for epoch in range(90):
            adjust_learning_rate(optimizer, epoch, 5.0)
        """,
    "local_warmup_scheduler_class": """\
        import torch
        class WarmupScheduler:
            def __init__(self, optimizer, warmup_steps):
                self.optimizer = optimizer
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        warmup = WarmupScheduler(optimizer, warmup_steps=500)
        """,
    "scheduler_built_in_a_helper_given_the_optimizer": """\
        import torch
        def make_scheduler(opt):
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        scheduler = make_scheduler(optimizer)
        """,
    "scheduler_on_the_optimizer_attribute_of_a_trainer": """\
        import torch
        class Trainer:
            def __init__(self, model):
                self.optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
            def setup(self):
                self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.9)
        """,
    "hf_trainer_schedules_the_optimizer_it_is_given": """\
        import torch
        from transformers import Trainer
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
        trainer = Trainer(model=model, args=training_args, optimizers=(optimizer, None))
        """,
    "swa_lr": """\
        import torch
        from torch.optim.swa_utils import SWALR
        optimizer = torch.optim.SGD(model.parameters(), lr=1.5)
        swa_scheduler = SWALR(optimizer, swa_lr=0.05)
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []


# -- what an optimizer optimises: per-sample optimisation is not model training ------------------------------
@pytest.mark.parametrize("tensor", [
    "cs = torch.nn.Parameter(latent.detach().clone())",
    "cs = latent.clone().requires_grad_()",
    "cs = torch.zeros(1, 4, 64, 64, requires_grad=True)",
    "cs = torch.zeros_like(latent, requires_grad=True)",
])
def test_quiet_on_an_optimizer_over_a_data_tensor(tensor):
    """An optimizer over a latent, an input image or a perturbation optimises one sample, not a model: the
    limits measured on model training do not apply. diffusers examples/community/fresco_v2v.py, reduced:

        latent = rearrange(sample.to(torch.float32), "(b f) c h w -> b f c h w", f=video_length)
        cs = torch.nn.Parameter((latent.detach().clone()))
        optimizer = torch.optim.Adam([cs], lr=0.2)
    """
    assert codes(f"""\
        import torch
        def optimize_feature(sample, steps=20):
            latent = sample.to(torch.float32)
            {tensor}
            optimizer = torch.optim.Adam([cs], lr=0.2)
            for _ in range(steps):
                optimizer.zero_grad()
                (cs - latent).pow(2).mean().backward()
                optimizer.step()
        """) == []


def test_quiet_on_an_input_whose_gradient_is_asked_for_by_assignment():
    """The TF/PyTorch style-transfer and DeepDream shape: `img.requires_grad = True`, then Adam over `[img]`."""
    assert codes("""\
        import torch
        img = load_image("content.jpg")
        img.requires_grad = True
        optimizer = torch.optim.Adam([img], lr=0.5)
        """) == []


def test_reports_a_model_trained_next_to_a_data_tensor():
    """A model's parameters in the same optimizer make it model training again."""
    assert codes("""\
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        z = torch.zeros(4, requires_grad=True)
        optimizer = torch.optim.Adam([z, *model.parameters()], lr=0.5)
        """) == [(4, "TL006")]


# -- SGD: clipping bounds the step ----------------------------------------------------------------------------
def test_quiet_on_sgd_whose_gradients_are_clipped():
    """A recurrent language model at SGD lr 30 with its gradients clipped to 0.25: each step is at most
    lr * max_norm. salesforce/awd-lstm-lm main.py, reduced:

        params = list(model.parameters()) + list(criterion.parameters())
        optimizer = torch.optim.SGD(params, lr=args.lr, weight_decay=args.wdecay)   # --lr default 30
        ...
            loss.backward()
            if args.clip: torch.nn.utils.clip_grad_norm_(params, args.clip)        # --clip default 0.25
            optimizer.step()
    """
    assert codes("""\
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument('--lr', type=float, default=30)
        parser.add_argument('--clip', type=float, default=0.25)
        args = parser.parse_args()
        params = list(model.parameters()) + list(criterion.parameters())
        optimizer = torch.optim.SGD(params, lr=args.lr, weight_decay=1.2e-6)
        for data, targets in batches:
            optimizer.zero_grad()
            criterion(model(data), targets).backward()
            if args.clip: torch.nn.utils.clip_grad_norm_(params, args.clip)
            optimizer.step()
        """) == []


def test_quiet_on_sgd_clipped_through_the_model_it_trains():
    assert codes("""\
        import torch
        optimizer = torch.optim.SGD(model.parameters(), lr=20)
        for data, targets in batches:
            optimizer.zero_grad()
            loss_fn(model(data), targets).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
        """) == []


def test_reports_sgd_when_another_model_is_clipped():
    assert codes("""\
        import torch
        opt_g = torch.optim.SGD(generator.parameters(), lr=20)
        opt_d = torch.optim.SGD(discriminator.parameters(), lr=0.01)
        for x in batches:
            opt_g.zero_grad()
            opt_d.zero_grad()
            loss(generator, discriminator, x).backward()
            torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 0.25)
            opt_g.step()
            opt_d.step()
        """) == [(2, "TL006")]


def test_clipping_does_not_lift_the_adam_limit():
    """Adam normalises each update: clipping the gradient does not make its steps smaller. pytorch/examples
    word_language_model hands its SGD rate (20, with clip 0.25) to AdamW under `--use-optimizer`."""
    assert codes("""\
        import torch
        optimizer = torch.optim.AdamW(model.parameters(), lr=20)
        for data, targets in batches:
            optimizer.zero_grad()
            loss_fn(model(data), targets).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
        """) == [(2, "TL006")]


def test_quiet_on_keras_sgd_that_clips_its_own_updates():
    assert codes("""\
        import keras
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=20.0, clipnorm=0.25), loss="mse")
        """) == []


def test_quiet_on_sgd_returned_from_lightning_configure_optimizers():
    """The Trainer owns the loop and its clipping (`Trainer(gradient_clip_val=0.25)`): unknown here.
    Lightning-AI/pytorch-lightning src/lightning/pytorch/demos/lstm.py (adapted from pytorch/examples'
    word language model, lr 20 with clip 0.25), reduced:

        class LightningLSTM(LightningModule):
            def configure_optimizers(self) -> Optimizer:
                return torch.optim.SGD(self.parameters(), lr=20.0)
    """
    assert codes("""\
        import torch
        from lightning.pytorch import LightningModule
        class LightningLSTM(LightningModule):
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=20.0)
        """) == []


# -- Keras 2 decay --------------------------------------------------------------------------------------------
def test_quiet_on_a_keras_optimizer_that_decays_its_own_rate():
    """Keras 2's `decay=` lowers the rate as lr / (1 + decay * iterations). simisimon/kaggle-notebooks
    osic-multiple-quantile-regression, reduced:

        model.compile(loss=mloss(0.1), optimizer=tf.keras.optimizers.Adam(lr=0.1, beta_1=0.9, beta_2=0.999,
                      epsilon=None, decay=0.01, amsgrad=False), metrics=[score])
    """
    assert codes("""\
        import tensorflow as tf
        model.compile(loss="mse", optimizer=tf.keras.optimizers.Adam(lr=0.1, decay=0.01))
        """) == []
    assert codes("""\
        import tensorflow as tf
        model.compile(loss="mse", optimizer=tf.keras.optimizers.Adam(lr=0.1, decay=0.0))
        """) == [(2, "TL006")]


# -- one linear layer -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    """\
        import tensorflow as tf
        from tensorflow.keras import layers
        normalizer = layers.Normalization(input_shape=[1,], axis=None)
        horsepower_model = tf.keras.Sequential([normalizer, layers.Dense(units=1)])
        horsepower_model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.1), loss='mean_absolute_error')
        """,  # tensorflow/docs site/en/tutorials/keras/regression.ipynb
    """\
        import tensorflow as tf
        class Net(tf.keras.Model):
            def __init__(self):
                super(Net, self).__init__()
                self.l1 = tf.keras.layers.Dense(5)
            def call(self, x):
                return self.l1(x)
        net = Net()
        opt = tf.keras.optimizers.Adam(0.1)
        ckpt = tf.train.Checkpoint(step=tf.Variable(1), optimizer=opt, net=net)
        """,  # tensorflow/docs site/en/guide/checkpoint.ipynb ("A simple linear model")
    """\
        import torch
        from torch_geometric.nn import SGConv
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = SGConv(in_channels=1433, out_channels=7, K=2, cached=True)
        model, data = Net().to(device), data.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.2, weight_decay=0.005)
        """,  # pyg-team/pytorch_geometric examples/sgc.py (the SGC paper trains at Adam 0.2)
    """\
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mse")
        """,  # fchollet/deep-learning-with-python-notebooks chapter03: a linear classifier
], ids=["tf_regression_tutorial", "tf_checkpoint_guide", "pyg_sgc", "dlwp_linear_classifier"])
def test_quiet_on_one_linear_layer_below_five_times_the_limit(source):
    """A linear or logistic regression is convex and Adam's steps stay bounded: rates of 0.1-0.3 converge
    (measured: Adam on linear regression reaches the noise floor at 0.1-0.3 whatever the targets' scale,
    and ends above its initial loss at 1.0 on small targets)."""
    assert codes(source) == []


def test_reports_one_linear_layer_at_five_times_the_limit():
    assert codes("""\
        import torch
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
        """) == [(3, "TL006")]


def test_a_linear_layer_inside_a_deeper_model_keeps_the_network_limit():
    """The head of `nn.Sequential(body, head)` learns on features the body is still changing: not convex."""
    assert codes("""\
        import torch
        from torch import nn
        body = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
        head = nn.Linear(32, 1)
        model = nn.Sequential(body, head)
        head_optimizer = torch.optim.Adam(head.parameters(), lr=0.2)
        """) == [(6, "TL006")]


# -- contexts: fine-tuning a pretrained model, a Post-LN transformer from scratch -----------------------------
BERT = """\
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr={lr})
    for batch in loader:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    """


@pytest.mark.parametrize("lr", ["1e-3", "2e-3", "0.01"])
def test_reports_fine_tuning_a_pretrained_transformer_at_1e_3_or_more(lr):
    assert codes(BERT.format(lr=lr)) == [(5, "TL006")]


@pytest.mark.parametrize("lr", ["5e-5", "2e-5", "3e-4", "9e-4"])
def test_quiet_on_fine_tuning_a_pretrained_transformer_below_1e_3(lr):
    assert codes(BERT.format(lr=lr)) == []


def test_fine_tuning_message_names_the_context_and_the_pretrained_model():
    [finding] = trainlint.lint_source(textwrap.dedent(BERT.format(lr="1e-3")))
    assert "while fine-tuning the pretrained transformer `model`" in finding.message
    assert "AutoModelForSequenceClassification.from_pretrained(" in finding.message and "line 4" in finding.message
    assert "BERT and RoBERTa fine-tune at 1e-5 to 5e-5" in finding.message


def test_fine_tuning_fix_writes_the_hugging_face_default():
    fixed = trainlint.fix_source(textwrap.dedent(BERT.format(lr="1e-3")), unsafe=True)
    assert "optimizer = torch.optim.AdamW(model.parameters(), lr=5e-05)" in fixed
    assert codes(fixed) == []


def test_reports_the_default_adam_rate_when_fine_tuning_a_transformer():
    """`AdamW(model.parameters())` runs at 1e-3: 20-50 times what BERT fine-tuning uses. No fix: nothing to edit."""
    source = """\
        import torch
        from transformers import BertForSequenceClassification
        model = BertForSequenceClassification.from_pretrained("bert-base-uncased")
        optimizer = torch.optim.AdamW(model.parameters())
        train(model, optimizer)
        """
    [finding] = trainlint.lint_source(textwrap.dedent(source))
    assert (finding.code, finding.location.row) == ("TL006", 4) and finding.fix is None
    assert "its default lr=0.001" in finding.message


def test_reports_a_pretrained_transformer_held_by_the_model_class():
    assert codes("""\
        import torch
        from torch import nn
        from transformers import BertModel
        class Classifier(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.bert = BertModel.from_pretrained("bert-base-cased")
                self.out = nn.Linear(768, n)
        model = Classifier(3).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """) == [(10, "TL006")]


@pytest.mark.parametrize("schedule", [
    "scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=100, num_training_steps=1000)",
    "scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=1000)",
    "scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=100)",
    "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)",
    "trainer = Trainer(model=model, args=args, optimizers=(optimizer, None))",
])
def test_quiet_on_fine_tuning_with_a_schedule(schedule):
    assert codes(f"""\
        import torch
        from transformers import AutoModelForSequenceClassification, Trainer, get_linear_schedule_with_warmup
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        {schedule}
        train(model, optimizer)
        """) == []


def test_reports_fine_tuning_a_pretrained_cnn_at_1e_2_not_at_1e_3():
    """CNN fine-tuning at Adam's default 1e-3 is common and works (batch-norm networks take it); 10x that on
    pretrained weights wipes out their features (fixtures/TL006/bug_torch_finetune_checkpoint.py measures it)."""
    source = """\
        import torch
        import torchvision
        model = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.DEFAULT)
        model.fc = torch.nn.Linear(2048, 10)
        optimizer = torch.optim.Adam(model.parameters(), lr={lr})
        train(model, optimizer)
        """
    assert codes(source.format(lr="1e-2")) == [(5, "TL006")]
    assert codes(source.format(lr="1e-3")) == []


@pytest.mark.parametrize("constructor", [
    'torchvision.models.vit_b_16(weights="IMAGENET1K_V1")',
    'timm.create_model("vit_base_patch16_224", pretrained=True, num_classes=10)',
])
def test_a_pretrained_vision_transformer_takes_the_transformer_limit(constructor):
    assert codes(f"""\
        import torch, torchvision, timm
        model = {constructor}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """) == [(3, "TL006")]


def test_quiet_when_the_model_is_not_pretrained():
    assert codes("""\
        import torch, torchvision, timm
        a = torchvision.models.resnet50(weights=None)
        b = timm.create_model("resnet50", pretrained=False)
        c = torchvision.models.resnet18()
        optimizers = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (a, b, c)]
        opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
        opt_b = torch.optim.Adam(b.parameters(), lr=1e-2)
        opt_c = torch.optim.Adam(c.parameters(), lr=1e-2)
        train([a, b, c], [opt_a, opt_b, opt_c])
        """) == []


@pytest.mark.parametrize("freeze", [
    "for param in model.parameters():\n    param.requires_grad = False",
    "model.requires_grad_(False)",
    "model = get_peft_model(model, LoraConfig(r=8))",
])
def test_quiet_on_a_frozen_backbone_whose_new_head_trains(freeze):
    """Training a new head at 1e-3-1e-2 on a frozen pretrained backbone is the recommended first phase of
    transfer learning (keras.io guides/transfer_learning): when the script freezes parameters, which part
    trains is not told apart, and the fine-tuning context does not apply."""
    assert codes(f"""\
        import torch
        import torchvision
        from peft import LoraConfig, get_peft_model
        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        {textwrap.indent(freeze, "        ").lstrip()}
        model.fc = torch.nn.Linear(2048, 10)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        train(model, optimizer)
        """) == []


def test_quiet_on_an_optimizer_over_the_new_head_only():
    assert codes("""\
        import torch
        import torchvision
        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        model.fc = torch.nn.Linear(2048, 10)
        optimizer = torch.optim.Adam(model.fc.parameters(), lr=1e-2)
        train(model, optimizer)
        """) == []


def test_reports_a_keras_application_fine_tuned_with_its_imagenet_weights():
    """`keras.applications` load "imagenet" weights unless told `weights=None`."""
    source = """\
        import keras
        base = keras.applications.ResNet50(include_top=False, pooling="avg"{weights})
        {freeze}
        inputs = keras.Input((224, 224, 3))
        outputs = keras.layers.Dense(10)(base(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
        """
    assert codes(source.format(weights="", freeze="")) == [(7, "TL006")]
    assert codes(source.format(weights=", weights=None", freeze="")) == []
    assert codes(source.format(weights="", freeze="base.trainable = False")) == []


def test_reports_fine_tuning_from_a_loaded_checkpoint():
    assert codes("""\
        import torch
        from torch import nn
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
        checkpoint = torch.load("pretrained.pt")
        model.load_state_dict(checkpoint["model"])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        train(model, optimizer)
        """) == [(6, "TL006")]


def test_quiet_when_a_checkpoint_resumes_the_run():
    """Restoring the optimizer with the model resumes a run: the checkpoint is its own, not a pretrained one."""
    assert codes("""\
        import torch
        from torch import nn
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        if args.resume:
            checkpoint = torch.load(args.resume)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
        train(model, optimizer)
        """) == []


TRANSFORMER = """\
    import torch
    from torch import nn
    class Model(nn.Module):
        def __init__(self, d_model=512, nhead=8, layers=6):
            super().__init__()
            layer = nn.TransformerEncoderLayer(d_model, nhead{norm_first})
            self.encoder = nn.TransformerEncoder(layer, layers)
            self.head = nn.Linear(d_model, 10)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr={lr})
    {schedule}
    train(model, optimizer)
    """


def test_reports_a_post_ln_transformer_from_scratch_at_1e_3_without_warmup():
    assert codes(TRANSFORMER.format(norm_first="", lr="1e-3", schedule="")) == [(10, "TL006")]
    assert codes(TRANSFORMER.format(norm_first=", norm_first=False", lr="1e-3", schedule="")) == [(10, "TL006")]
    # a decay alone does not help the first steps
    assert codes(TRANSFORMER.format(norm_first="", lr="1e-3",
                                    schedule="s = torch.optim.lr_scheduler.StepLR(optimizer, 10)")) == [(10, "TL006")]


@pytest.mark.parametrize("norm_first, lr, schedule", [
    ("", "1e-4", ""),  # pytorch/examples language_translation trains nn.Transformer at 1e-4 without warmup
    (", norm_first=True", "1e-3", ""),  # Pre-LN trains without warmup (Xiong et al. 2020)
    (", norm_first=args.pre_norm", "1e-3", ""),  # the command line decides: Pre-LN or Post-LN is unknown
    (", norm_first=d_model > 256", "1e-3", ""),  # computed: unknown too
    (", norm_first=False", "1e-4", ""),
    ("", "1e-3", "s = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=4000)"),
    ("", "1e-3", "s = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / 4000))"),
])
def test_quiet_on_a_transformer_from_scratch_with_warmup_pre_ln_unknown_norm_or_a_low_rate(norm_first, lr, schedule):
    assert codes(TRANSFORMER.format(norm_first=norm_first, lr=lr, schedule=schedule)) == []


def test_from_scratch_fix_writes_the_rate_pytorch_examples_use():
    fixed = trainlint.fix_source(textwrap.dedent(TRANSFORMER.format(norm_first="", lr="1e-3", schedule="")),
                                 unsafe=True)
    assert "lr=0.0001" in fixed and codes(fixed) == []


def test_reports_a_post_ln_hugging_face_model_built_from_a_config():
    assert codes("""\
        import torch
        from transformers import BertConfig, BertForMaskedLM
        model = BertForMaskedLM(BertConfig())
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """) == [(4, "TL006")]


@pytest.mark.parametrize("model", [
    "GPT2LMHeadModel(GPT2Config())",  # Pre-LN: trains without warmup
    "AutoModelForCausalLM.from_config(config)",  # which architecture is unknown
])
def test_quiet_on_pre_ln_or_unknown_hugging_face_models_from_scratch(model):
    assert codes(f"""\
        import torch
        from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel
        model = {model}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """) == []


def test_quiet_on_hand_written_attention_blocks():
    """Where a hand-written block puts its layer norm, and how deep it is, decide whether warmup is needed; the
    Keras examples train one Post-LN `MultiHeadAttention` block at Adam's default 1e-3 without warmup."""
    assert codes("""\
        import torch
        from torch import nn
        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.attn = nn.MultiheadAttention(d, 4)
                self.norm = nn.LayerNorm(d)
            def forward(self, x):
                return self.norm(x + self.attn(x, x, x)[0])
        model = Block(64)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """) == []


def test_context_limits_option_moves_a_context_limit():
    source = textwrap.dedent(BERT.format(lr="5e-4"))
    settings = Settings(rule_options={"unscaled-high-lr": {"context_limits": {"pretrained-transformer": 4e-4}}})
    assert codes(source) == []
    assert codes(source, settings) == [(5, "TL006")]


def test_quiet_on_an_optimizer_replaced_before_it_is_used():
    """A cheat sheet builds an optimizer to show the API and replaces it before anything trains.
    mrdbourke/pytorch-deep-learning extras/pytorch_cheatsheet.ipynb, reduced (cells 55 and 65):

        model = nn.Transformer()
        optimizer = torch.optim.Adam(lr=0.001, params=model.parameters())
        ...
        optimizer = torch.optim.SGD(params=model_1.parameters(), lr=0.01)
        for epoch in range(epochs): ... optimizer.step()
    """
    assert codes("""\
        import torch
        from torch import nn
        model = nn.Transformer()
        optimizer = torch.optim.Adam(lr=0.001, params=model.parameters())
        model_1 = nn.Sequential(nn.Linear(1, 1))
        optimizer = torch.optim.SGD(params=model_1.parameters(), lr=0.01)
        for epoch in range(100):
            optimizer.zero_grad()
            model_1(x).sum().backward()
            optimizer.step()
        """) == []


def test_a_reassigned_model_name_takes_the_assignment_that_reaches_the_optimizer():
    """A notebook reuses `model`: a pretrained ResNet explained in one cell, a new MLP trained in another.
    jeffheaton/app_deep_learning t81_558_class_12_5_limitations.ipynb, reduced (cells 9 and 12):

        model = models.resnet18(weights=weights).eval()
        ...
        model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    """
    source = """\
        import torch
        from torch import nn
        from torchvision import models
        model = models.resnet18(weights="IMAGENET1K_V1").eval()
        saliency(model, image)
        model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
        train(model, opt)
        """
    assert codes(source) == []
    # ... and `model = model.to(device)` after the pretrained one still reaches back to it
    assert codes("""\
        import torch
        from torchvision import models
        model = models.resnet18(weights="IMAGENET1K_V1")
        model = model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        train(model, opt)
        """) == [(5, "TL006")]


def test_quiet_on_a_best_checkpoint_reloaded_after_training():
    """Loading the best weights back after training is not fine-tuning. snap-stanford/ogb
    examples/lsc/mag240m/preprocess_correct_and_smooth.py, reduced:

        model = MLP(...).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)      # --lr default 0.01
        for epoch in range(1, args.epochs + 1):
            loss = train(model, x_train, y_train, args.batch_size, optimizer)
            ...
                torch.save(model.state_dict(), 'results/cs/model.pt')
        model.load_state_dict(torch.load('results/cs/model.pt'))
        model.eval()
    """
    assert codes("""\
        import torch
        def train(model, x, y, optimizer):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        model = MLP(128, 512, 153).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for epoch in range(100):
            train(model, x_train, y_train, optimizer)
            torch.save(model.state_dict(), 'results/cs/model.pt')
        model.load_state_dict(torch.load('results/cs/model.pt'))
        model.eval()
        """) == []


def test_quiet_when_a_helper_sets_which_parameters_train():
    """`set_trainable(model.bert, False)`: a helper freezes the pretrained encoder, only the head trains.
    simisimon/kaggle-notebooks gendered-pronoun-resolution kernel55afed7533, reduced:

        self.bert = BertModel.from_pretrained(bert_model).to(device)      # in GAPModel.__init__
        def set_trainable_attr(m, b):
            m.trainable = b
            for p in m.parameters(): p.requires_grad = b
        model = GAPModel(BERT_MODEL, torch.device("cuda:0"))
        set_trainable(model.bert, False)
        set_trainable(model.head, True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)   # lr = 1e-3
    """
    source = """\
        import torch
        from torch import nn
        from transformers import BertModel
        class GAPModel(nn.Module):
            def __init__(self, name):
                super().__init__()
                self.bert = BertModel.from_pretrained(name)
                self.head = nn.Linear(768, 3)
        def set_trainable(m, b):
            for p in m.parameters():
                p.requires_grad = b
        model = GAPModel("bert-large-uncased")
        {freeze}
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train(model, optimizer)
        """
    assert codes(source.format(freeze="set_trainable(model.bert, False)")) == []
    assert codes(source.replace("p.requires_grad = b", "print(p)").format(freeze="")) == [(14, "TL006")]


def test_quiet_on_a_scheduler_class_named_like_torchs():
    """`TriangularLR(optimizer, 20, ratio=2, steps_per_cycle=n_steps)`: a project's own scheduler class."""
    assert codes("""\
        import torch
        optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
        bot.train(n_steps, scheduler=TriangularLR(optimizer, 20, ratio=2, steps_per_cycle=n_steps))
        """) == []
