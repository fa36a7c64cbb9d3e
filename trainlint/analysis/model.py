"""The model of a training script: one per file, built once, queried by every rule."""
from __future__ import annotations

import ast
from functools import cached_property

from .autograd import Uses
from .evaluation import Evaluation
from .events import Event, EventBuilder, LoopFrame
from .loaders import Loaders
from .layers import Layers
from .hyperparams import LrControl, OptimizerBuild, lr_controls, optimizer_builds
from .losses import LossFeed, Losses
from .modes import Modes, TapeForward, TapeForwards
from .optimised import Optimisation
from .order import loop_assigned_keys
from .roles import Roles
from .lightning import LightningStep, automatic_steps
from .schedulers import SchedulerBuild, scheduler_builds
from .links import NOTHING, Links
from .source import SourceText
from .splits import DataSplits
from .structure import FOREIGN, Structure, build_structure
from .tfsteps import TfSteps
from .values import Values

_BODIES = ("body", "orelse", "finalbody")


class ForeignLine(int):
    """A line number in another module of the project: messages say which (`line 42 of engine.py`)."""

    path: str

    def __new__(cls, row: int, path: str) -> "ForeignLine":
        line = super().__new__(cls, row)
        line.path = path
        return line

    def __str__(self) -> str:
        return f"{int(self)} of {self.path}"

    def __format__(self, spec: str) -> str:  # f-strings format through this
        return format(str(self), spec)


class ScriptModel:
    def __init__(self, module: ast.Module, source: SourceText | str, path: str = "<string>",
                 links: Links | None = None) -> None:
        self.module = module
        self.source = source if isinstance(source, SourceText) else SourceText(source)
        self.path = path
        self.links = links or NOTHING
        self.structure = build_structure(module, self.source.lines, path, self.source, self.links)
        self.imports = self.structure.imports
        for name, qualname in self.links.star_imports(self.structure).items():
            self.imports.names.setdefault(name, qualname)  # `from config import *` where config imports torch
        self.roles = Roles(self.structure)
        self.values = Values(self.structure)
        builder = EventBuilder(self.structure, self.roles)
        self.events: list[Event] = builder.build()
        self.truncated = builder.truncated  # the analysis stopped early: findings may be missing

    @cached_property
    def splits(self) -> DataSplits:
        """Which data is training and which held out (built on first use: few files need it)."""
        return DataSplits(self.structure, self.roles)

    @cached_property
    def loaders(self) -> Loaders:
        """DataLoaders, their datasets and samplers, and the training loops that iterate them (built on first use)."""
        return Loaders(self)

    @cached_property
    def tf_steps(self) -> TfSteps:
        """Keras/TensorFlow custom steps: what apply_gradients receives, what each tf.clip_by_* clips."""
        return TfSteps(self.structure, self.events)

    @cached_property
    def optimizer_builds(self) -> list[OptimizerBuild]:
        """Every call of a known optimizer constructor, with its learning-rate argument."""
        return optimizer_builds(self.structure, self.roles)

    @cached_property
    def lr_controls(self) -> list[LrControl]:
        """Schedulers, warmups, lr helpers and manual lr writes: what may change a learning rate later."""
        return lr_controls(self.structure, self.roles)

    @cached_property
    def loss_feeds(self) -> list[LossFeed]:
        """Every loss (a loss call, a Keras compile()) whose prediction has a known kind: softmax or sigmoid
        probabilities, log-probabilities, or a Keras model's logits (TL009, TL010)."""
        return Losses(self.structure, self.roles).feeds

    @cached_property
    def scheduler_builds(self) -> list[SchedulerBuild]:
        """Every LR scheduler (and Keras schedule or LR callback) the file builds, and whether anything steps
        it or could (TL017)."""
        return scheduler_builds(self.structure)

    @cached_property
    def optimisation(self) -> Optimisation:
        """What each optimizer optimises (a model's parameters or tensors of data), which modules it trains and
        what they are (pretrained, a Post-LN transformer, one linear layer), whether its gradients are clipped."""
        return Optimisation(self.structure, self.roles, self.events, self.optimizer_builds)

    @cached_property
    def modes(self) -> Modes:
        """Which eval() calls leave a model in eval mode for its next training steps."""
        return Modes(self.structure, self.events)

    @cached_property
    def lightning_steps(self) -> list[LightningStep]:
        """The `training_step` methods of LightningModules that Lightning optimises automatically."""
        return automatic_steps(self.structure, self.roles)

    @cached_property
    def evaluation(self) -> Evaluation:
        """Evaluation phases: validation/test loops, evaluate()/predict() helpers, code after eval() (TL008,
        TL016)."""
        return Evaluation(self)

    @cached_property
    def layers(self) -> Layers:
        """Which mode-dependent layers (Dropout, BatchNorm) a PyTorch model holds, from how it is built."""
        return Layers(self.structure, self.roles)

    @cached_property
    def tape_forwards(self) -> list[TapeForward]:
        """Keras: calls of a model inside a `tf.GradientTape` block that differentiates its variables, with
        their `training=` argument and a training-dependent layer the model holds (TL007)."""
        return TapeForwards(self.structure).forwards

    # -- loops and their events (indexed once: rules ask per loop) ------------------------------------
    @cached_property
    def _loop_index(self) -> tuple[list[LoopFrame], dict[int, list[Event]], dict[int, list[LoopFrame]]]:
        frames: dict[int, LoopFrame] = {}
        by_frame: dict[int, list[Event]] = {}
        for event in self.events:
            for frame in event.context.loops:
                frames.setdefault(id(frame), frame)
                by_frame.setdefault(id(frame), []).append(event)
        inner: dict[int, list[LoopFrame]] = {}
        for frame in frames.values():
            parent = frame.parent
            while parent is not None:
                inner.setdefault(id(parent), []).append(frame)
                parent = parent.parent
        return list(frames.values()), by_frame, inner

    @property
    def loops(self) -> list[LoopFrame]:
        """Every instantiated loop, outer before inner, in order of first event."""
        return self._loop_index[0]

    def events_in(self, frame: LoopFrame, *kinds: str) -> list[Event]:
        events = self._loop_index[1].get(id(frame), [])
        return [e for e in events if e.kind in kinds] if kinds else list(events)

    def inner_loops(self, frame: LoopFrame) -> list[LoopFrame]:
        return list(self._loop_index[2].get(id(frame), []))

    @cached_property
    def _by_kind(self) -> dict[str, list[Event]]:
        index: dict[str, list[Event]] = {}
        for event in self.events:
            index.setdefault(event.kind, []).append(event)
        return index

    def of_kind(self, *kinds: str) -> list[Event]:
        if len(kinds) == 1:
            return list(self._by_kind.get(kinds[0], []))
        return [e for e in self.events if e.kind in kinds]

    @cached_property
    def loop_assigned(self) -> frozenset[str]:
        """Keys assigned inside some loop (or as a loop's target): they may differ between iterations."""
        return loop_assigned_keys(self.structure)

    def uses(self, module_name: str) -> bool:
        """Does the file import `module_name` (or something under it)?"""
        return self.imports.mentions(module_name)

    def uses_of(self, scope: ast.AST) -> Uses:
        """How names are used in a scope (a function, class or the module): built once per scope."""
        cache = self.__dict__.setdefault("_uses", {})
        found = cache.get(id(scope))
        if found is None:
            found = cache[id(scope)] = Uses(scope, self.imports.qualify)
        return found

    # -- source positions -----------------------------------------------------------------------------
    # -- nodes of other modules (project helpers followed into the module they live in) ---------------
    def home(self, node: ast.AST) -> Structure | None:
        """The other module a node is written in; None for a node of this file."""
        structure = getattr(node, FOREIGN, None)
        return structure if structure is not None and structure is not self.structure else None

    def foreign_event(self, node: ast.AST) -> Event | None:
        """The first event at a node of another module (it knows the call of this file that led there)."""
        index = self.__dict__.get("_foreign_events")
        if index is None:
            index = self.__dict__["_foreign_events"] = {}
            for event in self.events:
                if self.home(event.node) is not None:
                    index.setdefault(id(event.node), event)
        return index.get(id(node))

    # -- source positions -----------------------------------------------------------------------------
    def line(self, node: ast.AST) -> int:
        home = self.home(node)
        return ForeignLine(node.lineno, home.path) if home is not None else node.lineno

    def span(self, node: ast.AST) -> tuple[int, int, int, int]:
        """(row, column, end row, end column) of a node: rows 1-based, columns 0-based in characters."""
        source = self.source
        return (node.lineno, source.char_column(node.lineno, node.col_offset),
                node.end_lineno, source.char_column(node.end_lineno, node.end_col_offset))

    def code(self, node: ast.AST) -> str:
        """The source of a node as written."""
        home = self.home(node)
        return (home.source if home is not None else self.source).segment(node)

    def contains(self, outer: ast.AST, inner: ast.AST) -> bool:
        """Is `inner`'s text within `outer`'s?"""
        return ((outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset)
                and (inner.end_lineno, inner.end_col_offset) <= (outer.end_lineno, outer.end_col_offset))

    @cached_property
    def _blocks(self) -> dict[int, list[ast.stmt]]:
        """id(statement) -> the statement list (a body) it is written in."""
        blocks: dict[int, list[ast.stmt]] = {}
        pending: list[list[ast.stmt]] = [self.module.body]
        while pending:
            body = pending.pop()
            for statement in body:
                blocks[id(statement)] = body
                for name in _BODIES:
                    inner = getattr(statement, name, None)
                    if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                        pending.append(inner)
                for handler in getattr(statement, "handlers", ()):
                    pending.append(handler.body)
                for case in getattr(statement, "cases", ()):
                    pending.append(case.body)
        return blocks

    def block_of(self, statement: ast.stmt | None) -> list[ast.stmt] | None:
        """The statements of the block (module, function or compound statement body) that holds `statement`."""
        return self._blocks.get(id(statement)) if statement is not None else None
