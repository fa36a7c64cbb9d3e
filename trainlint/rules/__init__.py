"""The rules, one module each. ALL_RULES is the registry, in code order."""
from __future__ import annotations

from .base import Rule, Violation
from .tl001_missing_zero_grad import MissingZeroGrad
from .tl002_wrong_step_order import WrongStepOrder

ALL_RULES: tuple[Rule, ...] = (
    MissingZeroGrad(),
    WrongStepOrder(),
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "RULES_BY_NAME", "Rule", "Violation"]
