"""Data loaders and samplers: which DataLoader each training loop iterates, over what data, drawn in what order.

The facts (ScriptModel.loaders), each answered by following an expression back to where its value is made:
through names and their assignments, `self.x` attributes of the class, a helper's parameters to the caller's
arguments (the call chain the events recorded), the return values of factories (`train_loader =
get_loader(...)`), and wrappers that hand back what they are given (`enumerate`, `tqdm`, `iter`,
`accelerator.prepare`). Where a value comes from something we cannot see (an import, a parameter of an entry
point, `make_loader(cfg)` from a library), the answer is "unknown" and the rules stay silent.

- LoaderBuild: one `DataLoader(...)` call with its dataset, shuffle, sampler and batch_sampler arguments.
- LoaderUse: a `for` loop that iterates a DataLoader and whose iterations run backward and an optimizer step.
- dataset kind: map-style (indexed: TensorDataset, torchvision datasets, a class with __getitem__ and __len__,
  HF datasets) or iterable (IterableDataset subclasses, HF streaming, webdataset), or unknown.
- samplers: DistributedSampler calls (and whether they shuffle), samplers of one process, None, unknown.
- set_epoch calls, and what they are called on (the sampler, or `loader.sampler`).
- forwards of a model wrapped in DistributedDataParallel / FSDP.
- hand-offs: a loader or sampler given to a call we cannot see into (it may replace the sampler).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property

from . import knowledge as K
from .events import BACKWARD, FORWARD, LOCAL_CALL, OPT_STEP, Event, LoopFrame
from .names import argument, bool_value, dotted, has_star, head, is_none, keyword, last, positional
from .structure import FOR_TYPES, ClassInfo, FunctionInfo, Loop, Stmt, Structure, item_calls, walk_items

MAP = "map"
ITERABLE = "iterable"
# What a sampler argument holds.
DISTRIBUTED = "distributed"
LOCAL = "local"  # a sampler of one process (RandomSampler, ...)
NONE = "none"
UNKNOWN = "unknown"

_MAX_DEPTH = 10
_SYNTHETIC = re.compile(K.SYNTHETIC_DATA_NAME)
_MAX_LEAVES = 32


@dataclass(frozen=True, eq=False)
class Place:
    """Where an expression is evaluated: the function it is written in (None: the module) and the helper
    calls that led there (so a parameter can be followed to the caller's argument)."""

    function: FunctionInfo | None
    chain: tuple[ast.Call, ...] = ()


Leaf = tuple  # (expression or None for "unknown", Place)


@dataclass(eq=False)
class LoaderBuild:
    """One DataLoader(...) call."""

    call: ast.Call
    place: Place
    qualname: str
    dataset: ast.expr | None
    shuffle: ast.expr | None  # as written; None: not given
    sampler: ast.expr | None
    batch_sampler: ast.expr | None
    starred: bool  # `*args` / `**kwargs`: some arguments are unknown

    @property
    def shuffled(self) -> bool | None:
        """True / False as written (absent or None: False, the default), None when not a literal."""
        if self.starred:
            return None
        if self.shuffle is None or is_none(self.shuffle):
            return False
        return bool_value(self.shuffle)

    def given(self, expr: ast.expr | None) -> bool:
        return expr is not None and not is_none(expr)


@dataclass(eq=False)
class LoaderUse:
    """A training loop over a DataLoader: `frame` iterates the loader `build` and runs backward and step."""

    frame: LoopFrame
    build: LoaderBuild


class Loaders:
    def __init__(self, model) -> None:
        self.model = model
        self.structure: Structure = model.structure
        self.roles = model.roles
        # (chain that enters a helper) -> (the caller's place, the helper): from the events' helper calls
        self._callers: dict[tuple, tuple[Place, FunctionInfo]] = {}
        self._resolved_calls: set[int] = set()
        for event in model.of_kind(LOCAL_CALL):
            function = event.detail.get("function")
            if event.site is None or function is None:
                continue
            caller = Place(event.context.function, event.context.call_chain)
            self._callers[event.context.call_chain + (event.site.call,)] = (caller, function)
            self._resolved_calls.add(id(event.site.call))
        self._owners: dict[int, dict[int, FunctionInfo]] = {}
        self._loop_iterables: dict[int, set[int]] = {}
        self._memo: dict[tuple, list[Leaf]] = {}
        self._top_level: dict[int, set[int]] = {}

    # -- where values come from -----------------------------------------------------------------------
    def origins(self, expr: ast.expr | None, place: Place) -> list[Leaf]:
        """The expressions `expr`'s value may be made by, each with its place; (None, place) for a part we
        cannot follow."""
        memo = (id(expr), id(place.function), place.chain)
        found = self._memo.get(memo)
        if found is None:
            found = []
            self._origins(expr, place, 0, set(), found)
            self._memo[memo] = found
        return list(found)

    def _origins(self, expr, place: Place, depth: int, seen: set, out: list) -> None:
        if expr is None or depth > _MAX_DEPTH or len(out) > _MAX_LEAVES:
            out.append((None, place))
            return
        mark = (id(expr), id(place.function), place.chain)
        if mark in seen:
            return  # `loader = accelerator.prepare(loader)`: the cycle adds nothing
        seen.add(mark)
        if isinstance(expr, ast.NamedExpr):
            self._origins(expr.value, place, depth + 1, seen, out)
        elif isinstance(expr, ast.IfExp):
            self._origins(expr.body, place, depth + 1, seen, out)
            self._origins(expr.orelse, place, depth + 1, seen, out)
        elif isinstance(expr, ast.BoolOp):
            for value in expr.values:
                self._origins(value, place, depth + 1, seen, out)
        elif dotted(expr) is not None:
            self._key_origins(dotted(expr), expr, place, depth, seen, out)
        elif isinstance(expr, ast.Call):
            self._call_origins(expr, place, depth, seen, out)
        else:
            out.append((expr, place))

    def _call_origins(self, call: ast.Call, place: Place, depth: int, seen: set, out: list) -> None:
        name = last(dotted(call.func) or "") or None
        args = positional(call)
        if name in K.ITERATION_WRAPPERS and len(args) == 1 and not call.keywords \
                or name in ("enumerate", "tqdm", "track", "progress_bar") and args:
            self._origins(args[0], place, depth + 1, seen, out)  # `tqdm(loader, desc=...)` iterates the loader
            return
        factory = self._factory(call, place)
        if factory is not None and factory.returns:
            inner = Place(factory, place.chain + (call,))
            self._callers.setdefault(inner.chain, (place, factory))
            for value in factory.returns:
                if isinstance(value, ast.Tuple):
                    out.append((None, inner))  # `return train_loader, val_loader`: which one is unknown
                else:
                    self._origins(value, inner, depth + 1, seen, out)
            return
        out.append((call, place))

    def _factory(self, call: ast.Call, place: Place) -> FunctionInfo | None:
        """A function of this file or project that the call runs (not a class, not a library's)."""
        key = dotted(call.func)
        if key is None:
            return None
        module = self.roles.module_of(place.function)
        scope = place.function
        while scope is not None:
            if key in scope.nested:
                return scope.nested[key]
            scope = scope.parent
        if "." not in key:
            return module.functions.get(key) or self.roles.links.function(module, key)
        if head(key) == "self" and place.function is not None and place.function.klass is not None \
                and key.count(".") == 1:
            return self.roles.method(place.function.klass, last(key))
        return self.roles.links.function(module, key) if not self._bound(head(key), place) else None

    def _bound(self, name: str, place: Place) -> bool:
        scope = place.function
        while scope is not None:
            if name in scope.params or name in scope.assignments:
                return True
            scope = scope.parent
        return name in self.roles.module_of(place.function).module_assignments

    def _key_origins(self, key: str, use: ast.expr, place: Place, depth: int, seen: set, out: list) -> None:
        function = place.function
        first = head(key)
        if first in ("self", "cls") and key != first and function is not None and function.klass is not None:
            values = []
            for klass in self.roles.class_chain(function.klass):
                values.extend(klass.attributes.get(key, []))
            if values:
                for value in values:
                    owner = self._owner(value, function)
                    where = place if owner is function else Place(owner, ())
                    self._origins(value, where, depth + 1, seen, out)
                return
        scope = function
        while scope is not None:
            if key in scope.assignments:
                where = place if scope is function else Place(scope, ())
                values = scope.assignments[key]
                for value in self._reaching(values, use, scope) if scope is function else values:
                    if self._iterated(value, function):
                        out.append((None, where))  # `for batch in loader`: an element of the loader
                    else:
                        self._origins(value, where, depth + 1, seen, out)
                return
            if first in scope.params:
                if key == first and scope is function:
                    self._parameter(scope, first, place, depth, seen, out)
                else:
                    out.append((None, place))
                return
            scope = scope.parent
        module = self.roles.module_of(function)
        if key in module.module_assignments:
            values = module.module_assignments[key]
            for value in self._reaching(values, use, None) if function is None else values:
                if self._iterated(value, function):
                    out.append((None, Place(None, ())))
                else:
                    self._origins(value, Place(None, ()), depth + 1, seen, out)
            return
        out.append((None, place))

    def _reaching(self, values: list[ast.expr], use: ast.expr, scope: FunctionInfo | None) -> list[ast.expr]:
        """Of the values assigned to a name in straight-line code of the scope where it is read, the last one
        written before the read (a notebook that rebinds `train_loader` to an evaluation loader after training);
        all of them when some assignment sits in a branch or a loop."""
        if len(values) < 2 or getattr(use, "lineno", None) is None:
            return values
        top = self._top_level.get(id(scope))
        if top is None:
            body = scope.body if scope is not None else self.roles.module_of(None).body
            top = self._top_level[id(scope)] = {id(value) for item in body if isinstance(item, Stmt)
                                                for _, value in item.targets}
        if not all(id(value) in top for value in values):
            return values
        before = [v for v in values if (v.lineno, v.col_offset) < (use.lineno, use.col_offset)]
        return [max(before, key=lambda v: (v.lineno, v.col_offset))] if before else values

    def _iterated(self, value: ast.expr, function: FunctionInfo | None) -> bool:
        """Is `value` the iterable of a `for` loop (whose target then holds one of its elements, not it)?"""
        module = self.roles.module_of(function)
        found = self._loop_iterables.get(id(module))
        if found is None:
            found = self._loop_iterables[id(module)] = {
                id(item.node.iter) for item, _ in walk_items(module)
                if isinstance(item, Loop) and isinstance(item.node, FOR_TYPES)}
        return id(value) in found

    def _parameter(self, function: FunctionInfo, param: str, place: Place, depth: int, seen: set, out: list) -> None:
        """A helper's parameter holds what its caller passed (or the default, when the caller passed nothing)."""
        entry = self._callers.get(place.chain) if place.chain else None
        if entry is None or entry[1] is not function:
            out.append((None, place))  # an entry point's parameter: anything
            return
        caller, _ = entry
        call = place.chain[-1]
        value, known = _argument_for(function, call, param)
        if value is not None:
            self._origins(value, caller, depth + 1, seen, out)
        elif known and param in function.defaults:
            self._origins(function.defaults[param], Place(function, place.chain), depth + 1, seen, out)
        else:
            out.append((None, place))

    def _owner(self, value: ast.expr, fallback: FunctionInfo | None) -> FunctionInfo | None:
        """The function whose assignment holds `value` (for `self.x = ...` written in another method)."""
        module = self.roles.module_of(fallback)
        index = self._owners.get(id(module))
        if index is None:
            index = self._owners[id(module)] = {}
            for function in module.all_functions:
                for values in function.assignments.values():
                    for item in values:
                        index[id(item)] = function
        found = index.get(id(value))
        if found is None:
            for klass in self.roles.class_chain(fallback.klass) if fallback is not None else ():
                owner_module = klass.module or self.structure
                for function in owner_module.all_functions:
                    if any(v is value for values in function.assignments.values() for v in values):
                        return function
        return found or fallback

    def qualname(self, call: ast.Call, place: Place) -> str | None:
        return self.roles.imports_of(place.function).qualify(call.func)

    # -- DataLoaders ----------------------------------------------------------------------------------
    def build(self, expr: ast.expr | None, place: Place) -> LoaderBuild | None:
        """The DataLoader that a call expression builds, else None."""
        if not isinstance(expr, ast.Call):
            return None
        qualname = self.qualname(expr, place)
        if qualname not in K.DATA_LOADERS:
            return None
        positions = K.DATA_LOADER_POSITIONS
        pyg = qualname.startswith("torch_geometric.")

        def arg(name: str) -> ast.expr | None:
            if pyg and name in ("sampler", "batch_sampler"):
                return keyword(expr, name)
            return argument(expr, positions[name], (name,))

        return LoaderBuild(expr, place, qualname, arg("dataset"), arg("shuffle"), arg("sampler"),
                           arg("batch_sampler"), has_star(expr))

    def builds_of(self, expr: ast.expr | None, place: Place) -> list[LoaderBuild] | None:
        """The DataLoaders an expression may hold; None when some of its origins are not DataLoaders we see
        (a `None` placeholder, `self.train_loader = None` before the real one, is no origin)."""
        found = []
        for leaf, where in self.origins(expr, place):
            if is_none(leaf):
                continue
            build = self.build(leaf, where)
            if build is None:
                return None
            if all(b.call is not build.call for b in found):
                found.append(build)
        return found or None

    def iterated(self, frame: LoopFrame) -> list[LoaderBuild]:
        """The DataLoaders a `for` loop iterates (`for b in loader`, `enumerate(tqdm(loader))`, `zip(a, b)`)."""
        node = frame.node
        if not isinstance(node, FOR_TYPES):
            return []
        place = Place(frame.function, frame.call_chain)
        pending, found = [node.iter], []
        while pending:
            expr = pending.pop()
            if isinstance(expr, ast.Call) and last(dotted(expr.func) or "") in ("zip", "enumerate") \
                    and expr.args and not expr.keywords:
                if last(dotted(expr.func)) == "zip":
                    pending.extend(a for a in expr.args if not isinstance(a, ast.Starred))
                else:
                    pending.append(expr.args[0])
                continue
            builds = self.builds_of(expr, place)
            for build in builds or ():
                if all(b.call is not build.call for b in found):
                    found.append(build)
        return found

    def trains(self, frame: LoopFrame) -> bool:
        """Do the loop's iterations run backward and an optimizer step?"""
        events = self.model.events_in(frame)
        return (any(e.kind == BACKWARD and e.context.grad_enabled for e in events)
                and any(e.kind == OPT_STEP for e in events))

    @cached_property
    def uses(self) -> list[LoaderUse]:
        """Every training loop over a DataLoader, with the loader (one per loader a loop iterates)."""
        found = []
        for frame in self.model.loops:
            if isinstance(frame.node, FOR_TYPES) and self.trains(frame):
                found.extend(LoaderUse(frame, build) for build in self.iterated(frame))
        return found

    def epoch_loop(self, frame: LoopFrame) -> LoopFrame | None:
        """The loop around a batch loop, when it may run it more than once: not `for _ in range(1)`, nor
        `range(num_epochs)` where every value `num_epochs` can hold (a constant, a helper's parameter
        followed to its callers' arguments) is 1 or less."""
        outer = frame.parent
        if outer is None:
            return None
        node = outer.node
        if isinstance(node, FOR_TYPES) and isinstance(node.iter, ast.Call) and dotted(node.iter.func) == "range" \
                and not node.iter.keywords and 1 <= len(node.iter.args) <= 2:
            place = Place(outer.function, outer.call_chain)
            bounds = [self.int_values(arg, place) for arg in node.iter.args]
            if all(bounds):
                start = [0] if len(bounds) == 1 else bounds[0]
                if max(bounds[-1]) - min(start) <= 1:
                    return None
        return outer

    def int_values(self, expr: ast.expr, place: Place) -> list[int]:
        """Every int an expression can hold, when all of its origins are int constants (else [])."""
        if isinstance(expr, ast.Constant):
            leaves = [(expr, place)]
        else:
            leaves = self.origins(expr, place)
        values = [leaf.value for leaf, _ in leaves if isinstance(leaf, ast.Constant) and type(leaf.value) is int]
        return values if leaves and len(values) == len(leaves) else []

    # -- datasets -------------------------------------------------------------------------------------
    def synthetic(self, expr: ast.expr | None, place: Place) -> bool:
        """Is the data made up at random (`TensorDataset(torch.randn(...))`, `np.random.normal(...)`,
        `make_classification(...)`, a `RandomDataset` or `FakeData`, `Dataset.from_dict(dummy_data)`)? Its
        order means nothing."""
        return self._synthetic(expr, place, 0, set())

    def _synthetic(self, expr, place: Place, depth: int, seen: set) -> bool:
        if expr is None or depth > 8:
            return False
        key = dotted(expr)
        if key is not None and _SYNTHETIC.fullmatch(last(key)):
            return True
        leaves = self.origins(expr, place)
        if not leaves:
            return False
        for leaf, where in leaves:
            if leaf is None or id(leaf) in seen:
                return False
            seen.add(id(leaf))
            if not self._synthetic_leaf(leaf, where, depth, seen):
                return False
        return True

    def _synthetic_leaf(self, leaf, where: Place, depth: int, seen: set) -> bool:
        if isinstance(leaf, (ast.List, ast.Tuple)):
            return bool(leaf.elts) and all(self._synthetic(e, where, depth + 1, seen) for e in leaf.elts)
        if isinstance(leaf, ast.Dict):
            return bool(leaf.values) and all(self._synthetic(v, where, depth + 1, seen) for v in leaf.values)
        if not isinstance(leaf, ast.Call):
            return False
        qualname = self.qualname(leaf, where) or ""
        name = last(dotted(leaf.func) or "")
        if qualname in K.RANDOM_DATA_FUNCTIONS or qualname.startswith(K.RANDOM_DATA_PREFIXES) \
                or name[:1].isupper() and _SYNTHETIC.fullmatch(name):
            return True  # torch.randn(...), np.random.normal(...), RandomDataset(...), FakeData(...)
        args = [a for a in [*leaf.args, *(k.value for k in leaf.keywords if k.arg not in ("dtype", "device"))]
                if not isinstance(a, ast.Starred) and not _literal(a)]  # random_split(ds, [0.9, 0.1])
        if qualname in K.DATA_CONVERSIONS or qualname in K.MAP_DATASETS:
            return bool(args) and all(self._synthetic(a, where, depth + 1, seen) for a in args)
        func = leaf.func
        if isinstance(func, ast.Attribute) and func.attr in K.DATA_CONVERSION_METHODS:
            return self._synthetic(func.value, where, depth + 1, seen)  # torch.randn(8, 4).to(device)
        return False

    def dataset_kind(self, expr: ast.expr | None, place: Place, _depth: int = 0) -> str | None:
        """MAP, ITERABLE or None (unknown) for the dataset an expression holds."""
        if expr is None or _depth > 4:
            return None
        kinds = set()
        for leaf, where in self.origins(expr, place):
            kinds.add(self._leaf_kind(leaf, where, _depth))
        if ITERABLE in kinds:
            return ITERABLE
        return MAP if kinds == {MAP} else None

    def _leaf_kind(self, leaf, where: Place, depth: int) -> str | None:
        if isinstance(leaf, (ast.List, ast.ListComp)):
            return MAP  # a list of samples
        if isinstance(leaf, ast.Subscript):
            index = leaf.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, str):
                return self.dataset_kind(leaf.value, where, depth + 1)  # HF `dataset["train"]`
            if self._graph_dataset(leaf.value, where):
                return self.dataset_kind(leaf.value, where, depth + 1)  # PyG `dataset[:800]`
            return None
        if not isinstance(leaf, ast.Call):
            return None
        qualname = self.qualname(leaf, where)
        if qualname is not None:
            if qualname in K.HF_LOAD_DATASET:
                streaming = keyword(leaf, "streaming")
                if streaming is None or bool_value(streaming) is False:
                    return MAP
                return ITERABLE if bool_value(streaming) else None
            if qualname in K.ITERABLE_DATASETS or qualname.startswith(K.ITERABLE_DATASET_PREFIXES):
                return ITERABLE
            if qualname in K.MAP_DATASETS or qualname.startswith(K.MAP_DATASET_PREFIXES):
                return MAP
        func = leaf.func
        if isinstance(func, ast.Attribute) and func.attr in K.SAME_KIND_DATASET_METHODS:
            return self.dataset_kind(func.value, where, depth + 1)  # `ds.map(tokenize)`
        if isinstance(func, ast.Attribute) and func.attr == "to_iterable_dataset":
            return ITERABLE
        klass = self._class(leaf, where)
        return self.class_kind(klass) if klass is not None else None

    def _graph_dataset(self, expr: ast.expr, place: Place) -> bool:
        leaves = self.origins(expr, place)
        return bool(leaves) and all(isinstance(leaf, ast.Call) and (self.qualname(leaf, where) or "").startswith(
            ("torch_geometric.", "ogb.")) for leaf, where in leaves)

    def _class(self, call: ast.Call, place: Place) -> ClassInfo | None:
        key = dotted(call.func)
        if key is None:
            return None
        module = self.roles.module_of(place.function)
        klass = module.classes.get(key) if "." not in key else None
        return klass if klass is not None else self.roles.links.klass(module, key)

    def class_kind(self, klass: ClassInfo) -> str | None:
        """A class of the project: ITERABLE if it derives from IterableDataset; MAP if it defines __getitem__
        and __len__ (itself or through torch's / torchvision's bases) and no __iter__; else unknown."""
        chain = self.roles.class_chain(klass)
        names = {klass_.name for klass_ in chain}
        methods = set()
        for owner in chain:
            methods.update(owner.methods)
        external = [base for owner in chain for base in owner.bases if base.rsplit(".", 1)[-1] not in names]
        if any(base in K.ITERABLE_DATASETS or base.startswith(K.ITERABLE_DATASET_PREFIXES) for base in external):
            return ITERABLE
        if "__iter__" in methods:
            return None
        inherited = False
        for base in external:
            if base in K.MAP_DATASETS or base.startswith(K.MAP_DATASET_PREFIXES):
                inherited = True  # a torchvision dataset's subclass: indexed like it
            elif base not in K.DATASET_BASES and base not in ("object", "Generic", "typing.Generic"):
                return None  # a base we cannot see could make it anything
        if inherited or {"__getitem__", "__len__"} <= methods:
            return MAP
        return None

    # -- samplers -------------------------------------------------------------------------------------
    def sampler_kinds(self, expr: ast.expr | None, place: Place) -> list[tuple[str, ast.Call | None, Place]]:
        """What a `sampler=` argument may hold: (DISTRIBUTED | LOCAL | NONE | UNKNOWN, the call, its place)."""
        if expr is None or is_none(expr):
            return [(NONE, None, place)]
        found = []
        for leaf, where in self.origins(expr, place):
            if is_none(leaf):
                found.append((NONE, None, where))
                continue
            qualname = self.qualname(leaf, where) if isinstance(leaf, ast.Call) else None
            if qualname in K.DISTRIBUTED_SAMPLERS:
                found.append((DISTRIBUTED, leaf, where))
            elif qualname in K.LOCAL_SAMPLERS:
                found.append((LOCAL, leaf, where))
            else:
                found.append((UNKNOWN, leaf if isinstance(leaf, ast.Call) else None, where))
        return found

    @staticmethod
    def sampler_shuffles(call: ast.Call) -> bool | None:
        """Does a DistributedSampler(...) call shuffle (True by default)? None when not a literal."""
        if has_star(call):
            return None
        position, name, default = K.DISTRIBUTED_SAMPLER_SHUFFLE
        value = argument(call, position, (name,))
        return default if value is None else bool_value(value)

    # -- set_epoch ------------------------------------------------------------------------------------
    def set_epoch_targets(self, event: Event) -> tuple[set[int], bool]:
        """The ids of the DistributedSampler and DataLoader calls a `set_epoch` call may reach, and whether
        some of what it is called on is unknown."""
        receiver = event.site.call.func.value if isinstance(event.site.call.func, ast.Attribute) else None
        place = Place(event.context.function, event.context.call_chain)
        targets: set[int] = set()
        unknown = False
        owner = receiver
        through_loader = False
        while isinstance(owner, ast.Attribute) and owner.attr in ("sampler", "batch_sampler"):
            owner, through_loader = owner.value, True  # `loader.sampler.set_epoch(epoch)`
        for leaf, where in self.origins(owner, place):
            if not isinstance(leaf, ast.Call):
                unknown = unknown or not is_none(leaf)  # `loaders["train"].sampler`: we cannot tell
            else:
                qualname = self.qualname(leaf, where)
                if through_loader and qualname in K.DATA_LOADERS:
                    targets.add(id(leaf))
                    build = self.build(leaf, where)
                    for kind, call, _ in self.sampler_kinds(build.sampler, build.place):
                        if call is not None:
                            targets.add(id(call))
                elif qualname in K.DISTRIBUTED_SAMPLERS and not through_loader:
                    targets.add(id(leaf))
                elif qualname is None or qualname in K.DATA_LOADERS:
                    unknown = True  # a sampler class of the project, or a loader's own set_epoch
        return targets, unknown

    # -- DistributedDataParallel ----------------------------------------------------------------------
    def data_parallel(self, forward: Event) -> ast.Call | None:
        """The DistributedDataParallel / FSDP call that wraps the model a forward event calls, if any."""
        if forward.kind != FORWARD or forward.site is None:
            return None
        place = Place(forward.context.function, forward.context.call_chain)
        for leaf, where in self.origins(forward.site.call.func, place):
            if isinstance(leaf, ast.Call) and self.qualname(leaf, where) in K.DATA_PARALLEL_WRAPPERS:
                return leaf
        return None

    # -- hand-offs ------------------------------------------------------------------------------------
    def handed_off(self, built: set[int]) -> list[ast.Call]:
        """Calls we cannot see into that are given an object built by one of the calls in `built` (a DataLoader
        or a sampler): they may replace its sampler or call set_epoch themselves."""
        found = []
        for item, function in walk_items(self.structure):
            for site in item_calls(item):
                call = site.call
                if id(call) in self._resolved_calls or id(call) in built:
                    continue
                name = site.method or last(site.func_key or "")
                if name in K.HARMLESS_DATA_CALLS and name not in ("prepare", "setup_dataloaders"):
                    continue
                if self.qualname(call, Place(function)) in K.DATA_LOADERS:
                    continue
                for value in [*call.args, *(k.value for k in call.keywords)]:
                    value = value.value if isinstance(value, ast.Starred) else value
                    if dotted(value) is None:
                        continue
                    if any(leaf is not None and id(leaf) in built
                           for leaf, _ in self.origins(value, Place(function))):
                        found.append(call)
                        break
        return found

    # -- data split by hand -----------------------------------------------------------------------------
    def mentions_rank(self, expr: ast.expr | None, place: Place) -> bool:
        """Does the data an expression holds depend on the process's rank (`Subset(ds, range(rank, n, world))`,
        `dataset[train_idx]` after `train_idx = train_idx.split(n)[rank]`, `ds.shard(num_shards=world_size,
        index=rank)`, a dataset class that reads `dist.get_rank()`)? Names are followed to what they are
        assigned, a few steps deep."""
        return self._mentions_rank(expr, place, 0, set())

    def _mentions_rank(self, expr, place: Place, depth: int, seen: set) -> bool:
        if expr is None or depth > 4 or id(expr) in seen:
            return False
        seen.add(id(expr))
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and _rank_word(node.id) or isinstance(node, ast.Attribute) \
                    and _rank_word(node.attr) or isinstance(node, ast.keyword) and _rank_word(node.arg or ""):
                return True
            if isinstance(node, ast.Call):
                klass = self._class(node, place)
                if klass is not None and id(klass) not in seen:
                    seen.add(id(klass))
                    if any(_rank_word(n.id if isinstance(n, ast.Name) else n.attr)
                           for owner in self.roles.class_chain(klass) for n in ast.walk(owner.node)
                           if isinstance(n, (ast.Name, ast.Attribute))):
                        return True
            if isinstance(node, ast.Name) or isinstance(node, ast.Attribute) and dotted(node) is not None:
                for leaf, where in self.origins(node, place):
                    if leaf is not None and self._mentions_rank(leaf, where, depth + 1, seen):
                        return True
        return False


def _literal(node: ast.expr) -> bool:
    """A number, a string, or a list / tuple of them (sizes, fractions, names: not data)."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_literal(e) for e in node.elts)
    return isinstance(node, ast.Constant) or isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)


def _rank_word(name: str) -> bool:
    return name.lower() in K.RANK_WORDS


def _argument_for(function: FunctionInfo, call: ast.Call, param: str) -> tuple[ast.expr | None, bool]:
    """The argument a call passes for a parameter; (None, True) when it passes none, (None, False) when
    unknown (`*args`, `**kwargs`)."""
    params = list(function.params)
    if function.klass is not None and function.parent is None and params and params[0] in ("self", "cls") \
            and isinstance(call.func, ast.Attribute):
        params = params[1:]
    value = keyword(call, param)
    if value is not None:
        return value, True
    args = positional(call)
    if param in params:
        index = params.index(param)
        if index < len(args):
            return args[index], True
    if has_star(call):
        return None, False
    return None, True


def tf_pipeline_order(loaders: Loaders, expr: ast.expr | None, place: Place) -> str | None:
    """For a tf.data pipeline: "fixed" when it starts at `Dataset.from_tensor_slices(...)` and nothing in it
    shuffles (only order-keeping steps: batch, map, prefetch, cache, repeat, ...), "shuffled" when a
    `.shuffle()` is in it, None when unknown. `ds = ds.batch(32)` reads as one pipeline."""
    orders: set[str | None] = set()
    _pipeline(loaders, expr, place, set(), orders, 0)
    return orders.pop() if len(orders) == 1 else None


def _pipeline(loaders: Loaders, expr, place: Place, seen: set, orders: set, depth: int) -> None:
    if expr is None or depth > 12:
        orders.add(None)
        return
    for leaf, where in loaders.origins(expr, place):
        if id(leaf) in seen:
            continue  # `ds = ds.batch(32)`: the step was met already
        seen.add(id(leaf))
        func = leaf.func if isinstance(leaf, ast.Call) else None
        if func is None:
            orders.add(None)
        elif loaders.qualname(leaf, where) in K.TF_DATASET_SOURCES:
            orders.add("fixed")
        elif isinstance(func, ast.Attribute) and func.attr == "shuffle":
            orders.add("shuffled")
        elif isinstance(func, ast.Attribute) and func.attr in K.TF_ORDER_KEEPING_METHODS:
            _pipeline(loaders, func.value, where, seen, orders, depth + 1)
        else:
            orders.add(None)
