"""What an optimizer optimises, and what that says about the learning rates that suit it.

An optimizer is handed either a model's parameters (`model.parameters()`, `[{"params": head.parameters()}]`),
or tensors the script makes itself — a latent (`nn.Parameter(latent.clone())`), an input image
(`x.clone().requires_grad_()`), an adversarial perturbation (`torch.zeros_like(x, requires_grad=True)`) —
which is per-sample optimisation, not model training; or the file does not say (unknown).

Of the modules an optimizer trains (through `.parameters()`, the model a Keras optimizer is compiled into,
or the model handed to the same call as the optimizer), the model knows:
- pretrained: built with pretrained weights (`from_pretrained`, torchvision `weights=` / `pretrained=True`, timm
  `pretrained=True`, `keras.applications` with its default "imagenet" weights, keras-hub `from_preset`), or a
  checkpoint loaded into it (`model.load_state_dict(torch.load(path))`) by a script that does not also restore
  an optimizer (resuming a run is not fine-tuning); and whether it is a transformer or another network;
- a Post-LN transformer built from scratch: `nn.Transformer*` without `norm_first=True`, or a Hugging Face
  encoder family with Post-LN blocks built from a config (`BertForMaskedLM(config)`);
- a single linear layer (`nn.Linear`, `keras.Sequential([Normalization(), Dense(1)])`, a module holding only one).
Whether the script freezes parameters anywhere (`requires_grad = False`, `trainable = False`, a `freeze*()`
call, an adapter library such as peft) is one fact for the file: which part then trains is not told apart.
Unknown stays unknown: every question answers None when the file does not say.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property

from . import knowledge as K
from .events import CLIP, OPT_STEP, Event
from .hyperparams import OptimizerBuild
from .names import argument, bool_value, dotted, is_none, keyword, last, positional, string
from .roles import _MODE_METHODS, MODEL, OPTIMIZER, Roles
from .structure import FOREIGN, ClassInfo, FunctionInfo, Stmt, Structure, item_calls, walk_items

MODEL_PARAMETERS = "model"
TENSORS = "tensors"
UNKNOWN = "unknown"

_BUDGET = 400  # nodes one dataflow search may visit
_VISION_TRANSFORMER = re.compile(K.VISION_TRANSFORMER_NAME)
_CNN = re.compile(K.CNN_NAME)
_HF_POST_LN_CLASS = re.compile(rf"{K.HF_POST_LN_FAMILIES}(Model|For[A-Z]\w*|LMHeadModel)")
# Classes whose `from_pretrained` / `from_preset` builds a model (not a tokenizer, config or processor).
_MODEL_CLASS = re.compile(r"\w*(Model|For[A-Z]\w*|LMHead\w*|CausalLM|MaskedLM|Classifier|Backbone|Seq2SeqLM|"
                          r"Segmenter|Detector)\w*")
_PARAMETER_CONTAINERS = frozenset({"list", "tuple", "set", "sorted", "filter", "chain", "itertools.chain"})
_FREEZE_CALL = re.compile(r"(?i)(.*_)?(freeze|unfreeze)(_.*)?")
_SET_TRAINABLE = re.compile(r"(?i)set_(trainable|requires_grad)\w*")


@dataclass(frozen=True)
class Optimised:
    """What one optimizer is handed."""

    kind: str  # MODEL_PARAMETERS | TENSORS | UNKNOWN
    modules: tuple[tuple[str, FunctionInfo | None], ...] = ()  # the modules whose parameters it holds
    tensors: tuple[ast.AST, ...] = ()  # where the tensors it holds are made (TENSORS)


@dataclass(frozen=True)
class TrainingContext:
    """A context in which much lower rates than the general limits are wrong."""

    kind: str  # K.PRETRAINED_TRANSFORMER | K.PRETRAINED_NETWORK | K.TRANSFORMER_FROM_SCRATCH
    module: str  # the key of the module the optimizer trains
    node: ast.AST  # what says so: the from_pretrained(...) call, the load_state_dict(...), nn.TransformerEncoder(...)


class Optimisation:
    def __init__(self, structure: Structure, roles: Roles, events: list[Event],
                 builds: list[OptimizerBuild]) -> None:
        self.structure = structure
        self.roles = roles
        self.events = events
        self.builds = builds
        self._optimised: dict[int, Optimised] = {}

    # -- what it is handed ------------------------------------------------------------------------
    def optimised(self, build: OptimizerBuild) -> Optimised:
        found = self._optimised.get(id(build.call))
        if found is None:
            found = self._optimised[id(build.call)] = self._classify(build)
        return found

    def build_of(self, call: ast.Call | None) -> OptimizerBuild | None:
        return next((b for b in self.builds if b.call is call), None) if call is not None else None

    def _classify(self, build: OptimizerBuild) -> Optimised:
        if build.params is None:
            return Optimised(UNKNOWN)
        kinds: list[str] = []
        modules: list[tuple[str, FunctionInfo | None]] = []
        tensors: list[ast.AST] = []
        self._walk_params(build.params, build.function, kinds, modules, tensors, set(), 0)
        if MODEL_PARAMETERS in kinds:
            return Optimised(MODEL_PARAMETERS, tuple(modules))
        if kinds and all(kind == TENSORS for kind in kinds):
            return Optimised(TENSORS, tensors=tuple(tensors))
        return Optimised(UNKNOWN)

    def _walk_params(self, node: ast.AST | None, function: FunctionInfo | None, kinds: list[str],
                     modules: list, tensors: list, seen: set, depth: int) -> None:
        if node is None or depth > 8:
            return
        depth += 1
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for element in node.elts:
                self._walk_params(element.value if isinstance(element, ast.Starred) else element, function,
                                  kinds, modules, tensors, seen, depth)
            return
        if isinstance(node, ast.Starred):
            self._walk_params(node.value, function, kinds, modules, tensors, seen, depth)
            return
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if string(key) == "params":
                    self._walk_params(value, function, kinds, modules, tensors, seen, depth)
            return
        if isinstance(node, ast.BinOp):
            self._walk_params(node.left, function, kinds, modules, tensors, seen, depth)
            self._walk_params(node.right, function, kinds, modules, tensors, seen, depth)
            return
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            for generator in node.generators:
                self._walk_params(generator.iter, function, kinds, modules, tensors, seen, depth)
            return
        if isinstance(node, ast.Attribute) and node.attr in ("trainable_variables", "trainable_weights"):
            kinds.append(MODEL_PARAMETERS)
            owner = dotted(node.value)
            if owner:
                modules.append((owner, function))
            return
        if isinstance(node, ast.Call):
            self._walk_params_call(node, function, kinds, modules, tensors, seen, depth)
            return
        key = dotted(node)
        if key is None:
            kinds.append(UNKNOWN)
            return
        if (key, id(function)) in seen:
            return
        seen.add((key, id(function)))
        if key in self._requires_grad_keys(function):
            kinds.append(TENSORS)  # `img.requires_grad = True` / `x.requires_grad_()`: a tensor of data
            tensors.extend(self.roles.assigned_values(key, function) or [node])
            return
        values = self.roles.assigned_values(key, function)
        if not values:
            kinds.append(UNKNOWN)
            return
        for value in values:
            self._walk_params(value, function, kinds, modules, tensors, seen, depth)

    def _walk_params_call(self, call: ast.Call, function: FunctionInfo | None, kinds: list[str],
                          modules: list, tensors: list, seen: set, depth: int) -> None:
        func = call.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        if method in ("parameters", "named_parameters"):
            kinds.append(MODEL_PARAMETERS)
            owner = dotted(func.value)
            if owner:
                modules.append((owner, function))
            return
        name = dotted(func)
        qualname = self.roles.imports_of(function).qualify(func)
        if qualname in K.TENSOR_FACTORIES or qualname in K.PARAMETER_WRAPPERS or method in K.TENSOR_ONLY_METHODS:
            kinds.append(TENSORS)
            tensors.append(call)
            return
        if name in _PARAMETER_CONTAINERS or qualname in ("itertools.chain",) or name == "dict":
            for arg in call.args:
                self._walk_params(arg.value if isinstance(arg, ast.Starred) else arg, function, kinds, modules,
                                  tensors, seen, depth)
            params = keyword(call, "params")
            if params is not None:
                self._walk_params(params, function, kinds, modules, tensors, seen, depth)
            return
        if method in _MODE_METHODS:  # `latent.to(device)`
            self._walk_params(func.value, function, kinds, modules, tensors, seen, depth)
            return
        kinds.append(UNKNOWN)

    def _requires_grad_keys(self, function: FunctionInfo | None) -> frozenset[str]:
        """Keys a scope asks gradients of: `x.requires_grad = True`, `x.requires_grad_()`."""
        cache = self.__dict__.setdefault("_grad_keys", {})
        found = cache.get(id(function))
        if found is not None:
            return found
        keys = set()
        body = function.body if function is not None else self.structure.body
        pending = [body]
        while pending:
            items = pending.pop()
            for item in items:
                if isinstance(item, Stmt):
                    for key, value in item.targets:
                        if key and key.endswith(".requires_grad") and bool_value(value) is True:
                            keys.add(key[: -len(".requires_grad")])
                for site in item_calls(item):
                    if site.method == "requires_grad_" and site.receiver and bool_value(
                            next(iter(positional(site.call)), ast.Constant(True))) is not False:
                        keys.add(site.receiver)
                for name in ("body", "orelse", "arms", "always"):
                    inner = getattr(item, name, None)
                    if isinstance(inner, list) and inner and isinstance(inner[0], list):
                        pending.extend(inner)
                    elif isinstance(inner, list):
                        pending.append(inner)
        cache[id(function)] = result = frozenset(keys)
        return result

    def made_anew_in(self, call: ast.Call | None, loop: ast.AST) -> bool:
        """Are the optimizer built by `call` and the tensors it optimises both made inside `loop`'s text (so each
        iteration starts from fresh tensors with no gradient, and nothing carries over)?"""
        build = self.build_of(call)
        if build is None or getattr(call, FOREIGN, None) is not getattr(loop, FOREIGN, None):
            return False
        optimised = self.optimised(build)
        return optimised.kind == TENSORS and _within(loop, call) and all(_within(loop, t) for t in optimised.tensors)

    # -- which modules it trains ------------------------------------------------------------------
    def trained_modules(self, build: OptimizerBuild) -> list[tuple[str, FunctionInfo | None, ast.AST]]:
        """The modules whose weights the optimizer updates, each with the scope its key is read in and where
        (to pick the assignment that reaches there): its `.parameters()` owners (PyTorch), the models it is
        compiled into (Keras), else the models handed to one call together with it (`train_step(net, example,
        opt)`, `tf.train.Checkpoint(optimizer=opt, net=net)`). A parameter of a helper stands for the arguments
        its callers pass."""
        optimised = self.optimised(build)
        if optimised.kind == MODEL_PARAMETERS:
            found = [(key, function, build.call) for key, function in optimised.modules]
        elif optimised.kind == TENSORS:
            return []
        else:
            found = self._compiled_into(build) or self._handed_with(build)
        return [resolved for module in found for resolved in self._through_parameters(*module)]

    def _through_parameters(self, key: str, function: FunctionInfo | None, at: ast.AST, depth: int = 0):
        """`net` in `def train_and_checkpoint(net, manager)`: the keys its callers pass (`train_and_checkpoint(net,
        manager)` at the module level), else the key itself."""
        head = key.split(".", 1)[0]
        if function is None or depth > 2 or head not in function.params or head in function.assignments:
            return [(key, function, at)]
        position = function.params.index(head)
        found = []
        for item, caller in walk_items(self.structure):
            for site in item_calls(item):
                if site.func_key != function.name or function.klass is not None:
                    continue
                given = argument(site.call, position, (head,))
                given_key = dotted(given)
                if given_key is not None:
                    found.extend(self._through_parameters(given_key + key[len(head):], caller, site.call, depth + 1))
        return found or [(key, function, at)]

    def _names_of(self, build: OptimizerBuild) -> set[str]:
        """The keys the optimizer is assigned to (`opt = Adam(...)`, `self.optimizer = ...`)."""
        cache = self.__dict__.setdefault("_names", {})
        names = cache.get(id(build.call))
        if names is None:
            names = cache[id(build.call)] = set()
            for item, _ in walk_items(self.structure):
                if isinstance(item, Stmt):
                    for key, value in item.targets:
                        if key and value is build.call:
                            names.add(key)
        return names

    def _live(self, build: OptimizerBuild, node: ast.AST, function: FunctionInfo | None) -> bool:
        """May `node` (written in `function`) see the optimizer `build` makes under its name? In the scope of the
        build: only between the build and the next assignment of that name (a notebook reuses `optimizer` for
        the next model); in another function: whenever it is called, so yes."""
        if function is not build.function or getattr(node, FOREIGN, None) is not getattr(build.call, FOREIGN, None):
            return True
        if _position(node) < _position(build.call):
            return False
        scope = build.function.assignments if build.function is not None else self.structure.module_assignments
        for name in self._names_of(build):
            later = [v for v in scope.get(name, ()) if v is not build.call and _position(v) > _position(build.call)]
            if later and _position(node) > min(_position(v) for v in later):
                return False
        return True

    def _compiled_into(self, build: OptimizerBuild) -> list[tuple[str, FunctionInfo | None, ast.AST]]:
        names = self._names_of(build)
        found = []
        for item, function in walk_items(self.structure):
            for site in item_calls(item):
                if site.method != "compile" or not site.receiver:
                    continue
                given = argument(site.call, 0, ("optimizer",))
                if given is build.call or (dotted(given) in names and self._live(build, site.call, function)):
                    found.append((site.receiver, function, site.call))
        return found

    def _handed_with(self, build: OptimizerBuild) -> list[tuple[str, FunctionInfo | None, ast.AST]]:
        names = self._names_of(build)
        if not names:
            return []
        found = []
        for item, function in walk_items(self.structure):
            for site in item_calls(item):
                keys = [dotted(a) for a in site.call.args] + [dotted(k.value) for k in site.call.keywords]
                if not any(k in names for k in keys if k) or not self._live(build, site.call, function):
                    continue
                for key in keys:
                    if key and key not in names and self.roles.is_kind(key, function, MODEL):
                        found.append((key, function, site.call))
        return found

    def trains(self, build: OptimizerBuild) -> bool:
        """Is the optimizer ever used after it is built (stepped, compiled in, handed to a call), rather than
        built for show and replaced (a cheat sheet's `optimizer = torch.optim.Adam(...)` cell)? Unsure means yes."""
        names = self._names_of(build)
        if not names or any("." in name for name in names):
            return True  # built inline (`compile(optimizer=Adam(...))`, `return Adam(...)`) or on an object
        for node, function in self._name_loads:
            if dotted(node) in names and node is not build.call and self._live(build, node, function):
                return True
        return False

    @cached_property
    def _name_loads(self) -> list[tuple[ast.Name, FunctionInfo | None]]:
        """Every name read in the file, with the function it is read in."""
        spans = sorted(((f.node, f) for f in self.structure.all_functions if f.node is not None),
                       key=lambda pair: _position(pair[0]))
        loads = []
        for node in ast.walk(self.structure.module):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                owner = None
                for defined, function in spans:
                    if _within(defined, node):
                        owner = function  # the innermost: later spans nest inside earlier ones
                loads.append((node, owner))
        return loads

    def _reaching(self, key: str, function: FunctionInfo | None, at: ast.AST) -> list[ast.expr]:
        """The values of `key` that reach `at`: in `at`'s own scope, the last assignment before it (and the ones
        before that while each only wraps the previous: `model = model.to(device)`, `model = DDP(model)`);
        otherwise every value assigned to it."""
        values = self.roles.assigned_values(key, function) or []
        own = function.assignments if function is not None else self.structure.module_assignments
        if key.startswith("self.") or own.get(key) is not values:
            return values
        before = sorted((v for v in values if getattr(v, FOREIGN, None) is getattr(at, FOREIGN, None)
                         and _position(v) < _position(at)), key=_position)
        if not before:
            return values
        chosen = []
        for value in reversed(before):
            chosen.append(value)
            if not any(dotted(n) == key for n in ast.walk(value)):
                break
        return chosen

    # -- clipping (SGD) ---------------------------------------------------------------------------
    def clipped(self, build: OptimizerBuild) -> bool | None:
        """Are the optimizer's gradients clipped before it steps? None when the loop that steps it is not in
        the file (Lightning's `configure_optimizers`: the Trainer clips with `gradient_clip_val`)."""
        if build.qualname.startswith("keras."):
            return any(kw.arg in K.KERAS_OPTIMIZER_CLIPPING and not is_none(kw.value) for kw in build.call.keywords)
        function = build.function
        if function is not None and function.name == "configure_optimizers":
            return None
        clips = [e for e in self.events if e.kind == CLIP and not e.detail.get("tensorflow")]
        if not clips:
            return False
        mine = {key for key, _, _ in self.trained_modules(build)}
        params = dotted(build.params)
        for clip in clips:
            clipped = argument(clip.site.call, 0, ("parameters",))
            if clipped is None:
                continue
            if params is not None and dotted(clipped) == params:
                return True  # `params = list(model.parameters()) + ...` handed to both
            kinds: list[str] = []
            owners: list = []
            self._walk_params(clipped, clip.context.function, kinds, owners, [], set(), 0)
            keys = {key for key, _ in owners}
            if keys and mine:
                if any(_same_module(a, b) for a in keys for b in mine):
                    return True
            elif len(self.builds) == 1:
                return True  # which parameters are clipped is unknown, and there is one optimizer
        return False

    # -- contexts ---------------------------------------------------------------------------------
    def context(self, build: OptimizerBuild) -> TrainingContext | None:
        """Fine-tuning a pretrained model, or training a Post-LN transformer from scratch, when the file says so."""
        if not self.trains(build):
            return None
        for key, function, at in self.trained_modules(build):
            pretrained = self._pretrained(key, function, at, build)
            if pretrained is not None:
                if self.freezes:
                    return None  # part of it may be frozen: which part trains is not told apart
                return pretrained
            found = self._search(key, function, at, self._post_ln_transformer)
            if found is not None and self._loaded(key, function, at, build) is None:
                return TrainingContext(K.TRANSFORMER_FROM_SCRATCH, key, found)
        return None

    def linear(self, build: OptimizerBuild) -> bool:
        """Does the optimizer train one linear layer and nothing else (a linear or logistic regression)?"""
        modules = self.trained_modules(build)
        return bool(modules) and all(
            all(self._linear_value(v, function, 1) for v in self._reaching(key, function, at) or [None])
            and not self._component(key) for key, function, at in modules)

    def _component(self, key: str) -> bool:
        """Is the module a part of another model (`nn.Sequential(body, head)`, `Net(encoder=head)`,
        `model.fc = head`)? Then what feeds it is trained too, and its problem is not a linear one."""
        for item, function in walk_items(self.structure):
            if isinstance(item, Stmt):
                if any(target and "." in target and dotted(value) == key for target, value in item.targets):
                    return True
            for site in item_calls(item):
                given = [a.value if isinstance(a, ast.Starred) else a for a in site.call.args]
                given += [k.value for k in site.call.keywords]
                if not any(dotted(g) == key for g in given) or site.method in ("parameters", "compile", "fit"):
                    continue
                role = self.roles.classify(site.call, function, 0)
                if role is not None and role.kind == MODEL:
                    return True
        return False

    @cached_property
    def freezes(self) -> bool:
        """Does the script freeze some parameters (or train adapters on a frozen model)?"""
        for item, function in walk_items(self.structure):
            if isinstance(item, Stmt):
                for key, value in item.targets:  # `p.requires_grad = False`, `m.trainable = flag` in a helper
                    if key and key.endswith((".requires_grad", ".trainable")) and bool_value(value) is not True:
                        return True
            for site in item_calls(item):
                if site.method == "requires_grad_" and site.call.args and bool_value(site.call.args[0]) is not True:
                    return True
                if site.func_key and _SET_TRAINABLE.fullmatch(last(site.func_key)) and any(
                        bool_value(a) is False for a in site.call.args):
                    return True  # `set_trainable(model.bert, False)`
                if site.func_key and _FREEZE_CALL.fullmatch(last(site.func_key)):
                    return True
                qualname = self.roles.imports_of(function).qualify(site.call.func)
                if qualname is not None and qualname.startswith(K.ADAPTER_PREFIXES):
                    return True
        return any(b.params is not None and "requires_grad" in ast.dump(b.params) for b in self.builds)

    def _pretrained(self, key: str, function: FunctionInfo | None, at: ast.AST,
                    build: OptimizerBuild) -> TrainingContext | None:
        call = self._search(key, function, at, self._pretrained_call)
        if call is not None:
            return TrainingContext(self._family(call), key, call)
        if self.restores_optimizer:
            return None  # resuming a run: the checkpoint is this run's own
        load = self._loaded(key, function, at, build)
        if load is not None:
            transformer = self._search(key, function, at, self._post_ln_transformer) is not None
            return TrainingContext(K.PRETRAINED_TRANSFORMER if transformer else K.PRETRAINED_NETWORK, key, load)
        return None

    def _loaded(self, key: str, function: FunctionInfo | None, at: ast.AST,
                build: OptimizerBuild) -> ast.Call | None:
        """The `load_state_dict(torch.load(...))` that loads weights into `key` (or a part of it) after the model
        is built and before the optimizer's first step (a best checkpoint reloaded after training is not one)."""
        reaching = [v for v in self._reaching(key, function, at) if getattr(v, FOREIGN, None) is None]
        built = max((_position(v) for v in reaching), default=None)
        steps = [e.context.call_chain[0] if e.context.call_chain else e.node for e in self.events
                 if e.kind == OPT_STEP and e.role is not None and e.role.call is build.call]
        first_step = min((_position(n) for n in steps if getattr(n, FOREIGN, None) is None),
                         default=_position(build.call))
        for load_key, load in self._checkpoint_loads:
            if not _same_module(load_key, key) or getattr(load, FOREIGN, None) is not None:
                continue
            if (built is None or _position(load) > built) and _position(load) < first_step:
                return load
        return None

    def _family(self, call: ast.Call) -> str:
        text = " ".join(filter(None, [dotted(call.func), *(string(a) for a in call.args),
                                      *(string(k.value) for k in call.keywords)]))
        qualname = self.structure.imports.qualify(call.func) or text
        if _VISION_TRANSFORMER.search(text):
            return K.PRETRAINED_TRANSFORMER
        if qualname.startswith(K.PRETRAINED_HUBS) and not _CNN.search(text):
            return K.PRETRAINED_TRANSFORMER
        return K.PRETRAINED_NETWORK

    @cached_property
    def _checkpoint_loads(self) -> list[tuple[str, ast.Call]]:
        """`model.load_state_dict(torch.load(path))` (also through a name or `ckpt["model"]`): (model key, call)."""
        loads = []
        for item, function in walk_items(self.structure):
            for site in item_calls(item):
                if site.method != "load_state_dict" or not site.receiver or not site.call.args:
                    continue
                if self.roles.is_kind(site.receiver, function, OPTIMIZER):
                    continue
                if self._from_torch_load(site.call.args[0], function, 0):
                    loads.append((site.receiver, site.call))
        return loads

    def _from_torch_load(self, node: ast.AST, function: FunctionInfo | None, depth: int) -> bool:
        if depth > 4:
            return False
        if isinstance(node, ast.Subscript):
            return self._from_torch_load(node.value, function, depth + 1)
        if isinstance(node, ast.Call):
            qualname = self.roles.imports_of(function).qualify(node.func)
            return qualname in ("torch.load", "safetensors.torch.load_file")
        key = dotted(node)
        values = self.roles.assigned_values(key, function) if key else None
        return bool(values) and any(self._from_torch_load(v, function, depth + 1) for v in values)

    @cached_property
    def restores_optimizer(self) -> bool:
        """Does the script load an optimizer's state (`optimizer.load_state_dict(ckpt["optimizer"])`)?"""
        for item, function in walk_items(self.structure):
            for site in item_calls(item):
                if site.method == "load_state_dict" and site.receiver and (
                        self.roles.is_kind(site.receiver, function, OPTIMIZER) or "optim" in site.receiver.lower()):
                    return True
        return False

    # -- searching what a module is built from ----------------------------------------------------
    def _search(self, key: str, function: FunctionInfo | None, at: ast.AST, predicate) -> ast.Call | None:
        """The first call `predicate` accepts among what builds `key`: its assigned values, their arguments
        and receivers, the names they use (`model = keras.Model(inputs, outputs)` -> `outputs` -> ...
        -> `base(inputs)` -> `base`), the attributes of a project class it instantiates, a factory's returns."""
        pending: list[tuple[ast.AST, object]] = [(v, self._scope_of(v, key, function))
                                                 for v in self._reaching(key, function, at)]
        seen: set = {(key, id(function))}
        budget = _BUDGET
        while pending and budget > 0:
            node, scope = pending.pop()
            budget -= 1
            if isinstance(node, ast.Call):
                if predicate(node, scope):
                    return node
                pending.extend((a.value if isinstance(a, ast.Starred) else a, scope) for a in node.args)
                pending.extend((k.value, scope) for k in node.keywords)
                func = node.func
                if isinstance(func, ast.Attribute):
                    pending.append((func.value, scope))
                elif isinstance(func, ast.Call):
                    pending.append((func, scope))
                pending.extend(self._built_by(node, scope, seen))
                if isinstance(func, ast.Name) and self.roles.imports_of(scope).qualify(func) is None:
                    pending.append((func, scope))  # `base(inputs)`: what `base` is
                continue
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                pending.extend((e.value if isinstance(e, ast.Starred) else e, scope) for e in node.elts)
                continue
            if isinstance(node, ast.BinOp):
                pending.extend(((node.left, scope), (node.right, scope)))
                continue
            key_ = dotted(node)
            if key_ is None or (key_, id(scope)) in seen:
                continue
            seen.add((key_, id(scope)))
            for value in self.roles.assigned_values(key_, scope) or ():
                pending.append((value, self._scope_of(value, key_, scope)))
        return None

    def _built_by(self, call: ast.Call, scope: FunctionInfo | None, seen: set) -> list[tuple[ast.AST, object]]:
        """What a call of a project class or factory builds: the class's attribute values, the factory's returns."""
        key = dotted(call.func)
        if key is None or ("built", key, id(scope)) in seen:
            return []
        seen.add(("built", key, id(scope)))
        module = self.roles.module_of(scope)
        klass = module.classes.get(key) if "." not in key else None
        if klass is None:
            klass = self.roles.links.klass(module, key)
        if klass is not None:
            out = []
            for owner in self.roles.class_chain(klass):
                for values in owner.attributes.values():
                    out.extend((v, _method_holding(owner, v)) for v in values)
            return out
        factory = module.functions.get(key) if "." not in key else None
        if factory is None:
            factory = self.roles.links.function(module, key)
        if factory is not None:
            return [(r, factory) for r in factory.returns]
        return []

    def _scope_of(self, value: ast.AST, key: str, scope: FunctionInfo | None) -> FunctionInfo | None:
        if key.startswith("self.") and scope is not None and scope.klass is not None:
            for owner in self.roles.class_chain(scope.klass):
                method = _method_holding(owner, value)
                if method is not None:
                    return method
        return scope

    def _pretrained_call(self, call: ast.Call, scope: FunctionInfo | None) -> bool:
        """Does this call build a model with pretrained weights?"""
        qualname = self.roles.imports_of(scope).qualify(call.func)
        if qualname is None:
            return False
        owner, _, method = qualname.rpartition(".")
        if method in ("from_pretrained", "from_preset"):
            return owner.startswith(K.PRETRAINED_HUBS) and bool(_MODEL_CLASS.fullmatch(last(owner)))
        if qualname.startswith(K.TORCHVISION_MODELS):
            if method == "get_model" or method[:1].islower():
                weights = keyword(call, "weights")
                return (weights is not None and not is_none(weights)) or bool_value(keyword(call, "pretrained"))
            return False
        if qualname in K.TIMM_CREATE_MODEL:
            return bool_value(keyword(call, "pretrained")) is True
        if qualname.startswith(K.KERAS_APPLICATIONS) and method[:1].isupper():
            weights = keyword(call, "weights")
            return weights is None or not is_none(weights)  # "imagenet" unless told weights=None
        return False

    def _post_ln_transformer(self, call: ast.Call, scope: FunctionInfo | None) -> bool:
        """Does this call build a transformer with Post-LN blocks (layer norm after each residual sum)?"""
        qualname = self.roles.imports_of(scope).qualify(call.func)
        if qualname is None:
            return False
        if qualname in K.TORCH_TRANSFORMERS:
            return not self._norm_first(call, scope, 0)
        if qualname.startswith("transformers.") and qualname.count(".") == 1:
            return bool(_HF_POST_LN_CLASS.fullmatch(last(qualname)))  # `BertForMaskedLM(config)`
        return False

    def _norm_first(self, call: ast.Call, scope: FunctionInfo | None, depth: int) -> bool:
        """`norm_first=True` (or a value the file does not fix: `norm_first=args.pre_norm`) on the call or on the
        layer it stacks (`TransformerEncoder(layer, n)`)."""
        norm_first = keyword(call, "norm_first")
        if norm_first is not None and bool_value(norm_first) is not False:
            return True
        layer = argument(call, 0, ("encoder_layer", "decoder_layer"))
        if layer is None or depth > 2:
            return False
        if isinstance(layer, ast.Call):
            return self._norm_first(layer, scope, depth + 1)
        key = dotted(layer)
        values = self.roles.assigned_values(key, scope) if key else None
        return any(isinstance(v, ast.Call) and self._norm_first(v, scope, depth + 1) for v in values or ())

    def _linear_key(self, key: str, function: FunctionInfo | None, depth: int) -> bool:
        """Is every value assigned to `key` one linear layer?"""
        values = self.roles.assigned_values(key, function)
        return bool(values) and depth < 4 and all(self._linear_value(v, function, depth + 1) for v in values)

    def _linear_value(self, value: ast.AST | None, function: FunctionInfo | None, depth: int) -> bool:
        if value is None:
            return False
        if not isinstance(value, ast.Call):
            key = dotted(value)
            return key is not None and self._linear_key(key, function, depth)
        if isinstance(value.func, ast.Attribute) and value.func.attr in _MODE_METHODS:
            return self._linear_value(value.func.value, function, depth)
        layers = self._layers(value, function)
        return layers is not None and sum(1 for q in layers if q in K.LINEAR_LAYERS) == 1 and all(
            q in K.LINEAR_LAYERS or q in K.WEIGHTLESS_LAYERS for q in layers)

    def _layers(self, call: ast.Call, function: FunctionInfo | None) -> list[str] | None:
        """The layers a model call is made of, by qualified name, when the file shows them all; else None."""
        qualname = self.roles.imports_of(function).qualify(call.func)
        if qualname in K.LINEAR_LAYERS or qualname in K.WEIGHTLESS_LAYERS:
            return [qualname]
        if qualname in ("keras.Sequential", "keras.models.Sequential"):
            elements = call.args[0].elts if call.args and isinstance(call.args[0], (ast.List, ast.Tuple)) else None
            return self._layer_list(elements, function) if elements is not None else None
        if qualname == "torch.nn.Sequential":
            return self._layer_list(call.args, function)
        key = dotted(call.func)
        module = self.roles.module_of(function)
        klass = module.classes.get(key) if key and "." not in key else None
        if klass is None or not self.roles.is_model_class(klass):
            return None
        layers: list[str] = []
        for owner in self.roles.class_chain(klass):
            for values in owner.attributes.values():
                for value in values:
                    if not isinstance(value, ast.Call):
                        continue
                    found = self._layers(value, _method_holding(owner, value) or function)
                    if found is None:
                        named = self.roles.imports_of(function).qualify(value.func) or ""
                        if named.startswith(("torch.", "keras.", "tensorflow.")):
                            return None  # a layer we do not know, or a tensor of weights
                        continue  # not a layer (a metric, a helper object)
                    layers.extend(found)
        return layers or None

    def _layer_list(self, elements, function: FunctionInfo | None) -> list[str] | None:
        layers: list[str] = []
        for element in elements:
            if isinstance(element, ast.Call):
                found = self._layers(element, function)
            else:
                key = dotted(element)
                values = self.roles.assigned_values(key, function) if key else None
                found = None
                if values and len(values) == 1 and isinstance(values[0], ast.Call):
                    found = self._layers(values[0], function)
            if found is None:
                return None
            layers.extend(found)
        return layers


def _method_holding(klass: ClassInfo, node: ast.AST) -> FunctionInfo | None:
    """The method of `klass` whose text holds `node` (where a `self.x = ...` value is written)."""
    for method in klass.methods.values():
        defined = method.node
        if defined is not None and (defined.lineno, defined.col_offset) <= (node.lineno, node.col_offset) \
                and (node.end_lineno, node.end_col_offset) <= (defined.end_lineno, defined.end_col_offset):
            return method
    return None


def _position(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset


def _within(outer: ast.AST, inner: ast.AST) -> bool:
    return ((outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset)
            and (inner.end_lineno, inner.end_col_offset) <= (outer.end_lineno, outer.end_col_offset))


def _same_module(a: str, b: str) -> bool:
    a, b = a.removeprefix("self."), b.removeprefix("self.")
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
