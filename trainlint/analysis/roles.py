"""Roles: what a key denotes (optimizer, LR scheduler, grad scaler, model, data scaler, ...).

Evidence, strongest first: the constructor's qualified name through the imports; an alias of another
key; the return value of a local factory; then, only when the file says nothing against it, the name.
A key assigned from something known to be different (`opt = parser.parse_args()`) gets no name-based role.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from . import knowledge as K
from .links import NOTHING
from .names import dotted, last
from .structure import ClassInfo, FunctionInfo, Structure, item_calls, walk_items

OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"
GRAD_SCALER = "grad_scaler"
MODEL = "model"
DATA_SCALER = "data_scaler"
ACCELERATOR = "accelerator"
ARGS = "args"
INSTANCE = "instance"  # an object of a class (local or imported) we know nothing more about
OTHER = "other"  # known, and none of the above


@dataclass(frozen=True)
class Role:
    kind: str
    qualname: str | None = None  # the constructor, when known
    evidence: str = "constructor"  # constructor | alias | name | number
    call: ast.Call | None = None  # the constructor call
    local_class: ClassInfo | None = None  # for instances of classes defined in this file or the project


_OPTIMIZER_NAME = re.compile(r"(.*optimi[sz]er.*|.*optim|optim_.*|(.*_)?opts?(_[a-z0-9]+)?|opt[a-z0-9]{1,2})")
_SCHEDULER_NAME = re.compile(r".*sched.*")
_MODEL_NAME = re.compile(r"(.*model|model_.*|net|net[a-z0-9_]{0,3}|network|generator|discriminator|"
                         r"[gd]_?net|encoder|decoder|classifier|backbone|policy|critic|actor)")
_ACCELERATOR_NAME = re.compile(r"(accelerator|fabric)")
_MODE_METHODS = frozenset({"to", "cuda", "cpu", "float", "half", "double", "bfloat16", "train", "eval",
                           "requires_grad_", "to_empty", "share_memory"})
_MAX_DEPTH = 6
_OTHER_OPTIMIZER = re.compile(K.OPTIMIZER_CLASS_NAME)
# Optimizer class names of the frameworks: a project's own class of that name is taken for the framework's.
OPTIMIZER_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in (*K.TORCH_OPTIMIZERS, *K.KERAS_OPTIMIZERS))


def role_by_name(key: str) -> Role | None:
    name = last(key).lower()
    if _SCHEDULER_NAME.fullmatch(name):
        return Role(SCHEDULER, evidence="name")
    if _OPTIMIZER_NAME.fullmatch(name):
        return Role(OPTIMIZER, evidence="name")
    if _ACCELERATOR_NAME.fullmatch(name):
        return Role(ACCELERATOR, evidence="name")
    if _MODEL_NAME.fullmatch(name):
        return Role(MODEL, evidence="name")
    return None


class Roles:
    def __init__(self, structure: Structure) -> None:
        self.structure = structure
        self.imports = structure.imports
        self.links = structure.links or NOTHING
        self._cache: dict[tuple[str, int], Role | None] = {}
        self._parameter_owners: set[str] | None = None

    def module_of(self, function: FunctionInfo | None) -> Structure:
        """The module a function is written in (this file's, or another module's for a project helper)."""
        return function.module if function is not None and function.module is not None else self.structure

    def imports_of(self, function: FunctionInfo | None):
        return self.module_of(function).imports

    # -- public questions -------------------------------------------------------------------------
    def of(self, key: str | None, function: FunctionInfo | None, _depth: int = 0) -> Role | None:
        if key is None:
            return None
        cache_key = (key, id(function))
        if cache_key in self._cache:
            return self._cache[cache_key]
        self._cache[cache_key] = None  # cycles resolve to unknown
        role = self._resolve(key, function, _depth)
        if role is not None and role.kind == INSTANCE and key in self.parameter_owners():
            role = Role(MODEL, role.qualname, "usage", role.call, role.local_class)  # `Translator(...)`
        self._cache[cache_key] = role
        return role

    def role_at(self, key: str | None, function: FunctionInfo | None, node: ast.AST | None) -> Role | None:
        """The role of `key` where `node` is written: a name assigned several times in one scope (`optimizer =
        SGD(model_0.parameters())` ... `optimizer = SGD(model_1.parameters())`) denotes the last value assigned
        before `node` in that scope. Elsewhere (another function reading it, no assignment before), `of`."""
        if key is None or node is None or not hasattr(node, "lineno"):
            return self.of(key, function)
        pairs = self.scoped_values(key, function)
        if len(pairs) < 2:
            return self.of(key, function)
        at = (node.lineno, node.col_offset)
        before = [value for value, scope in pairs if scope is function and (value.lineno, value.col_offset) < at]
        if not before:
            return self.of(key, function)
        cache_key = (key, id(function), id(before[-1]))
        if cache_key not in self._cache:
            self._cache[cache_key] = None
            scope = function if function is not None else _module_scope(function, self.structure)
            role = self.classify(before[-1], scope, 1)
            self._cache[cache_key] = role if role is not None and role.kind != INSTANCE else self.of(key, function)
        return self._cache[cache_key]

    def parameter_owners(self) -> set[str]:
        """Keys whose `.parameters()` / `.named_parameters()` the file calls: only modules have those."""
        if self._parameter_owners is None:
            self._parameter_owners = {site.receiver for item, _ in walk_items(self.structure)
                                      for site in item_calls(item)
                                      if site.method in ("parameters", "named_parameters") and site.receiver}
        return self._parameter_owners

    def is_kind(self, key: str | None, function: FunctionInfo | None, kind: str) -> bool:
        role = self.of(key, function)
        return role is not None and role.kind == kind

    def assigned_values(self, key: str, function: FunctionInfo | None) -> list[ast.expr] | None:
        """Every value assigned to `key` in the scope that owns it, or None if it is never assigned."""
        if key.startswith("self.") and function is not None and function.klass is not None:
            values: list[ast.expr] = []
            for klass in self.class_chain(function.klass):
                values.extend(klass.attributes.get(key, []))
            if values:
                return values
        scope = function
        while scope is not None:
            if key in scope.assignments:
                return scope.assignments[key]
            if key.split(".")[0] in scope.params:
                return None
            scope = scope.parent
        return self.module_of(function).module_assignments.get(key)

    def is_param(self, key: str, function: FunctionInfo | None) -> bool:
        return function is not None and key.split(".")[0] in function.params and key not in function.assignments

    def class_chain(self, klass: ClassInfo | str | None) -> list[ClassInfo]:
        """The class and its bases that the project defines (this file, or a module it imports), nearest
        first. A name is looked up among this file's classes."""
        if isinstance(klass, str):
            klass = self.structure.classes.get(klass)
        chain: list[ClassInfo] = []
        pending = [klass] if klass is not None else []
        while pending and len(chain) < 32:
            current = pending.pop(0)
            if current in chain:
                continue
            chain.append(current)
            module = current.module or self.structure
            for base, written in zip(current.bases, current.base_keys or [None] * len(current.bases)):
                found = module.classes.get(base.rsplit(".", 1)[-1])
                if found is None and written:
                    found = self.links.klass(module, written)
                if found is not None:
                    pending.append(found)
        return chain

    def method(self, klass: ClassInfo | str | None, name: str):
        for owner in self.class_chain(klass):
            if name in owner.methods:
                return owner.methods[name]
        return None

    def namesake_optimizer(self, name: str, module: Structure) -> str:
        """The framework optimizer a project's own optimizer class of the same name stands for."""
        keras = any(q.startswith(("keras", "tensorflow")) for q in module.imports.names.values()) and not any(
            q.startswith("torch") for q in module.imports.names.values())
        return f"keras.optimizers.{name}" if keras else f"torch.optim.{name}"

    def bound_anywhere(self, name: str, module: Structure) -> bool:
        """Is `name` defined, assigned or imported anywhere in the module?"""
        return (name in module.functions or name in module.classes or name in module.module_assignments
                or name in module.imports.names or name in module.imports.relative
                or any(name in f.assignments or name in f.params or name in f.nested for f in module.all_functions))

    def is_model_class(self, klass: ClassInfo | str | None) -> bool:
        for owner in self.class_chain(klass):
            for base in owner.bases:
                if base in K.TORCH_MODEL_BASES or base in K.KERAS_MODEL_CONSTRUCTORS or base.startswith(
                        ("torch.nn.", "keras.layers.", "pytorch_lightning.", "transformers.")):
                    return True
        return False

    # -- evidence ---------------------------------------------------------------------------------
    def scoped_values(self, key: str, function: FunctionInfo | None) -> list[tuple[ast.expr, FunctionInfo | None]]:
        """Like `assigned_values`, each value with the scope it is written in: `self.optimizer = optimizer` in
        `__init__` names `__init__`'s parameter, not a global `optimizer` of the method asking."""
        if key.startswith("self.") and function is not None and function.klass is not None:
            found = [(value, method) for klass in self.class_chain(function.klass)
                     for method in _methods_and_nested(klass) for value in method.assignments.get(key, [])]
            if found:
                return found
        scope = function
        while scope is not None:
            if key in scope.assignments:
                return [(value, scope) for value in scope.assignments[key]]
            if key.split(".")[0] in scope.params:
                return []
            scope = scope.parent
        return [(value, None) for value in self.module_of(function).module_assignments.get(key, [])]

    def _resolve(self, key: str, function: FunctionInfo | None, depth: int) -> Role | None:
        pairs = self.scoped_values(key, function)
        unpacked = self.module_of(function).unpacked
        pairs = [(v, scope) for v, scope in pairs if (id(v), key) not in unpacked]  # `opt, sched = pair`
        if pairs:
            roles = [self.classify(value, scope if scope is not None else _module_scope(function, self.structure),
                                   depth + 1) for value, scope in pairs]
            known = [r for r in roles if r is not None]
            kinds = {r.kind for r in known}
            if len(kinds) == 1 and kinds != {INSTANCE}:
                return known[0]
            if kinds == {INSTANCE, MODEL}:  # `model = GPT(cfg)` then `model = DDP(model)`: wrapped as a model
                return next(r for r in known if r.kind == MODEL)
            if kinds - {INSTANCE}:
                return Role(OTHER, evidence="constructor")  # assigned different kinds of things: say nothing
            if INSTANCE in kinds and len(known) == len(roles):
                return known[0]
        return role_by_name(key)

    def classify(self, value: ast.expr, function: FunctionInfo | None, depth: int) -> Role | None:
        """The role of an assigned value, or None when the value says nothing."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(value, ast.Call):
            return self._classify_call(value, function, depth)
        key = dotted(value)
        if key is not None:
            role = self.of(key, function, depth)
            return Role(role.kind, role.qualname, "alias", role.call, role.local_class) if role else None
        if isinstance(value, ast.Constant):
            if value.value is None or isinstance(value.value, bool):
                return None
            # a number may start a sum of tensors (`reg = 0.; reg += ...; reg.backward()`)
            return Role(OTHER, evidence="number" if isinstance(value.value, (int, float)) else "constructor")
        if isinstance(value, (ast.JoinedStr, ast.Dict, ast.List, ast.Tuple, ast.Compare)):
            return Role(OTHER)
        return None

    def _classify_call(self, call: ast.Call, function: FunctionInfo | None, depth: int) -> Role | None:
        qualname = self.imports_of(function).qualify(call.func)
        if qualname is not None:
            kind = constructor_kind(qualname)
            if kind is not None:
                return Role(kind, qualname, call=call)
        func = call.func
        if isinstance(func, ast.Attribute):
            method = func.attr
            if method in ("fit", "partial_fit"):  # sklearn's fit returns the estimator: `s = Scaler().fit(X)`
                role = self.classify(func.value, function, depth + 1)
                return role if role is not None and role.kind == DATA_SCALER else None
            if method in _MODE_METHODS:
                return self.classify(func.value, function, depth + 1)
            if method in ("parse_args", "parse_known_args"):
                return Role(ARGS, call=call)
        key = dotted(func)
        if key is None:
            return None
        module = self.module_of(function)
        klass = module.classes.get(key) if "." not in key else None
        if klass is None:
            klass = self.links.klass(module, key)
        if klass is not None:
            if klass.name in OPTIMIZER_NAMES:  # the project's own `AdamW`: an optimizer like torch's
                return Role(OPTIMIZER, self.namesake_optimizer(klass.name, module), call=call, local_class=klass)
            kind = MODEL if self.is_model_class(klass) else INSTANCE
            return Role(kind, qualname, call=call, local_class=klass)
        if qualname is None and key in K.WELL_KNOWN_UNIMPORTED and not self.bound_anywhere(key, module):
            return Role(DATA_SCALER, K.WELL_KNOWN_UNIMPORTED[key], call=call)  # `StandardScaler()` in a fragment
        factory = module.functions.get(key) if "." not in key else None
        if factory is None:
            factory = self.links.function(module, key)
        if factory is not None and factory.returns:
            roles = {self.classify(r, factory, depth + 1) for r in factory.returns}
            roles.discard(None)
            if len({r.kind for r in roles}) == 1:
                return roles.pop()
            return None
        if qualname is not None and last(qualname)[:1].isupper() and _OTHER_OPTIMIZER.fullmatch(last(qualname)) \
                and not qualname.startswith(("torch.", "keras.", "sklearn.")):
            return Role(OPTIMIZER, qualname, call=call)  # `Lion(...)` from lion_pytorch, `AdaBelief(...)`
        if isinstance(func, ast.Name) and qualname is not None and func.id[:1].isupper():
            return Role(INSTANCE, qualname, call=call)
        return None


def _methods_and_nested(klass: ClassInfo):
    pending = list(klass.methods.values())
    while pending:
        method = pending.pop()
        yield method
        pending.extend(method.nested.values())


def _module_scope(function: FunctionInfo | None, home: Structure) -> FunctionInfo | None:
    """The scope a module-level value is classified in: None for this file's module; for another module of
    the project, a stand-in scope with no locals whose `module` is that module (names and imports are looked up
    there)."""
    module = function.module if function is not None else None
    if module is None or module is home:
        return None
    scope = getattr(module, "_module_scope", None)
    if scope is None:
        scope = FunctionInfo("<module>", None, [], {}, [], None, None, [], module=module)
        module._module_scope = scope
    return scope


def constructor_kind(qualname: str) -> str | None:
    """What kind of object a call of `qualname` builds, from the knowledge tables."""
    if qualname in K.TORCH_OPTIMIZERS or qualname in K.KERAS_OPTIMIZERS or qualname in K.OPTIMIZER_FACTORIES:
        return OPTIMIZER
    if qualname.startswith(K.LR_SCHEDULER_PREFIXES):
        return SCHEDULER
    if qualname.startswith(K.OTHER_OPTIMIZER_PREFIXES):
        return OPTIMIZER
    if qualname in K.GRAD_SCALERS:
        return GRAD_SCALER
    if qualname in K.BACKWARD_OWNERS:
        return ACCELERATOR
    if qualname.startswith(K.DATA_SCALER_PREFIXES) or qualname in K.ADAPTABLE_LAYERS:
        return DATA_SCALER
    if qualname in K.ARGPARSE_PARSERS:
        return OTHER
    if qualname in K.KERAS_MODEL_CONSTRUCTORS or qualname.startswith(("torchvision.models.", "keras.applications.")):
        return MODEL
    if qualname in ("timm.create_model", "transformers.AutoModel.from_pretrained") \
            or qualname in K.DATA_PARALLEL_WRAPPERS:  # FSDP(model), apex's DistributedDataParallel(model)
        return MODEL
    if qualname.startswith("torch.nn.") and last(qualname)[:1].isupper():
        return MODEL
    if qualname.startswith(("torch.optim.", "keras.optimizers.")) and last(qualname)[:1].isupper():
        return OPTIMIZER
    return None
