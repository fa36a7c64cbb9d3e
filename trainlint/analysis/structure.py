"""The one walk over a file: statements become a small IR of blocks, loops, branches and calls.

This is the only place that walks the libcst tree. It walks statements and, inside them, only the
expression shapes that can hold a call, so it costs a fraction of the parse. Everything later
(roles, events, values) works on this IR and the CST nodes it keeps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import libcst as cst

from .names import ImportMap, dotted


@dataclass(eq=False)
class CallSite:
    """One call expression, in evaluation order within its statement."""

    call: cst.Call
    func_key: str | None  # `optimizer.step`, `clip_grad_norm_`
    receiver: str | None  # `optimizer` for `optimizer.step()`
    method: str | None  # `step`


@dataclass(eq=False)
class Stmt:
    """A simple statement: its calls, and what it assigns."""

    node: cst.BaseSmallStatement
    line: cst.SimpleStatementLine | None  # None inside a one-line suite (`for x in y: f(x)`)
    calls: list[CallSite]
    targets: list[tuple[str | None, cst.BaseExpression]] = field(default_factory=list)  # (key, value) pairs
    aug: tuple[str | None, cst.BaseAugOp, cst.BaseExpression] | None = None


@dataclass(eq=False)
class Loop:
    node: cst.For | cst.While
    header_calls: list[CallSite]
    body: list["Item"]
    orelse: list["Item"]
    target_keys: tuple[str, ...] = ()


@dataclass(eq=False)
class Branch:
    node: cst.If | cst.Match | cst.Try | cst.TryStar
    test_calls: list[CallSite]
    arms: list[list["Item"]]  # body, elif/else arms; a Try's body is an arm like the others
    always: list["Item"] = field(default_factory=list)  # a Try's finally


@dataclass(eq=False)
class With:
    node: cst.With
    item_calls: list[CallSite]
    grad: bool | None  # False under no_grad / inference_mode, True under enable_grad, None otherwise
    body: list["Item"]
    bound: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)  # `as` targets


Item = Union[Stmt, Loop, Branch, With]


@dataclass(eq=False)
class FunctionInfo:
    name: str
    node: cst.FunctionDef
    params: list[str]
    defaults: dict[str, cst.BaseExpression]
    body: list[Item]
    class_name: str | None
    parent: "FunctionInfo | None"
    decorators: list[str | None]
    grad: bool | None = None  # False when decorated with @torch.no_grad()
    nested: dict[str, "FunctionInfo"] = field(default_factory=dict)
    assignments: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)
    returns: list[cst.BaseExpression] = field(default_factory=list)

    @property
    def qualname(self) -> str:
        prefix = f"{self.parent.qualname}." if self.parent else ""
        owner = f"{self.class_name}." if self.class_name and not self.parent else ""
        return f"{prefix}{owner}{self.name}"


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: cst.ClassDef
    bases: list[str]  # qualified where imported, else the local spelling
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    attributes: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)  # self.x = ...


@dataclass
class Structure:
    module: cst.Module
    imports: ImportMap
    body: list[Item]
    functions: dict[str, FunctionInfo]  # module-level functions by name
    classes: dict[str, ClassInfo]
    all_functions: list[FunctionInfo]
    module_assignments: dict[str, list[cst.BaseExpression]]
    argparse_defaults: dict[str, cst.BaseExpression | None]  # dest -> default (None: no default given)
    argparse_types: dict[str, str]


def _expr_calls(node: cst.CSTNode | None, out: list[CallSite]) -> None:
    """Append the calls in an expression, innermost first, as Python evaluates them."""
    while node is not None:
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute):
                _expr_calls(func.value, out)
                receiver, method = dotted(func.value), func.attr.value
            else:
                receiver, method = None, None
            for arg in node.args:
                _expr_calls(arg.value, out)
            out.append(CallSite(node, dotted(func), receiver, method))
            return
        if isinstance(node, (cst.Attribute, cst.StarredElement, cst.NamedExpr, cst.Arg)):
            node = node.value
            continue
        if isinstance(node, (cst.Await, cst.UnaryOperation)):
            node = node.expression
            continue
        if isinstance(node, cst.BinaryOperation):
            _expr_calls(node.left, out)
            node = node.right
            continue
        if isinstance(node, cst.BooleanOperation):
            _expr_calls(node.left, out)
            node = node.right
            continue
        if isinstance(node, cst.Comparison):
            _expr_calls(node.left, out)
            for target in node.comparisons:
                _expr_calls(target.comparator, out)
            return
        if isinstance(node, cst.Subscript):
            _expr_calls(node.value, out)
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    _expr_calls(element.slice.value, out)
            return
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            for element in node.elements:
                _expr_calls(element.value, out)
            return
        if isinstance(node, cst.Dict):
            for element in node.elements:
                if isinstance(element, cst.DictElement):
                    _expr_calls(element.key, out)
                _expr_calls(element.value, out)
            return
        if isinstance(node, cst.FormattedString):  # `print(f"val {validate():.3f}")` calls validate()
            for part in node.parts:
                if isinstance(part, cst.FormattedStringExpression):
                    _expr_calls(part.expression, out)
            return
        if isinstance(node, cst.IfExp):
            _expr_calls(node.test, out)
            _expr_calls(node.body, out)
            node = node.orelse
            continue
        return


def calls_in(node: cst.CSTNode | None) -> list[CallSite]:
    out: list[CallSite] = []
    _expr_calls(node, out)
    return out


# Methods that return their arguments wrapped (accelerate, fabric, apex, deepspeed).
PASSTHROUGH_METHODS = frozenset({"prepare", "setup", "initialize"})


def _target_pairs(target: cst.BaseExpression, value: cst.BaseExpression) -> list[tuple[str | None, cst.BaseExpression]]:
    """`a, b = x, y` pairs each name with its value; otherwise every target gets the whole value."""
    if isinstance(target, (cst.Tuple, cst.List)):
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(target.elements):
            pairs = []
            for t, v in zip(target.elements, value.elements):
                pairs.extend(_target_pairs(t.value, v.value))
            return pairs
        if (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                and value.func.attr.value in PASSTHROUGH_METHODS and len(value.args) == len(target.elements)):
            # `model, optimizer = accelerator.prepare(model, optimizer)` hands back the same objects, wrapped.
            return [(dotted(t.value), a.value) for t, a in zip(target.elements, value.args)]
        return [(dotted(t.value), value) for t in target.elements]
    return [(dotted(target), value)]


class _Builder:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.imports = ImportMap()
        self.functions: dict[str, FunctionInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.all_functions: list[FunctionInfo] = []
        self.module_assignments: dict[str, list[cst.BaseExpression]] = {}
        self.argparse_defaults: dict[str, cst.BaseExpression | None] = {}
        self.argparse_types: dict[str, str] = {}

    def build(self) -> Structure:
        body = self.block(self.module.body, None, None)
        return Structure(self.module, self.imports, body, self.functions, self.classes, self.all_functions,
                         self.module_assignments, self.argparse_defaults, self.argparse_types)

    # -- statements -------------------------------------------------------------------------------
    def block(self, statements, function: FunctionInfo | None, klass: ClassInfo | None) -> list[Item]:
        items: list[Item] = []
        for statement in statements:
            self.statement(statement, function, klass, items)
        return items

    def suite(self, suite: cst.BaseSuite, function, klass) -> list[Item]:
        if isinstance(suite, cst.IndentedBlock):
            return self.block(suite.body, function, klass)
        items: list[Item] = []
        for small in suite.body:
            self.small(small, None, function, klass, items)
        return items

    def statement(self, node: cst.BaseStatement, function, klass, items: list[Item]) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.small(small, node, function, klass, items)
        elif isinstance(node, cst.FunctionDef):
            self.function_def(node, function, klass)
        elif isinstance(node, cst.ClassDef):
            self.class_def(node, function)
        elif isinstance(node, cst.For):
            header = calls_in(node.iter)
            targets = tuple(k for k, _ in _target_pairs(node.target, node.iter) if k)
            for key in targets:
                self.assign(key, node.iter, function)
            items.append(Loop(node, header, self.suite(node.body, function, klass),
                              self.suite(node.orelse.body, function, klass) if node.orelse else [], targets))
        elif isinstance(node, cst.While):
            items.append(Loop(node, calls_in(node.test), self.suite(node.body, function, klass),
                              self.suite(node.orelse.body, function, klass) if node.orelse else []))
        elif isinstance(node, cst.If):
            arms, tests = [], calls_in(node.test)
            current: cst.If | cst.Else | None = node
            arms.append(self.suite(node.body, function, klass))
            current = node.orelse
            while isinstance(current, cst.If):
                tests.extend(calls_in(current.test))
                arms.append(self.suite(current.body, function, klass))
                current = current.orelse
            arms.append(self.suite(current.body, function, klass) if current is not None else [])
            items.append(Branch(node, tests, arms))
        elif isinstance(node, cst.With):
            item_calls: list[CallSite] = []
            bound = []
            for with_item in node.items:
                item_calls.extend(calls_in(with_item.item))
                if with_item.asname is not None:
                    key = dotted(with_item.asname.name)
                    if key:
                        bound.append((key, with_item.item))
                        self.assign(key, with_item.item, function)
            items.append(With(node, item_calls, self.grad_mode(node), self.suite(node.body, function, klass), bound))
        elif isinstance(node, (cst.Try, cst.TryStar)):
            arms = [self.suite(node.body, function, klass)]
            arms.extend(self.suite(h.body, function, klass) for h in node.handlers)
            if node.orelse:
                arms[0] = arms[0] + self.suite(node.orelse.body, function, klass)
            always = self.suite(node.finalbody.body, function, klass) if node.finalbody else []
            items.append(Branch(node, [], arms, always))
        elif isinstance(node, cst.Match):
            arms = [self.suite(case.body, function, klass) for case in node.cases]
            items.append(Branch(node, calls_in(node.subject), arms + [[]]))

    def small(self, node: cst.BaseSmallStatement, line, function, klass, items: list[Item]) -> None:
        if isinstance(node, cst.Expr):
            calls = calls_in(node.value)
            if calls:
                items.append(Stmt(node, line, calls))
                self.note_argparse(calls)
        elif isinstance(node, cst.Assign):
            pairs: list[tuple[str | None, cst.BaseExpression]] = []
            for target in node.targets:
                pairs.extend(_target_pairs(target.target, node.value))
            for key, value in pairs:
                if key:
                    self.assign(key, value, function)
            calls = calls_in(node.value)
            items.append(Stmt(node, line, calls, pairs))
            self.note_argparse(calls)
        elif isinstance(node, cst.AnnAssign):
            key = dotted(node.target)
            if node.value is not None:
                if key:
                    self.assign(key, node.value, function)
                items.append(Stmt(node, line, calls_in(node.value), [(key, node.value)]))
        elif isinstance(node, cst.AugAssign):
            key = dotted(node.target)
            items.append(Stmt(node, line, calls_in(node.value), aug=(key, node.operator, node.value)))
        elif isinstance(node, cst.Return):
            if node.value is not None:
                if function is not None:
                    function.returns.append(node.value)
                calls = calls_in(node.value)
                if calls:
                    items.append(Stmt(node, line, calls))
        elif isinstance(node, cst.Import):
            self.imports.add_import(node)
        elif isinstance(node, cst.ImportFrom):
            self.imports.add_import_from(node)
        elif isinstance(node, (cst.Assert, cst.Raise, cst.Del)):
            pass

    def assign(self, key: str, value: cst.BaseExpression, function: FunctionInfo | None) -> None:
        if key.startswith("self.") and function is not None:
            klass = self.classes.get(function.class_name or "")
            if klass is not None:
                klass.attributes.setdefault(key, []).append(value)
        if function is None:
            self.module_assignments.setdefault(key, []).append(value)
        else:
            function.assignments.setdefault(key, []).append(value)

    # -- definitions ------------------------------------------------------------------------------
    def function_def(self, node: cst.FunctionDef, parent: FunctionInfo | None, klass: ClassInfo | None) -> None:
        params, defaults = [], {}
        for param in [*node.params.posonly_params, *node.params.params, *node.params.kwonly_params]:
            params.append(param.name.value)
            if param.default is not None:
                defaults[param.name.value] = param.default
        decorators = [dotted(d.decorator.func) if isinstance(d.decorator, cst.Call) else dotted(d.decorator)
                      for d in node.decorators]
        info = FunctionInfo(node.name.value, node, params, defaults, [], klass.name if klass else
                            (parent.class_name if parent else None), parent, decorators)
        info.grad = self.decorator_grad(node)
        info.body = self.suite(node.body, info, klass)
        self.all_functions.append(info)
        if parent is not None:
            parent.nested[info.name] = info
        elif klass is not None:
            klass.methods[info.name] = info
        else:
            self.functions[info.name] = info

    def class_def(self, node: cst.ClassDef, parent: FunctionInfo | None) -> None:
        bases = [self.imports.qualify(b.value) or dotted(b.value) or "" for b in node.bases]
        info = ClassInfo(node.name.value, node, bases)
        self.classes[info.name] = info
        if isinstance(node.body, cst.IndentedBlock):
            for statement in node.body.body:
                if isinstance(statement, cst.FunctionDef):
                    self.function_def(statement, None, info)
                elif isinstance(statement, cst.SimpleStatementLine):
                    for small in statement.body:
                        if isinstance(small, (cst.Import, cst.ImportFrom)):
                            self.small(small, statement, None, info, [])

    # -- facts noticed on the way -----------------------------------------------------------------
    def grad_mode(self, node: cst.With) -> bool | None:
        from .knowledge import NO_GRAD, SET_GRAD_ENABLED
        for with_item in node.items:
            expr = with_item.item
            func = expr.func if isinstance(expr, cst.Call) else expr
            qualname = self.imports.qualify(func)
            if qualname in NO_GRAD:
                return False
            if qualname == "torch.enable_grad":
                return True
            if qualname in SET_GRAD_ENABLED and isinstance(expr, cst.Call) and expr.args:
                value = expr.args[0].value
                if isinstance(value, cst.Name) and value.value in ("True", "False"):
                    return value.value == "True"
        return None

    def decorator_grad(self, node: cst.FunctionDef) -> bool | None:
        from .knowledge import NO_GRAD
        for decorator in node.decorators:
            expr = decorator.decorator
            func = expr.func if isinstance(expr, cst.Call) else expr
            if self.imports.qualify(func) in NO_GRAD:
                return False
        return None

    def note_argparse(self, calls: list[CallSite]) -> None:
        """Remember `parser.add_argument('--lr', default=...)` so `args.lr` can be resolved."""
        for site in calls:
            if site.method != "add_argument" or not site.call.args:
                continue
            dest, default, type_name = None, None, None
            flags = []
            for arg in site.call.args:
                if arg.keyword is None and isinstance(arg.value, cst.SimpleString):
                    flags.append(arg.value.evaluated_value)
                elif arg.keyword is not None:
                    if arg.keyword.value == "dest" and isinstance(arg.value, cst.SimpleString):
                        dest = arg.value.evaluated_value
                    elif arg.keyword.value == "default":
                        default = arg.value
                    elif arg.keyword.value == "type":
                        type_name = dotted(arg.value)
            if dest is None:
                long_flags = [f for f in flags if isinstance(f, str) and f.startswith("--")]
                chosen = long_flags[0] if long_flags else (flags[0] if flags else None)
                if not isinstance(chosen, str):
                    continue
                dest = chosen.lstrip("-").replace("-", "_")
            if dest in self.argparse_defaults:
                self.argparse_defaults[dest] = None  # defined twice: ambiguous
            else:
                self.argparse_defaults[dest] = default
            if type_name:
                self.argparse_types[dest] = type_name


def walk_items(structure: Structure):
    """Every IR item of the file (module body and every function body, nested blocks included), each with
    the function it is written in (None: the module)."""
    pending: list[tuple[list[Item], FunctionInfo | None]] = [(structure.body, None)]
    pending.extend((function.body, function) for function in structure.all_functions)
    while pending:
        items, function = pending.pop()
        for item in items:
            yield item, function
            if isinstance(item, Loop):
                pending.append((item.body, function))
                pending.append((item.orelse, function))
            elif isinstance(item, Branch):
                pending.extend((arm, function) for arm in item.arms)
                pending.append((item.always, function))
            elif isinstance(item, With):
                pending.append((item.body, function))


def item_calls(item: Item) -> list[CallSite]:
    """The calls an item makes itself (a statement's, a loop header's, a branch test's, a with's items)."""
    if isinstance(item, Stmt):
        return item.calls
    if isinstance(item, Loop):
        return item.header_calls
    if isinstance(item, Branch):
        return item.test_calls
    if isinstance(item, With):
        return item.item_calls
    return []


def build_structure(module: cst.Module) -> Structure:
    return _Builder(module).build()
