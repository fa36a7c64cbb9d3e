"""Links: what a file's analysis may ask of the project around it.

A call of `train_one_epoch(...)` imported from the project's `engine.py`, a `Trainer` whose base class
lives in `base.py`, `build_optimizer(cfg)` from `optim.py`: the analysis follows them into the other
module as it follows a helper of its own file. It asks through this interface, which the project layer
(trainlint/project) implements; this default, for a file analysed alone, knows nothing, and the analysis
stays silent about what it cannot see. Names are asked in the module that uses them (`structure`), as
written there: `train_one_epoch`, `engine.train_one_epoch`, `BaseTrainer`.
"""
from __future__ import annotations

from .structure import ClassInfo, FunctionInfo, Structure


class Links:
    def function(self, structure: Structure, key: str) -> FunctionInfo | None:
        """The module-level function that `key`, written in `structure`'s module, names in another module."""
        return None

    def klass(self, structure: Structure, key: str) -> ClassInfo | None:
        """The class that `key`, written in `structure`'s module, names in another module."""
        return None

    def star_imports(self, structure: Structure) -> dict[str, str]:
        """Names that `from module import *` of the project's modules bind to imports (local -> qualified name),
        e.g. `torch` from a `config.py` that does `import torch`."""
        return {}

    def helper_texts(self, text: str) -> list[str]:
        """The text of the project modules a file (of this text) imports, a few levels deep: what its helpers
        may mention, for the prefilter (Rule.requires)."""
        return []


NOTHING = Links()
