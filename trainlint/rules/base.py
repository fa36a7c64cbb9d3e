"""What a rule is: a code, a name, a page of docs, and a query over the ScriptModel."""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import ast

from ..analysis import ScriptModel
from ..fixes import Fix

FIX_SAFE = "safe"
FIX_UNSAFE = "unsafe"
FIX_NONE = "none"


@dataclass(eq=False)
class Violation:
    node: ast.AST  # where to report
    message: str
    fix: Fix | None = None


class Rule:
    """A rule's docstring is its page, in ruff's form: What it does / Why is this bad? / Example / Use instead.

    The first ```python block after "## Example" must trigger the rule and the one after "## Use instead"
    must not: the tests run both.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    fix: ClassVar[str] = FIX_NONE
    frameworks: ClassVar[tuple[str, ...]] = ("pytorch",)
    # Options users may set under [tool.trainlint.<name>], with their defaults.
    options: ClassVar[dict[str, Any]] = {}
    # What a file must say for the rule to have anything to report: groups of words, one word of each group
    # in its text (`backward` and `step` for a missing zero_grad). The engine skips the rule (and the file,
    # when no rule is left) without parsing. A requirement must hold for *every* finding the rule can make.
    requires: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # Can the rule find something through a helper of another module of the project (a loop that calls
    # `train_one_epoch()` from engine.py)? Then the words may also be in the modules the file imports.
    sees_helpers: ClassVar[bool] = True
    # Is the rule's premise a real training run? Then it stays silent in test code (tests/, test_*.py,
    # *_test.py, conftest.py), where odd loops and extreme hyperparameters are picked on purpose.
    training_run: ClassVar[bool] = True

    def check(self, model: ScriptModel, options: dict[str, Any]) -> Iterable[Violation]:
        raise NotImplementedError

    @classmethod
    def page(cls) -> str:
        body = textwrap.dedent(cls.__doc__ or "").strip()
        return f"# {cls.code} {cls.name}\n\n{body}\n"

    @classmethod
    def example(cls, heading: str) -> str:
        """The first python code block under `## heading` in the docs."""
        match = re.search(rf"## {re.escape(heading)}\n.*?```python\n(.*?)```", cls.page(), re.S)
        if match is None:
            raise LookupError(f"{cls.code} has no python example under '## {heading}'")
        return match.group(1)
