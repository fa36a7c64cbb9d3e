"""Losses: what reaches a loss function, and what the loss expects it to be.

A classification loss expects one kind of prediction: `CrossEntropyLoss` and `BCEWithLogitsLoss` raw scores
(logits), `NLLLoss` log-probabilities, `BCELoss` and Keras losses with `from_logits=False` probabilities. This
module finds every loss (a call of a loss function or of a loss object, a Keras `compile(loss=...)`) and the
*kind* of the prediction that reaches it:

- softmax / sigmoid probabilities: `F.softmax(z, dim=1)`, `z.sigmoid()`, an `nn.Softmax` layer, a model whose
  `forward` returns one, an `nn.Sequential` or a Keras model whose last layer applies one;
- log-probabilities: `log_softmax`, `torch.log(probabilities)`;
- logits: the output of a Keras model whose last layer is linear (`Dense(10)`, no activation);
- unknown: everything else. Unknown stays silent.

Kinds follow values along the assignments of each function in order (a name reassigned in one branch and
not the other is unknown after the `if`; a loop body is read twice, so what the end of an iteration assigns
reaches its start), into models (`model = Net()`: `Net.forward`'s returns; `self.fc` from the class's
attributes), wrappers (`DataParallel(model)`), helpers (`build_model()`: its returns) and parameters (what
every call of the function in the file passes). Loss objects are followed the same way. Knowledge (which
functions, layers and losses) lives in knowledge.py.
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field, replace
from typing import Union

from . import knowledge as K
from .names import bool_value, dotted, has_star, keyword, positional, string
from .roles import Roles
from .structure import (FUNCTION_TYPES, TRY_TYPES, ClassInfo, FunctionInfo, Structure, calls_in, item_calls,
                        walk_items)

LOGITS, SOFTMAX, SIGMOID, LOG_SOFTMAX = "logits", "softmax", "sigmoid", "log_softmax"
PROBABILITIES = frozenset({SOFTMAX, SIGMOID})
LOG_PROBS, PROBS = "log_probs", "probs"  # what a loss may expect, besides LOGITS
TORCH, KERAS = "torch", "keras"
_SHAPE = "shape"  # a layer that hands its input's kind on
_MAX_DEPTH = 12
_WORK_BUDGET = 200_000  # statements read per file (each loop body twice): real files stay far below


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

    kind: str | None  # the kind of its output (_SHAPE: its input's kind); None: unknown
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


@dataclass(eq=False)
class LossFeed:
    """A loss and the prediction that reaches it."""

    loss: Loss
    value: Tensor
    node: ast.AST  # where to report: the prediction as written, or compile()'s loss argument
    call: ast.Call  # the loss call, or the compile() call
    argument: ast.expr | None  # the prediction as written (None for compile(): the model's output)
    function: FunctionInfo | None  # where it is written (None: the module)
    model: str | None = None  # compile(): the model, as written
    loss_key: str | None = None  # the name the loss object is read through (`criterion`), when so
    # The names the activation call read still hold the same values here (`probs = F.softmax(logits, 1)` ...
    # `loss(probs, y)` with `logits` not reassigned between): the loss could read them instead.
    fresh: bool = False
    # Can the loss be trained on? Not under `torch.no_grad()` (a validation loss), not taken straight to a number
    # (`criterion(out, y).item()`, a metric).
    trained: bool = True


class _Reader:
    """Reads the names of one function (or the module) when evaluating an expression there."""

    def __init__(self, analysis: "Losses", function: FunctionInfo | None) -> None:
        self.analysis = analysis
        self.function = function
        self.imports = analysis.roles.imports_of(function)

    def read(self, key: str, node: ast.expr, depth: int) -> Thing | None:
        return self.analysis.outside(key, self.function, depth)

    def version(self, key: str) -> int | None:
        return None


class _Static(_Reader):
    """Without order: a name is what all of its assignments in the function agree on."""

    def read(self, key: str, node: ast.expr, depth: int) -> Thing | None:
        function = self.function
        values = function.assignments.get(key) if function is not None else None
        if values is None:
            return self.analysis.outside(key, function, depth)
        return self.analysis.static(key, function, values, self, depth)


class _Flow(_Reader):
    """In order: the value each name holds at this point of the function."""

    def __init__(self, analysis: "Losses", function: FunctionInfo | None, assigned: set[str]) -> None:
        super().__init__(analysis, function)
        self.env: dict[str, Thing | None] = {}
        self.versions: dict[str, int] = {}
        self.assigned = assigned  # every key the function assigns somewhere
        self.no_grad = function is not None and (function.grad is False or (
            function.name in K.NO_GRAD_METHODS and function.klass is not None))

    def read(self, key: str, node: ast.expr, depth: int) -> Thing | None:
        if key in self.env:
            found = self.env[key]
            return replace(found, via=node) if isinstance(found, Tensor) else found
        if key in self.assigned:
            return None  # assigned in the function, but not on the way here
        return self.analysis.outside(key, self.function, depth)

    def version(self, key: str) -> int | None:
        return self.versions.get(key, 0)

    def bind(self, key: str, thing: Thing | None) -> None:
        """`key` now holds `thing` (None: something unknown; `assigned` keeps it from being read elsewhere)."""
        if isinstance(thing, Tensor):
            thing = replace(thing, via=None)
        self.assigned.add(key)
        if thing is None:
            self.env.pop(key, None)
        else:
            self.env[key] = thing
        self.analysis.counter += 1
        self.versions[key] = self.analysis.counter
        prefix = key + "."
        for other in [k for k in self.env if k.startswith(prefix)]:
            del self.env[other]  # `a.b` of an `a` that is no more
        for other in [k for k in self.versions if k.startswith(prefix)]:
            self.versions[other] = self.analysis.counter

    def snapshot(self) -> tuple[dict, dict]:
        return dict(self.env), dict(self.versions)

    def restore(self, state: tuple[dict, dict]) -> None:
        self.env, self.versions = dict(state[0]), dict(state[1])

    def merge(self, states: list[tuple[dict, dict]]) -> None:
        """After paths join: a name keeps its value where every path agrees, else it is unknown; a name
        assigned differently on the paths gets a new version."""
        env: dict[str, Thing] = {}
        for key in set(states[0][0]).intersection(*(s[0] for s in states[1:])):
            found = join([s[0][key] for s in states])
            if found is not None:
                env[key] = found
        base = states[0][1]
        versions = dict(base)
        changed: set[str] = set()
        for state in states[1:]:
            if state[1] != base:
                changed.update(key for key, _ in state[1].items() ^ base.items())
        for key in changed:
            self.analysis.counter += 1
            versions[key] = self.analysis.counter
        self.env, self.versions = env, versions


_BUILTINS = frozenset(dir(builtins))


class Losses:
    def __init__(self, structure: Structure, roles: Roles) -> None:
        self.structure = structure
        self.roles = roles
        self.links = roles.links
        self.counter = 0
        self.work = 0
        self._returns: dict[int, Thing | None] = {}
        self._classes: dict[int, Layer | None] = {}
        self._walking: set[int] = set()
        self._feeds: dict[int, LossFeed] = {}
        self._sites: dict[str, list[tuple[ast.Call, FunctionInfo | None]]] | None = None
        self._static: dict[tuple[str, int], Thing | None] = {}
        self._call_cache: dict[int, list[ast.Call]] = {}
        self.feeds: list[LossFeed] = self._walk_file()

    # -- the file's scopes, read in order -----------------------------------------------------------------
    def _has_losses(self) -> bool:
        """Does the file name a loss (called, or bound to a name) or compile a Keras model? If not, there is
        nothing to follow."""
        for item, function in walk_items(self.structure):
            imports = self.roles.imports_of(function)
            for site in item_calls(item):
                if site.method == "compile":
                    return True
                func = site.call.func
                while isinstance(func, ast.Call):  # `nn.CrossEntropyLoss()(logits, y)`
                    func = func.func
                qualname = imports.qualify(func)
                if qualname is not None and _loss_name(qualname) in K.LOSSES:
                    return True
        values = [v for f in self.structure.all_functions for vs in f.assignments.values() for v in vs]
        values += [v for vs in self.structure.module_assignments.values() for v in vs]
        return any(isinstance(v, (ast.Name, ast.Attribute)) and (q := self.structure.imports.qualify(v)) is not None
                   and _loss_name(q) in K.LOSSES for v in values)

    def _walk_file(self) -> list[LossFeed]:
        if not self._has_losses():
            return []
        self._walk(None)
        for function in self.structure.all_functions:
            self._walk(function)
        return sorted(self._feeds.values(), key=lambda f: (f.node.lineno, f.node.col_offset))

    def _walk(self, function: FunctionInfo | None) -> Thing | None:
        """Read a function (or the module) in order, recording its losses; the Thing its returns agree on."""
        key = id(function)
        if key in self._returns:
            return self._returns[key]
        if key in self._walking:
            return None  # recursion: unknown
        self._walking.add(key)
        body = function.node.body if function is not None and function.node is not None else (
            self.structure.module.body if function is None else [])
        assigned = set(function.assignments) if function is not None else set(self.structure.module_assignments)
        flow = _Flow(self, function, assigned)
        returns: list[Thing | None] = []
        self._block(body, flow, returns, function is None or self._local(function))
        self._walking.discard(key)
        result = _foreign(self.agree(returns)) if returns else None
        self._returns[key] = result
        return result

    def _local(self, function: FunctionInfo) -> bool:
        module = function.module
        return module is None or module is self.structure

    def _block(self, statements: list[ast.stmt], flow: _Flow, returns: list, record: bool) -> None:
        for statement in statements:
            self.work += 1
            if self.work > _WORK_BUDGET:
                return
            self._statement(statement, flow, returns, record)

    def _statement(self, node: ast.stmt, flow: _Flow, returns: list, record: bool) -> None:
        kind = type(node)
        if kind in FUNCTION_TYPES or kind is ast.ClassDef:
            return  # read on their own; their names resolve to their definitions
        calls = self._statement_calls(node)
        if calls:
            if record:
                self._record(calls, flow)
            self._handed_over(calls, flow)
        if kind is ast.Assign:
            value = self.evaluate(node.value, flow, 0)
            if isinstance(value, Tensor) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and value.origin is node.value:
                value = replace(value, statement=node)
            for target in node.targets:
                self._assign(target, node.value, value, flow)
        elif kind is ast.AnnAssign:
            if node.value is not None:
                self._assign(node.target, node.value, self.evaluate(node.value, flow, 0), flow)
        elif kind is ast.AugAssign:
            self._assign(node.target, None, None, flow)
        elif kind is ast.Expr:
            self._effects(node.value, flow)
        elif kind is ast.Return:
            returns.append(self.evaluate(node.value, flow, 0) if node.value is not None else None)
        elif kind is ast.Delete:
            for target in node.targets:
                self._assign(target, None, None, flow)
        elif kind in (ast.For, ast.AsyncFor, ast.While):
            self._loop(node, flow, returns, record)
        elif kind is ast.If:
            before = flow.snapshot()
            self._block(node.body, flow, returns, record)
            after_body = flow.snapshot()
            flow.restore(before)
            self._block(node.orelse, flow, returns, record)
            flow.merge([after_body, flow.snapshot()])
        elif kind in (ast.With, ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, None, None, flow)
            outer = flow.no_grad
            flow.no_grad = outer or _no_grad(node, flow.imports)
            self._block(node.body, flow, returns, record)
            flow.no_grad = outer
        elif kind in TRY_TYPES:
            before = flow.snapshot()
            self._block(node.body, flow, returns, record)
            self._block(node.orelse, flow, returns, record)
            ends = [flow.snapshot()]
            for handler in node.handlers:
                flow.merge([before, ends[0]])  # a handler may start anywhere in the body
                if handler.name:
                    flow.bind(handler.name, None)
                self._block(handler.body, flow, returns, record)
                ends.append(flow.snapshot())
            flow.merge(ends)
            self._block(node.finalbody, flow, returns, record)
        elif kind is getattr(ast, "Match", None):
            before = flow.snapshot()
            ends = []
            for case in node.cases:
                flow.restore(before)
                self._block(case.body, flow, returns, record)
                ends.append(flow.snapshot())
            flow.merge(ends + [before])

    def _loop(self, node, flow: _Flow, returns: list, record: bool) -> None:
        """A loop body read twice: the second time from the join of the entry and the first iteration's end,
        so values an iteration leaves behind reach the next one (what the second reading records stays)."""
        before = flow.snapshot()
        for _ in range(2):
            if isinstance(node, (ast.For, ast.AsyncFor)):
                self._assign(node.target, None, None, flow)
            self._block(node.body, flow, returns, record)
            flow.merge([before, flow.snapshot()])
        self._block(node.orelse, flow, returns, record)

    def _assign(self, target: ast.expr, value_node: ast.expr | None, value: Thing | None, flow: _Flow) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            elements = [e.value if isinstance(e, ast.Starred) else e for e in target.elts]
            starred = any(isinstance(e, ast.Starred) for e in target.elts)
            if isinstance(value_node, (ast.Tuple, ast.List)) and len(value_node.elts) == len(elements) and not any(
                    isinstance(e, ast.Starred) for e in value_node.elts):
                for element, item in zip(elements, value_node.elts):
                    self._assign(element, item, self.evaluate(item, flow, 0), flow)
            elif isinstance(value, Items) and len(value.things) == len(elements) and not starred:
                for element, thing in zip(elements, value.things):  # `validity, label = discriminator(x)`
                    self._assign(element, None, thing, flow)
            else:
                for element in elements:
                    self._assign(element, None, None, flow)
            return
        if isinstance(target, ast.Subscript):  # `probs[mask] = 0`: no longer what it was
            key = dotted(target.value)
            if key is not None:
                flow.bind(key, None)
            return
        key = dotted(target)
        if key is not None:
            flow.bind(key, value)
            owner = key.rpartition(".")[0]
            while owner:  # `model.head = nn.Identity()`: the model's output may be another now
                if isinstance(flow.env.get(owner), Layer):
                    flow.bind(owner, None)
                owner = owner.rpartition(".")[0]

    def _effects(self, expr: ast.expr, flow: _Flow) -> None:
        """Statements that change a model: `model.add(layer)` on a keras.Sequential, in-place activations."""
        if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Attribute):
            return
        receiver, method = dotted(expr.func.value), expr.func.attr
        if receiver is None:
            return
        current = flow.read(receiver, expr.func.value, 0)
        if method == "add" and isinstance(current, Layer) and current.sequential:
            args = positional(expr)
            layer = self.evaluate(args[0], flow, 0) if len(args) == 1 and not expr.keywords else None
            if isinstance(layer, Layer) and layer.kind == _SHAPE:
                return
            kind, origin = (layer.kind, layer.origin) if isinstance(layer, Layer) else (None, None)
            flow.bind(receiver, replace(current, kind=kind, origin=origin))
        elif method in ("pop", "build_from_config") and isinstance(current, Layer):
            flow.bind(receiver, None)
        elif method.endswith("_") and isinstance(current, Tensor) and method not in K.KIND_KEEPING_METHODS:
            flow.bind(receiver, None)  # `probs.mul_(2)`: no longer what it was

    def _statement_calls(self, statement: ast.stmt) -> list[ast.Call]:
        found = self._call_cache.get(id(statement))
        if found is None:
            found = self._call_cache[id(statement)] = _calls(statement)
        return found

    def _handed_over(self, calls: list[ast.Call], flow: _Flow) -> None:
        """A keras.Sequential handed to a function of the project (`add_head(model)`) may get more layers there:
        its last layer is no longer known."""
        for call in calls:
            if isinstance(call.func, ast.Name) and call.func.id in _BUILTINS or isinstance(
                    call.func, (ast.Name, ast.Attribute)) and flow.imports.qualify(call.func) is not None:
                continue  # `print(model)`, `keras.utils.plot_model(model)`
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                key = dotted(arg.value if isinstance(arg, ast.Starred) else arg)
                if key is not None and key in flow.env and isinstance(flow.env[key], Layer) and flow.env[key].sequential:
                    flow.bind(key, None)

    # -- losses ---------------------------------------------------------------------------------------------
    def _record(self, calls: list[ast.Call], flow: _Flow) -> None:
        """Every loss computed in a statement, with what reaches it (read before the statement assigns)."""
        numbers = _made_numbers(calls)
        for node in calls:
            func = node.func
            callee = self.evaluate(func, flow, 0)
            if isinstance(callee, Loss) and callee.stage == "function":
                spec = K.LOSSES[callee.qualname]
                if spec[0] == "from_logits":  # `sparse_categorical_crossentropy(y, p, from_logits=True)`
                    callee = replace(callee, built=node, from_logits=_argument(node, spec[4], "from_logits"))
                    callee = callee.resolved()
            if isinstance(callee, Loss) and callee.stage != "class":
                self._feed(callee, node, flow, dotted(func), not flow.no_grad and id(node) not in numbers)
            elif isinstance(func, ast.Call):
                continue
            elif isinstance(func, ast.Attribute) and func.attr == "compile":
                self._compiled(node, flow)

    def _feed(self, loss: Loss, call: ast.Call, flow: _Flow, loss_key: str | None, trained: bool) -> None:
        if loss.expects is None:
            return
        argument = keyword(call, loss.keyword)
        if argument is None and loss.position is not None:
            args = positional(call)
            if len(args) != len(call.args) and len(args) <= loss.position:
                return  # `*args` before it
            argument = args[loss.position] if loss.position < len(args) else None
        if argument is None:
            return
        value = self.evaluate(argument, flow, 0)
        if isinstance(value, Tensor):
            fresh = value.inputs is not None and all(flow.version(k) == v for k, v in value.inputs)
            named = isinstance(call.func, (ast.Name, ast.Attribute)) and loss.stage == "instance"
            self._feeds[id(call)] = LossFeed(loss, value, argument, call, argument, flow.function,
                                             loss_key=loss_key if named else None, fresh=fresh, trained=trained)
        else:
            self._feeds.pop(id(call), None)

    def _compiled(self, call: ast.Call, flow: _Flow) -> None:
        """`model.compile(optimizer, loss=...)`: the model's output is what the loss receives."""
        receiver = dotted(call.func.value)
        model = self.evaluate(call.func.value, flow, 0) if receiver is not None else None
        if not isinstance(model, Layer) or not model.keras_model or model.custom_step or model.kind in (None, _SHAPE):
            return
        argument = keyword(call, "loss")
        if argument is None:
            args = positional(call)
            if len(args) != len(call.args):
                return
            argument = args[1] if len(args) > 1 else None
        if argument is None:
            return
        loss = self.keras_loss(argument, flow)
        if loss is None or loss.expects is None:
            return
        value = Tensor(model.kind, model.origin, KERAS, model=receiver)
        self._feeds[id(call)] = LossFeed(loss, value, argument, call, None, flow.function, model=receiver,
                                         loss_key=dotted(argument))

    def keras_loss(self, argument: ast.expr, reader: _Reader) -> Loss | None:
        """The loss compile() gets: a name (`"categorical_crossentropy"`), a function or a loss object."""
        name = string(argument)
        if name is not None:
            klass = K.KERAS_LOSS_NAMES.get(name)
            return Loss(f"keras.losses.{klass}", "instance", PROBS, KERAS, 1, "y_pred", argument) if klass else None
        loss = self.evaluate(argument, reader, 0)
        if isinstance(loss, Loss) and loss.stage != "class" and loss.framework == KERAS:
            return loss
        return None

    # -- values -----------------------------------------------------------------------------------------------
    def evaluate(self, expr: ast.expr | None, reader: _Reader, depth: int) -> Thing | None:
        if expr is None or depth > _MAX_DEPTH:
            return None
        kind = type(expr)
        if kind is ast.Name or kind is ast.Attribute:
            key = dotted(expr)
            if key is None:
                return None
            qualname = reader.imports.qualify_key(key)
            if qualname is not None:
                return self.library(qualname, expr)
            if key == "self":
                return self.self_layer(reader.function)
            return reader.read(key, expr, depth + 1)
        if kind is ast.Call:
            return self.call(expr, reader, depth + 1)
        if kind is ast.Subscript:
            inner = self.evaluate(expr.value, reader, depth + 1)
            if isinstance(inner, Items):  # `outputs[1]`
                index = expr.slice
                position = index.value if isinstance(index, ast.Constant) and type(index.value) is int else None
                if position is not None and -len(inner.things) <= position < len(inner.things):
                    return inner.things[position]
                return None
            return inner if isinstance(inner, Tensor) else None
        if kind is ast.Tuple:
            if any(isinstance(e, ast.Starred) for e in expr.elts):
                return None
            things = tuple(self.evaluate(e, reader, depth + 1) for e in expr.elts)
            return Items(things) if any(isinstance(t, Tensor) for t in things) else None
        if kind is ast.BinOp and isinstance(expr.op, (ast.Add, ast.Sub)):  # `probs + 1e-8`
            for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
                small = _number(other)
                if small is not None and abs(small) < 1e-2:
                    inner = self.evaluate(side, reader, depth + 1)
                    return inner if isinstance(inner, Tensor) else None
            return None
        if kind is ast.IfExp:
            return self.agree([self.evaluate(expr.body, reader, depth + 1),
                               self.evaluate(expr.orelse, reader, depth + 1)])
        return None

    def library(self, qualname: str, node: ast.expr) -> Thing | None:
        """A library name, not called: a loss class or function."""
        spec = K.LOSSES.get(_loss_name(qualname))
        if spec is None:
            return None
        expects, stage, position, word, _ = spec
        return Loss(_loss_name(qualname), stage, None if expects == "from_logits" else expects,
                    _framework(qualname), position, word, node).resolved()

    def call(self, call: ast.Call, reader: _Reader, depth: int) -> Thing | None:
        func = call.func
        qualname = reader.imports.qualify(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        if qualname is not None:
            return self.library_call(qualname, call, reader, depth)
        callee = self.evaluate(func, reader, depth + 1)  # `model(x)`, `self.softmax(x)`, `build_model()`
        if isinstance(callee, _Returns):
            return callee.thing
        if callee is not None:
            return self.apply(callee, call, reader, depth)
        if not isinstance(func, ast.Attribute):
            return None
        method, receiver = func.attr, dotted(func.value)
        if receiver == "self":  # `self.build_model()`, `self.forward(x)`
            return self.method_returns(reader.function, method, call, reader, depth + 1)
        if method in K.ACTIVATION_METHODS:  # `logits.softmax(dim=1)`
            return self.activation(K.ACTIVATION_METHODS[method], call, func.value, reader,
                                   _tensor_framework(reader))
        if method in K.KIND_KEEPING_METHODS:
            inner = self.evaluate(func.value, reader, depth + 1)
            return inner if isinstance(inner, (Tensor, Layer)) else None
        if method == "log" and not call.args and not call.keywords:
            return _logged(self.evaluate(func.value, reader, depth + 1))
        if method == "forward":
            return self.apply(self.evaluate(func.value, reader, depth + 1), call, reader, depth)
        return None

    def apply(self, callee: Thing | None, call: ast.Call, reader: _Reader, depth: int) -> Thing | None:
        """What calling `callee` returns."""
        if isinstance(callee, Layer):
            if callee.items is not None:
                model = dotted(call.func)
                return Items(tuple(replace(t, model=model) if isinstance(t, Tensor) else None
                                   for t in callee.items.things))
            if callee.kind == _SHAPE:
                args = positional(call)
                return self.evaluate(args[0], reader, depth + 1) if len(args) == 1 else None
            if callee.kind is None or callee.origin is None:
                return None
            return Tensor(callee.kind, callee.origin, callee.framework, model=dotted(call.func))
        if isinstance(callee, Loss) and callee.stage == "class":
            return self.loss_object(callee, call)
        return None

    def library_call(self, qualname: str, call: ast.Call, reader: _Reader, depth: int) -> Thing | None:
        args = positional(call)
        first = args[0] if args else None
        framework = _framework(qualname)
        if qualname in K.ACTIVATION_FUNCTIONS:
            return self.activation(K.ACTIVATION_FUNCTIONS[qualname], call, first, reader, framework)
        if qualname in K.KIND_KEEPING_FUNCTIONS or qualname in K.MODEL_WRAPPERS:
            inner = self.evaluate(first, reader, depth + 1)
            return inner if isinstance(inner, (Tensor, Layer)) else None
        if qualname in K.LOG_FUNCTIONS:
            return _logged(self.evaluate(first, reader, depth + 1))
        if qualname in K.ACTIVATION_LAYERS:
            return Layer(K.ACTIVATION_LAYERS[qualname], call, framework)
        if qualname in K.SHAPE_LAYERS:
            return Layer(_SHAPE, call, framework)
        if qualname == "torch.nn.Sequential":
            if len(args) != len(call.args) or call.keywords:
                return None
            return self.chain(args, reader, depth, TORCH)
        if qualname in K.KERAS_MODEL_CONSTRUCTORS:
            return self.keras_model(qualname, call, reader, depth)
        if qualname == K.KERAS_ACTIVATION_LAYER:  # `Activation("linear")` is the identity (a cast with dtype=)
            kind = self.keras_activation(_argument(call, 0, "activation"), reader)
            return Layer(_SHAPE if kind == LOGITS else kind, call, KERAS)
        if qualname in K.KERAS_LINEAR_LAYERS:
            value = _argument(call, K.KERAS_LINEAR_LAYERS[qualname], "activation")
            if has_star(call):
                return None
            return Layer(LOGITS if value is None else self.keras_activation(value, reader), call, KERAS)
        loss = self.library(qualname, call.func)
        if isinstance(loss, Loss):
            return self.loss_object(loss, call) if loss.stage == "class" else None
        return None

    def activation(self, kind: str, call: ast.Call, source: ast.expr | None, reader: _Reader,
                   framework: str) -> Tensor | None:
        if source is None:
            return None
        inputs = None
        if isinstance(reader, _Flow):
            keys = [dotted(n) for n in _names(call, source)]
            inputs = tuple(sorted({(k, reader.version(k)) for k in keys if k is not None}))
        return Tensor(kind, call, framework, inputs)

    def loss_object(self, loss: Loss, call: ast.Call) -> Loss | None:
        """`nn.CrossEntropyLoss()`, `keras.losses.X(from_logits=True)`: the object, with what it expects."""
        spec = K.LOSSES[loss.qualname]
        built = Loss(loss.qualname, "instance", loss.expects, loss.framework, loss.position, loss.keyword, call)
        if spec[0] != "from_logits":
            return built
        flag = _argument(call, spec[4], "from_logits")
        return replace(built, from_logits=flag).resolved()

    def keras_activation(self, value: ast.expr | None, reader: _Reader) -> str | None:
        if value is None:
            return None
        if isinstance(value, ast.Constant):
            if value.value is None:
                return LOGITS
            return K.KERAS_ACTIVATIONS.get(value.value) if isinstance(value.value, str) else None
        qualname = reader.imports.qualify(value)
        return K.KERAS_ACTIVATION_FUNCTIONS.get(qualname) if qualname else None

    def keras_model(self, qualname: str, call: ast.Call, reader: _Reader, depth: int) -> Layer | None:
        if qualname.endswith("Sequential"):
            layers = _argument(call, 0, "layers")
            if layers is None:
                return Layer(None, None, KERAS, keras_model=True, sequential=True)
            if not isinstance(layers, (ast.List, ast.Tuple)):
                return None
            chain = self.chain(layers.elts, reader, depth, KERAS)
            if chain is None:
                return Layer(None, None, KERAS, keras_model=True, sequential=True)
            return replace(chain, keras_model=True, sequential=True)
        outputs = _argument(call, 1, "outputs")
        value = self.evaluate(outputs, reader, depth + 1)
        if not isinstance(value, Tensor):
            return None
        return Layer(value.kind, value.origin, KERAS, keras_model=True)

    def chain(self, layers: list[ast.expr], reader: _Reader, depth: int, framework: str) -> Layer | None:
        """The last layer of a stack that says what the stack outputs (shape layers hand it on)."""
        for element in reversed(layers):
            if isinstance(element, ast.Starred):
                return None
            layer = self.evaluate(element, reader, depth + 1)
            if isinstance(layer, Layer) and layer.kind == _SHAPE:
                continue
            if isinstance(layer, Layer) and layer.kind is not None:
                return Layer(layer.kind, layer.origin, framework)
            return None
        return None

    # -- names defined elsewhere ----------------------------------------------------------------------------
    def outside(self, key: str, function: FunctionInfo | None, depth: int) -> Thing | None:
        """A name the function reads but does not assign: a parameter (what the file's calls pass), an
        attribute of `self` (what the class assigns), a name of an enclosing function or of the module."""
        if depth > _MAX_DEPTH:
            return None
        if function is not None:
            head = key.split(".")[0]
            if head == "self" and function.klass is not None and function.params[:1] == ["self"]:
                return self.attribute(function.klass, key, depth + 1)
            if head in function.params:
                return self.parameter(function, key, depth + 1) if head == key else None
            scope = function.parent
            while scope is not None:
                if key in scope.assignments:
                    return self.static(key, scope, scope.assignments[key], _Static(self, scope), depth + 1)
                if head in scope.params:
                    return None
                scope = scope.parent
        module = self.roles.module_of(function)
        values = module.module_assignments.get(key)
        if values is None:
            return self.definition(key, function, depth + 1)
        reader = _Static(self, None) if module is self.structure else _ModuleReader(self, module)
        return self.static(key, module, values, reader, depth)

    def static(self, key: str, scope: object, values: list[ast.expr], reader: _Reader, depth: int) -> Thing | None:
        """What all the values assigned to `key` in a scope agree on (once per key and scope)."""
        memo = (key, id(scope))
        if memo in self._static:
            return self._static[memo]
        self._static[memo] = None  # cycles are unknown
        found = self.agree([self.evaluate(v, reader, depth + 1) for v in values])
        self._static[memo] = found = _foreign(found)
        return found

    def definition(self, key: str, function: FunctionInfo | None, depth: int) -> Thing | None:
        """A function or class the name denotes: calling it returns its returns / builds a model."""
        module = self.roles.module_of(function)
        if "." not in key:
            scope = function
            while scope is not None:
                if key in scope.nested:
                    return _Returns(self._walk(scope.nested[key]))
                scope = scope.parent
            klass = module.classes.get(key)
            if klass is not None:
                return _Returns(self.class_layer(klass, depth + 1))  # calling the class builds one
            local = module.functions.get(key)
            if local is not None:
                return _Returns(self._walk(local))
        klass = self.links.klass(module, key)
        if klass is not None:
            return _Returns(self.class_layer(klass, depth + 1))
        helper = self.links.function(module, key)
        if helper is not None:
            return _Returns(self._walk(helper))
        return None

    def parameter(self, function: FunctionInfo, key: str, depth: int) -> Thing | None:
        """What every call of the function in this file passes for the parameter (unknown if any call passes
        something else, or none is seen)."""
        name = function.class_name if function.name == "__init__" and function.class_name else function.name
        if function.parent is not None or (function.class_name and function.name != "__init__"):
            return None  # methods and closures: their callers are not followed
        params = list(function.params)
        if function.name == "__init__" and params and params[0] == "self":
            params = params[1:]
        found: list[Thing | None] = []
        for call, caller in self.sites().get(name, []):
            value = keyword(call, key)
            if value is None and key in params:
                index = params.index(key)
                args = positional(call)
                if len(args) != len(call.args) and len(args) <= index:
                    return None
                value = args[index] if index < len(args) else function.defaults.get(key)
            elif value is None:
                value = function.defaults.get(key)
            found.append(self.evaluate(value, _Static(self, caller), depth + 1))
        return self.agree(found) if found else None

    def attribute(self, klass: ClassInfo, key: str, depth: int) -> Thing | None:
        """`self.fc`: what the class (and its bases) assign to it, where they agree."""
        found: list[Thing | None] = []
        for owner in self.roles.class_chain(klass):
            for method in owner.methods.values():
                for value in method.assignments.get(key, []):
                    found.append(self.evaluate(value, _Static(self, method), depth + 1))
        return self.agree(found) if found else None

    def self_layer(self, function: FunctionInfo | None) -> Layer | None:
        if function is None or function.klass is None:
            return None
        return self.class_layer(function.klass, 0)

    def class_layer(self, klass: ClassInfo, depth: int) -> Layer | None:
        """An instance of a model class: its forward's (Keras: call's) returns are what calling it gives."""
        key = id(klass)
        if key in self._classes:
            return self._classes[key]
        self._classes[key] = None
        if not self.roles.is_model_class(klass):
            return None
        keras = any(b.startswith("keras.") for owner in self.roles.class_chain(klass) for b in owner.bases)
        method = self.roles.method(klass, "call" if keras else "forward")
        if method is None:
            return None
        custom = keras and any(self.roles.method(klass, name) is not None
                               for name in ("train_step", "compute_loss", "test_step"))
        output = self._walk(method)
        if isinstance(output, Items):
            layer = Layer(None, None, KERAS if keras else TORCH, keras_model=keras, custom_step=custom, items=output)
        elif isinstance(output, Tensor):
            layer = Layer(output.kind, output.origin, KERAS if keras else TORCH, keras_model=keras, custom_step=custom)
        else:
            layer = Layer(None, None, KERAS if keras else TORCH, keras_model=keras, custom_step=custom)
        self._classes[key] = layer
        return layer

    def method_returns(self, function: FunctionInfo | None, name: str, call: ast.Call, reader: _Reader,
                       depth: int) -> Thing | None:
        """`self.build_model()`: what the method of the class returns; `self.forward(x)`: the class's output."""
        if function is None or function.klass is None:
            return None
        if name in ("forward", "call"):
            return self.apply(self.class_layer(function.klass, depth + 1), call, reader, depth)
        method = self.roles.method(function.klass, name)
        return self._walk(method) if method is not None else None

    def sites(self) -> dict[str, list[tuple[ast.Call, FunctionInfo | None]]]:
        """Calls of plain names anywhere in the file, by name."""
        if self._sites is None:
            self._sites = {}
            for item, function in walk_items(self.structure):
                for site in item_calls(item):
                    if isinstance(site.call.func, ast.Name):
                        self._sites.setdefault(site.call.func.id, []).append((site.call, function))
        return self._sites

    @staticmethod
    def agree(things: list[Thing | None]) -> Thing | None:
        """The one thing all of them are, else unknown."""
        return join(things)


@dataclass(frozen=True)
class _Returns:
    """A function: calling it gives its returns."""

    thing: Thing | None


class _ModuleReader(_Static):
    """The module level of another module of the project."""

    def __init__(self, analysis: Losses, module: Structure) -> None:
        _Reader.__init__(self, analysis, None)
        self.imports = module.imports
        self.module = module

    def read(self, key: str, node: ast.expr, depth: int) -> Thing | None:
        values = self.module.module_assignments.get(key)
        if values is None:
            return None
        return self.analysis.static(key, self.module, values, self, depth)


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


def _loss_name(qualname: str) -> str:
    for prefix, replacement in K.LOSS_PREFIX_ALIASES:
        if qualname.startswith(prefix):
            return replacement + qualname[len(prefix):]
    return qualname


def _framework(qualname: str) -> str:
    return TORCH if qualname.startswith("torch") else KERAS


def _tensor_framework(reader: _Reader) -> str:
    names = reader.imports.names.values()
    return TORCH if any(q.startswith("torch") for q in names) else KERAS


def _logged(value: Thing | None) -> Tensor | None:
    """The log of softmax probabilities is a log-probability."""
    if isinstance(value, Tensor) and value.kind == SOFTMAX:
        return replace(value, kind=LOG_SOFTMAX)
    return None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _argument(call: ast.Call, position: int | None, word: str) -> ast.expr | None:
    value = keyword(call, word)
    if value is not None or position is None:
        return value
    args = positional(call)
    return args[position] if position < len(args) else None


def _names(call: ast.Call, source: ast.expr) -> list[ast.expr]:
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


def _calls(statement: ast.stmt) -> list[ast.Call]:
    """The calls a simple statement (or a compound statement's header) makes; not those in nested functions,
    classes, lambdas or comprehensions, nor in the bodies of compound statements (read on their own)."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        roots: list[ast.AST] = [statement.iter]
    elif isinstance(statement, (ast.While, ast.If)):
        roots = [statement.test]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        roots = [item.context_expr for item in statement.items]
    elif isinstance(statement, (ast.Expr, ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign)):
        roots = [statement.value] if statement.value is not None else []
    elif isinstance(statement, (ast.Raise, ast.Assert)):
        roots = [child for child in ast.iter_child_nodes(statement)]
    elif type(statement) is getattr(ast, "Match", None):
        roots = [statement.subject]
    else:
        return []
    return [site.call for root in roots for site in calls_in(root)]


def _scope_nodes(roots: list[ast.AST]):
    """Every node under `roots`, outermost first, without entering nested functions, classes or lambdas."""
    pending = list(reversed(roots))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Lambda, *FUNCTION_TYPES, ast.ClassDef)):
            continue
        yield node
        pending.extend(reversed(list(ast.iter_child_nodes(node))))


def _no_grad(node: ast.With | ast.AsyncWith, imports) -> bool:
    """`with torch.no_grad():`, `with torch.inference_mode():`, `with torch.set_grad_enabled(False):`."""
    for item in node.items:
        expr = item.context_expr
        qualname = imports.qualify(expr.func if isinstance(expr, ast.Call) else expr)
        if qualname in K.NO_GRAD:
            return True
        if qualname in K.SET_GRAD_ENABLED and isinstance(expr, ast.Call) and expr.args \
                and bool_value(expr.args[0]) is False:
            return True
    return False


def _made_numbers(calls: list[ast.Call]) -> set[int]:
    """The calls of a statement whose value is turned straight into a number or detached: `f(x).item()`,
    `float(f(x))`."""
    found = set()
    for call in calls:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in K.DETACHING_METHODS and isinstance(func.value, ast.Call):
            found.add(id(func.value))
        elif isinstance(func, ast.Name) and func.id in ("float", "int") and call.args and isinstance(
                call.args[0], ast.Call):
            found.add(id(call.args[0]))
    return found


def _foreign(thing: Thing | None) -> Thing | None:
    """A value read in another scope: the names it was computed from mean nothing here."""
    if isinstance(thing, Tensor):
        return replace(thing, inputs=None, via=None, statement=None)
    if isinstance(thing, Items):
        return Items(tuple(_foreign(t) for t in thing.things))
    return thing
