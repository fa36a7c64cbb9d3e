"""Fixes for what reaches a loss (TL009, TL010): take an activation back out of the loss's input, turn a
softmax into a log_softmax, or say `from_logits` the way the model's last layer is.

Where the activation is written decides the fix and its safety:

- in the loss's argument itself (`F.cross_entropy(F.softmax(z, 1), y)`): the activation is dropped (or, for
  NLLLoss, becomes `log_softmax`). Nothing else reads that value: safe.
- in an assignment the loss reads (`probs = F.softmax(logits, 1)` ... `loss(probs, y)`): the loss reads the
  activation's input instead (`loss(logits, y)`), when that name still holds the same value; otherwise, when
  the assignment is `probs = F.softmax(<expr>, 1)` on a line of its own, `<expr>` is first bound to a new name
  the loss reads. `probs` keeps its probabilities for every other use: safe.
- in the model (`nn.Softmax` last layer, `forward` returning `F.softmax(...)`): the model's softmax becomes a
  log_softmax (CrossEntropyLoss of log-probabilities is the same as of logits). Every other use of the model's
  output (a probability threshold, a confidence) changes too: unsafe.
- Keras: the loss's `from_logits` is set to what the last layer outputs. Safe when the loss is built where it
  is used (in `compile(loss=...)`, in the call); unsafe when a loss object bound to a name is used elsewhere too.
"""
from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis import knowledge as K
from ..analysis.losses import LossFeed
from ..analysis.names import dotted, keyword, normalize, positional
from ..fixes import SAFE, UNSAFE, Fix, InsertBefore, Replace, statement

_ATOMIC = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.List, ast.Dict, ast.Tuple)
_NEW_NAMES = ("logits", "scores", "raw_logits", "logits_", "pre_activation")


def activation_input(model: ScriptModel, call: ast.AST) -> ast.expr | None:
    """What an activation call applies to: `z` in `F.softmax(z, dim=1)`, `torch.sigmoid(z)`, `z.softmax(1)`."""
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    qualname = model.imports.qualify(func)
    if qualname in K.ACTIVATION_FUNCTIONS:
        args = positional(call)
        return args[0] if args else keyword(call, "input", "x", "logits")
    if qualname is None and isinstance(func, ast.Attribute) and func.attr in K.ACTIVATION_METHODS:
        return func.value
    return None


def _local(model: ScriptModel, *nodes: ast.AST | None) -> bool:
    return all(node is not None and model.home(node) is None for node in nodes)


def without_activation(model: ScriptModel, feed: LossFeed) -> Fix | None:
    """The loss reads the activation's input instead of its output (safe: nothing else changes)."""
    origin, via = feed.value.origin, feed.value.via
    if feed.value.joined:
        return None
    source = activation_input(model, origin)
    if source is None or not _local(model, origin, source):
        return None
    message = f"Pass `{_short(model, source)}` to the loss instead of its {feed.value.kind}"
    if feed.argument is not None and model.contains(feed.argument, origin):
        text = model.code(source)
        if origin is not feed.argument and not isinstance(source, _ATOMIC):
            text = f"({text})"
        return Fix(message, [Replace(origin, text)])
    if via is None or not _local(model, via):
        return None
    if feed.fresh and dotted(source) is not None:
        return Fix(message, [Replace(via, model.code(source))])
    assignment = feed.value.statement
    if assignment is None or not _same_function(feed, assignment) or isinstance(source, ast.Starred):
        return None
    name = _new_name(model, feed)
    if name is None:
        return None
    return Fix(f"Bind `{_short(model, source)}` to `{name}` and pass `{name}` to the loss",
               [InsertBefore(assignment, statement(f"{name} = {model.code(source)}")), Replace(source, name),
                Replace(via, name)])


def with_log_softmax(model: ScriptModel, feed: LossFeed) -> Fix | None:
    """NLLLoss gets `log_softmax` where it got `softmax` (safe: written in the loss's input, or recomputed from
    names that still hold the same values)."""
    origin, via = feed.value.origin, feed.value.via
    if feed.value.joined:
        return None
    text = log_softmax_text(model, origin)
    if text is None or not _local(model, origin):
        return None
    message = f"Use `{text.split('(', 1)[0]}` for NLLLoss"
    if feed.argument is not None and model.contains(feed.argument, origin):
        return Fix(message, [Replace(origin, text)])
    if via is not None and feed.fresh and _local(model, via):
        return Fix(message, [Replace(via, text)])
    return None


def model_log_softmax(model: ScriptModel, feed: LossFeed) -> Fix | None:
    """The model's own softmax (its last layer, its forward's return) becomes a log_softmax (unsafe: every use
    of the model's output sees log-probabilities)."""
    origin = feed.value.origin
    if feed.value.joined or not _local(model, origin) or not isinstance(origin, ast.Call):
        return None
    qualname = model.imports.qualify(origin.func)
    if qualname in K.ACTIVATION_LAYERS:  # `nn.Softmax(dim=1)` -> `nn.LogSoftmax(dim=1)`
        func = origin.func
        if not isinstance(func, ast.Attribute) or qualname not in K.LOG_SOFTMAX_OF:
            return None
        text = f"{model.code(func.value)}.{K.LOG_SOFTMAX_OF[qualname]}"
        return Fix(f"Make the model's last layer `{text}` (its output becomes log-probabilities)",
                   [Replace(func, text)], UNSAFE)
    text = log_softmax_text(model, origin)
    if text is None:
        return None
    return Fix(f"Return `{text.split('(', 1)[0]}` from the model (its output becomes log-probabilities)",
               [Replace(origin, text)], UNSAFE)


def log_softmax_text(model: ScriptModel, call: ast.AST) -> str | None:
    """`F.softmax(z, dim=1)` -> `F.log_softmax(z, dim=1)`; `z.softmax(1)` -> `z.log_softmax(1)`."""
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
        return None
    func = call.func
    qualname = model.imports.qualify(func)
    if qualname is not None:
        if qualname not in K.LOG_SOFTMAX_OF or qualname in K.ACTIVATION_LAYERS:
            return None
        name = K.LOG_SOFTMAX_OF[qualname]
    elif func.attr == "softmax":
        name = "log_softmax"
    else:
        return None
    text = model.code(call)
    return f"{model.code(func.value)}.{name}{text[len(model.code(func)):]}"


def keras_from_logits(model: ScriptModel, feed: LossFeed, want: bool) -> Fix | None:
    """Say `from_logits=<want>` where the Keras loss is built."""
    loss = feed.loss
    built = loss.built
    if built is None or not _local(model, built):
        return None
    applicability = SAFE if feed.loss_key is None or _uses(model, feed.loss_key) <= 1 else UNSAFE
    value = "True" if want else "False"
    message = f"Build the loss with `from_logits={value}`"
    if isinstance(built, ast.Constant) or isinstance(built, (ast.Name, ast.Attribute)):
        name = string_name(built) if isinstance(built, ast.Constant) else built_name(built)
        klass = K.KERAS_LOSS_NAMES.get(name or "")
        spelled = _loss_class(model, klass) if klass else None
        if spelled is None:
            return None
        return Fix(message, [Replace(built, f"{spelled}(from_logits={value})")], applicability)
    if not isinstance(built, ast.Call):
        return None
    if loss.from_logits is not None:
        return Fix(message, [Replace(loss.from_logits, value)], applicability)
    if keyword(built, "from_logits") is not None or any(k.arg is None for k in built.keywords):
        return None
    return Fix(message, [Replace(built, _with_keyword(model, built, f"from_logits={value}"))], applicability)


def string_name(node: ast.Constant) -> str | None:
    return node.value if isinstance(node.value, str) else None


def built_name(node: ast.expr) -> str | None:
    key = dotted(node)
    return key.rsplit(".", 1)[-1] if key else None


def _loss_class(model: ScriptModel, klass: str) -> str | None:
    """How this file can name `keras.losses.<klass>`: through the class, `keras.losses`, `keras` or `tf`."""
    found = {}
    for local, qualname in model.imports.names.items():
        qualname = normalize(qualname)
        if qualname == f"keras.losses.{klass}":
            found.setdefault(0, local)
        elif qualname == "keras.losses":
            found.setdefault(1, f"{local}.{klass}")
        elif qualname == "keras":
            found.setdefault(2, f"{local}.losses.{klass}")
        elif qualname == "tensorflow":
            found.setdefault(3, f"{local}.keras.losses.{klass}")
    return found[min(found)] if found else None


def _with_keyword(model: ScriptModel, call: ast.Call, text: str) -> str:
    """The call's text with a keyword argument added after its last argument (its layout kept)."""
    code = model.code(call)
    arguments = [*call.args, *call.keywords]
    if arguments:
        end = max((a.end_lineno, a.end_col_offset) for a in arguments)
        cut = model.source.offset(*end) - model.source.start(call)
        return f"{code[:cut]}, {text}{code[cut:]}"
    cut = code.rfind(")")
    return f"{code[:cut]}{text}{code[cut:]}"


def _uses(model: ScriptModel, key: str) -> int:
    """How often the file reads `key` (a name, or `self.x`)."""
    count = 0
    for node in ast.walk(model.module):
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load) and dotted(node) == key:
            count += 1
    return count


def _same_function(feed: LossFeed, node: ast.AST) -> bool:
    scope = feed.function.node if feed.function is not None else None
    return scope is None or (scope.lineno, scope.col_offset) <= (node.lineno, node.col_offset) and (
        node.end_lineno, node.end_col_offset) <= (scope.end_lineno, scope.end_col_offset)


def _new_name(model: ScriptModel, feed: LossFeed) -> str | None:
    """A name nothing in the function (or, at module level, the file) uses."""
    scope = feed.function.node if feed.function is not None and feed.function.node is not None else model.module
    used = {node.id for node in ast.walk(scope) if isinstance(node, ast.Name)}
    used.update(node.arg for node in ast.walk(scope) if isinstance(node, ast.arg))
    return next((name for name in _NEW_NAMES if name not in used), None)


def _short(model: ScriptModel, node: ast.AST, limit: int = 40) -> str:
    text = " ".join(model.code(node).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
