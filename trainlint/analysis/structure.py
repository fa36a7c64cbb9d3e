"""The one walk over a file: statements become a small IR of blocks, loops, branches and calls.

This is the only place that walks the syntax tree (the standard library's `ast`). It walks statements
and, inside them, only the expression shapes that can hold a call, so it costs a fraction of the parse.
Everything later (roles, events, values) works on this IR and the `ast` nodes it keeps.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Union

from .names import ImportMap, bool_value, dotted, string

_TRY_TYPES = (ast.Try,) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())
TRY_TYPES = _TRY_TYPES
FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
FOR_TYPES = (ast.For, ast.AsyncFor)
# The attribute the project layer sets on every node of another module it loads: that module's Structure.
FOREIGN = "_trainlint_module"
WITH_TYPES = (ast.With, ast.AsyncWith)


@dataclass(eq=False)
class CallSite:
    """One call expression, in evaluation order within its statement."""

    call: ast.Call
    func_key: str | None  # `optimizer.step`, `clip_grad_norm_`
    receiver: str | None  # `optimizer` for `optimizer.step()`
    method: str | None  # `step`


@dataclass(eq=False)
class Stmt:
    """A simple statement: its calls, and what it assigns."""

    node: ast.stmt
    line: ast.stmt | None  # the statement itself when it has its lines to itself; None after `;` or in a one-line suite
    calls: list[CallSite]
    targets: list[tuple[str | None, ast.expr]] = field(default_factory=list)  # (key, value) pairs
    aug: tuple[str | None, ast.operator, ast.expr] | None = None


@dataclass(eq=False)
class Loop:
    node: ast.For | ast.AsyncFor | ast.While
    header_calls: list[CallSite]
    body: list["Item"]
    orelse: list["Item"]
    target_keys: tuple[str, ...] = ()


@dataclass(eq=False)
class Branch:
    node: ast.If | ast.Match | ast.Try
    test_calls: list[CallSite]
    arms: list[list["Item"]]  # body, elif/else arms; a Try's body is an arm like the others
    always: list["Item"] = field(default_factory=list)  # a Try's finally
    function: "FunctionInfo | None" = None  # where it is written (None: the module)


@dataclass(eq=False)
class With:
    node: ast.With | ast.AsyncWith
    item_calls: list[CallSite]
    grad: bool | None  # False under no_grad / inference_mode, True under enable_grad, None otherwise
    body: list["Item"]
    bound: list[tuple[str, ast.expr]] = field(default_factory=list)  # `as` targets


Item = Union[Stmt, Loop, Branch, With]


@dataclass(eq=False)
class FunctionInfo:
    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | None
    params: list[str]
    defaults: dict[str, ast.expr]
    body: list[Item]
    class_name: str | None
    parent: "FunctionInfo | None"
    decorators: list[str | None]
    grad: bool | None = None  # False when decorated with @torch.no_grad()
    nested: dict[str, "FunctionInfo"] = field(default_factory=dict)
    assignments: dict[str, list[ast.expr]] = field(default_factory=dict)
    returns: list[ast.expr] = field(default_factory=list)
    klass: "ClassInfo | None" = None  # the class it is a method of (also for functions nested in a method)
    module: "Structure | None" = None  # the module it is written in (another module's, for a project helper)

    @property
    def qualname(self) -> str:
        prefix = f"{self.parent.qualname}." if self.parent else ""
        owner = f"{self.class_name}." if self.class_name and not self.parent else ""
        return f"{prefix}{owner}{self.name}"


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: ast.ClassDef
    bases: list[str]  # qualified where imported, else the local spelling
    base_keys: list[str | None] = field(default_factory=list)  # the bases as written (`BaseTrainer`, `base.Trainer`)
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    attributes: dict[str, list[ast.expr]] = field(default_factory=dict)  # self.x = ...
    module: "Structure | None" = None


@dataclass
class Structure:
    module: ast.Module
    imports: ImportMap
    body: list[Item]
    functions: dict[str, FunctionInfo]  # module-level functions by name
    classes: dict[str, ClassInfo]
    all_functions: list[FunctionInfo]
    module_assignments: dict[str, list[ast.expr]]
    argparse_defaults: dict[str, ast.expr | None]  # dest -> default (None: no default given)
    argparse_types: dict[str, str]
    path: str = "<string>"
    source: object = None  # its SourceText
    # What the project around the file can say (functions and classes imported from its other modules);
    # analysis.links.Links, which knows nothing, when the file is analysed alone.
    links: object = None
    # (id(value), key) for each name bound by unpacking that value (`a, b = value`): the value as a whole says
    # nothing about what each name holds (`self.optimizer, self.lr_scheduler = optimizers`).
    unpacked: set = field(default_factory=set)


def if_arms(node: ast.If) -> tuple[list[ast.expr], list[list[ast.stmt]]]:
    """The tests and the bodies of an if/elif/else chain: n tests and n + 1 bodies (the last is the else
    body, empty when there is none). `else:` holding a lone `if` is read as `elif`: the same thing."""
    tests, bodies = [], []
    current: ast.stmt = node
    while True:
        tests.append(current.test)
        bodies.append(current.body)
        orelse = current.orelse
        if len(orelse) == 1 and isinstance(orelse[0], ast.If):
            current = orelse[0]
            continue
        bodies.append(orelse)
        return tests, bodies


class _Emit:
    __slots__ = ("site",)

    def __init__(self, site: CallSite) -> None:
        self.site = site


def calls_in(node: ast.AST | None) -> list[CallSite]:
    """The calls in an expression, innermost first, as Python evaluates them. Lambdas and comprehensions
    are not entered. Iterative, so a chain of thousands of operators costs no recursion."""
    out: list[CallSite] = []
    stack: list = [node] if node is not None else []
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is _Emit:
            out.append(node.site)
        elif kind is ast.Call:
            func = node.func
            children: list[ast.AST] = []
            if type(func) is ast.Attribute:
                children.append(func.value)
                receiver, method = dotted(func.value), func.attr
            else:
                receiver, method = None, None
            for arg in node.args:
                children.append(arg.value if type(arg) is ast.Starred else arg)
            for kw in node.keywords:
                children.append(kw.value)
            stack.append(_Emit(CallSite(node, dotted(func), receiver, method)))
            stack.extend(reversed(children))
        elif kind is ast.Attribute or kind is ast.Starred or kind is ast.NamedExpr or kind is ast.Await:
            stack.append(node.value)
        elif kind is ast.UnaryOp:
            stack.append(node.operand)
        elif kind is ast.BinOp:
            stack.append(node.right)
            stack.append(node.left)
        elif kind is ast.BoolOp:
            stack.extend(reversed(node.values))
        elif kind is ast.Compare:
            stack.extend(reversed(node.comparators))
            stack.append(node.left)
        elif kind is ast.Subscript:
            index = node.slice
            elements = index.elts if type(index) is ast.Tuple else [index]
            stack.extend(e for e in reversed(elements) if type(e) is not ast.Slice)
            stack.append(node.value)
        elif kind is ast.Tuple or kind is ast.List or kind is ast.Set:
            stack.extend(reversed(node.elts))
        elif kind is ast.Dict:
            for key, value in zip(reversed(node.keys), reversed(node.values)):
                stack.append(value)
                if key is not None:
                    stack.append(key)
        elif kind is ast.JoinedStr:  # `print(f"val {validate():.3f}")` calls validate()
            stack.extend(part.value for part in reversed(node.values) if type(part) is ast.FormattedValue)
        elif kind is ast.IfExp:
            stack.append(node.orelse)
            stack.append(node.body)
            stack.append(node.test)
    return out


# Methods that return their arguments wrapped (accelerate, fabric, apex, deepspeed).
PASSTHROUGH_METHODS = frozenset({"prepare", "setup", "initialize"})


def _target_pairs(target: ast.expr, value: ast.expr) -> list[tuple[str | None, ast.expr]]:
    """`a, b = x, y` pairs each name with its value; otherwise every target gets the whole value."""
    if isinstance(target, (ast.Tuple, ast.List)):
        elements = [e.value if isinstance(e, ast.Starred) else e for e in target.elts]
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(elements):
            pairs = []
            for t, v in zip(elements, value.elts):
                pairs.extend(_target_pairs(t, v.value if isinstance(v, ast.Starred) else v))
            return pairs
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr in PASSTHROUGH_METHODS and not value.keywords
                and len(value.args) == len(elements) and not any(isinstance(a, ast.Starred) for a in value.args)):
            # `model, optimizer = accelerator.prepare(model, optimizer)` hands back the same objects, wrapped.
            return [(dotted(t), a) for t, a in zip(elements, value.args)]
        return [(dotted(t), value) for t in elements]
    return [(dotted(target), value)]


class _Builder:
    def __init__(self, module: ast.Module, lines: list[str]) -> None:
        self.module = module
        self.lines = lines
        self.imports = ImportMap()
        self.functions: dict[str, FunctionInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.all_functions: list[FunctionInfo] = []
        self.module_assignments: dict[str, list[ast.expr]] = {}
        self.argparse_defaults: dict[str, ast.expr | None] = {}
        self.argparse_types: dict[str, str] = {}
        self.unpacked: set[tuple[int, str]] = set()

    def build(self) -> Structure:
        body = self.block(self.module.body, None, None)
        structure = Structure(self.module, self.imports, body, self.functions, self.classes, self.all_functions,
                              self.module_assignments, self.argparse_defaults, self.argparse_types)
        for function in self.all_functions:
            function.module = structure
        for klass in self.classes.values():
            klass.module = structure
        structure.unpacked = self.unpacked
        return structure

    # -- statements -------------------------------------------------------------------------------
    def block(self, statements: list[ast.stmt], function: FunctionInfo | None, klass: ClassInfo | None) -> list[Item]:
        items: list[Item] = []
        for statement in statements:
            self.statement(statement, function, klass, items)
        return items

    def starts_line(self, node: ast.stmt) -> bool:
        """Is the statement the first thing on its line (not after `;`, not a one-line suite's body)?"""
        line = self.lines[node.lineno - 1] if 0 < node.lineno <= len(self.lines) else ""
        prefix = line[:node.col_offset] if line.isascii() else line.encode("utf-8")[:node.col_offset].decode(
            "utf-8", "replace")
        return not prefix.strip()

    def ends_line(self, node: ast.stmt) -> bool:
        """Does nothing but a comment follow the statement on its last line (no `; other()`)?"""
        row = node.end_lineno or node.lineno
        line = self.lines[row - 1] if 0 < row <= len(self.lines) else ""
        column = node.end_col_offset or 0
        rest = line[column:] if line.isascii() else line.encode("utf-8")[column:].decode("utf-8", "replace")
        rest = rest.strip()
        return not rest or rest.startswith("#")

    def statement(self, node: ast.stmt, function, klass, items: list[Item]) -> None:
        kind = type(node)
        if kind in FUNCTION_TYPES:
            self.function_def(node, function, klass)
        elif kind is ast.ClassDef:
            self.class_def(node, function)
        elif kind in FOR_TYPES:
            header = calls_in(node.iter)
            targets = tuple(k for k, _ in _target_pairs(node.target, node.iter) if k)
            for key in targets:
                self.assign(key, node.iter, function)
            items.append(Loop(node, header, self.block(node.body, function, klass),
                              self.block(node.orelse, function, klass), targets))
        elif kind is ast.While:
            items.append(Loop(node, calls_in(node.test), self.block(node.body, function, klass),
                              self.block(node.orelse, function, klass)))
        elif kind is ast.If:
            tests, bodies = if_arms(node)
            calls = []
            for test in tests:
                calls.extend(calls_in(test))
            items.append(Branch(node, calls, [self.block(body, function, klass) for body in bodies],
                                function=function))
        elif kind in WITH_TYPES:
            item_calls: list[CallSite] = []
            bound = []
            for with_item in node.items:
                item_calls.extend(calls_in(with_item.context_expr))
                if with_item.optional_vars is not None:
                    key = dotted(with_item.optional_vars)
                    if key:
                        bound.append((key, with_item.context_expr))
                        self.assign(key, with_item.context_expr, function)
            items.append(With(node, item_calls, self.grad_mode(node), self.block(node.body, function, klass), bound))
        elif kind in _TRY_TYPES:
            arms = [self.block(node.body, function, klass)]
            arms.extend(self.block(h.body, function, klass) for h in node.handlers)
            if node.orelse:
                arms[0] = arms[0] + self.block(node.orelse, function, klass)
            always = self.block(node.finalbody, function, klass) if node.finalbody else []
            items.append(Branch(node, [], arms, always, function))
        elif kind is getattr(ast, "Match", None):
            arms = [self.block(case.body, function, klass) for case in node.cases]
            items.append(Branch(node, calls_in(node.subject), arms + [[]], function=function))
        else:
            alone = self.starts_line(node) and self.ends_line(node)
            self.small(node, node if alone else None, function, items)

    def small(self, node: ast.stmt, line: ast.stmt | None, function, items: list[Item]) -> None:
        kind = type(node)
        if kind is ast.Expr:
            calls = calls_in(node.value)
            if calls:
                items.append(Stmt(node, line, calls))
                self.note_argparse(calls)
        elif kind is ast.Assign:
            pairs: list[tuple[str | None, ast.expr]] = []
            for target in node.targets:
                pairs.extend(_target_pairs(target, node.value))
                if isinstance(target, (ast.Tuple, ast.List)):
                    self.unpacked.update((id(value), key) for key, value in _target_pairs(target, node.value)
                                         if key and value is node.value)
            for key, value in pairs:
                if key:
                    self.assign(key, value, function)
            calls = calls_in(node.value)
            items.append(Stmt(node, line, calls, pairs))
            self.note_argparse(calls)
        elif kind is ast.AnnAssign:
            key = dotted(node.target)
            if node.value is not None:
                if key:
                    self.assign(key, node.value, function)
                items.append(Stmt(node, line, calls_in(node.value), [(key, node.value)]))
        elif kind is ast.AugAssign:
            key = dotted(node.target)
            items.append(Stmt(node, line, calls_in(node.value), aug=(key, node.op, node.value)))
        elif kind is ast.Return:
            if node.value is not None:
                if function is not None:
                    function.returns.append(node.value)
                calls = calls_in(node.value)
                if calls:
                    items.append(Stmt(node, line, calls))
        elif kind is ast.Import:
            self.imports.add_import(node)
        elif kind is ast.ImportFrom:
            self.imports.add_import_from(node)

    def assign(self, key: str, value: ast.expr, function: FunctionInfo | None) -> None:
        if key.startswith("self.") and function is not None:
            klass = function.klass
            if klass is not None:
                klass.attributes.setdefault(key, []).append(value)
        if function is None:
            self.module_assignments.setdefault(key, []).append(value)
        else:
            function.assignments.setdefault(key, []).append(value)

    # -- definitions ------------------------------------------------------------------------------
    def function_def(self, node, parent: FunctionInfo | None, klass: ClassInfo | None) -> None:
        arguments = node.args
        positional = [*arguments.posonlyargs, *arguments.args]
        params = [a.arg for a in positional] + [a.arg for a in arguments.kwonlyargs]
        defaults: dict[str, ast.expr] = {}
        for param, default in zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults):
            defaults[param.arg] = default
        for param, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
            if default is not None:
                defaults[param.arg] = default
        decorators = [dotted(d.func) if isinstance(d, ast.Call) else dotted(d) for d in node.decorator_list]
        info = FunctionInfo(node.name, node, params, defaults, [], klass.name if klass else
                            (parent.class_name if parent else None), parent, decorators,
                            klass=klass if klass else (parent.klass if parent else None))
        info.grad = self.decorator_grad(node)
        info.body = self.block(node.body, info, klass)
        self.all_functions.append(info)
        if parent is not None:
            parent.nested[info.name] = info
        elif klass is not None:
            klass.methods[info.name] = info
        else:
            self.functions[info.name] = info

    def class_def(self, node: ast.ClassDef, parent: FunctionInfo | None) -> None:
        bases = [self.imports.qualify(b) or dotted(b) or "" for b in node.bases]
        info = ClassInfo(node.name, node, bases, [dotted(b) for b in node.bases])
        self.classes[info.name] = info
        for statement in node.body:
            if isinstance(statement, FUNCTION_TYPES):
                self.function_def(statement, None, info)
            elif isinstance(statement, ast.Import):
                self.imports.add_import(statement)
            elif isinstance(statement, ast.ImportFrom):
                self.imports.add_import_from(statement)

    # -- facts noticed on the way -----------------------------------------------------------------
    def grad_mode(self, node) -> bool | None:
        from .knowledge import NO_GRAD, SET_GRAD_ENABLED
        for with_item in node.items:
            expr = with_item.context_expr
            func = expr.func if isinstance(expr, ast.Call) else expr
            qualname = self.imports.qualify(func)
            if qualname in NO_GRAD:
                return False
            if qualname == "torch.enable_grad":
                return True
            if qualname in SET_GRAD_ENABLED and isinstance(expr, ast.Call) and expr.args:
                value = bool_value(expr.args[0])
                if value is not None:
                    return value
        return None

    def decorator_grad(self, node) -> bool | None:
        from .knowledge import NO_GRAD
        for decorator in node.decorator_list:
            func = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.imports.qualify(func) in NO_GRAD:
                return False
        return None

    def note_argparse(self, calls: list[CallSite]) -> None:
        """Remember `parser.add_argument('--lr', default=...)` so `args.lr` can be resolved."""
        for site in calls:
            call = site.call
            if site.method != "add_argument" or not (call.args or call.keywords):
                continue
            dest, default, type_name = None, None, None
            flags = [string(a) for a in call.args if string(a) is not None]
            for kw in call.keywords:
                if kw.arg == "dest" and string(kw.value) is not None:
                    dest = string(kw.value)
                elif kw.arg == "default":
                    default = kw.value
                elif kw.arg == "type":
                    type_name = dotted(kw.value)
            if dest is None:
                long_flags = [f for f in flags if f.startswith("--")]
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


def build_structure(module: ast.Module, lines: list[str], path: str = "<string>", source=None,
                    links=None) -> Structure:
    structure = _Builder(module, lines).build()
    structure.path, structure.source, structure.links = path, source, links
    return structure
