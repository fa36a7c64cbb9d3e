"""The rules, one module each. ALL_RULES is the registry, in code order."""
from __future__ import annotations

from .base import Rule, Violation
from .tl001_missing_zero_grad import MissingZeroGrad
from .tl002_wrong_step_order import WrongStepOrder
from .tl003_scaler_fit_on_eval_data import ScalerFitOnEvalData
from .tl004_loss_not_detached import LossNotDetached
from .tl005_clip_after_step import ClipAfterStep
from .tl006_unscaled_high_lr import UnscaledHighLr
from .tl007_missing_train_mode import MissingTrainMode
from .tl008_eval_without_no_grad import EvalWithoutNoGrad
from .tl009_softmax_before_cross_entropy import SoftmaxBeforeCrossEntropy
from .tl010_logits_activation_mismatch import LogitsActivationMismatch
from .tl011_accumulation_loss_not_scaled import AccumulationLossNotScaled
from .tl012_sampler_set_epoch_missing import SamplerSetEpochMissing
from .tl013_amp_scaler_bypassed import AmpScalerBypassed
from .tl014_optimizer_rebuilt_in_loop import OptimizerRebuiltInLoop
from .tl015_train_loader_not_shuffled import TrainLoaderNotShuffled
from .tl016_missing_eval_mode import MissingEvalMode
from .tl017_scheduler_never_stepped import SchedulerNeverStepped
from .tl018_ddp_without_distributed_sampler import DdpWithoutDistributedSampler

ALL_RULES: tuple[Rule, ...] = (
    MissingZeroGrad(),
    WrongStepOrder(),
    ScalerFitOnEvalData(),
    LossNotDetached(),
    ClipAfterStep(),
    UnscaledHighLr(),
    MissingTrainMode(),
    EvalWithoutNoGrad(),
    SoftmaxBeforeCrossEntropy(),
    LogitsActivationMismatch(),
    AccumulationLossNotScaled(),
    SamplerSetEpochMissing(),
    AmpScalerBypassed(),
    OptimizerRebuiltInLoop(),
    TrainLoaderNotShuffled(),
    MissingEvalMode(),
    SchedulerNeverStepped(),
    DdpWithoutDistributedSampler(),
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "RULES_BY_NAME", "Rule", "Violation"]
