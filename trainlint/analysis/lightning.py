"""PyTorch Lightning: which methods run inside a LightningModule's automatic optimisation.

With automatic optimisation (the default), Lightning calls `training_step()`, then runs `backward()` on the
loss it returns, then clips (`Trainer(gradient_clip_val=...)`, `configure_gradient_clipping`) and steps the
optimizer. What `training_step` does to `.grad` therefore happens before this step's backward. A module
that sets `self.automatic_optimization = False` calls `manual_backward()` and steps itself: its
`training_step` is an ordinary training step.
"""
from __future__ import annotations

from dataclasses import dataclass

from .names import bool_value
from .roles import Roles
from .structure import ClassInfo, FunctionInfo, Structure

_MODULE_BASES = frozenset({"pytorch_lightning.LightningModule", "pytorch_lightning.core.LightningModule",
                           "lightning.LightningModule", "lightning.pytorch.core.LightningModule"})


@dataclass(eq=False)
class LightningStep:
    klass: ClassInfo
    training_step: FunctionInfo


def automatic_steps(structure: Structure, roles: Roles) -> list[LightningStep]:
    """The `training_step` methods of the file's LightningModules that optimise automatically."""
    found = []
    for klass in structure.classes.values():
        chain = roles.class_chain(klass)
        if not any(base in _MODULE_BASES for owner in chain for base in owner.bases):
            continue
        if any(bool_value(value) is False for owner in chain
               for value in owner.attributes.get("self.automatic_optimization", [])):
            continue  # manual optimisation: the step is the module's own
        step = roles.method(klass, "training_step")
        if step is not None and step.klass is klass:
            found.append(LightningStep(klass, step))
    return found
