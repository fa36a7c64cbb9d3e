"""The model of a training script: one per file, built once, queried by every rule."""
from __future__ import annotations

from functools import cached_property

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from .events import Event, EventBuilder, LoopFrame
from .hyperparams import LrControl, OptimizerBuild, lr_controls, optimizer_builds
from .modes import Modes, TapeForward, TapeForwards
from .order import loop_assigned_keys
from .roles import Roles
from .splits import DataSplits
from .structure import build_structure
from .tfsteps import TfSteps
from .values import Values


class ScriptModel:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.structure = build_structure(module)
        self.imports = self.structure.imports
        self.roles = Roles(self.structure)
        self.values = Values(self.structure)
        self.events: list[Event] = EventBuilder(self.structure, self.roles).build()

    @cached_property
    def splits(self) -> DataSplits:
        """Which data is training and which held out (built on first use: few files need it)."""
        return DataSplits(self.structure, self.roles)

    @cached_property
    def tf_steps(self) -> TfSteps:
        """Keras/TensorFlow custom steps: what apply_gradients receives, what each tf.clip_by_* clips."""
        return TfSteps(self.structure, self.events)

    @cached_property
    def optimizer_builds(self) -> list[OptimizerBuild]:
        """Every call of a known optimizer constructor, with its learning-rate argument."""
        return optimizer_builds(self.structure)

    @cached_property
    def lr_controls(self) -> list[LrControl]:
        """Schedulers, warmups, lr helpers and manual lr writes: what may change a learning rate later."""
        return lr_controls(self.structure, self.roles)

    @cached_property
    def modes(self) -> Modes:
        """Which eval() calls leave a model in eval mode for its next training steps."""
        return Modes(self.structure, self.events)

    @cached_property
    def tape_forwards(self) -> list[TapeForward]:
        """Keras: calls of a model inside a `tf.GradientTape` block that differentiates its variables, with
        their `training=` argument and a training-dependent layer the model holds (TL007)."""
        return TapeForwards(self.structure).forwards

    @cached_property
    def loops(self) -> list[LoopFrame]:
        """Every instantiated loop, outer before inner, in order of first event."""
        seen: dict[int, LoopFrame] = {}
        for event in self.events:
            for frame in event.context.loops:
                seen.setdefault(id(frame), frame)
        return list(seen.values())

    @cached_property
    def loop_assigned(self) -> frozenset[str]:
        """Keys assigned inside some loop (or as a loop's target): they may differ between iterations."""
        return loop_assigned_keys(self.structure)

    def events_in(self, frame: LoopFrame, *kinds: str) -> list[Event]:
        return [e for e in self.events if frame in e.context.loops and (not kinds or e.kind in kinds)]

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    def uses(self, module_name: str) -> bool:
        """Does the file import `module_name` (or something under it)?"""
        return self.imports.mentions(module_name)

    @cached_property
    def positions(self):
        """Source positions, computed only when a rule reports something (one codegen pass).

        MetadataWrapper.resolve would add a second, idle walk of the whole tree; running the position
        provider's codegen directly halves the cost (measured on pytorch/examples).
        """
        try:
            provider = PositionProvider()
            self.module._codegen(PositionProvidingCodegenState(
                default_indent=self.module.default_indent, default_newline=self.module.default_newline,
                provider=provider))
            return provider._computed
        except (AttributeError, TypeError):  # libcst internals moved: take the public, slower road
            return MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def inner_loops(self, frame: LoopFrame) -> list[LoopFrame]:
        return [f for f in self.loops if f is not frame and _descends(f, frame)]


def _descends(frame: LoopFrame, ancestor: LoopFrame) -> bool:
    parent = frame.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False
