"""Values: resolve hyperparameter expressions to numbers where the file says what they are.

Literals, module constants and single local assignments, simple arithmetic, `float(x)`,
argparse defaults reached through `args.lr`, and dict literals indexed by a literal key
(`config["lr"]`). Anything else is unknown (None): rules stay silent on unknown values.
"""
from __future__ import annotations

import operator

import ast

from .names import dotted, string
from .structure import FunctionInfo, Structure

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
}
_MAX_DEPTH = 8


class Values:
    def __init__(self, structure: Structure) -> None:
        self.structure = structure

    def number(self, expr: ast.expr | None, function: FunctionInfo | None = None,
               _depth: int = 0) -> float | None:
        if expr is None or _depth > _MAX_DEPTH:
            return None
        depth = _depth + 1
        if isinstance(expr, ast.Constant):
            value = expr.value
            if isinstance(value, bool):
                return None
            if isinstance(value, (int, float)):
                try:
                    return float(value)
                except OverflowError:
                    return None
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    return None
            return None
        if isinstance(expr, ast.UnaryOp):
            value = self.number(expr.operand, function, depth)
            if value is None:
                return None
            return -value if isinstance(expr.op, ast.USub) else value if isinstance(expr.op, ast.UAdd) else None
        if isinstance(expr, ast.BinOp):
            op = _BINARY.get(type(expr.op))
            left, right = self.number(expr.left, function, depth), self.number(expr.right, function, depth)
            if op is None or left is None or right is None:
                return None
            try:
                return float(op(left, right))
            except (ArithmeticError, ValueError, OverflowError):
                return None
        if isinstance(expr, ast.Call) and dotted(expr.func) in ("float", "int") and len(expr.args) == 1 \
                and not expr.keywords:
            return self.number(expr.args[0], function, depth)
        if isinstance(expr, ast.Subscript):
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

    def single_assignment(self, key: str, function: FunctionInfo | None) -> ast.expr | None:
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

    def argparse_default_expr(self, key: str, function: FunctionInfo | None) -> ast.expr | None:
        """The `default=` expression of the argparse option `key` (`args.lr`) stands for, if it does."""
        owner, _, attr = key.rpartition(".")
        if attr not in self.structure.argparse_defaults:
            return None
        source = self.single_assignment(owner, function)
        from_parser = (isinstance(source, ast.Call) and isinstance(source.func, ast.Attribute)
                       and source.func.attr in ("parse_args", "parse_known_args"))
        is_param = function is not None and owner in function.params
        if not (from_parser or (source is None and (is_param or owner in ("args", "opt", "opts", "config", "cfg")))):
            return None
        return self.structure.argparse_defaults[attr]

    def literal(self, expr: ast.expr | None, function: FunctionInfo | None = None,
                _depth: int = 0) -> ast.Constant | None:
        """The one literal a value is written as, when it reaches `expr` unchanged (through names,
        `float(...)`, argparse defaults, dict literals): the place to edit to change the value. No arithmetic."""
        if expr is None or _depth > _MAX_DEPTH:
            return None
        depth = _depth + 1
        if isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float, str)) \
                and not isinstance(expr.value, bool):
            return expr
        if isinstance(expr, ast.Call) and dotted(expr.func) in ("float", "int") and len(expr.args) == 1 \
                and not expr.keywords:
            return self.literal(expr.args[0], function, depth)
        if isinstance(expr, ast.Subscript):
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

    def _dict_element(self, expr: ast.Subscript, function: FunctionInfo | None) -> ast.expr | None:
        """`config["lr"]` -> the value written for "lr" in the dict literal `config` is assigned once."""
        index = string(expr.slice)
        if index is None:
            return None
        key = dotted(expr.value)
        source = self.single_assignment(key, function) if key else None
        if isinstance(source, ast.Dict):
            for element_key, value in zip(source.keys, source.values):
                if string(element_key) == index:
                    return value
        return None

    def subscript(self, expr: ast.Subscript, function: FunctionInfo | None, depth: int) -> float | None:
        element = self._dict_element(expr, function)
        return self.number(element, function, depth) if element is not None else None
