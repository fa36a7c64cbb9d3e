from __future__ import annotations

import ast
import re

from ..analysis import ScriptModel
from ..analysis.events import SET_EPOCH
from ..analysis.loaders import DISTRIBUTED, NONE, LoaderUse, Loaders
from ..analysis.names import dotted, last
from ..fixes import Fix, InsertBefore, statement
from .base import FIX_SAFE, Rule, Violation
from .common import first_statement

_EPOCH_NAME = re.compile(r"(?i)(.*epoch.*|ep|e)")


class SamplerSetEpochMissing(Rule):
    """
    ## What it does
    Checks for a shuffling `DistributedSampler` whose DataLoader trains over several epochs while nothing
    calls `sampler.set_epoch(epoch)` (or `loader.sampler.set_epoch(epoch)`) in the epoch loop.

    Not reported: `DistributedSampler(..., shuffle=False)` (a validation sampler), a loader iterated in one
    pass only, and samplers handed to code the rule cannot see (it may call `set_epoch` there).

    ## Why is this bad?
    A `DistributedSampler` shuffles with a generator seeded by `seed + epoch`, and its epoch stays 0 until
    `set_epoch()` changes it. Without the call every epoch draws exactly the same permutation: each process
    sees the same samples in the same batches, in the same order, epoch after epoch. Nothing fails; the
    model just trains as if `shuffle=False` had been given.

    ## Example
    ```python
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    dataset = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=0)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    dataset = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=0)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Fix safety
    The fix inserts `sampler.set_epoch(epoch)` as the first statement of the epoch loop, when the sampler has
    a name there and the loop's variable counts the epochs (`for epoch in range(...)`); when the sampler may
    be `None` (`DistributedSampler(ds) if distributed else None`) the call is guarded by
    `if sampler is not None:`. It is safe: it is the call PyTorch documents for every epoch, and it changes
    nothing but the permutation each epoch draws.
    """

    code = "TL012"
    name = "sampler-set-epoch-missing"
    summary = "DistributedSampler shuffles the same way every epoch: set_epoch() is never called"
    fix = FIX_SAFE
    # a DistributedSampler, a DataLoader, and a training step (backward / step) in the loop over it
    requires = (("DistributedSampler",), ("DataLoader",), ("backward", "step"))

    def check(self, model: ScriptModel, options):
        loaders = model.loaders
        reported: set[int] = set()
        set_epochs = [loaders.set_epoch_targets(e) for e in model.of_kind(SET_EPOCH) if e.site is not None]
        if any(unknown for _, unknown in set_epochs):
            return  # a set_epoch on something we cannot follow: it may be this sampler's
        reached = set().union(*(targets for targets, _ in set_epochs)) if set_epochs else set()
        for use in loaders.uses:
            samplers = _shuffling_samplers(loaders, use)
            if not samplers or loaders.epoch_loop(use.frame) is None:
                continue
            calls = [call for call, _ in samplers]
            if any(id(c) in reached for c in [use.build.call, *calls]) or any(id(c) in reported for c in calls):
                continue
            if _built_each_epoch(use, calls) or loaders.handed_off({id(use.build.call), *map(id, calls)}):
                continue
            call = calls[0]
            node = call if model.home(call) is None else use.frame.parent.node.iter
            if model.home(node) is not None:
                continue
            reported.update(id(c) for c in calls)
            yield Violation(node, _message(model, use, call), _fix(model, use, samplers))


def _shuffling_samplers(loaders: Loaders, use: LoaderUse) -> list[tuple[ast.Call, object]] | None:
    """The DistributedSampler calls the loader's `sampler=` holds, when it holds only those (or None) and
    they shuffle."""
    build = use.build
    if build.starred or build.given(build.batch_sampler) or not build.given(build.sampler):
        return None
    kinds = loaders.sampler_kinds(build.sampler, build.place)
    if any(kind not in (DISTRIBUTED, NONE) for kind, _, _ in kinds):
        return None
    samplers = [(call, where) for kind, call, where in kinds if kind == DISTRIBUTED]
    if not samplers or any(loaders.sampler_shuffles(call) is not True for call, _ in samplers):
        return None
    return samplers


def _built_each_epoch(use: LoaderUse, calls: list[ast.Call]) -> bool:
    """A loader or sampler built anew in each epoch (its epoch restarts at 0 each time: another story)."""
    frame = use.frame.parent
    while frame is not None:
        for call in [use.build.call, *calls]:
            if _within(frame.node, call):
                return True
        frame = frame.parent
    return False


def _within(outer: ast.AST, inner: ast.AST) -> bool:
    return ((outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset)
            and (inner.end_lineno, inner.end_col_offset) <= (outer.end_lineno, outer.end_col_offset))


def _message(model: ScriptModel, use: LoaderUse, call: ast.Call) -> str:
    epoch = use.frame.parent
    return (f"`{model.code(call.func)}(...)` shuffles the data of the training loop on line "
            f"{model.line(use.frame.node)}, but nothing calls `set_epoch()` on it in the epoch loop on line "
            f"{model.line(epoch.node)}: every epoch draws the same permutation, so each process sees the same "
            f"batches in the same order every epoch")


def _fix(model: ScriptModel, use: LoaderUse, samplers) -> Fix | None:
    """`sampler.set_epoch(epoch)` first in the epoch loop, when the sampler is named where that loop is written."""
    epoch = use.frame.parent
    node = epoch.node
    if not isinstance(node, ast.For) or not isinstance(node.target, ast.Name) or \
            not _EPOCH_NAME.fullmatch(node.target.id) or model.home(node) is not None:
        return None
    iterable = node.iter
    while isinstance(iterable, ast.Call) and last(dotted(iterable.func) or "") in ("tqdm", "enumerate") \
            and iterable.args:
        iterable = iterable.args[0]
    if not (isinstance(iterable, ast.Call) and last(dotted(iterable.func) or "") in ("range", "trange")):
        return None
    build = use.build
    name = dotted(build.sampler)
    if name is None or build.place.function is not epoch.function or build.place.chain != epoch.call_chain:
        return None
    anchor = first_statement(node)
    if anchor is None:
        return None
    kinds = model.loaders.sampler_kinds(build.sampler, build.place)
    call = f"{name}.set_epoch({node.target.id})"
    if any(kind == NONE for kind, _, _ in kinds):
        code = f"if {name} is not None:\n    {call}"
    else:
        code = statement(call)
    return Fix(f"Call `{call}` at the start of each epoch", [InsertBefore(anchor, code)])
