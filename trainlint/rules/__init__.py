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
from .tl016_missing_eval_mode import MissingEvalMode

ALL_RULES: tuple[Rule, ...] = (
    MissingZeroGrad(),
    WrongStepOrder(),
    ScalerFitOnEvalData(),
    LossNotDetached(),
    ClipAfterStep(),
    UnscaledHighLr(),
    MissingTrainMode(),
    EvalWithoutNoGrad(),
    MissingEvalMode(),
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "RULES_BY_NAME", "Rule", "Violation"]
