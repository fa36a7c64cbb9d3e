"""Roles: what a key denotes (optimizer, LR scheduler, grad scaler, model, data scaler, ...).

Evidence, strongest first: the constructor's qualified name through the imports; an alias of another
key; the return value of a local factory; then, only when the file says nothing against it, the name.
A key assigned from something known to be different (`opt = parser.parse_args()`) gets no name-based role.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ast

from . import knowledge as K
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
    evidence: str = "constructor"  # constructor | alias | name
    call: ast.Call | None = None  # the constructor call
    local_class: str | None = None  # for instances of classes defined in this file


_OPTIMIZER_NAME = re.compile(r"(.*optimi[sz]er.*|.*optim|optim_.*|(.*_)?opts?(_[a-z0-9]+)?|opt[a-z0-9]{1,2})")
_SCHEDULER_NAME = re.compile(r".*sched.*")
_MODEL_NAME = re.compile(r"(.*model|model_.*|net|net[a-z0-9_]{0,3}|network|generator|discriminator|"
                         r"[gd]_?net|encoder|decoder|classifier|backbone|policy|critic|actor)")
_ACCELERATOR_NAME = re.compile(r"(accelerator|fabric)")
_MODE_METHODS = frozenset({"to", "cuda", "cpu", "float", "half", "double", "bfloat16", "train", "eval",
                           "requires_grad_", "to_empty", "share_memory"})
_MAX_DEPTH = 6


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
        self._cache: dict[tuple[str, int], Role | None] = {}
        self._parameter_owners: set[str] | None = None

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
        if key.startswith("self.") and function is not None and function.class_name:
            values: list[ast.expr] = []
            for klass in self.class_chain(function.class_name):
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
        return self.structure.module_assignments.get(key)

    def is_param(self, key: str, function: FunctionInfo | None) -> bool:
        return function is not None and key.split(".")[0] in function.params and key not in function.assignments

    def class_chain(self, name: str) -> list[ClassInfo]:
        """The class and its bases that are defined in this file, nearest first."""
        chain, pending = [], [name]
        while pending:
            klass = self.structure.classes.get(pending.pop(0))
            if klass is None or klass in chain:
                continue
            chain.append(klass)
            pending.extend(base.rsplit(".", 1)[-1] for base in klass.bases)
        return chain

    def method(self, class_name: str, name: str):
        for klass in self.class_chain(class_name):
            if name in klass.methods:
                return klass.methods[name]
        return None

    def is_model_class(self, name: str) -> bool:
        for klass in self.class_chain(name):
            for base in klass.bases:
                if base in K.TORCH_MODEL_BASES or base in K.KERAS_MODEL_CONSTRUCTORS or base.startswith(
                        ("torch.nn.", "keras.layers.", "pytorch_lightning.", "transformers.")):
                    return True
        return False

    # -- evidence ---------------------------------------------------------------------------------
    def _resolve(self, key: str, function: FunctionInfo | None, depth: int) -> Role | None:
        values = self.assigned_values(key, function)
        if values:
            roles = [self.classify(value, function, depth + 1) for value in values]
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
            return None if value.value is None or isinstance(value.value, bool) else Role(OTHER)
        if isinstance(value, (ast.JoinedStr, ast.Dict, ast.List, ast.Tuple, ast.Compare)):
            return Role(OTHER)
        return None

    def _classify_call(self, call: ast.Call, function: FunctionInfo | None, depth: int) -> Role | None:
        qualname = self.imports.qualify(call.func)
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
            return None
        if isinstance(func, ast.Name):
            name = func.id
            if name in self.structure.classes:
                kind = MODEL if self.is_model_class(name) else INSTANCE
                return Role(kind, call=call, local_class=name)
            local = self.structure.functions.get(name)
            if local is not None and local.returns:
                roles = {self.classify(r, local, depth + 1) for r in local.returns}
                roles.discard(None)
                if len({r.kind for r in roles}) == 1:
                    return roles.pop()
                return None
            if qualname is not None and name[:1].isupper():
                return Role(INSTANCE, qualname, call=call)
        return None


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
    if qualname in ("timm.create_model", "transformers.AutoModel.from_pretrained"):
        return MODEL
    if qualname.startswith("torch.nn.") and last(qualname)[:1].isupper():
        return MODEL
    if qualname.startswith(("torch.optim.", "keras.optimizers.")) and last(qualname)[:1].isupper():
        return OPTIMIZER
    return None
