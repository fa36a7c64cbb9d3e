"""Builds: calls that construct an optimizer or an LR scheduler, and what each is built over.

An optimizer is built over parameters (`model.parameters()`, `[{"params": net.fc.parameters()}]`, a list
of tensors `[delta]`); a scheduler over an optimizer. Whether that is the same object on every iteration
of a loop (a model built once, before the epoch loop) or a fresh one (a model per fold, a perturbation
per sample) decides whether rebuilding the optimizer in the loop throws its state away (TL014). The event
builder records each build as an event (so a build inside a helper called from a loop is seen in that
loop), with the identities of what it is built over in the caller's names.
"""
from __future__ import annotations

import ast

from . import knowledge as K
from .names import argument, dotted
from .roles import OPTIMIZER, SCHEDULER, constructor_kind

# Attributes that hand out a model's trainable tensors (PyTorch methods, Keras properties).
_PARAMETER_METHODS = frozenset({"parameters", "named_parameters"})
_VARIABLE_ATTRIBUTES = frozenset({"trainable_variables", "trainable_weights", "variables", "weights"})


def built_kind(qualname: str | None) -> str | None:
    """OPTIMIZER or SCHEDULER when a call of `qualname` builds one (Keras schedules and callbacks do not
    count: they hold no state that a rebuild would lose)."""
    if qualname is None:
        return None
    kind = constructor_kind(qualname)
    if kind == SCHEDULER and qualname.startswith("keras."):
        return None
    return kind if kind in (OPTIMIZER, SCHEDULER) else None


def built_over(call: ast.Call, kind: str, qualname: str = "") -> tuple[list[str], bool]:
    """(keys, complete): the keys of what the object is built over, and whether they are all of it.

    Optimizer: the owners of `.parameters()` / `.named_parameters()` (`model` for `model.parameters()`,
    `filter(f, net.parameters())`, param groups), and plain names in a list of tensors (`[delta]`).
    Scheduler: the optimizer argument. A Keras optimizer takes no variables when built: (`[]`, True).
    `complete` is False when some part could not be read (a call we do not know, `get_params(model)`)."""
    if kind == SCHEDULER:
        optimizer = argument(call, 0, ("optimizer",))
        key = dotted(optimizer)
        return ([key], True) if key is not None else ([], False)
    if qualname.startswith("keras."):
        return [], True  # `keras.optimizers.Adam(1e-3)`: the variables come with each apply_gradients()
    params = argument(call, 0, ("params",))
    if params is None:
        return [], False
    keys: list[str] = []
    complete = True
    pending = [params]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _PARAMETER_METHODS:
                owner = dotted(func.value)
                if owner:
                    keys.append(owner)
                else:
                    complete = False
                continue
            name = dotted(func)
            if name in ("filter", "list", "tuple", "chain", "itertools.chain"):
                pending.extend(a.value if isinstance(a, ast.Starred) else a for a in node.args[1 if name == "filter"
                                                                                             else 0:])
                continue
            complete = False
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            pending.extend(e.value if isinstance(e, ast.Starred) else e for e in node.elts)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "params":
                    pending.append(value)
        elif isinstance(node, ast.Attribute) and node.attr in _VARIABLE_ATTRIBUTES and dotted(node.value):
            keys.append(dotted(node.value))
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            pending.extend(g.iter for g in node.generators)
        elif dotted(node) is not None:
            keys.append(dotted(node))
        else:
            complete = False
    return keys, complete


def stateless_optimizer(call: ast.Call, qualname: str) -> bool:
    """Does the optimizer keep no state between steps, so building a new one loses nothing? SGD without
    momentum (the default) is a plain `p -= lr * grad`."""
    position = K.STATELESS_UNLESS.get(qualname)
    if position is None:
        return False
    index, names = position
    value = argument(call, index, names)
    return value is None or (isinstance(value, ast.Constant) and value.value in (0, 0.0))
