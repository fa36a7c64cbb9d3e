"""Values: resolve hyperparameter expressions to numbers where the file says what they are.

Literals, module constants and single local assignments, simple arithmetic, `float(x)`,
argparse defaults reached through `args.lr`, and dict literals indexed by a literal key
(`config["lr"]`). Anything else is unknown (None): rules stay silent on unknown values.
"""
from __future__ import annotations

import operator

import libcst as cst

from .names import dotted
from .structure import FunctionInfo, Structure

_BINARY = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.Divide: operator.truediv, cst.FloorDivide: operator.floordiv, cst.Power: operator.pow,
}
_MAX_DEPTH = 8


class Values:
    def __init__(self, structure: Structure) -> None:
        self.structure = structure

    def number(self, expr: cst.BaseExpression | None, function: FunctionInfo | None = None,
               _depth: int = 0) -> float | None:
        if expr is None or _depth > _MAX_DEPTH:
            return None
        depth = _depth + 1
        if isinstance(expr, (cst.Integer, cst.Float)):
            return float(expr.evaluated_value)
        if isinstance(expr, cst.UnaryOperation):
            value = self.number(expr.expression, function, depth)
            if value is None:
                return None
            return -value if isinstance(expr.operator, cst.Minus) else value if isinstance(expr.operator, cst.Plus) else None
        if isinstance(expr, cst.BinaryOperation):
            op = _BINARY.get(type(expr.operator))
            left, right = self.number(expr.left, function, depth), self.number(expr.right, function, depth)
            if op is None or left is None or right is None:
                return None
            try:
                return float(op(left, right))
            except (ArithmeticError, ValueError, OverflowError):
                return None
        if isinstance(expr, cst.Call) and dotted(expr.func) in ("float", "int") and len(expr.args) == 1:
            return self.number(expr.args[0].value, function, depth)
        if isinstance(expr, cst.SimpleString):
            try:
                return float(expr.evaluated_value)
            except (TypeError, ValueError):
                return None
        if isinstance(expr, cst.Subscript):
            return self.subscript(expr, function, depth)
        key = dotted(expr)
        if key is None:
            return None
        single = self.single_assignment(key, function)
        if single is not None:
            return self.number(single, function if self.assigned_in(key, function) else None, depth)
        if "." in key:
            return self.argparse_default(key, function, depth)
        return None

    def assigned_in(self, key: str, function: FunctionInfo | None) -> bool:
        return function is not None and key in function.assignments

    def single_assignment(self, key: str, function: FunctionInfo | None) -> cst.BaseExpression | None:
        """The value of a name assigned exactly once in its scope (the function, else the module)."""
        scope = function
        while scope is not None:
            if key in scope.assignments:
                values = scope.assignments[key]
                return values[0] if len(values) == 1 else None
            if key.split(".")[0] in scope.params:
                return None
            scope = scope.parent
        values = self.structure.module_assignments.get(key)
        return values[0] if values and len(values) == 1 else None

    def argparse_default(self, key: str, function: FunctionInfo | None, depth: int) -> float | None:
        """`args.lr` -> the default of `--lr`, when `args` comes from parse_args() or is an `args`/`opt` param."""
        default = self.argparse_default_expr(key, function)
        return None if default is None else self.number(default, None, depth)

    def argparse_default_expr(self, key: str, function: FunctionInfo | None) -> cst.BaseExpression | None:
        """The `default=` expression of the argparse option `key` (`args.lr`) stands for, if it does."""
        owner, _, attr = key.rpartition(".")
        if attr not in self.structure.argparse_defaults:
            return None
        source = self.single_assignment(owner, function)
        from_parser = (isinstance(source, cst.Call) and isinstance(source.func, cst.Attribute)
                       and source.func.attr.value in ("parse_args", "parse_known_args"))
        is_param = function is not None and owner in function.params
        if not (from_parser or (source is None and (is_param or owner in ("args", "opt", "opts", "config", "cfg")))):
            return None
        return self.structure.argparse_defaults[attr]

    def literal(self, expr: cst.BaseExpression | None, function: FunctionInfo | None = None,
                _depth: int = 0) -> cst.Integer | cst.Float | cst.SimpleString | None:
        """The one literal a value is written as, when it reaches `expr` unchanged (through names,
        `float(...)`, argparse defaults, dict literals): the place to edit to change the value. No arithmetic."""
        if expr is None or _depth > _MAX_DEPTH:
            return None
        depth = _depth + 1
        if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString)):
            return expr
        if isinstance(expr, cst.Call) and dotted(expr.func) in ("float", "int") and len(expr.args) == 1:
            return self.literal(expr.args[0].value, function, depth)
        if isinstance(expr, cst.Subscript):
            element = self._dict_element(expr, function)
            return self.literal(element, function, depth) if element is not None else None
        key = dotted(expr)
        if key is None:
            return None
        single = self.single_assignment(key, function)
        if single is not None:
            return self.literal(single, function if self.assigned_in(key, function) else None, depth)
        if "." in key:
            return self.literal(self.argparse_default_expr(key, function), None, depth)
        return None

    def _dict_element(self, expr: cst.Subscript, function: FunctionInfo | None) -> cst.BaseExpression | None:
        """`config["lr"]` -> the value written for "lr" in the dict literal `config` is assigned once."""
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return None
        index = expr.slice[0].slice.value
        if not isinstance(index, cst.SimpleString):
            return None
        key = dotted(expr.value)
        source = self.single_assignment(key, function) if key else None
        if isinstance(source, cst.Dict):
            for element in source.elements:
                if (isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)
                        and element.key.evaluated_value == index.evaluated_value):
                    return element.value
        return None

    def subscript(self, expr: cst.Subscript, function: FunctionInfo | None, depth: int) -> float | None:
        element = self._dict_element(expr, function)
        return self.number(element, function, depth) if element is not None else None
