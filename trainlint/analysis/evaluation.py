"""Evaluation phases: where a script evaluates a model (computes outputs it will not train on).

A phase is evidence that some code evaluates, strongest first:

* HELD_OUT_LOOP: a loop over held-out data (`for x, y in val_loader`, `enumerate(loaders["test"])`,
  `MNIST(root, train=False)`, a helper's `loader` parameter bound to `test_loader`: DataSplits decides);
* EVAL_FUNCTION: a function named to evaluate (`evaluate`, `validate_one_epoch`, `test`, `predict`,
  `run_inference`; knowledge.EVAL_FUNCTION_WORDS) that loops over data or calls `eval()` itself; framework
  hooks (Lightning's `validation_step`, a Trainer subclass's methods) are the framework's business;
* AFTER_EVAL: the statements that follow `model.eval()` in its block, up to a `model.train()`;
* HELD_OUT_FORWARD: a statement that calls the model on held-out data (`model(X_val)`).

Each phase is one *instance*: a helper's body inlined at two call sites gives two phases, each with the
events it runs there. A phase is `training` when it does more than evaluate: a backward, an optimizer step,
gradients written, cleared or read, `torch.autograd.grad`, inputs made to require gradients (saliency maps,
adversarial examples), or the model (or an object built from it, `PGD(model)`) handed to a call we cannot
see into. Rules only judge phases that are not training.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from . import knowledge as K
from .events import (APPLY_GRADIENTS, BACKWARD, CLIP, FORWARD, GRAD_WRITE, LOCAL_CALL, OPAQUE_USE, OPT_STEP,
                     TAPE_GRADIENT, TRAIN_MODE, UNSCALE, ZERO_GRAD, Event, LoopFrame)
from .names import bool_value, dotted, function_words, is_eval_name, last, positional
from .splits import EVAL, split_of_name
from .structure import FOR_TYPES, WITH_TYPES, FunctionInfo, Stmt, item_calls, walk_items

if TYPE_CHECKING:
    from .model import ScriptModel

HELD_OUT_LOOP = "held-out loop"
EVAL_FUNCTION = "evaluation function"
AFTER_EVAL = "after eval()"
HELD_OUT_FORWARD = "held-out forward"
_ORDER = (EVAL_FUNCTION, HELD_OUT_LOOP, AFTER_EVAL, HELD_OUT_FORWARD)  # outermost first

_TRAINING_KINDS = frozenset({BACKWARD, OPT_STEP, GRAD_WRITE, TAPE_GRADIENT, APPLY_GRADIENTS, OPAQUE_USE, ZERO_GRAD,
                             CLIP, UNSCALE})
_DATA_WRAPPERS = frozenset({"enumerate", "tqdm", "tqdm.tqdm", "iter", "list", "tuple", "zip", "sorted", "reversed",
                            "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "progress_bar"})
_GRAD_ATTRIBUTES = frozenset({"requires_grad", "requires_grad_", "grad", "retain_grad", "register_hook"})
_GRAD_SWITCHES = K.SET_GRAD_ENABLED | K.NO_GRAD | K.ENABLE_GRAD | {"torch._C._set_grad_enabled"}
_GRAD_SWITCH_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in _GRAD_SWITCHES)


@dataclass(eq=False)
class Phase:
    kind: str
    node: ast.AST  # the loop, the function definition, the eval() call, or the forward's statement
    statements: list[ast.stmt]  # what it is written as: consecutive statements of one block of `function`
    function: FunctionInfo | None  # where those statements are written (None: the module)
    chain: tuple[ast.Call, ...]  # the helper calls that led into `function` (this instance)
    events: list[Event]
    subject: str  # what says it evaluates, for messages: `val_loader`, `evaluate()`, `model.eval()`
    training: bool | None = None  # Evaluation.training(phase) finds it on first ask
    entered: list[FunctionInfo] = field(default_factory=list)  # helpers it runs (their bodies are part of it)

    model: str | None = None  # AFTER_EVAL: the model put in eval mode (only its calls are the evaluation's)

    @property
    def forwards(self) -> list[Event]:
        return [e for e in self.events if e.kind == FORWARD
                and (self.model is None or (e.subject is not None and _related(e.subject, self.model)))]


class Evaluation:
    def __init__(self, model: "ScriptModel") -> None:
        self.model = model
        self.structure = model.structure
        # id(helper call) -> the function it is written in, and the function it runs
        self.callers: dict[int, FunctionInfo | None] = {}
        self.entered: dict[int, FunctionInfo] = {}
        for event in model.of_kind(LOCAL_CALL):
            if event.site is not None:
                self.callers[id(event.site.call)] = event.context.function
                self.entered[id(event.site.call)] = event.detail["function"]
        self._instance_index: dict[tuple, list[Event]] | None = None
        self._found: dict[frozenset, list[Phase]] = {}

    # -- questions ------------------------------------------------------------------------------------
    @property
    def phases(self) -> list[Phase]:
        """Every evaluation phase that calls a model, outermost kinds first."""
        return self.phases_calling([e for e in self.model.of_kind(FORWARD)])

    def phases_calling(self, forwards: list[Event]) -> list[Phase]:
        """The evaluation phases that run at least one of `forwards`, outermost kinds first (a rule asks only
        about the calls it could report: most files have none, and then nothing is looked for)."""
        wanted = frozenset(id(e) for e in forwards)
        found = self._found.get(wanted)
        if found is None:
            found = self._found[wanted] = []
            if wanted:
                self._loop_phases(found, wanted)
                self._function_phases(found, wanted)
                self._after_eval_phases(found, wanted)
                self._forward_phases(found, wanted)
                for phase in found:
                    phase.entered = [self.entered[id(e.site.call)] for e in phase.events if e.kind == LOCAL_CALL
                                     and e.site is not None and id(e.site.call) in self.entered]
                found[:] = [p for p in found if not self._in_a_test(p)]
                found.sort(key=lambda p: _ORDER.index(p.kind))
        return found

    def _in_a_test(self, phase: Phase) -> bool:
        """Does the phase run in a pytest test: a `def test_...` that nothing in the file calls and that asserts
        (or lives in a file importing pytest / unittest)? It checks code; it evaluates no model. A research
        helper `def test_epoch(model, loader)` called from another module asserts nothing: it stays judged."""
        entry = self.model.modes.entry(phase.events[0]) if phase.events else None
        if entry is None or entry.node is None or not entry.name.startswith("test_") \
                or any(e.detail.get("function") is entry for e in self.model.of_kind(LOCAL_CALL)):
            return False
        return (self.model.uses("pytest") or self.model.uses("unittest")
                or any(isinstance(node, ast.Assert) for node in ast.walk(entry.node)))

    @cached_property
    def grad_switched_globally(self) -> bool:
        """Does the file switch autograd by hand, outside a `with` header or a decorator
        (`torch.set_grad_enabled(False)` as a statement, `stack.enter_context(torch.no_grad())`)? Then no
        forward's autograd state is known."""
        text = self.model.source.text
        if "grad" not in text and "inference_mode" not in text:
            return False
        for item, _ in walk_items(self.structure):
            if isinstance(item, Stmt):
                for site in item.calls:
                    if site.func_key is not None and last(site.func_key) in _GRAD_SWITCH_NAMES \
                            and self.structure.imports.qualify(site.call.func) in _GRAD_SWITCHES:
                        return True
        return False

    def grad_chosen(self, event: Event) -> bool:
        """Is autograd switched on explicitly, or to a value known only at run time, where the event runs
        (`with torch.enable_grad():`, `with torch.set_grad_enabled(phase == "train"):`, `@torch.enable_grad()`)?"""
        nodes = [*event.context.call_chain, event.node]
        for node in nodes:
            for with_node in self._grad_withs(node):
                if self.model.contains(with_node, node):
                    return True
        functions = [event.context.function] + [self.entered.get(id(call)) for call in event.context.call_chain]
        for function in functions:
            if function is not None and function.node is not None:
                imports = self.model.roles.imports_of(function)
                for decorator in function.node.decorator_list:
                    func = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if imports.qualify(func) in K.ENABLE_GRAD | K.SET_GRAD_ENABLED or _grad_word(dotted(func)):
                        return True  # `@torch.enable_grad()`, yolov5's `@smart_inference_mode()`
                if self._switches_grad(function):
                    return True
        return False

    def _switches_grad(self, function: FunctionInfo) -> bool:
        """Does the function switch autograd by hand (`stack.enter_context(torch.no_grad())`)?"""
        cache = self.__dict__.setdefault("_switching", {})
        found = cache.get(id(function))
        if found is None:
            imports = self.model.roles.imports_of(function)
            found = cache[id(function)] = any(
                imports.qualify(site.call.func) in _GRAD_SWITCHES
                for item in _items(function.body) if isinstance(item, Stmt) for site in item.calls)
        return found

    def _grad_withs(self, node: ast.AST) -> list[ast.AST]:
        home = self.model.home(node) or self.structure
        cache = self.__dict__.setdefault("_withs", {})
        found = cache.get(id(home))
        if found is None:
            found = cache[id(home)] = []
            for item, _ in walk_items(home):
                if not isinstance(item.node, WITH_TYPES):
                    continue
                for with_item in item.node.items:
                    expr = with_item.context_expr
                    qualname = home.imports.qualify(expr.func if isinstance(expr, ast.Call) else expr)
                    if qualname in K.ENABLE_GRAD or (qualname in K.SET_GRAD_ENABLED and item.grad is not False):
                        found.append(item.node)
                    elif item.grad is None and any(isinstance(sub, (ast.Name, ast.Attribute)) and _grad_word(
                            dotted(sub)) for sub in ast.walk(expr)):
                        found.append(item.node)  # `with torch.no_grad() if frozen else nullcontext():`
        return found

    def torch_module(self, forward: Event) -> bool:
        """Is what the forward calls known to be a PyTorch module (built by torch / torchvision / timm /
        transformers, a class deriving from torch.nn, or put in eval/train mode or asked for its parameters
        in a file that imports torch)?"""
        role = forward.role
        if self.inside_a_model(forward):
            return False
        if self._constructor(forward):
            return False  # `GPTModel(cfg)`: builds a model, runs none
        name = last(forward.spelled or "").lower()
        if "loss" in name or "criterion" in name or (
                role is not None and role.local_class is not None and role.local_class.name.endswith("Loss")):
            return False  # `loss_fct(logits, labels)`, `self.uv_loss(...)`: a loss, not the model
        if role is not None and role.qualname:
            qualname = role.qualname
            if qualname.startswith("torch.nn.") and (qualname.endswith("Loss")
                                                     or last(qualname) in K.TORCH_PARAMETER_FREE_MODULES):
                return False  # `criterion(out, y)`, `softmax(logits)`: no parameters, no graph of their own
            if qualname.startswith(("torch.", "torchvision.", "timm.")):
                return True
            if qualname.startswith("transformers.") and not last(qualname).startswith(("TF", "Flax")):
                return True
        if role is not None and role.local_class is not None:
            for owner in self.model.roles.class_chain(role.local_class):
                if any(base.startswith(("torch.nn.", "torchvision.", "pytorch_lightning.", "transformers."))
                       and not last(base).startswith(("TF", "Flax")) for base in owner.bases):
                    return True
        if not self.model.uses("torch"):
            return False
        spelled = forward.spelled or ""
        return spelled in self.model.roles.parameter_owners() or any(
            e.subject is not None and forward.subject is not None and e.subject == forward.subject
            for e in self.model.of_kind(TRAIN_MODE))

    def report_site(self, event: Event) -> tuple[ast.AST, str] | None:
        """Where a finding about the event belongs in this file, and what leads there: the event itself, or,
        for a helper of another module, the call of this file (in this run of the helper) that runs it, with
        a prefix naming the helper (`calc_loss_loader()` (gpt_train.py:35), called here: ...)."""
        if self.model.home(event.node) is None:
            return event.node, ""
        local = [call for call in event.context.call_chain if self.model.home(call) is None]
        if not local:
            return None
        call = local[-1]
        helper = self.entered.get(id(call))
        if helper is None or helper.node is None or helper.module is None:
            return call, f"`{self.model.code(call.func)}()`, called here: "
        return call, f"`{helper.name}()` ({helper.module.path}:{helper.node.lineno}), called here: "

    def _constructor(self, forward: Event) -> bool:
        key = forward.spelled or ""
        module = self.model.roles.module_of(forward.context.function)
        if key in module.classes or self.model.roles.links.klass(module, key) is not None:
            return True
        qualname = module.imports.qualify_key(key) if key.split(".")[0] in module.imports.names else None
        return qualname is not None and last(qualname)[:1].isupper()

    def inside_a_model(self, forward: Event) -> bool:
        """Is the call written in a module's own code (a method of an nn.Module class, or a helper it runs):
        a layer of the model, called from the model's forward? Then it is no phase of a script (an
        evaluation method of the module, `def evaluate(self, loader)`, is)."""
        functions = [self.entered.get(id(call)) for call in forward.context.call_chain] + [forward.context.function]
        for function in functions:
            if function is None or function.klass is None or is_eval_name(function.name):
                continue
            if any(base.startswith(("torch.nn.", "pytorch_lightning.", "transformers.")) for owner in
                   self.model.roles.class_chain(function.klass) for base in owner.bases):
                return True
        return False

    @cached_property
    def frozen(self) -> frozenset[str]:
        """Last names of models whose parameters are all frozen (`model.requires_grad_(False)`, `for p in
        model.parameters(): p.requires_grad = False`, Lightning's `model.freeze()`): their forward records no
        graph of its own."""
        found: set[str] = set()
        text = self.model.source.text
        if "requires_grad" not in text and "freeze" not in text:
            return frozenset(found)
        for item, _ in walk_items(self.structure):
            for site in item_calls(item):
                if site.method == "requires_grad_" and site.receiver and positional(site.call) \
                        and bool_value(positional(site.call)[0]) is False:
                    found.add(last(site.receiver))
                elif site.method == "freeze" and site.receiver and not site.call.args and not site.call.keywords:
                    found.add(last(site.receiver))  # Lightning's `model.freeze()`: requires_grad off, eval mode
            node = item.node
            if isinstance(node, FOR_TYPES) and isinstance(node.iter, ast.Call) \
                    and isinstance(node.iter.func, ast.Attribute) and node.iter.func.attr == "parameters":
                owner = dotted(node.iter.func.value)
                if owner and any(isinstance(s, ast.Assign) and any(dotted(t) and dotted(t).endswith(".requires_grad")
                                                                   for t in s.targets)
                                 and bool_value(s.value) is False for s in node.body):
                    found.add(last(owner))
        return frozenset(found)

    # -- finding the phases ---------------------------------------------------------------------------
    def _loop_phases(self, found: list[Phase], wanted: frozenset) -> None:
        for frame in self.model.loops:
            node = frame.node
            if not isinstance(node, FOR_TYPES):
                continue
            events = self.model.events_in(frame)
            if not any(id(e) in wanted for e in events):
                continue
            chain = self._frame_chain(frame, events)
            data = node.iter
            split = self._held_out(data, frame.function, _outer(frame))
            if split is None and chain is not None:
                split = self._through_parameter(data, frame.function, chain)
            if split == EVAL:
                found.append(Phase(HELD_OUT_LOOP, node, [node], frame.function, chain or (), events,
                                   _shorten(self.model.code(data))))

    def _held_out(self, expr: ast.expr, function: FunctionInfo | None, loops) -> str | None:
        """The split of some data (DataSplits), but for a name that says nothing itself and is assigned
        more than once where not every value is held out (`x = torch.rand(4, 3)` in one cell of a notebook,
        `x = batch["test"]` in another): that name is not held-out data everywhere."""
        split = self.model.splits.of(expr, function, loops)
        if split != EVAL:
            return split
        root = expr
        while True:
            if isinstance(root, ast.Call) and isinstance(root.func, ast.Attribute) and dotted(root.func.value):
                root = root.func.value  # `X_test.to(device)`
            elif isinstance(root, ast.Call) and root.args and dotted(root.func) in _DATA_WRAPPERS:
                root = root.args[0]  # `enumerate(loader)`, `tqdm(loader)`
            elif isinstance(root, (ast.Subscript, ast.Attribute)) and dotted(root) is None:
                root = root.value
            else:
                break
        key = dotted(root)
        if key is None or split_of_name(key) == EVAL or any(frame.function is function and isinstance(
                frame.node, FOR_TYPES) and dotted(frame.node.target) == key for frame in loops):
            return split
        values = self.model.roles.assigned_values(key, function) or []
        if len(values) > 1 and not all(self.model.splits.of(v, function) == EVAL for v in values):
            return None
        return split

    def _frame_chain(self, frame: LoopFrame, events: list[Event]) -> tuple[ast.Call, ...] | None:
        for event in events:
            if event.context.function is frame.function:
                return event.context.call_chain
            chain = event.context.call_chain
            for depth, call in enumerate(chain):
                if self.callers.get(id(call), False) is frame.function:
                    return chain[:depth]
        return None

    def _through_parameter(self, data: ast.expr, function: FunctionInfo | None, chain) -> str | None:
        """The split of a loop's data that is a parameter (`for x, y in loader` in `evaluate(model, loader)`):
        what the call that entered the function passes for it."""
        from .layers import _argument_for
        splits = self.model.splits
        while function is not None and chain:
            root = data
            while isinstance(root, ast.Call) and root.args:  # `enumerate(loader)`, `tqdm(loader)`
                root = root.args[0]
            key = dotted(root)
            if key is None or key.split(".")[0] not in function.params:
                return None
            call = chain[-1]
            if self.entered.get(id(call)) is not function:
                return None
            argument = _argument_for(function, call, key.split(".")[0])
            if argument is None:
                return None
            caller = self.callers.get(id(call))
            split = splits.of(argument, caller)
            if split is not None:
                return split
            data, function, chain = argument, caller, chain[:-1]
        return None

    def _instances(self, function: FunctionInfo) -> list[tuple[tuple[ast.Call, ...], int]]:
        """(call chain, loops around the call) for each run of a function's body: each call of it, and ()
        when it is an entry point."""
        chains = []
        for event in self.model.of_kind(LOCAL_CALL):
            if event.detail.get("function") is function and event.site is not None:
                chains.append((event.context.call_chain + (event.site.call,), len(event.context.loops)))
        if (id(function), ()) in self._index():
            chains.append(((), 0))
        return chains

    def _index(self) -> dict[tuple, list[Event]]:
        """(id(function), ids of the call chain) -> the events of that instance of the function, in order: an
        event belongs to the instance it is written in and to every instance whose helper calls led to it."""
        if self._instance_index is None:
            index: dict[tuple, list[Event]] = {}
            for event in self.model.events:
                chain = event.context.call_chain
                for depth in range(len(chain) + 1):
                    function = event.context.function if depth == len(chain) else self.callers.get(id(chain[depth]))
                    key = (id(function), tuple(id(call) for call in chain[:depth]))
                    index.setdefault(key, []).append(event)
            self._instance_index = index
        return self._instance_index

    def _members(self, function: FunctionInfo | None, chain: tuple[ast.Call, ...]) -> list[Event]:
        """The events of one instance of a function (its own, and those of the helpers it runs)."""
        return list(self._index().get((id(function), tuple(id(call) for call in chain)), []))

    def _function_phases(self, found: list[Phase], wanted: frozenset) -> None:
        for function in self.structure.all_functions:
            if function.node is None or not is_eval_name(function.name) or self._framework_method(function):
                continue
            for chain, around in self._instances(function):
                events = self._members(function, chain)
                forwards = [e for e in events if e.kind == FORWARD]
                if not any(id(e) in wanted for e in forwards):
                    continue
                evals = any(e.kind == TRAIN_MODE and e.detail.get("mode") is False for e in events)
                if not evals and not any(len(e.context.loops) > around for e in forwards):
                    continue  # `predict(x)`: one call of the model, which training code may call as well
                found.append(Phase(EVAL_FUNCTION, function.node, list(function.node.body), function, chain,
                                   events, f"{function.name}()"))

    def _framework_method(self, function: FunctionInfo) -> bool:
        klass = function.klass
        if klass is None:
            return False
        return any(base.startswith(K.FRAMEWORK_BASE_PREFIXES) for owner in self.model.roles.class_chain(klass)
                   for base in owner.bases)

    def _after_eval_phases(self, found: list[Phase], wanted: frozenset) -> None:
        for ev in self.model.of_kind(TRAIN_MODE):
            if ev.detail.get("mode") is not False or ev.subject is None or ev.stmt is None \
                    or self.model.home(ev.node) is not None:
                continue
            block = self.model.block_of(ev.stmt.node)
            if block is None:
                continue
            index = next(i for i, s in enumerate(block) if s is ev.stmt.node)
            function, chain = ev.context.function, ev.context.call_chain
            members = [e for e in self._members(function, chain) if e.index > ev.index]
            if not any(id(e) in wanted for e in members):
                continue
            statements = []
            for statement in block[index + 1:]:
                inside = [e for e in members if self.model.contains(statement, self._anchor(e, chain))]
                if any(e.kind == TRAIN_MODE and e.detail.get("mode") is not False
                       and _related(e.subject, ev.subject) for e in inside):
                    break
                statements.append(statement)
            events = [e for e in members if any(self.model.contains(s, self._anchor(e, chain)) for s in statements)]
            if any(id(e) in wanted and e.subject and _related(e.subject, ev.subject) for e in events):
                found.append(Phase(AFTER_EVAL, ev.node, statements, function, chain, events,
                                   f"{self.model.code(ev.node)}", model=ev.subject))

    @staticmethod
    def _anchor(event: Event, chain: tuple[ast.Call, ...]) -> ast.AST:
        own = event.context.call_chain
        return own[len(chain)] if len(own) > len(chain) else event.node

    def _forward_phases(self, found: list[Phase], wanted: frozenset) -> None:
        covered = {id(e) for phase in found for e in phase.forwards}
        for forward in self.model.of_kind(FORWARD):
            if id(forward) not in wanted or forward.stmt is None or id(forward) in covered \
                    or self.model.home(forward.node) is not None:
                continue  # a call in a loop over held-out data or an evaluate() is judged there
            call = forward.site.call
            data = [a.value if isinstance(a, ast.Starred) else a for a in call.args] + [k.value for k in call.keywords]
            splits = {self._held_out(a, forward.context.function, forward.context.loops) for a in data}
            if EVAL not in splits or splits - {EVAL, None}:
                continue  # `model(X_val)`, `model(x_test, lengths)`; not `model(X_train)`, `model(X_all)`
            if self._fresh_model(forward):
                continue  # `rnn = RNN(...); out = rnn(test_input)`: a shape check of an untrained model
            statement = forward.stmt.node
            function, chain = forward.context.function, forward.context.call_chain
            events = [e for e in self._members(function, chain)
                      if self.model.contains(statement, self._anchor(e, chain))]
            found.append(Phase(HELD_OUT_FORWARD, statement, [statement], function, chain, events,
                               _shorten(self.model.code(data[0]))))

    def _fresh_model(self, forward: Event) -> bool:
        """Is the called model one this file only builds and calls (`test_rnn = RNN(1, 1, 10, 2)`, then
        `test_rnn(test_input, None)` to check the output's shape)? Never trained, loaded, put in a mode,
        asked for its parameters or handed anywhere, it holds no learned weights: calling it tries the code
        out, it evaluates nothing. A pretrained model (`resnet18(weights=...)`, `X.from_pretrained(...)`) is
        no fresh build."""
        key = forward.spelled
        if not key or "." in key:
            return False
        values = self.model.roles.assigned_values(key, forward.context.function)
        if not values or not all(isinstance(v, ast.Call) and self._builds_class(v, forward) for v in values):
            return False
        mentions = self.__dict__.get("_mentions")
        if mentions is None:
            mentions = self.__dict__["_mentions"] = {}
            for node in ast.walk(self.model.module):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.Name):
                        mentions.setdefault(child.id, []).append((child, node))
        for name, parent in mentions.get(key, []):
            if isinstance(parent, ast.Call) and parent.func is name:
                continue  # a call of the model
            if isinstance(parent, ast.Assign) and name in parent.targets:
                continue  # its construction
            return False
        return True

    def _builds_class(self, call: ast.Call, forward: Event) -> bool:
        """Does the call build an object from a class (`RNN(...)`, `nn.LSTM(...)`), not load one
        (`resnet18(pretrained=True)`, `AutoModel.from_pretrained(...)`, `torch.load(path)`)?"""
        key = dotted(call.func)
        if key is None:
            return False
        module = self.model.roles.module_of(forward.context.function)
        if key in module.classes or self.model.roles.links.klass(module, key) is not None:
            return True
        qualname = module.imports.qualify(call.func)
        return qualname is not None and qualname.startswith("torch.nn.") and last(qualname)[:1].isupper()

    # -- does the phase do more than evaluate? --------------------------------------------------------
    def training(self, phase: Phase) -> bool:
        """Does the phase do more than evaluate (found on first ask, then kept)?"""
        if phase.training is None:
            phase.training = self._training(phase)
        return phase.training

    def _training(self, phase: Phase) -> bool:
        if any(e.kind in _TRAINING_KINDS for e in phase.events):
            return True
        models = {e.spelled for e in phase.forwards if e.spelled}
        users = self._model_users(models)
        helpers = {id(e.site.call) for e in phase.events if e.kind == LOCAL_CALL and e.site is not None}
        for sub, imports in self._code(phase):
            if isinstance(sub, ast.Attribute):
                return True  # `x.requires_grad_()`, `x.grad`, `out.register_hook(...)`
            qualname = imports.qualify(sub.func)
            if qualname in K.AUTOGRAD_CALLS or qualname in K.ENABLE_GRAD:
                return True
            if id(sub) in helpers:
                continue
            func = dotted(sub.func)
            if func is not None and (func in users or func.split(".")[0] in users):
                return True  # `attack(x)`, `cam.generate(x)`: an object built from the model
            if func is not None and last(func) in K.MODEL_INSPECTORS or qualname in K.MODEL_INSPECTORS:
                continue
            arguments = [a.value if isinstance(a, ast.Starred) else a for a in sub.args]
            arguments += [k.value for k in sub.keywords]
            if any(dotted(a) in models or dotted(a) in users for a in arguments):
                return True  # `pgd(model, x, y)`: the model handed to code we cannot see into
        return False

    def _code(self, phase: Phase):
        """(node, imports) for the calls and gradient attributes (`x.grad`, `requires_grad_`) written in the
        phase's statements and in the bodies of the helpers it runs."""
        imports = self.model.roles.imports_of(phase.function)
        for statement in phase.statements:
            for node in self._nodes(statement):
                yield node, imports
        for function in phase.entered:
            if function.node is not None:
                imports = self.model.roles.imports_of(function)
                for node in self._nodes(function.node):
                    yield node, imports

    def _nodes(self, tree: ast.AST) -> list[ast.AST]:
        cache = self.__dict__.setdefault("_walked", {})
        found = cache.get(id(tree))
        if found is None:
            found = cache[id(tree)] = [node for node in ast.walk(tree) if isinstance(node, ast.Call) or
                                       isinstance(node, ast.Attribute) and node.attr in _GRAD_ATTRIBUTES]
        return found

    def _model_users(self, models: set[str]) -> set[str]:
        """Keys assigned from a call that is handed the model (`attack = PGD(model, eps)`, `cam = GradCAM(model)`),
        but the model itself (`model = DataParallel(model)`) and calls that only look at it."""
        cache = self.__dict__.setdefault("_users", {})
        key = frozenset(models)
        if key in cache:
            return cache[key]
        users = cache[key] = set()
        for scope in [self.structure.module_assignments, *(f.assignments for f in self.structure.all_functions)]:
            for key, values in scope.items():
                if key in models:
                    continue
                for value in values:
                    if not isinstance(value, ast.Call):
                        continue
                    func = dotted(value.func)
                    if func is None or last(func) in K.MODEL_INSPECTORS or \
                            self.structure.imports.qualify(value.func) in K.TORCH_MODULE_CONTAINERS or \
                            self._seen_into(func):
                        continue
                    arguments = [a for a in value.args if not isinstance(a, ast.Starred)]
                    arguments += [k.value for k in value.keywords]
                    if any(dotted(a) in models for a in arguments):
                        users.add(key)
        return users

    def _seen_into(self, func: str) -> bool:
        """Is `func` a function or class this file (or the project) defines? Its calls are followed: what
        they do shows as events, so what they return is no opaque user of the model."""
        structure = self.structure
        return (func in structure.functions or func in structure.classes
                or self.model.roles.links.function(structure, func) is not None
                or self.model.roles.links.klass(structure, func) is not None)

    # -- do the phase's outputs flow into a backward after it? ---------------------------------------
    def feeds_backward(self, phase: Phase) -> bool:
        """Is something the phase computes read, after it, by a statement that runs autograd (directly, or
        through what it is assigned to)? After it in the same function, and, when that function returns a
        value, after each call of it in this file. Then the graph the phase builds is used."""
        if self._flows_into_backward(phase.function, phase.statements):
            return True
        function = phase.function
        if function is None or not function.returns:
            return False
        for event in self.model.of_kind(LOCAL_CALL):
            if event.detail.get("function") is function and event.stmt is not None \
                    and self.model.home(event.stmt.node) is None \
                    and self._flows_into_backward(event.context.function, [event.stmt.node]):
                return True
        return False

    def returns_to_unseen_callers(self, function: FunctionInfo | None) -> bool:
        """Does the function hand a value back to callers this file does not show (it is called nowhere here)?"""
        return function is not None and bool(function.returns) and not any(
            e.detail.get("function") is function for e in self.model.of_kind(LOCAL_CALL))

    def _flows_into_backward(self, function: FunctionInfo | None, statements: list[ast.stmt]) -> bool:
        flow = self.model.splits.flow(function)
        end = max((s.end_lineno, s.end_col_offset) for s in statements)
        imports = self.model.roles.imports_of(function)
        tainted: set[str] = set()
        for index, (stmt, _) in enumerate(flow.statements):
            node = stmt.node
            inside = any(self.model.contains(s, node) for s in statements)
            if not inside and (node.lineno, node.col_offset) < end:
                continue
            pairs = flow.assigned[index]
            if inside:
                tainted.update(target for target, _, _ in pairs)
                if isinstance(node, ast.AugAssign) and dotted(node.target):
                    tainted.add(dotted(node.target))
                for site in stmt.calls:
                    if site.method in ("append", "extend") and site.receiver:
                        tainted.add(site.receiver)
                continue
            if tainted & _names(node) and _runs_autograd(node, imports):
                return True
            for target, reads, _ in pairs:
                if reads.closure & tainted:
                    tainted.add(target)
                else:
                    tainted.discard(target)
        return False


_GRAD_WORDS = ("no_grad", "inference_mode", "grad_enabled", "enable_grad", "inference", "nograd")


def _grad_word(key: str | None) -> bool:
    """A name that says it switches autograd: `no_grad`, `smart_inference_mode`, `maybe_enable_grad`."""
    return key is not None and any(word in last(key).lower() for word in _GRAD_WORDS)


def _items(items):
    pending = list(items)
    while pending:
        item = pending.pop()
        yield item
        for name in ("body", "orelse", "always"):
            inner = getattr(item, name, None)
            if isinstance(inner, list):
                pending.extend(inner)
        for arm in getattr(item, "arms", ()):
            pending.extend(arm)


def _outer(frame: LoopFrame) -> list[LoopFrame]:
    frames, parent = [], frame.parent
    while parent is not None:
        frames.append(parent)
        parent = parent.parent
    return frames


def _related(a: str, b: str) -> bool:
    a, b = a.rsplit("::", 1)[-1], b.rsplit("::", 1)[-1]
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _shorten(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _names(node: ast.AST) -> set[str]:
    found = set()
    for sub in ast.walk(node):
        key = dotted(sub) if isinstance(sub, (ast.Name, ast.Attribute)) else None
        if key is not None:
            found.add(key)
            parts = key.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def _runs_autograd(node: ast.AST, imports) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if isinstance(sub.func, ast.Attribute) and sub.func.attr == "backward":
                return True
            if imports.qualify(sub.func) in K.AUTOGRAD_CALLS:
                return True
    return False
