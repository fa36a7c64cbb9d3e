"""Names: dotted keys for expressions and qualified names through the file's imports.

A *key* is the source spelling of a Name/Attribute chain (`optimizer`, `self.opt_g`); the model uses
keys to say "the same object" across statements. A *qualified name* is where an expression comes from
(`torch.optim.Adam`), resolved with one dict built while walking the imports.
"""
from __future__ import annotations

import libcst as cst


def dotted(node: cst.BaseExpression | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def head(key: str) -> str:
    return key.split(".", 1)[0]


def last(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def module_path(node: cst.BaseExpression | None) -> str:
    """The dotted module of an import statement (`torch.optim`), '' when relative-only."""
    return dotted(node) or ""


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
    """Local name -> qualified name, from the file's import statements (any scope, last wins)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = module_path(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.names[alias.asname.name.value] = full
            else:
                top = head(full)
                self.names[top] = top

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative or isinstance(node.names, cst.ImportStar):
            return
        base = module_path(node.module)
        for alias in node.names:
            name = module_path(alias.name)
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self.names[local] = f"{base}.{name}" if base else name

    def qualify(self, node: cst.BaseExpression | None) -> str | None:
        """The normalized qualified name of a dotted expression whose head is imported, else None."""
        key = dotted(node)
        if key is None:
            return None
        first, _, rest = key.partition(".")
        origin = self.names.get(first)
        if origin is None:
            return None
        return normalize(f"{origin}.{rest}" if rest else origin)

    def mentions(self, module: str) -> bool:
        return any(q == module or q.startswith(module + ".") for q in self.names.values())
