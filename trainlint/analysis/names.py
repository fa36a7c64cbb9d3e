"""Names: dotted keys for expressions, call arguments, and qualified names through the file's imports.

A *key* is the source spelling of a Name/Attribute chain (`optimizer`, `self.opt_g`); the model uses
keys to say "the same object" across statements. A *qualified name* is where an expression comes from
(`torch.optim.Adam`), resolved with one dict built while walking the imports.
"""
from __future__ import annotations

import ast
import re
from typing import NamedTuple

from . import knowledge as K


def dotted(node: ast.AST | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def head(key: str) -> str:
    return key.split(".", 1)[0]


def last(key: str) -> str:
    return key.rsplit(".", 1)[-1]


class Arg(NamedTuple):
    """One argument of a call, in the shape the rules ask about: `keyword` is None for a positional
    argument, `star` is "*" for `*args` and "**" for `**kwargs` (then `keyword` is None too)."""

    value: ast.expr
    keyword: str | None = None
    star: str = ""


def call_args(call: ast.Call) -> list[Arg]:
    """The arguments of a call, positional ones first (in order), then keywords (in order)."""
    out = [Arg(a.value, None, "*") if isinstance(a, ast.Starred) else Arg(a) for a in call.args]
    out.extend(Arg(k.value, None, "**") if k.arg is None else Arg(k.value, k.arg) for k in call.keywords)
    return out


def positional(call: ast.Call) -> list[ast.expr]:
    """The positional arguments before the first `*args` (their position is known)."""
    out = []
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            break
        out.append(arg)
    return out


def keyword(call: ast.Call, *names: str) -> ast.expr | None:
    """The value of the first keyword argument named one of `names`."""
    for kw in call.keywords:
        if kw.arg is not None and kw.arg in names:
            return kw.value
    return None


def argument(call: ast.Call, position: int, keywords: tuple[str, ...] = ()) -> ast.expr | None:
    """An argument given by keyword, else at `position` when no `*args` comes before it."""
    value = keyword(call, *keywords) if keywords else None
    if value is not None:
        return value
    args = positional(call)
    return args[position] if position < len(args) else None


def has_star(call: ast.Call) -> bool:
    return any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords)


def constant(node: ast.AST | None, kind: type | tuple[type, ...]):
    """The value of a constant of the given Python type(s) (bool is not an int here), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, kind):
        if isinstance(node.value, bool) and not (kind is bool or (isinstance(kind, tuple) and bool in kind)):
            return None
        return node.value
    return None


def is_none(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def bool_value(node: ast.AST | None) -> bool | None:
    """True / False for the literals, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def number(node: ast.AST | None) -> float | None:
    """An int or float literal (not a bool) as a float."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


_PREFIX_ALIASES = (
    ("tensorflow.keras.", "keras."),
    ("tensorflow.python.keras.", "keras."),
    ("tf_keras.", "keras."),
    ("keras_core.", "keras."),  # Keras 3 before its release
    ("keras.src.", "keras."),
    ("keras.api.", "keras."),
    ("torch.optim.adam.", "torch.optim."),
    ("torch.optim.adamw.", "torch.optim."),
    ("torch.optim.sgd.", "torch.optim."),
    ("torch.optim.optimizer.", "torch.optim."),
    ("torch.cuda.amp.grad_scaler.", "torch.cuda.amp."),
    ("torch.amp.grad_scaler.", "torch.amp."),
    ("lightning.pytorch.", "pytorch_lightning."),
    ("lightning.LightningModule", "pytorch_lightning.LightningModule"),
    ("accelerate.accelerator.", "accelerate."),
)


def normalize(qualname: str) -> str:
    """One spelling for the many import paths of the same thing."""
    for prefix, replacement in _PREFIX_ALIASES:
        if qualname.startswith(prefix):
            return replacement + qualname[len(prefix):]
    if qualname in ("tensorflow.keras", "keras_core"):
        return "keras"
    return qualname


class ImportMap:
    """Local name -> qualified name, from the file's import statements (any scope, last wins).

    Relative imports (`from .engine import train`) are kept apart, as (level, module, name), for the
    project layer to resolve; `from x import *` is remembered by module."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.relative: dict[str, tuple[int, str, str]] = {}  # local -> (level, module, name)
        self.star: list[tuple[int, str]] = []  # (level, module) of `from module import *`
        self.modules: list[tuple[int, str]] = []  # every imported module, as written: (level, dotted name)

    def add_import(self, node: ast.Import) -> None:
        for alias in node.names:
            full = alias.name
            self.modules.append((0, full))
            if alias.asname is not None:
                self.names[alias.asname] = full
            else:
                top = head(full)
                self.names[top] = top

    def add_import_from(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        self.modules.append((node.level, base))
        if any(alias.name == "*" for alias in node.names):
            self.star.append((node.level, base))
            return
        for alias in node.names:
            local = alias.asname or alias.name
            if node.level:
                self.relative[local] = (node.level, base, alias.name)
                self.names.pop(local, None)
            else:
                self.names[local] = f"{base}.{alias.name}" if base else alias.name
                self.relative.pop(local, None)

    def qualify(self, node: ast.AST | None) -> str | None:
        """The normalized qualified name of a dotted expression whose head is imported, else None."""
        key = dotted(node)
        if key is None:
            return None
        return self.qualify_key(key)

    def qualify_key(self, key: str) -> str | None:
        first, _, rest = key.partition(".")
        origin = self.names.get(first)
        if origin is None:
            return None
        return normalize(f"{origin}.{rest}" if rest else origin)

    def mentions(self, module: str) -> bool:
        return any(q == module or q.startswith(module + ".") for q in self.names.values())


_WORD = re.compile(r"[a-z]+|[A-Z][a-z]*")


def function_words(name: str) -> list[str]:
    """The words of a function's name, lower-cased: `validate_one_epoch`, `predictOnBatch`."""
    return [w.lower() for w in _WORD.findall(name)]


def is_eval_name(name: str) -> bool:
    """`evaluate`, `validate_one_epoch`, `run_test`, `predictOnBatch`; not `train_and_evaluate`, `test_attack`."""
    words = function_words(name)
    return (bool(set(words) & K.EVAL_FUNCTION_WORDS) and not set(words) & K.TRAIN_FUNCTION_WORDS
            and name not in K.FRAMEWORK_EVAL_HOOKS)
