from __future__ import annotations

import re

from ..analysis import ScriptModel
from ..analysis import knowledge as K
from ..analysis.hyperparams import OptimizerBuild, controls_optimizer
from ..analysis.optimised import TENSORS, TrainingContext
from ..analysis.names import last
from ..fixes import UNSAFE, Fix, Replace
from .base import FIX_UNSAFE, Rule, Violation


class UnscaledHighLr(Rule):
    """
    ## What it does
    Checks for optimizers built with a learning rate far above what is safe for them when nothing in
    the file scales it down: no LR scheduler or warmup is attached to that optimizer, no helper such as
    `adjust_learning_rate(optimizer, epoch)` is handed it, and no `param_group["lr"]` is ever rewritten.
    For Keras, the rate must be a number (not a `keras.optimizers.schedules` object or any other
    `LearningRateSchedule`), no `ReduceLROnPlateau` or `LearningRateScheduler` callback is built, and
    nothing calls `optimizer.learning_rate.assign(...)` or `K.set_value(optimizer.lr, ...)`.

    The value is resolved through literals, module constants, arithmetic, `argparse` defaults
    (`lr=args.lr`) and config dicts (`config["lr"]`), whether passed by keyword (`lr=`, Keras's
    `learning_rate=` or its legacy `lr=`) or by position, also inside `model.compile(optimizer=...)`.
    `optimizer="adam"` strings use the default rate and are never reported. By default the limit is 100x
    the framework's default learning rate for the adaptive optimizers, and 1.0 for plain SGD:

    | optimizer (PyTorch) | default lr | reported at lr >= |
    |---|---|---|
    | `Adam`, `AdamW`, `RAdam`, `SparseAdam` | 0.001 | 0.1 |
    | `Adamax`, `NAdam` | 0.002 | 0.2 |
    | `RMSprop`, `Adagrad`, `Adafactor` | 0.01 | 1.0 |
    | `Adadelta` | 1.0 | 10 |
    | `SGD` | 0.001 | 1.0 |
    | `ASGD` | 0.01 | 1.0 |

    | optimizer (Keras) | default lr | reported at lr >= |
    |---|---|---|
    | `Adam`, `AdamW`, `Adamax`, `Nadam`, `RMSprop`, `Lamb` | 0.001 | 0.1 |
    | `Lion` | 0.001 | 0.1 |
    | `Adagrad`, `Adafactor` | 0.001 | 1.0 |
    | `Adadelta` | 0.001 | 10 |
    | `SGD` | 0.01 | 1.0 |

    Why 100x and not 10x: on real training code (the PyTorch examples, Keras examples and popular
    libraries) rates of 10-30x the default are common, deliberate and train fine (Adam at 0.01 for a
    small GCN or policy network, 0.03 for forward-forward training), while the rates that really
    diverged were 100x and more. Keras's low defaults for `Adagrad`, `Adafactor` and `Adadelta` (whose
    own documentation suggests 1.0) take the PyTorch limits. `Rprop` and `LBFGS` adapt or search their
    own step size, and Keras's `Ftrl` is mostly used for sparse linear models: they are not checked.
    Parameter groups that set their own `"lr"` are not checked either, nor optimizers built in unit tests
    (`def test_...`, `class ...Test`), which pick rates for the arithmetic or to make gradients explode.

    ## Why is this bad?
    Adaptive optimizers normalise each update, so every weight moves by about `lr` per step whatever the
    gradient's size: at 100x the default the first steps already overshoot, and without warmup or decay
    nothing brings the rate back down. The loss rises or turns into `nan` a few steps into training, and
    no error is raised.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    ```
    ```python
    import keras

    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.5), loss="mse")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    ```
    ```python
    import keras

    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    ```
    A high peak rate is fine when a scheduler brings it in gently, e.g.
    `torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=n)`, or
    `LinearLR(optimizer, start_factor=0.01, total_iters=warmup)` chained with a decay; in Keras,
    `keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.CosineDecay(0.0, steps,
    warmup_target=0.5, warmup_steps=warmup))`.

    ## Options
    `thresholds`: the limit per optimizer, by class name (`Adam`, for both frameworks) or qualified name
    (`torch.optim.Adam`, `keras.optimizers.Adam`); it replaces the default above for that optimizer. A
    limit for `Rprop`, `LBFGS` or `Ftrl` turns their check on. For a stricter check at 10x the default:

    ```toml
    [tool.trainlint.unscaled-high-lr]
    thresholds = { Adam = 0.01, AdamW = 0.01, RMSprop = 0.1 }
    ```

    ## Fix safety
    The fix sets the learning rate back to the framework's default (`0.001` for Adam), editing the one
    literal the value comes from: the argument itself, the module constant, or the `argparse` default.
    It is offered only when the value is written as such a literal (not computed), and it is unsafe: it
    changes a hyperparameter, and the default may train more slowly than a tuned rate with a scheduler.
    Adding a warmup was not chosen as the fix: warmup alone does not help once the rate reaches its peak.
    """

    code = "TL006"
    name = "unscaled-high-lr"
    summary = "Learning rate far above the optimizer's safe range, with no scheduler or warmup"
    fix = FIX_UNSAFE
    options = {"thresholds": {}, "context_limits": {kind: limit for kind, (limit, _) in K.CONTEXT_LR_LIMITS.items()}}
    requires = (("Adam", "SGD", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Adafactor", "Rprop", "LBFGS", "Ftrl", "Lion",
                 "Lamb"),)  # a known optimizer
    sees_helpers = False  # it reads the optimizers this file builds; another module's are reported there

    def check(self, model: ScriptModel, options):
        thresholds = options.get("thresholds") or {}
        context_limits = options.get("context_limits") or {}
        facts = model.optimisation
        edited: set[int] = set()
        for build in model.optimizer_builds:
            limit = _limit(build.qualname, thresholds)
            if limit is None or build.per_group_lr or build.in_test or build.decays:
                continue
            value = model.values.number(build.lr, build.function) if build.lr is not None else \
                _default_lr(build.qualname)
            if value is None or facts.optimised(build).kind == TENSORS:
                continue  # a latent, an input, a perturbation: per-sample optimisation, not model training
            controls = [c for c in model.lr_controls if controls_optimizer(c, build, model.roles)]
            context = _context(facts, build, value, controls, context_limits)
            if context is None and not _above_limit(facts, build, value, limit, controls):
                continue
            literal = model.values.literal(build.lr, build.function) if build.lr is not None else None
            fix = None
            if literal is not None and id(literal) not in edited:
                edited.add(id(literal))
                fix = _fix(model, build, literal, context)
            yield Violation(build.lr if build.lr is not None else build.call,
                            _message(model, build, value, literal, context), fix)


def _above_limit(facts, build: OptimizerBuild, value: float, limit: float, controls) -> bool:
    """The general limit: 100x the default (10x more for one linear layer), SGD unless its gradients are clipped."""
    if build.lr is None or value < limit or controls:
        return False
    if facts.linear(build) and value < limit * K.LINEAR_MODEL_LIMIT_FACTOR:
        return False  # a linear or logistic regression: convex, and Adam's steps stay bounded
    if build.qualname in K.SGD_FAMILY and facts.clipped(build) is not False:
        return False  # each step is at most lr * max_norm (or the loop that may clip it is not in this file)
    return True


def _context(facts, build: OptimizerBuild, value: float, controls, limits: dict) -> TrainingContext | None:
    """The context (fine-tuning a pretrained model, a Post-LN transformer from scratch) whose lower limit the
    rate reaches with nothing to bring it down: no scheduler or decay when fine-tuning, no warmup from scratch."""
    if build.qualname not in K.ADAM_FAMILY:
        return None
    context = facts.context(build)
    if context is None or value < limits.get(context.kind, K.CONTEXT_LR_LIMITS[context.kind][0]):
        return None
    if context.kind == K.TRANSFORMER_FROM_SCRATCH:
        return None if any(c.warms_up for c in controls) else context
    return None if controls else context


def _limit(qualname: str, thresholds: dict) -> float | None:
    if qualname not in K.UNSCALED_LR_LIMITS and qualname not in K.TORCH_OPTIMIZERS \
            and qualname not in K.KERAS_OPTIMIZERS:
        return None
    for key in (qualname, last(qualname)):
        if key in thresholds:
            return float(thresholds[key])
    return K.UNSCALED_LR_LIMITS.get(qualname)


def _default_lr(qualname: str) -> float | None:
    return K.TORCH_OPTIMIZERS.get(qualname, K.KERAS_OPTIMIZERS.get(qualname))


_CONTEXT_WORDS = {
    K.PRETRAINED_TRANSFORMER: ("while fine-tuning the pretrained transformer",
                               "and no LR scheduler, warmup or decay ever lowers it: at 1e-3 and above fine-tuning "
                               "tends to wipe out what pretraining learned (BERT and RoBERTa fine-tune at 1e-5 to "
                               "5e-5)"),
    K.PRETRAINED_NETWORK: ("while fine-tuning the pretrained network",
                           "and no LR scheduler, warmup or decay ever lowers it: steps this large on pretrained "
                           "weights tend to wipe out the features they hold, and fine-tuning gains little or nothing"),
    K.TRANSFORMER_FROM_SCRATCH: ("while training the Post-LN transformer",
                                 "from scratch with no warmup: without warmup a Post-LN transformer's first steps at "
                                 "1e-3 and above tend to make the loss diverge or stall (Xiong et al. 2020)"),
}


def _message(model: ScriptModel, build: OptimizerBuild, value: float, literal,
             context: TrainingContext | None = None) -> str:
    constructor = model.code(build.call.func)
    if build.lr is None:
        source = f"its default {_keyword(build)}={value:g}"
    else:
        source = f"{_keyword(build)}={model.code(build.lr)}"
        if literal is not build.lr:
            where = f", set on line {model.line(literal)}" if literal is not None else ""
            source += f" (= {value:g}{where})"
    if context is not None:
        what, why = _CONTEXT_WORDS[context.kind]
        return (f"`{constructor}` runs at {source} {what} `{context.module}` ({_evidence(model, context)}), "
                f"{why}")
    default = _default_lr(build.qualname)
    scale = f", {value / default:.0f}x its default of {default:g}" if default else ""
    return (f"`{constructor}` runs at {source}{scale}, and no LR scheduler, warmup or decay ever lowers it: "
            f"steps this large tend to make the loss stall, rise or turn nan")


def _evidence(model: ScriptModel, context: TrainingContext) -> str:
    text = " ".join(model.code(context.node).split())
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"`{text}`, line {model.line(context.node)}"


def _keyword(build: OptimizerBuild) -> str:
    """The rate's keyword as written, or the framework's name for it when passed by position."""
    for kw in build.call.keywords:
        if kw.value is build.lr and kw.arg is not None:
            return kw.arg
    return "learning_rate" if build.qualname.startswith("keras.") else "lr"


_QUOTED = re.compile(r"(?P<prefix>[A-Za-z]*)(?P<quote>\"\"\"|'''|\"|')")


def _fix(model: ScriptModel, build: OptimizerBuild, literal, context: TrainingContext | None = None) -> Fix | None:
    default = _default_lr(build.qualname)
    if context is not None:
        default = K.CONTEXT_LR_LIMITS[context.kind][1]
    if default is None:
        return None
    text = repr(float(default))
    replacement = text
    if isinstance(literal.value, str):  # `default="0.5"` in argparse: keep it a string, quoted as it was
        match = _QUOTED.match(model.code(literal))
        if match is None:
            return None
        replacement = f"{match['prefix']}{match['quote']}{text}{match['quote']}"
    message = f"Use {last(build.qualname)}'s default learning rate {text}" if context is None else \
        f"Use {text}, a rate that suits {_FIX_WORDS[context.kind]}"
    return Fix(message, [Replace(literal, replacement)], UNSAFE)


_FIX_WORDS = {
    K.PRETRAINED_TRANSFORMER: "fine-tuning a pretrained transformer (Hugging Face Trainer's default)",
    K.PRETRAINED_NETWORK: "fine-tuning (the framework's default)",
    K.TRANSFORMER_FROM_SCRATCH: "a Post-LN transformer without warmup (pytorch/examples' nn.Transformer rate)",
}
