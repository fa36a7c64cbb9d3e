"""TL006 unscaled-high-lr: detection, silence on correct code, thresholds as options, and runtime-verified fixes."""
from __future__ import annotations

import math
import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, rows, run_script

import trainlint
from trainlint.analysis import knowledge as K
from trainlint.config import ConfigError, Settings, settings_from_table
from trainlint.rules.tl006_unscaled_high_lr import UnscaledHighLr

BUGS = fixtures("TL006")


codes = partial(rows, code="TL006")


def with_thresholds(**thresholds) -> Settings:
    return Settings(rule_options={"unscaled-high-lr": {"thresholds": thresholds}})


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_fix_is_unsafe_only(path):
    source = path.read_text()
    assert trainlint.fix_source(source) == source


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_loss_rises_and_the_fix_makes_it_fall(path, tmp_path):
    buggy = run_script(path)
    assert math.isnan(buggy["final"]) or buggy["final"] > 2 * buggy["initial"], \
        "the too-high learning rate should end training above its initial loss (or at nan)"
    fixed = run_script(autofixed(path, tmp_path, unsafe=True))
    assert fixed["initial"] == pytest.approx(buggy["initial"])
    assert fixed["final"] < 0.7 * fixed["initial"], "at the default learning rate the loss must fall"


def test_fix_sets_the_default_where_the_value_is_written():
    source = textwrap.dedent("""\
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.5)
        args = parser.parse_args()
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        """)
    fixed = trainlint.fix_source(source, unsafe=True)
    assert 'parser.add_argument("--lr", type=float, default=0.001)' in fixed
    assert "lr=args.lr" in fixed  # the flag keeps working


def test_fix_keeps_a_string_default_a_string():
    fixed = trainlint.fix_source(textwrap.dedent("""\
        import torch
        config = {"lr": "1.5"}
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.RMSprop(model.parameters(), lr=float(config["lr"]))
        """), unsafe=True)
    assert 'config = {"lr": "0.01"}' in fixed


def test_no_fix_for_a_computed_rate():
    source = textwrap.dedent("""\
        import torch
        BASE_LR = 0.1
        model = torch.nn.Linear(4, 1)
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
        model = torch.nn.Linear(4, 1)
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
        model = torch.nn.Linear(4, 1)
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
    assert settings.options_for(UnscaledHighLr()) == {"thresholds": {"Adam": 0.05, "SGD": 2.0}}
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
