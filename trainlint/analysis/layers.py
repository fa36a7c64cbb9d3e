"""Layers: does a PyTorch model hold a layer whose behaviour depends on `train()` / `eval()`?

Dropout drops only in train mode; batch norm normalises with (and updates its running statistics from) the
batch only in train mode. Whether a model holds such a layer is read where the file (or a module of the
project it imports) builds the model, never by running anything:

* `nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), ...)`, `nn.ModuleList([...])`, wrappers
  (`DataParallel(net)`, `torch.compile(net)`, `net.to(device)`);
* an `nn.Module` class: the layers any of its methods builds (`self.drop = nn.Dropout(p)`,
  `F.dropout(x, p, training=self.training)`), the classes of the project it builds in turn, its bases;
* `torchvision.models.*` (batch norm, dropout or stochastic depth in all but ViT and the detection models)
  and `timm.create_model("resnet50")` (by the architecture's name; knowledge.py);
* a factory function of the project (`build_model(cfg)`: what it returns), a parameter (what the calls of
  the function pass), an attribute (`self.model = model` in `__init__`: what the class is built with).

A model we cannot trace to how it is built (`torch.load(path)`, a library's factory) holds nothing we know
of: the answer is None, and rules that need a layer stay silent.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from . import knowledge as K
from .names import argument, dotted, keyword, number, positional, string
from .roles import _MODE_METHODS, Roles
from .structure import ClassInfo, FunctionInfo, Item, Structure, item_calls, walk_items

_MAX_DEPTH = 24


@dataclass(frozen=True, eq=False)
class Held:
    """A mode-dependent layer a model holds: its name (`Dropout`, `BatchNorm2d`, `resnet18`) and where it is
    built (a node of this file or of a module of the project)."""

    layer: str
    node: ast.AST


class Layers:
    def __init__(self, structure: Structure, roles: Roles) -> None:
        self.structure = structure
        self.roles = roles
        self._classes: dict[int, Held | None] = {}
        self._sites: dict[int, dict[str, list[tuple[ast.Call, FunctionInfo | None]]]] = {}

    # -- the question ---------------------------------------------------------------------------------
    def held(self, key: str, function: FunctionInfo | None, chain: tuple[ast.Call, ...] = (),
             callers: dict[int, FunctionInfo | None] | None = None) -> Held | None:
        """The mode-dependent layer the model written `key` in `function` holds, or None when none is known.
        `chain` is the helper calls that led into `function` (outermost first) and `callers` the function each
        of those calls is written in: a parameter is what the call passed for it."""
        return self._key(key, function, chain, callers or {}, set(), 0)

    def free(self, key: str, function: FunctionInfo | None) -> bool:
        """Is the model written `key` in `function` known to hold no mode-dependent layer at all? Only when
        every value the name is given is built, all the way down, from `torch.nn` layers that ignore the mode
        (`nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))`, a class of this file whose methods build
        only such layers): train() and eval() then change nothing. Anything not traced (a parameter, a
        library's factory, a class of another module, a functional dropout) is not free."""
        scope = _scope_of(key, function)
        if scope is None and function is not None and key.split(".")[0] in function.params:
            return False
        values = _assigned(key, scope, self.roles.module_of(function))
        return bool(values) and all(self._free_expr(v, scope, 0) for v in values)

    def _free_expr(self, expr: ast.expr, function: FunctionInfo | None, depth: int) -> bool:
        if depth > _MAX_DEPTH or not isinstance(expr, ast.Call):
            return False
        call = expr
        module = self.roles.module_of(function)
        qualname = module.imports.qualify(call.func)
        if qualname is not None:
            if qualname in ("torch.nn.Sequential", "torch.nn.ModuleList"):
                return all(not isinstance(a, ast.Starred) and self._free_expr(a, function, depth + 1)
                           for a in call.args) and not call.keywords
            return self._free_layer(call, qualname)
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in ("to", "cuda", "cpu", "float", "double"):
            return self._free_expr(func.value, function, depth + 1)  # `Net().to(device)`
        written = dotted(func)
        if written is None or "." in written or written in self.redefined(module):
            return False
        klass = module.classes.get(written)
        return klass is not None and self._free_class(klass, module, depth + 1)

    @staticmethod
    def _free_layer(call: ast.Call, qualname: str) -> bool:
        """A `torch.nn` layer that behaves the same in both modes (not Dropout, BatchNorm, RReLU, nor a layer
        with a `dropout` argument)."""
        name = qualname.rsplit(".", 1)[-1]
        return (qualname.startswith("torch.nn.") and name[:1].isupper() and not qualname.startswith("torch.nn.functional.")
                and name not in K.TORCH_MODE_DEPENDENT_LAYERS and name not in K.TORCH_DROPOUT_ARGUMENT_LAYERS
                and "Norm" not in name and "Dropout" not in name)

    def _free_class(self, klass: ClassInfo, module: Structure, depth: int) -> bool:
        """A class of this file deriving from `nn.Module` alone whose methods build only mode-free layers and
        call no functional dropout / batch norm (nor anything named like a class we cannot see into)."""
        if depth > _MAX_DEPTH or list(klass.bases) != ["torch.nn.Module"]:
            return False
        for method in klass.methods.values():
            if method.nested:
                return False
            for call in _calls(method.body):
                qualname = module.imports.qualify(call.func)
                name = (qualname or dotted(call.func) or "").rsplit(".", 1)[-1]
                if qualname is not None:
                    if "dropout" in qualname.lower() or "batch_norm" in qualname or "norm" in name.lower():
                        return False
                    if qualname.startswith("torch.nn.") and name[:1].isupper() and not self._free_layer(call, qualname):
                        return False
                    continue
                if name[:1].isupper():  # a class built by name: one of this file, or unknown
                    inner = module.classes.get(name) if dotted(call.func) == name else None
                    if inner is None or name in self.redefined(module) or not self._free_class(inner, module, depth + 1):
                        return False
        return True

    # -- keys -----------------------------------------------------------------------------------------
    def _key(self, key: str, function, chain, callers, seen: set, depth: int) -> Held | None:
        if depth > _MAX_DEPTH or (key, id(function)) in seen:
            return None
        seen.add((key, id(function)))
        first, _, rest = key.partition(".")
        if first == "self" and function is not None and function.klass is not None:
            if not rest:
                return self._class(function.klass, depth + 1)
            return self._attribute(function.klass, key, seen, depth + 1)
        scope = _scope_of(key, function)
        if scope is None and function is not None and _is_param(first, function):
            return self._parameter(function, first, rest, chain, callers, seen, depth + 1)
        values = _assigned(key, scope, self.roles.module_of(function))
        for value in values:
            found = self._expr(value, scope, (), {}, seen, depth + 1)
            if found is not None:
                return found
        return None

    def _parameter(self, function: FunctionInfo, param: str, rest: str, chain, callers, seen, depth) -> Held | None:
        """What the call that entered `function` passed for `param` (or, for an entry point or `__init__`,
        what any call of it in the file passes)."""
        sites = []
        if chain and function.name != "__init__":
            sites = [(chain[-1], callers.get(id(chain[-1])), chain[:-1])]
        else:
            name = function.class_name if function.name == "__init__" and function.class_name else function.name
            sites = [(call, caller, ()) for call, caller in self.sites(self.roles.module_of(function)).get(name, [])]
        for call, caller, outer in sites:
            value = _argument_for(function, call, param)
            if value is None:
                continue
            written = dotted(value)
            if written is not None:
                found = self._key(f"{written}.{rest}" if rest else written, caller, outer, callers, seen, depth + 1)
            else:
                found = self._expr(value, caller, outer, callers, seen, depth + 1)
            if found is not None:
                return found
        return None

    def _attribute(self, klass: ClassInfo, key: str, seen: set, depth: int) -> Held | None:
        """`self.model`: what the class's methods assign to it (a parameter: what the class is built with)."""
        for owner in self.roles.class_chain(klass):
            for method in owner.methods.values():
                for value in method.assignments.get(key, []):
                    written = dotted(value)
                    if written is not None and _is_param(written.split(".")[0], method):
                        found = self._parameter(method, written.split(".")[0], written.partition(".")[2], (), {},
                                                seen, depth + 1)
                    else:
                        found = self._expr(value, method, (), {}, seen, depth + 1)
                    if found is not None:
                        return found
        return None

    # -- expressions ----------------------------------------------------------------------------------
    def _expr(self, expr: ast.expr | None, function, chain, callers, seen: set, depth: int) -> Held | None:
        if expr is None or depth > _MAX_DEPTH:
            return None
        key = dotted(expr)
        if key is not None:
            return self._key(key, function, chain, callers, seen, depth + 1)
        if isinstance(expr, (ast.List, ast.Tuple)):
            for element in expr.elts:
                found = self._expr(element.value if isinstance(element, ast.Starred) else element, function, chain,
                                   callers, seen, depth + 1)
                if found is not None:
                    return found
            return None
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp)):
            return self._expr(expr.elt, function, chain, callers, seen, depth + 1)
        if isinstance(expr, ast.Dict):
            for value in expr.values:
                found = self._expr(value, function, chain, callers, seen, depth + 1)
                if found is not None:
                    return found
            return None
        if isinstance(expr, ast.Call):
            return self._call(expr, function, chain, callers, seen, depth + 1)
        return None

    def _call(self, call: ast.Call, function, chain, callers, seen: set, depth: int) -> Held | None:
        module = self.roles.module_of(function)
        qualname = module.imports.qualify(call.func)
        if qualname is not None:
            found = self.built(call, qualname)
            if found is not None or not qualname.startswith(("torch.", "copy.", "collections.")):
                return found
            if qualname in K.TORCH_MODULE_CONTAINERS:
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    found = self._expr(arg.value if isinstance(arg, ast.Starred) else arg, function, chain, callers,
                                       seen, depth + 1)
                    if found is not None:
                        return found
            return None
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in _MODE_METHODS:  # `Net().to(device)`
            return self._expr(func.value, function, chain, callers, seen, depth + 1)
        written = dotted(func)
        if written is None or written in self.redefined(module):
            return None  # a notebook that defines `Net` twice: which one this call builds is not known
        klass = module.classes.get(written) if "." not in written else None
        if klass is None:
            klass = self.roles.links.klass(module, written)
        if klass is not None:
            return self._class(klass, depth + 1)
        factory = module.functions.get(written) if "." not in written else None
        if factory is None:
            factory = self.roles.links.function(module, written)
        if factory is not None:
            for value in factory.returns:
                found = self._expr(value, factory, (), {}, seen, depth + 1)
                if found is not None:
                    return found
        return None

    def built(self, call: ast.Call, qualname: str) -> Held | None:
        """A mode-dependent layer (or a model made of them) built by a call of a library's `qualname`."""
        name = qualname.rsplit(".", 1)[-1]
        if qualname.startswith("torch.nn.") and name in K.TORCH_MODE_DEPENDENT_LAYERS:
            if "Dropout" in name and number(argument(call, 0, ("p",))) == 0:
                return None  # nn.Dropout(0.0): a placeholder that never drops
            return Held(name, call)
        if qualname.startswith("torch.nn.") and name in K.TORCH_DROPOUT_ARGUMENT_LAYERS:
            given = keyword(call, "dropout")
            p = number(given) if given is not None else K.TORCH_DROPOUT_ARGUMENT_LAYERS[name]
            if p is None or p == 0:
                return None
            if name in ("LSTM", "GRU", "RNN"):
                layers = number(argument(call, 2, ("num_layers",)))
                if layers is None or layers <= 1:
                    return None
            return Held(f"{name}(dropout={p:g})", call)
        if qualname in ("torch.nn.functional.dropout", "torch.nn.functional.dropout2d",
                        "torch.nn.functional.dropout1d", "torch.nn.functional.dropout3d",
                        "torch.nn.functional.alpha_dropout", "torch.nn.functional.batch_norm"):
            training = argument(call, 2 if name != "batch_norm" else 5, ("training",))
            key = dotted(training) if training is not None else None
            if key is not None and key.endswith(".training"):  # follows the module's mode
                return Held(name, call)
            return None
        if qualname.startswith("torchvision.models.") and not qualname.startswith(K.TORCHVISION_MODE_FREE_PREFIXES):
            return None if name.endswith("_Weights") else Held(name, call)
        if qualname == "timm.create_model":
            architecture = string(argument(call, 0, ("model_name",)))
            for word in K.TIMM_DROPOUT_KEYWORDS:
                rate = number(keyword(call, word))
                if rate is not None and rate > 0:
                    return Held(f"{architecture or 'timm model'} ({word}={rate:g})", call)
            if architecture is not None and architecture.split("/")[-1].startswith(K.TIMM_BATCH_NORM_PREFIXES):
                return Held(architecture, call)
        return None

    def _class(self, klass: ClassInfo, depth: int) -> Held | None:
        """A mode-dependent layer that a class (or a base the project defines) builds in any of its methods."""
        if id(klass) in self._classes:
            return self._classes[id(klass)]
        self._classes[id(klass)] = None  # a class that builds itself says nothing more
        found = None
        for owner in self.roles.class_chain(klass):
            module = owner.module or self.structure
            for base in owner.bases:
                name = base.rsplit(".", 1)[-1]
                if base.startswith("torch.nn.") and name in K.TORCH_MODE_DEPENDENT_LAYERS or \
                        base.startswith("torchvision.models.") and not base.startswith(K.TORCHVISION_MODE_FREE_PREFIXES):
                    found = Held(name, owner.node)
                    break
            for method in [] if found else owner.methods.values():
                found = self._method(method, module, depth)
                if found is not None:
                    break
            if found is not None:
                break
        self._classes[id(klass)] = found
        return found

    def _method(self, method: FunctionInfo, module: Structure, depth: int) -> Held | None:
        for call in _calls(method.body):
            qualname = module.imports.qualify(call.func)
            if qualname is not None:
                found = self.built(call, qualname)
            else:
                written = dotted(call.func)
                klass = None
                if written is not None and written not in self.redefined(module):
                    klass = module.classes.get(written) if "." not in written else None
                    klass = klass or self.roles.links.klass(module, written)
                found = self._class(klass, depth + 1) if klass is not None and depth < _MAX_DEPTH else None
            if found is not None:
                return found
        for nested in method.nested.values():
            found = self._method(nested, module, depth + 1)
            if found is not None:
                return found
        return None

    def redefined(self, module: Structure) -> frozenset[str]:
        """Names of classes and functions a module defines more than once at its top level (notebooks that
        refine a model cell after cell): the IR keeps the last definition, which may not be the one called."""
        cache = self.__dict__.setdefault("_redefined", {})
        found = cache.get(id(module))
        if found is None:
            seen, twice = set(), set()
            for statement in module.module.body:
                if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    (twice if statement.name in seen else seen).add(statement.name)
            found = cache[id(module)] = frozenset(twice)
        return found

    def sites(self, module: Structure) -> dict[str, list[tuple[ast.Call, FunctionInfo | None]]]:
        """Calls of plain names (`Trainer(model)`, `evaluate(net, loader)`) in a module, by name."""
        found = self._sites.get(id(module))
        if found is None:
            found = self._sites[id(module)] = {}
            for item, function in walk_items(module):
                for site in item_calls(item):
                    if isinstance(site.call.func, ast.Name):
                        found.setdefault(site.call.func.id, []).append((site.call, function))
        return found


def _calls(items: list[Item]) -> list[ast.Call]:
    """Every call written in a block, nested blocks included (not nested functions)."""
    out: list[ast.Call] = []
    pending = list(items)
    while pending:
        item = pending.pop()
        out.extend(site.call for site in item_calls(item))
        for name in ("body", "orelse", "always"):
            inner = getattr(item, name, None)
            if isinstance(inner, list):
                pending.extend(inner)
        for arm in getattr(item, "arms", ()):
            pending.extend(arm)
    return out


def _is_param(name: str, function: FunctionInfo) -> bool:
    return name in function.params and name not in function.assignments


def _scope_of(key: str, function: FunctionInfo | None) -> FunctionInfo | None:
    """The function (this one or one around it) that assigns `key`; None for the module or a parameter."""
    scope = function
    while scope is not None:
        if key in scope.assignments:
            return scope
        if key.split(".")[0] in scope.params:
            return None
        scope = scope.parent
    return None


def _assigned(key: str, scope: FunctionInfo | None, module: Structure) -> list[ast.expr]:
    if scope is not None:
        return scope.assignments.get(key, [])
    return module.module_assignments.get(key, [])


def _argument_for(function: FunctionInfo, call: ast.Call, param: str) -> ast.expr | None:
    """The argument `call` passes for `function`'s parameter `param`."""
    value = keyword(call, param)
    if value is not None:
        return value
    params = list(function.params)
    if function.klass is not None and function.parent is None and params and params[0] in ("self", "cls") \
            and (isinstance(call.func, ast.Attribute) or function.name == "__init__"):
        params = params[1:]
    if param not in params:
        return None
    index = params.index(param)
    args = positional(call)
    return args[index] if index < len(args) else None
