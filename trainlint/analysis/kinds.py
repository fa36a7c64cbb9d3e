"""What a value that may reach a loss is: its *kind*, and the things (tensors, layers, losses) that carry one.

A classifier's prediction reaches a loss as raw scores (`logits`), probabilities (`softmax`, `sigmoid`) or
log-probabilities (`log_softmax`). A `Tensor` is a value of a known kind and where its activation is written;
a `Layer` is a model, module or layer and the kind of what calling it returns; a `Loss` is a loss class,
object or function and what it expects; `Items` is a tuple of those (`return validity, label`). Unknown is
None, everywhere: the analysis says nothing about what it cannot see.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Union

from . import knowledge as K
from .names import bool_value, dotted, keyword, positional

LOGITS, SOFTMAX, SIGMOID, LOG_SOFTMAX = "logits", "softmax", "sigmoid", "log_softmax"
PROBABILITIES = frozenset({SOFTMAX, SIGMOID})
LOG_PROBS, PROBS = "log_probs", "probs"  # what a loss may expect, besides LOGITS
TORCH, KERAS = "torch", "keras"
SHAPE = "shape"  # a layer that hands its input's kind on


@dataclass(frozen=True)
class Tensor:
    """A value of a known kind."""

    kind: str
    origin: ast.AST  # where the activation is written: `F.softmax(z, 1)`, `nn.Softmax(dim=1)`, `Dense(10)`
    framework: str
    # The names (with their assignment versions) the activation call reads, when it is written in the scope the
    # value is read in; None otherwise. Equal versions at the loss mean those names still hold the same values.
    inputs: tuple[tuple[str, int], ...] | None = None
    model: str | None = field(default=None, compare=False)  # the model whose output it is, as written
    via: ast.expr | None = field(default=None, compare=False)  # the name that carried it into the expression
    statement: ast.stmt | None = field(default=None, compare=False)  # `probs = F.softmax(z, 1)`, when so bound
    joined: bool = False  # the same kind from several activations (paths that join, assignments that agree)


@dataclass(frozen=True)
class Layer:
    """A model, module or layer: what calling it returns."""

    kind: str | None  # the kind of its output (SHAPE: its input's kind); None: unknown
    origin: ast.AST | None
    framework: str
    keras_model: bool = False  # compile() may give it a loss
    sequential: bool = False  # a keras.Sequential: add() appends a layer
    custom_step: bool = False  # a Keras model class overriding train_step / compute_loss: compile()'s loss is
    # not necessarily applied to the output
    items: "Items | None" = None  # a model whose forward returns a tuple: what each element is


@dataclass(frozen=True)
class Items:
    """A tuple of values (`return validity, label`): what each element is (None: unknown)."""

    things: tuple


@dataclass(frozen=True)
class Loss:
    """A loss class, one of its objects, or a loss function."""

    qualname: str
    stage: str  # "class" (calling it builds a loss object), "instance" or "function" (calling it computes)
    expects: str | None  # LOGITS, LOG_PROBS or PROBS; None: unknown (`from_logits=flag`)
    framework: str
    position: int | None  # where a computing call takes the prediction
    keyword: str
    built: ast.AST | None = None  # as written: the constructor call, the string, the function reference
    from_logits: ast.expr | None = None  # the `from_logits` argument as written

    def resolved(self) -> "Loss":
        """A Keras loss's expectation from its `from_logits` (False when not given; unknown when not a literal)."""
        spec = K.LOSSES.get(self.qualname)
        if spec is None or spec[0] != "from_logits":
            return self
        if self.stage == "class":
            return replace(self, expects=None)
        if self.from_logits is None:
            return replace(self, expects=PROBS)
        flag = bool_value(self.from_logits)
        return replace(self, expects=None if flag is None else (LOGITS if flag else PROBS))


Thing = Union[Tensor, Layer, Loss, Items]


@dataclass(frozen=True)
class Returns:
    """A function: calling it gives its returns."""

    thing: Thing | None


def join(things: list) -> Thing | None:
    """What several values (of joining paths, of the assignments of a name) all are: the same thing; or tensors
    of one kind, layers with one output kind, from different places (`joined`: no single place to fix); else
    unknown."""
    if not things or things[0] is None:
        return None
    first = things[0]
    if all(other == first for other in things[1:]):
        return first
    if isinstance(first, Tensor) and all(isinstance(t, Tensor) and (t.kind, t.framework) == (first.kind, first.framework)
                                         for t in things):
        return replace(first, inputs=None, via=None, statement=None, joined=True)
    if isinstance(first, Layer) and first.kind is not None and all(
            isinstance(t, Layer) and t.kind == first.kind and t.items is None for t in things):
        return replace(first, keras_model=all(t.keras_model for t in things),
                       sequential=all(t.sequential for t in things), custom_step=any(t.custom_step for t in things))
    if isinstance(first, Items) and all(isinstance(t, Items) and len(t.things) == len(first.things) for t in things):
        return Items(tuple(join([t.things[i] for t in things]) for i in range(len(first.things))))
    return None


def foreign(thing: Thing | None) -> Thing | None:
    """A value read in another scope: the names it was computed from mean nothing here."""
    if isinstance(thing, Tensor):
        return replace(thing, inputs=None, via=None, statement=None)
    if isinstance(thing, Items):
        return Items(tuple(foreign(t) for t in thing.things))
    return thing


def loss_name(qualname: str) -> str:
    for prefix, replacement in K.LOSS_PREFIX_ALIASES:
        if qualname.startswith(prefix):
            return replacement + qualname[len(prefix):]
    return qualname


def framework_of(qualname: str) -> str:
    return TORCH if qualname.startswith("torch") else KERAS


def logged(value: Thing | None) -> Tensor | None:
    """The log of softmax probabilities is a log-probability."""
    if isinstance(value, Tensor) and value.kind == SOFTMAX:
        return replace(value, kind=LOG_SOFTMAX)
    return None


def numeric(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = numeric(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def given(call: ast.Call, position: int | None, word: str) -> ast.expr | None:
    value = keyword(call, word)
    if value is not None or position is None:
        return value
    args = positional(call)
    return args[position] if position < len(args) else None


def names_read(call: ast.Call, source: ast.expr) -> list[ast.expr]:
    """The outermost Name/Attribute chains in a call's arguments and, for a method, its receiver `source`."""
    pending: list[ast.AST] = [*call.args, *(k.value for k in call.keywords)]
    if isinstance(call.func, ast.Attribute) and call.func.value is source:
        pending.append(source)
    found = []
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Name, ast.Attribute)) and dotted(node) is not None:
            found.append(node)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found
