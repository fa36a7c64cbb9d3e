"""Losses: what reaches a loss function, and what the loss expects it to be.

A classification loss expects one kind of prediction: `CrossEntropyLoss` and `BCEWithLogitsLoss` raw scores
(logits), `NLLLoss` log-probabilities, `BCELoss` and Keras losses with `from_logits=False` probabilities. This
module finds every loss (a call of a loss function or of a loss object, a Keras `compile(loss=...)`) and the
kind of the prediction that reaches it (kinds.py: softmax / sigmoid probabilities, log-probabilities, a Keras
model's logits, or unknown, which stays silent), as predictions.py evaluates it.

Each function is read once, in order: a name holds what its last assignment on the way gave it; after an
`if`, what both arms agree on; a loop body is read twice, so what the end of an iteration assigns reaches its
start. Assignments have versions, so a fix can tell whether `logits` still holds the value `probs =
F.softmax(logits, 1)` was computed from. A loss under `torch.no_grad()` or turned straight into a number is
recorded as not trained on (a validation loss, a metric).
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, replace

from . import knowledge as K
from .kinds import KERAS, PROBS, SHAPE, Items, Layer, Loss, Tensor, Thing, foreign, given, join, loss_name
from .names import bool_value, dotted, keyword, positional, string
from .predictions import Predictions, _Reader
from .roles import Roles
from .structure import FUNCTION_TYPES, TRY_TYPES, FunctionInfo, Structure, calls_in, item_calls, walk_items

_WORK_BUDGET = 200_000  # statements read per file (each loop body twice): real files stay far below


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


class _Flow(_Reader):
    ordered = True
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


class Losses(Predictions):
    """Every function of the file (and the module) read once, in order: the losses it computes and what reaches
    them (`feeds`), and what its returns agree on (for the helpers that call it)."""

    def __init__(self, structure: Structure, roles: Roles) -> None:
        super().__init__(structure, roles)
        self.counter = 0  # assignment versions
        self.work = 0
        self._returns: dict[int, Thing | None] = {}
        self._walking: set[int] = set()
        self._feeds: dict[int, LossFeed] = {}
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
                if qualname is not None and loss_name(qualname) in K.LOSSES:
                    return True
        values = [v for f in self.structure.all_functions for vs in f.assignments.values() for v in vs]
        values += [v for vs in self.structure.module_assignments.values() for v in vs]
        return any(isinstance(v, (ast.Name, ast.Attribute)) and (q := self.structure.imports.qualify(v)) is not None
                   and loss_name(q) in K.LOSSES for v in values)

    def _walk_file(self) -> list[LossFeed]:
        if not self._has_losses():
            return []
        self.walk(None)
        for function in self.structure.all_functions:
            self.walk(function)
        return sorted(self._feeds.values(), key=lambda f: (f.node.lineno, f.node.col_offset))

    def walk(self, function: FunctionInfo | None) -> Thing | None:
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
        result = foreign(self.agree(returns)) if returns else None
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
            if isinstance(layer, Layer) and layer.kind == SHAPE:
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
                    callee = replace(callee, built=node, from_logits=given(node, spec[4], "from_logits"))
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
        if not isinstance(model, Layer) or not model.keras_model or model.custom_step or model.kind in (None, SHAPE):
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
