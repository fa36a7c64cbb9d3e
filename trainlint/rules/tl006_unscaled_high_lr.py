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
    Checks for optimizers built with a learning rate far above what is safe for what they train, when
    nothing in the file scales it down: no LR scheduler or warmup is attached to that optimizer, no helper
    such as `adjust_learning_rate(optimizer, epoch)` is handed it, and no `param_group["lr"]` is ever
    rewritten. For Keras, the rate must be a number (not a `keras.optimizers.schedules` object or any other
    `LearningRateSchedule`), no `ReduceLROnPlateau` or `LearningRateScheduler` callback is built, nothing
    calls `optimizer.learning_rate.assign(...)` or `K.set_value(optimizer.lr, ...)`, and Keras 2's own
    time-based `decay=` is not set.

    The value is resolved through literals, module constants, arithmetic, `argparse` defaults
    (`lr=args.lr`) and config dicts (`config["lr"]`), whether passed by keyword (`lr=`, Keras's
    `learning_rate=` or its legacy `lr=`) or by position, also inside `model.compile(optimizer=...)`.
    `optimizer="adam"` strings use the default rate and are never reported.

    **The general limits.** For code trainlint knows nothing more about, the limit is 100x the framework's
    default learning rate for the adaptive optimizers, and 1.0 for plain SGD:

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

    **SGD.** SGD's step is `lr` times the gradient, so no default anchors it: PyTorch's maintainers kept
    its `lr` required for years because "the range of learning rates usually explored [for SGD] is not"
    narrow like Adam's ([pytorch/pytorch#2085](https://github.com/pytorch/pytorch/issues/2085),
    [#53698](https://github.com/pytorch/pytorch/pull/53698)). Rates of 1 and more need a warmup even on
    the largest batches ([Goyal et al. 2017](https://arxiv.org/abs/1706.02677) warm up to 3.2 over five
    epochs; [He et al. 2016](https://arxiv.org/abs/1512.03385) start ResNet-110 at 0.01 because 0.1 is
    too large to begin with), hence the plain limit of 1.0. But once the gradients are clipped, each step
    is at most `lr * max_norm`: recurrent language models train at 20 with clip 0.25
    ([pytorch/examples word_language_model](https://github.com/pytorch/examples/tree/main/word_language_model))
    and at 30 with clip 0.25 ([AWD-LSTM, Merity et al. 2018](https://arxiv.org/abs/1708.02182)). So an
    `SGD` / `ASGD` rate above the limit is not reported when the file clips that optimizer's gradients
    (`clip_grad_norm_` / `clip_grad_value_` on its parameters, Keras `clipnorm=` / `clipvalue=`), nor in a
    Lightning `configure_optimizers`, whose Trainer may clip them (`gradient_clip_val`). Clipping does not
    lift the Adam-family limits: Adam normalises each update, so a clipped gradient moves it just as far.

    **What the optimizer trains** decides which limits apply:
    - *Data, not a model.* An optimizer over tensors the script makes — a latent
      (`nn.Parameter(latent.clone())`), an input (`x.clone().requires_grad_()`, `img.requires_grad = True`),
      a perturbation (`torch.zeros_like(x, requires_grad=True)`) — optimises one sample (GAN inversion,
      style transfer, adversarial attacks), where rates of 0.1 and more are usual: not checked. (Weights
      written by hand the same way, `w = torch.zeros(3, 1, requires_grad=True)`, cannot be told from them
      and are not checked either.)
    - *One linear layer* (a linear or logistic regression: `nn.Linear`, `keras.Sequential([Normalization(),
      Dense(1)])`, a module holding only one such layer, SGC): a convex problem whose Adam steps stay
      bounded. The limits are 5x higher (Adam: 0.5). The [TensorFlow regression
      tutorial](https://www.tensorflow.org/tutorials/keras/regression) fits one at Adam 0.1 and
      [SGC](https://arxiv.org/abs/1902.07153) trains at Adam 0.2; measured, Adam on a linear regression
      reaches its noise floor at 0.1-0.3 whatever the targets' scale, and ends above its initial loss at
      1.0. A linear layer inside a bigger model (`nn.Sequential(body, head)`) keeps the network limits.
    - *Contexts that make much lower Adam-family rates wrong* (`Adam`, `AdamW`, `NAdam`, `RAdam`,
      `Adamax`; Keras `Adam`, `AdamW`, `Nadam`, `Adamax`), also at the default rate when `lr` is not given:

    | context | how the file says so | reported at lr >= | fix writes |
    |---|---|---|---|
    | fine-tuning a pretrained transformer | `transformers` / keras-hub `from_pretrained` / `from_preset` of a model class; torchvision / timm vision transformers with weights; a checkpoint loaded into a Post-LN transformer | 1e-3, no scheduler or decay | 5e-5 |
    | fine-tuning another pretrained network | torchvision `weights=` / `pretrained=True`, `timm.create_model(..., pretrained=True)`, `keras.applications` (its default `weights="imagenet"`), `model.load_state_dict(torch.load(path))` before training | 1e-2, no scheduler or decay | the framework default |
    | a Post-LN transformer from scratch | `nn.Transformer`, `nn.TransformerEncoder` / `Decoder` (and their layers) with `norm_first=False` or left out; Hugging Face Post-LN families built from a config (`BertForMaskedLM(config)`, RoBERTa, ELECTRA, BART, ...) | 1e-3, no warmup (a decay-only scheduler such as `StepLR` does not count) | 1e-4 |

    Evidence for the transformer fine-tuning limit: BERT fine-tunes with Adam at 5e-5, 3e-5 or 2e-5
    ([Devlin et al. 2019](https://arxiv.org/abs/1810.04805), appendix A.3), RoBERTa at 1e-5 to 3e-5
    with a 6% warmup ([Liu et al. 2019](https://arxiv.org/abs/1907.11692), table 10), and Hugging Face's
    `Trainer` defaults to 5e-5 with a linear decay
    ([TrainingArguments](https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments));
    at 4e-4, BERT fine-tuning fails to converge, and "a lower learning rate, such as 2e-5, is necessary to
    make BERT overcome the catastrophic forgetting problem" ([Sun et al. 2019](https://arxiv.org/abs/1905.05583)).
    CNN fine-tuning is more forgiving: Adam's default 1e-3 on a whole pretrained ResNet is common and
    works, so that context reports from 10x the default, where the pretrained features are wiped out
    (the [Keras transfer learning guide](https://keras.io/guides/transfer_learning/) fine-tunes the whole
    model at 1e-5; [PyTorch's](https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html)
    at SGD 1e-3, a hundredth of the from-scratch rate; `fixtures/TL006/bug_torch_finetune_checkpoint.py`
    measures it: at 1e-2 the held-out loss ends where the checkpoint started, at 1e-3 it falls several
    times). When the script freezes parameters anywhere (`requires_grad = False`, `requires_grad_(False)`,
    `trainable = False`, a `freeze*()` or `set_trainable(..., False)` helper, an adapter library such as
    `peft`), or the optimizer holds only a new part (`model.fc.parameters()`), the fine-tuning contexts do
    not apply: training a new head at 1e-3 on a frozen backbone is the guide's recommended first phase. A
    checkpoint reloaded after training, or restored together with an optimizer (resuming a run), is not
    a pretrained model.

    Evidence for the from-scratch limit: "Attention is all you need" warms up for 4000 steps to a peak
    of 7e-4 ([Vaswani et al. 2017](https://arxiv.org/abs/1706.03762)); the layer norm between residual
    blocks (Post-LN, PyTorch's default) makes the gradients near the output large at initialisation, so
    without warmup Post-LN training at 5e-4 and 1e-3 fails, while Pre-LN trains without warmup
    ([Xiong et al. 2020](https://arxiv.org/abs/2002.04745)); Adam's adaptive rate has a large variance
    in the first steps, which warmup tames ([Liu et al. 2020](https://arxiv.org/abs/1908.03265));
    pytorch/examples trains `nn.Transformer` at 1e-4 without warmup. Pre-LN models (`norm_first=True`,
    GPT-2, Llama, T5), blocks whose `norm_first` the file leaves open (`norm_first=args.pre_norm`, a
    parameter) and hand-written attention blocks are left to the general limits: where a
    hand-written block puts its layer norm, and how deep the stack is, decide whether warmup is needed
    (the Keras examples train one Post-LN `MultiHeadAttention` block at Adam's default 1e-3), and
    `AutoModel*.from_config(config)` does not say which architecture it builds. An optimizer replaced
    before it is ever used (a cheat sheet's example) is not reported in a context.

    ## Why is this bad?
    Adaptive optimizers normalise each update, so every weight moves by about `lr` per step whatever the
    gradient's size: at 100x the default the first steps already overshoot, and without warmup or decay
    nothing brings the rate back down. The loss rises or turns into `nan` a few steps into training, and
    no error is raised. Pretrained weights are more fragile: steps of 1e-3 on a BERT, or 1e-2 on a
    ResNet, erase what pretraining learned before the new task is learned, and fine-tuning quietly ends
    worse than it started; a Post-LN transformer's first steps at 1e-3 without warmup diverge or stall.

    ## Example
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    ```
    ```python
    import keras

    model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.5), loss="mse")
    ```
    ```python
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for batch in loader:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    ```
    ```python
    import keras

    model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    ```
    ```python
    import torch
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=100, num_training_steps=1000)
    ```
    A high peak rate is fine when a scheduler brings it in gently, e.g.
    `torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=n)`, or
    `LinearLR(optimizer, start_factor=0.01, total_iters=warmup)` chained with a decay; in Keras,
    `keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.CosineDecay(0.0, steps,
    warmup_target=0.5, warmup_steps=warmup))`.

    ## Options
    `thresholds`: the general limit per optimizer, by class name (`Adam`, for both frameworks) or
    qualified name (`torch.optim.Adam`, `keras.optimizers.Adam`); it replaces the default above for that
    optimizer. A limit for `Rprop`, `LBFGS` or `Ftrl` turns their check on. For a stricter check at 10x
    the default:

    ```toml
    [tool.trainlint.unscaled-high-lr]
    thresholds = { Adam = 0.01, AdamW = 0.01, RMSprop = 0.1 }
    ```

    `context_limits`: the limit per context (`pretrained-transformer`, `pretrained-network`,
    `transformer-from-scratch`); a very large value turns a context off:

    ```toml
    [tool.trainlint.unscaled-high-lr]
    context_limits = { pretrained-transformer = 4e-4, transformer-from-scratch = 1e9 }
    ```

    ## Fix safety
    The fix edits the one literal the value comes from (the argument itself, the module constant, or the
    `argparse` default) and writes the framework's default (`0.001` for Adam), or, in a context, the rate
    its evidence supports: `5e-05` for fine-tuning a pretrained transformer (Hugging Face's default),
    `1e-4` for a Post-LN transformer without warmup. It is offered only when the value is written as such
    a literal (not computed, not left to the default), and it is unsafe: it changes a hyperparameter, and
    the new rate may train more slowly than a tuned rate with a scheduler. Adding a warmup was not chosen
    as the fix: warmup alone does not help once the rate reaches its peak, and fine-tuning needs a lower
    peak as well.
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
    if value < min(limits.get(kind, limit) for kind, (limit, _) in K.CONTEXT_LR_LIMITS.items()):
        return None  # below every context's limit: no need to ask what the optimizer trains
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
