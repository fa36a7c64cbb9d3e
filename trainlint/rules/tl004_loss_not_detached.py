from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.autograd import TensorRef, Uses
from ..analysis.events import ACCUMULATE, BACKWARD, Context, Event, LoopFrame
from ..analysis.names import dotted, positional
from ..analysis.structure import Stmt, With
from ..fixes import Fix, Replace
from .base import FIX_SAFE, Rule, Violation


class LossNotDetached(Rule):
    """
    ## What it does
    Checks for a loss tensor that is added to a running total or stored in a list across
    iterations while it still carries its autograd graph: `running_loss += loss`,
    `total = total + loss`, `avg = 0.98 * avg + 0.02 * loss`, `losses.append(loss)`,
    `history["loss"].append(loss)`, where `loss` is the tensor `backward()` runs on in that
    iteration. The total must outlive the iteration: it is set before the loop (or only reset
    under an `if`), or it is an attribute of `self` / a module-level name that a training-step
    function called from elsewhere adds to on every call.

    ## Why is this bad?
    A loss tensor remembers every operation that produced it. `running_loss += loss` makes
    `running_loss` a tensor that depends on *all* the losses so far, so the autograd graph of
    every batch (its nodes, and anything they still reference) stays alive until the total is
    dropped. Memory grows with every iteration until the epoch ends or the process runs out of
    memory, and the printed value is a `tensor(..., grad_fn=...)`. Take the number with
    `loss.item()`, or keep a tensor without the graph with `loss.detach()`.

    Not reported: values under `.item()`, `.detach()`, `float()` or `.data`; anything under
    `torch.no_grad()` / `torch.inference_mode()` / `@torch.no_grad()`; summing loss terms into the
    tensor that `backward()` then runs on (`loss += aux_weight * aux_loss`, multi-task sums,
    `torch.stack(log_probs).sum().backward()`); and a total that is reset in every iteration.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    running_loss = 0.0
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
    print(f"mean loss {running_loss / 3:.4f}")
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    running_loss = 0.0
    for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    print(f"mean loss {running_loss / 3:.4f}")
    ```

    ## Fix safety
    The fix is safe. It writes `loss.item()` when the loss is a scalar (`backward()` runs on it,
    or on arithmetic of it such as `(loss / accum_steps)`) and every use of the total or list in
    the file takes a Python number just as well: printed, formatted, logged, compared, divided,
    summed, `np.mean`. Otherwise, e.g. when the list goes to `torch.stack` or the total to
    `.item()`, a `return` or a function trainlint does not know, it writes `loss.detach()`, which
    keeps the same values, dtype and device and only drops the graph. When the loss reaches the
    total through a helper's parameter (an `AverageMeter.update(loss)` defined in the file), the
    finding is on the call and the fix passes `loss.detach()` there; the helper is left alone.
    """

    code = "TL004"
    name = "loss-not-detached"
    summary = "Loss tensor kept with its autograd graph across iterations"
    fix = FIX_SAFE
    requires = (("backward",),)  # the loss is a tensor backward() ran on

    def check(self, model: ScriptModel, options):
        backwards = model.of_kind(BACKWARD)
        losses = [b for b in backwards if b.detail.get("tensors")]
        if not losses:
            return
        touched = set().union(*(b.detail.get("touches", ()) for b in backwards))
        for acc in model.of_kind(ACCUMULATE):
            refs: list[TensorRef] = acc.detail.get("refs") or []
            if not refs or not acc.context.grad_enabled or acc.subject is None or acc.subject in touched:
                continue  # under no_grad; or the total is (part of) what backward() runs on: a sum of loss terms
            match = _backward_of(acc, refs, losses)
            if match is not None and _reset_every_iteration(match[0], acc):
                continue
            if match is None:
                match = _backward_in_step_function(model, acc, refs, losses)
                if match is None:
                    continue
            frame, backward, hits = match
            target = model.code(acc.detail["target"])
            verb = "stores" if acc.site is not None else "accumulates"
            if _from_parameters(acc, hits):  # `meter.update(loss)` whose `self.sum += val * n` keeps the graph
                yield _through_helper(model, acc, backward, hits, target)
                continue
            uses = _uses(model, acc)
            if uses is not None and uses.feeds_backward(acc.spelled):
                continue  # `torch.stack(losses).sum().backward()` later: the graph is kept on purpose
            form = _fix_form(backward, hits, uses, acc.spelled)
            loss = hits[0].key
            across = "iterations" if frame is not None else f"calls of `{acc.context.function.name}()`"
            yield Violation(
                acc.node,
                f"`{target}` {verb} `{loss}` with its autograd graph across {across} (`backward()` runs on "
                f"`{loss}` at line {model.line(backward.node)}): the graph of every "
                f"{'iteration' if frame is not None else 'call'} stays in memory; use `{loss}.{form}()`",
                _fix(model, hits, form),
            )


def _backward_of(acc: Event, refs: list[TensorRef], losses: list[Event]):
    """(loop, backward, refs): the innermost loop around `acc` in which `backward()` runs on the very tensor
    (same name, same assignment) that `acc` adds or stores."""
    for frame in reversed(acc.context.loops):
        for backward in losses:
            if frame not in backward.context.loops:
                continue
            ran_on = {(t.identity, t.version) for t in backward.detail["tensors"]}
            hits = [r for r in refs if (r.identity, r.version) in ran_on]
            if hits:
                return frame, backward, hits
    return None


def _backward_in_step_function(model: ScriptModel, acc: Event, refs: list[TensorRef], losses: list[Event]):
    """(None, backward, refs) for a training-step function nothing in the file calls (so something calls it
    once per batch), that runs `backward()` and adds the loss to an attribute of `self` or a module-level
    total it never resets: `def train(self, x): ...; loss.backward(); self.running_loss += loss`."""
    function = acc.context.function
    if function is None or acc.context.call_chain:
        return None
    head = acc.spelled.split(".")[0]
    if head != "self" and (head in function.params or head in function.assignments
                           or head not in model.structure.module_assignments):
        return None  # a local (gone after the call) or a parameter (the caller's business)
    if _assigned_on_every_call(function.body, acc.spelled):
        return None  # reset by the step itself
    for backward in losses:
        if backward.context.function is function and not backward.context.call_chain:
            ran_on = {(t.identity, t.version) for t in backward.detail["tensors"]}
            hits = [r for r in refs if (r.identity, r.version) in ran_on]
            if hits:
                return None, backward, hits
    return None


def _assigned_on_every_call(items: list, key: str) -> bool:
    """Is `key` (or the object holding it) assigned by a statement of the function body that always runs
    (not under an `if`, a loop or an `except`)?"""
    for item in items:
        if isinstance(item, Stmt) and any(k is not None and (key == k or key.startswith(k + "."))
                                          for k, value in item.targets if not _grows(k, value)):
            return True
        if isinstance(item, With) and _assigned_on_every_call(item.body, key):
            return True
    return False


def _grows(key: str, value: ast.expr) -> bool:
    return isinstance(value, ast.BinOp) and dotted(value.left) == key


def _reset_every_iteration(frame: LoopFrame, acc: Event) -> bool:
    """Is the total (or the object holding it) reassigned in every iteration that accumulates into it?"""
    subject = acc.subject
    for identity, contexts in frame.assigned.items():
        if subject == identity or subject.startswith(identity + "."):
            if any(_runs_whenever(context, acc.context) for context in contexts):
                return True
    return False


def _runs_whenever(outer: Context, inner: Context) -> bool:
    def prefix(a, b, same):
        return len(a) <= len(b) and all(same(x, y) for x, y in zip(a, b))
    return (prefix(outer.loops, inner.loops, lambda x, y: x is y)
            and prefix(outer.guards, inner.guards, lambda x, y: x[0] is y[0] and x[1] == y[1]))


def _from_parameters(acc: Event, hits: list[TensorRef]) -> bool:
    """Does the loss reach the accumulation as a parameter of the helper that accumulates?"""
    function = acc.context.function
    return function is not None and any(h.key.split(".")[0] in function.params and not h.key.startswith("self")
                                        for h in hits)


def _through_helper(model: ScriptModel, acc: Event, backward: Event, hits: list[TensorRef], target: str) -> Violation:
    """Report at the call, in the loop's own code, that hands the loss to the accumulating helper; fix there
    (`meter.update(loss.detach())`) when the helper is called directly with the loss as an argument."""
    outer, inner = backward.context.call_chain, acc.context.call_chain
    where = f"`{target}` (line {model.line(acc.node)})"
    after = (f"with its autograd graph across iterations (`backward()` runs on it at line "
             f"{model.line(backward.node)}): the graph of every iteration stays in memory")
    if len(inner) <= len(outer) or not all(a is b for a, b in zip(outer, inner)):
        return Violation(acc.node, f"{where} keeps the loss {after}; pass `loss.detach()` or `loss.item()`")
    call = inner[len(outer)]
    called = _short(model.code(call))
    arguments = _bound_arguments(call, acc.context.function) if len(inner) == len(outer) + 1 else {}
    args = [arguments.get(h.key) for h in hits]
    if not args or any(a is None or not _is_name(a) for a in args):
        return Violation(call, f"`{called}` adds the loss to {where} {after}; pass `loss.detach()`")
    loss = model.code(args[0])
    return Violation(call, f"`{called}` adds `{loss}` to {where} {after}; pass `{loss}.detach()`",
                     Fix(f"Pass `{loss}.detach()`", [Replace(a, _method(model, a, "detach")) for a in args]))


def _short(code: str, width: int = 60) -> str:
    code = " ".join(code.split())
    return code if len(code) <= width else code[:width - 3] + "..."


def _bound_arguments(call: ast.Call, function) -> dict[str, ast.expr]:
    params = list(function.params)
    if function.class_name and params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    bound: dict[str, ast.expr] = dict(zip(params, positional(call)))
    for kw in call.keywords:
        if kw.arg is not None:
            bound[kw.arg] = kw.value
    return bound


def _is_name(node: ast.expr) -> bool:
    return isinstance(node, (ast.Name, ast.Attribute)) and dotted(node) is not None


def _method(model: ScriptModel, node: ast.expr, name: str) -> str:
    return f"{model.code(node)}.{name}()"


def _fix_form(backward: Event, hits: list[TensorRef], uses: Uses | None, total: str) -> str:
    """`item` when a Python number does everything the total is used for, `detach` otherwise."""
    scalar = {t.identity for t in backward.detail["tensors"] if t.scalar}
    if not all(h.identity in scalar for h in hits):
        return "detach"  # backward() ran on `loss.mean()`: `loss` may not be a scalar
    return "item" if uses is not None and uses.number_ok(total) else "detach"


def _uses(model: ScriptModel, acc: Event) -> Uses | None:
    scope = _scope(model, acc)
    return model.uses_of(scope) if scope is not None else None


def _scope(model: ScriptModel, acc: Event) -> ast.AST | None:
    """The code in which the total's name means the total: its function, class (`self.x`) or module."""
    function = acc.context.function
    head = acc.spelled.split(".")[0]
    if head == "self" and function is not None and function.class_name in model.structure.classes:
        return model.structure.classes[function.class_name].node
    while function is not None:
        if head in function.params:
            return None  # handed in by the caller: its uses are out of sight
        if head in function.assignments or acc.spelled in function.assignments:
            return function.node
        function = function.parent
    return model.module


def _fix(model: ScriptModel, hits: list[TensorRef], form: str) -> Fix:
    edits = [Replace(h.node, _method(model, h.node, form)) for h in hits]
    names = ", ".join(dict.fromkeys(f"`{h.key}.{form}()`" for h in hits))
    return Fix(f"Use {names}", edits)
