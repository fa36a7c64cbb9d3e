"""Predictions: what an expression evaluates to, for the losses it may reach (kinds.py says what a kind is).

An expression is read where it is written: through the names of its function (`_Reader`: in order while the
function is walked, see losses.py; or `_Static`: what all of a name's assignments agree on), the file's
imports (`F.softmax`, `nn.CrossEntropyLoss`, `keras.layers.Dense`), the models it calls (`model = Net()`:
`Net.forward`'s returns; an `nn.Sequential` or a Keras model: its last layer; `DataParallel(model)`), the
attributes of `self` (what the class assigns), parameters (what every call of the function in the file
passes) and helpers (`build_model()`: its returns). Knowledge (which functions, layers and losses) lives in
knowledge.py.
"""
from __future__ import annotations

import ast
from dataclasses import replace

from . import knowledge as K
from .kinds import (KERAS, LOGITS, SHAPE, TORCH, Items, Layer, Loss, Returns, Tensor, Thing, foreign, framework_of,
                    given, join, logged, loss_name, names_read, numeric)
from .names import dotted, has_star, keyword, positional
from .roles import Roles
from .structure import ClassInfo, FunctionInfo, Structure, item_calls, walk_items

_MAX_DEPTH = 12


class _Reader:
    """Reads the names of one function (or the module) when evaluating an expression there."""

    ordered = False  # True while the function is walked in order: names have versions

    def __init__(self, analysis: "Predictions", function: FunctionInfo | None) -> None:
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


class _ModuleReader(_Static):
    """The module level of another module of the project."""

    def __init__(self, analysis: "Predictions", module: Structure) -> None:
        _Reader.__init__(self, analysis, None)
        self.imports = module.imports
        self.module = module

    def read(self, key: str, node: ast.expr, depth: int) -> Thing | None:
        values = self.module.module_assignments.get(key)
        if values is None:
            return None
        return self.analysis.static(key, self.module, values, self, depth)


class Predictions:
    """Evaluates expressions to things; `walk(function)` (losses.py) reads a function in order and gives what
    its returns agree on."""

    def __init__(self, structure: Structure, roles: Roles) -> None:
        self.structure = structure
        self.roles = roles
        self.links = roles.links
        self._classes: dict[int, Layer | None] = {}
        self._sites: dict[str, list[tuple[ast.Call, FunctionInfo | None]]] | None = None
        self._static: dict[tuple[str, int], Thing | None] = {}

    def walk(self, function: FunctionInfo | None) -> Thing | None:
        raise NotImplementedError

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
                small = numeric(other)
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
        spec = K.LOSSES.get(loss_name(qualname))
        if spec is None:
            return None
        expects, stage, position, word, _ = spec
        return Loss(loss_name(qualname), stage, None if expects == "from_logits" else expects,
                    framework_of(qualname), position, word, node).resolved()

    def call(self, call: ast.Call, reader: _Reader, depth: int) -> Thing | None:
        func = call.func
        qualname = reader.imports.qualify(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        if qualname is not None:
            return self.library_call(qualname, call, reader, depth)
        callee = self.evaluate(func, reader, depth + 1)  # `model(x)`, `self.softmax(x)`, `build_model()`
        if isinstance(callee, Returns):
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
            return logged(self.evaluate(func.value, reader, depth + 1))
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
            if callee.kind == SHAPE:
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
        framework = framework_of(qualname)
        if qualname in K.ACTIVATION_FUNCTIONS:
            return self.activation(K.ACTIVATION_FUNCTIONS[qualname], call, first, reader, framework)
        if qualname in K.KIND_KEEPING_FUNCTIONS or qualname in K.MODEL_WRAPPERS:
            inner = self.evaluate(first, reader, depth + 1)
            return inner if isinstance(inner, (Tensor, Layer)) else None
        if qualname in K.LOG_FUNCTIONS:
            return logged(self.evaluate(first, reader, depth + 1))
        if qualname in K.ACTIVATION_LAYERS:
            return Layer(K.ACTIVATION_LAYERS[qualname], call, framework)
        if qualname in K.SHAPE_LAYERS:
            return Layer(SHAPE, call, framework)
        if qualname == "torch.nn.Sequential":
            if len(args) != len(call.args) or call.keywords:
                return None
            return self.chain(args, reader, depth, TORCH)
        if qualname in K.KERAS_MODEL_CONSTRUCTORS:
            return self.keras_model(qualname, call, reader, depth)
        if qualname == K.KERAS_ACTIVATION_LAYER:  # `Activation("linear")` is the identity (a cast with dtype=)
            kind = self.keras_activation(given(call, 0, "activation"), reader)
            return Layer(SHAPE if kind == LOGITS else kind, call, KERAS)
        if qualname in K.KERAS_LINEAR_LAYERS:
            value = given(call, K.KERAS_LINEAR_LAYERS[qualname], "activation")
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
        if reader.ordered:
            keys = [dotted(n) for n in names_read(call, source)]
            inputs = tuple(sorted({(k, reader.version(k)) for k in keys if k is not None}))
        return Tensor(kind, call, framework, inputs)

    def loss_object(self, loss: Loss, call: ast.Call) -> Loss | None:
        """`nn.CrossEntropyLoss()`, `keras.losses.X(from_logits=True)`: the object, with what it expects."""
        spec = K.LOSSES[loss.qualname]
        built = Loss(loss.qualname, "instance", loss.expects, loss.framework, loss.position, loss.keyword, call)
        if spec[0] != "from_logits":
            return built
        flag = given(call, spec[4], "from_logits")
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
            layers = given(call, 0, "layers")
            if layers is None:
                return Layer(None, None, KERAS, keras_model=True, sequential=True)
            if not isinstance(layers, (ast.List, ast.Tuple)):
                return None
            chain = self.chain(layers.elts, reader, depth, KERAS)
            if chain is None:
                return Layer(None, None, KERAS, keras_model=True, sequential=True)
            return replace(chain, keras_model=True, sequential=True)
        outputs = given(call, 1, "outputs")
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
            if isinstance(layer, Layer) and layer.kind == SHAPE:
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
        self._static[memo] = found = foreign(found)
        return found

    def definition(self, key: str, function: FunctionInfo | None, depth: int) -> Thing | None:
        """A function or class the name denotes: calling it returns its returns / builds a model."""
        module = self.roles.module_of(function)
        if "." not in key:
            scope = function
            while scope is not None:
                if key in scope.nested:
                    return Returns(self.walk(scope.nested[key]))
                scope = scope.parent
            klass = module.classes.get(key)
            if klass is not None:
                return Returns(self.class_layer(klass, depth + 1))  # calling the class builds one
            local = module.functions.get(key)
            if local is not None:
                return Returns(self.walk(local))
        klass = self.links.klass(module, key)
        if klass is not None:
            return Returns(self.class_layer(klass, depth + 1))
        helper = self.links.function(module, key)
        if helper is not None:
            return Returns(self.walk(helper))
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
        output = self.walk(method)
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
        return self.walk(method) if method is not None else None

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


def _tensor_framework(reader: _Reader) -> str:
    names = reader.imports.names.values()
    return TORCH if any(q.startswith("torch") for q in names) else KERAS
