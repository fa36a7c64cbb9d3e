"""Gradient accumulation: the guard that makes a step happen every N micro-batches, and whether the loss
that `backward()` runs on is divided on its way there.

The guard is an `if` on a counter that advances once per micro-batch: `if (i + 1) % accum == 0:`,
`if step % N == N - 1`, `if not (i + 1) % N`, `if (i + 1) % N == 0 or i + 1 == len(loader)`. Its N is the
number of micro-batches whose gradients each step sums.

The loss is *normalised* when its value, traced back through the assignments of its names in the function,
passes through a division or multiplication (every term of a sum: `loss / N`, `loss /= N`, `loss.div_(N)`,
`criterion(...) / N`), a sum reduction (`reduction="sum"`: the sum over the micro-batches is the sum over the
large batch), or a call that is handed N; or cannot be traced (a parameter, a loss handed through a call we
cannot see into). Unknown counts as normalised: the question is asked to stay silent.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .names import dotted, keyword, last, number, string
from .structure import Branch, FunctionInfo, if_arms

_MAX_DEPTH = 6
_SCALING_METHODS = frozenset({"div", "div_", "mul", "mul_", "true_divide", "true_divide_", "divide"})
_KEEPING_METHODS = frozenset({"mean", "float", "double", "half", "to", "cuda", "cpu", "squeeze", "view", "reshape",
                              "contiguous", "clone"})


@dataclass(frozen=True, eq=False)
class AccumulationGuard:
    branch: Branch
    divisor: ast.expr  # N, as written
    counter: str  # the counter's key (`i` in `(i + 1) % N`)


def accumulation_guard(branch: Branch, arm: int) -> AccumulationGuard | None:
    """The guard, when arm `arm` of `branch` runs once every N passes (N not the literal 1)."""
    node = branch.node
    if arm != 0 or not isinstance(node, ast.If):
        return None
    test = if_arms(node)[0][0]
    return _every_n(test, branch)


def _every_n(test: ast.expr, branch: Branch) -> AccumulationGuard | None:
    if isinstance(test, ast.BoolOp):  # `... % N == 0 or is_last_batch`, `... % N == 0 and step > 0`
        for value in test.values:
            found = _every_n(value, branch)
            if found is not None:
                return found
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):  # `not (i + 1) % N`
        return _modulo(test.operand, branch)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = test.left, test.comparators[0]
        for modulo, other in ((left, right), (right, left)):
            guard = _modulo(modulo, branch)
            if guard is not None and _remainder(other, guard.divisor):
                return guard
    return None


def _modulo(expr: ast.expr, branch: Branch) -> AccumulationGuard | None:
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod)):
        return None
    counter = expr.left
    if isinstance(counter, ast.BinOp) and isinstance(counter.op, (ast.Add, ast.Sub)) \
            and number(counter.right) is not None:
        counter = counter.left  # `(i + 1) % N`
    key = dotted(counter)
    divisor = expr.right
    value = number(divisor)
    if key is None or (value is not None and value <= 1) or isinstance(divisor, ast.Constant) and value is None:
        return None
    return AccumulationGuard(branch, divisor, key)


def _remainder(expr: ast.expr, divisor: ast.expr) -> bool:
    """0, or N - 1 (`step % N == N - 1`)."""
    if number(expr) == 0:
        return True
    if number(expr) is not None and number(divisor) is not None:
        return number(expr) == number(divisor) - 1  # `i % 8 == 7`
    return (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and number(expr.right) == 1
            and ast.dump(expr.left) == ast.dump(divisor))


def advances(counter: str, loop_node: ast.AST, target_keys: tuple[str, ...]) -> bool:
    """Does the counter move on every pass: the loop's own index, or `counter += 1` inside the loop?"""
    if counter in target_keys:
        return True
    for node in ast.walk(loop_node):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and dotted(node.target) == counter:
            return True
        if isinstance(node, ast.Assign) and any(dotted(t) == counter for t in node.targets) \
                and isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.Add) \
                and dotted(node.value.left) == counter:
            return True
    return False


def scales_gradients(loop_node: ast.AST) -> bool:
    """Does the loop divide or multiply gradients by hand (`p.grad /= N`, `p.grad.data.mul_(1 / N)`)?"""
    for node in ast.walk(loop_node):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Div, ast.Mult)) \
                and "grad" in ast.unparse(node.target):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SCALING_METHODS:
            receiver = dotted(node.func.value) or ""
            if receiver.endswith((".grad", ".grad.data")) or receiver in ("grad", "g"):
                return True
    return False


class LossTrace:
    """Traces the value a `backward()` runs on back through its function's assignments (see the module)."""

    def __init__(self, roles, function: FunctionInfo | None, scope: ast.AST | None, divisor_key: str | None) -> None:
        self.roles = roles
        self.function = function
        self.scope = scope
        self.divisor_key = divisor_key
        self._scaled_in_place: set[str] | None = None

    def normalised(self, expr: ast.expr | None, depth: int = 0) -> bool:
        if expr is None or depth > _MAX_DEPTH:
            return True
        depth += 1
        if isinstance(expr, ast.BinOp):
            if isinstance(expr.op, (ast.Div, ast.Mult, ast.FloorDiv)):
                return True
            return self.normalised(expr.left, depth) and self.normalised(expr.right, depth)  # every term
        if isinstance(expr, ast.UnaryOp):
            return self.normalised(expr.operand, depth)
        if isinstance(expr, ast.Call):
            return self._call(expr, depth)
        if isinstance(expr, ast.Subscript):
            return self.normalised(expr.value, depth)
        key = dotted(expr)
        if key is not None:
            return self._name(key, depth)
        if isinstance(expr, ast.Attribute):
            return self.normalised(expr.value, depth)
        return not isinstance(expr, ast.Constant)

    def _call(self, call: ast.Call, depth: int) -> bool:
        func = call.func
        if self.divisor_key is not None and any(dotted(a) == self.divisor_key for a in
                                                [*call.args, *(k.value for k in call.keywords)]):
            return True  # the helper is handed N
        if _sum_reduced(call):
            return True
        if isinstance(func, ast.Attribute):
            if func.attr in _SCALING_METHODS or func.attr == "sum":
                return True
            if func.attr in _KEEPING_METHODS:
                return self.normalised(func.value, depth)
        qualname = self.roles.imports_of(self.function).qualify(func)
        if qualname in ("torch.div", "torch.mul", "torch.true_divide", "torch.sum", "tensorflow.reduce_sum"):
            return True
        if qualname in ("torch.mean",) and call.args:
            return self.normalised(call.args[0], depth)
        key = dotted(func)
        if key is None:
            return False
        built = self.roles.assigned_values(key, self.function)
        if built and any(isinstance(v, ast.Call) and _sum_reduced(v) for v in built):
            return True  # `criterion = nn.CrossEntropyLoss(reduction="sum")`
        helper = self._helper(key)
        if helper is not None:
            return not helper.returns or any(self._returned(helper, r, depth) for r in helper.returns)
        # `loss = reduce_loss(loss)`, `self.loss_scaler(loss)`: a loss handed through a call we cannot see into
        return any("loss" in last(dotted(a) or "").lower() for a in [*call.args, *(k.value for k in call.keywords)])

    def _returned(self, helper: FunctionInfo, value: ast.expr, depth: int) -> bool:
        return LossTrace(self.roles, helper, helper.node, self.divisor_key).normalised(value, depth)

    def _helper(self, key: str) -> FunctionInfo | None:
        module = self.roles.module_of(self.function)
        if "." not in key:
            return module.functions.get(key)
        head, _, method = key.rpartition(".")
        if head in ("self", "cls") and self.function is not None and self.function.klass is not None:
            return self.roles.method(self.function.klass, method)
        return None

    def _name(self, key: str, depth: int) -> bool:
        if self.divisor_key is not None and key == self.divisor_key:
            return True
        if key.split(".")[0] in self._in_place():
            return True
        values = self.roles.assigned_values(key, self.function)
        if values is None and "." in key:
            head = key.rsplit(".", 1)[0]
            values = self.roles.assigned_values(head, self.function)
        if not values:
            return True  # a parameter, or set somewhere we cannot see
        return any(self.normalised(v, depth) for v in values)

    def _in_place(self) -> set[str]:
        """Names the scope divides in place: `loss /= N`, `loss *= w`, `loss.div_(N)`."""
        if self._scaled_in_place is None:
            found = set()
            for node in ast.walk(self.scope) if self.scope is not None else ():
                if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Div, ast.Mult, ast.FloorDiv)):
                    key = dotted(node.target)
                    if key:
                        found.add(key.split(".")[0])
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("div_", "mul_"):
                    key = dotted(node.func.value)
                    if key:
                        found.add(key.split(".")[0])
            self._scaled_in_place = found
        return self._scaled_in_place


def _sum_reduced(call: ast.Call) -> bool:
    reduction = string(keyword(call, "reduction"))
    if reduction == "sum":
        return True
    size_average = keyword(call, "size_average")
    return isinstance(size_average, ast.Constant) and size_average.value is False


def loss_expression(event) -> ast.expr | None:
    """What a BACKWARD event runs on: `loss` in `loss.backward()`, `scaler.scale(loss).backward()` and
    `torch.autograd.backward(loss)`; None for `accelerator.backward(loss)` and other owners' backward, which
    may scale the loss themselves (accelerate and DeepSpeed divide it by their accumulation steps)."""
    call = event.site.call if event.site is not None else None
    if call is None:
        return None
    func = call.func
    if event.detail.get("scaler"):
        inner = func.value
        return inner.args[0] if isinstance(inner, ast.Call) and inner.args else None
    if isinstance(func, ast.Attribute) and func.attr == "backward":
        if not call.args:
            return func.value
        if last(dotted(func.value) or "") == "autograd":
            return call.args[0]  # `torch.autograd.backward(loss)`
        return None  # `accelerator.backward(loss)`, `engine.backward(loss)`
    return None
