"""The mode a model is in when an evaluation phase calls it, and what the phase computes.

A PyTorch module is built in train mode, and stays in the mode its last `train()` / `eval()` set. Within
one entry point (the module body, or a function nothing in the file calls), the events are numbered in
the order they run; the mode at an evaluation is the one set by the nearest mode call of the model before
it. The answer is "train mode" only when every sign agrees:

* the nearest mode call before the phase is `model.train()`, and training (a backward or an optimizer
  step) runs between them: the train() was for training, not for the evaluation (Monte Carlo dropout and
  test-time batch-norm adaptation call `train()` right before a loop under no_grad, on purpose);
* or there is none, and the model was built in this entry from constructors we know (a fresh module is in
  train mode; `torch.load(path)` gives back whatever mode was saved);
* and nothing else can have changed the mode: no `eval()` inside the phase or in a loop around it later
  in the iteration, no `train(flag)`, no `.eval()` / `.train()` on an object we cannot tell apart from the
  model (`m.eval()` for `m` in `model.modules()`, `self.eval()` in a class that is the model), and the
  model handed to no call we cannot see into before the phase (`trainer.evaluate(model)` may call eval()).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import knowledge as K
from .evaluation import Phase
from .names import function_words
from .events import BACKWARD, LOCAL_CALL, OPT_STEP, TRAIN_MODE, Event
from .names import dotted, last
from .roles import MODEL, _MODE_METHODS
from .structure import FunctionInfo

if TYPE_CHECKING:
    from .model import ScriptModel


@dataclass(frozen=True, eq=False)
class TrainModeAt:
    """Why a model is in train mode where an evaluation calls it."""

    since: Event | None  # the train() that set it; None: it was built in train mode and never switched
    trained: Event | None  # a training step between that train() (or the start) and the evaluation


class EvalModes:
    def __init__(self, model: "ScriptModel") -> None:
        self.model = model
        self._entries: dict[int, list[Event]] = {}
        for event in model.events:
            self._entries.setdefault(id(model.modes.entry(event)), []).append(event)

    def train_mode_at(self, phase: Phase, forward: Event) -> TrainModeAt | None:
        """Is the model `forward` calls in train mode when the phase runs, on every sign we can read?"""
        model = self.model
        subject = forward.subject
        if subject is None:
            return None
        events = self._entries.get(id(model.modes.entry(forward)), [])
        inside = {id(e) for e in phase.events}
        modes = []
        for event in events:
            if event.kind != TRAIN_MODE:
                continue
            if _related(event.subject, subject):
                modes.append(event)
            elif event.role is None or event.role.kind != MODEL:  # `m.eval()`, `module.train()`
                modes.append(event)
        if any(e.detail.get("mode") is None for e in modes):
            return None  # train(flag): unknown
        if any(id(e) in inside for e in modes):
            return None  # the phase sets a mode itself
        if any(e.index > forward.index and e.detail.get("mode") is False
               and set(e.context.loops) & set(forward.context.loops) for e in modes):
            return None  # an eval() later in a loop around the phase: the next pass may run in eval mode
        if self._self_mode_calls(events) or self._handed_away(events, subject, inside):
            return None
        before = [e for e in modes if e.index < forward.index]
        training = [e for e in events if e.kind in (BACKWARD, OPT_STEP) and e.index < forward.index
                    and id(e) not in inside]
        if before:
            last_mode = before[-1]
            if last_mode.detail.get("mode") is False:
                return None
            trained = [e for e in training if e.index > last_mode.index]
            if last_mode.detail.get("fresh"):  # the model's construction (events.fresh_module), not a train()
                if trained:
                    return TrainModeAt(None, trained[-1])
                return TrainModeAt(None, None) if self._built_fresh(forward) else None
            return TrainModeAt(last_mode, trained[-1]) if trained else None
        if training:
            return TrainModeAt(None, training[-1])
        return TrainModeAt(None, None) if self._built_fresh(forward) else None

    # -- signs that something we cannot follow set the mode -------------------------------------------
    def _functions(self, events: list[Event]) -> list[FunctionInfo]:
        seen, found = set(), []
        for event in events:
            function = event.context.function
            if function is not None and id(function) not in seen:
                seen.add(id(function))
                found.append(function)
        return found

    def _self_mode_calls(self, events: list[Event]) -> bool:
        """`self.eval()` / `self.train()` in a method the entry runs: the object is (or holds) the model."""
        for function in self._functions(events):
            if function.node is None or function.klass is None:
                continue
            for node in ast.walk(function.node):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("eval", "train") and dotted(node.func.value) == "self":
                    return True
        return False

    def _handed_away(self, events: list[Event], subject: str, inside: set[int]) -> bool:
        """Is the model handed, outside the phase, to a call we cannot see into (`evaluate(model, loader)` of
        a library, `trainer.fit(model)`), which may leave it in eval mode?"""
        names = {e.spelled for e in events if e.spelled and e.subject and _related(e.subject, subject)}
        names |= {last(name) for name in names}
        helpers = {id(e.site.call) for e in events if e.kind == LOCAL_CALL and e.site is not None}
        for function in [None, *self._functions(events)]:
            body = function.node.body if function is not None and function.node is not None else (
                self.model.module.body if function is None else [])
            for node in _walk_calls(body):
                if id(node) in helpers:
                    continue
                func = dotted(node.func)
                qualname = self.model.roles.imports_of(function).qualify(node.func)
                if (func is not None and last(func) in K.MODEL_INSPECTORS) or qualname in K.MODEL_INSPECTORS:
                    continue
                if qualname is not None and qualname.startswith("torch.") or (
                        isinstance(node.func, ast.Attribute) and node.func.attr in _MODE_METHODS):
                    continue
                arguments = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
                arguments += [k.value for k in node.keywords]
                if any(dotted(a) in names for a in arguments):
                    return True
        return False

    def _built_fresh(self, forward: Event) -> bool:
        """Was the model built here, by constructors (`Net()`, `nn.Sequential(...)`, `resnet18()`), on every
        assignment of its name (not `torch.load(path)`, not a factory we cannot see)?"""
        key = forward.spelled
        if key is None or "." in key:
            return False
        values = self.model.roles.assigned_values(key, forward.context.function)
        if not values:
            return False
        for value in values:
            while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                    and value.func.attr in _MODE_METHODS:
                value = value.func.value
            if dotted(value) == key:
                continue  # `model = model.to(device)`
            if not isinstance(value, ast.Call):
                return False
            role = self.model.roles.classify(value, forward.context.function, 0)
            if role is None or role.kind != MODEL or role.qualname in ("torch.load", "torch.jit.load"):
                return False
            qualname = role.qualname or ""
            if qualname.startswith("transformers."):
                return False  # from_pretrained() hands the model back in eval mode
        return True


def computes_metric(model: "ScriptModel", phase: Phase) -> bool:
    """Does the phase compute a loss or a metric from what the model returns (`criterion(out, y)`,
    `(pred == y).sum()`, `out.argmax(1)`, `accuracy_score(...)`)?"""
    nodes = list(phase.statements) + [f.node for f in phase.entered if f.node is not None]
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in sub.ops):
                return True
            if isinstance(sub, ast.Call):
                func = dotted(sub.func)
                if func is not None and set(function_words(last(func))) & K.METRIC_WORDS:
                    return True
    return False


def _walk_calls(body: list[ast.stmt]):
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _related(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    a, b = a.rsplit("::", 1)[-1], b.rsplit("::", 1)[-1]
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
