from __future__ import annotations

import ast

from ..analysis import ScriptModel
from ..analysis.events import FORWARD
from ..analysis.loaders import LOCAL, MAP, NONE, LoaderUse, Loaders
from ..analysis.names import last
from .base import FIX_NONE, Rule, Violation


class DdpWithoutDistributedSampler(Rule):
    """
    ## What it does
    Checks for a model wrapped in `DistributedDataParallel` (or `FullyShardedDataParallel`) that trains on
    batches of a `DataLoader` built without a `DistributedSampler`: no sampler at all, or a sampler of one
    process (`RandomSampler`, `WeightedRandomSampler`, ...).

    Not reported: loaders with a `DistributedSampler` (in any branch), loaders handed to accelerate's
    `prepare()`, Lightning Fabric or another library that shards them, datasets split by rank by hand
    (`Subset(ds, range(rank, n, world_size))`, a dataset class that reads the rank), `IterableDataset`s
    and datasets of unknown kind (they may shard themselves), and samplers the rule cannot see.

    ## Why is this bad?
    Each DDP process runs the script with its own copy of the loader. Without a `DistributedSampler` every
    process draws from the whole dataset, in the same order when the loader does not shuffle (or in an
    order the processes do not coordinate when it does): the processes train on the same samples, the
    all-reduced gradient averages copies of the same batch, and `N` GPUs do the work of one while each
    epoch takes as long as on a single GPU. The run looks healthy; it just gains nothing from the other
    GPUs (and the epoch counts mean `N` times more passes over the data than intended).

    ## Example
    ```python
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset

    dist.init_process_group("gloo")
    dataset = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = DataLoader(dataset, batch_size=8, shuffle=True)
    model = DDP(torch.nn.Linear(4, 1))
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
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    dist.init_process_group("gloo")
    dataset = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    model = DDP(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Fix safety
    There is no fix: the repair adds a `DistributedSampler`, drops `shuffle=True` (the sampler shuffles),
    and calls `sampler.set_epoch(epoch)` every epoch; where the loop and the loader live decides how, and
    the number of steps per epoch changes (each process now sees 1/N of the data).
    """

    code = "TL018"
    name = "ddp-without-distributed-sampler"
    summary = "A DistributedDataParallel model trains on a DataLoader without a DistributedSampler"
    fix = FIX_NONE
    # a data-parallel wrapper, a DataLoader, and a training step in the loop over it
    requires = (("DistributedDataParallel", "FullyShardedDataParallel"), ("DataLoader",), ("backward", "step"))

    def check(self, model: ScriptModel, options):
        loaders = model.loaders
        reported: set[int] = set()
        for use in loaders.uses:
            build = use.build
            if id(build.call) in reported or model.home(build.call) is not None:
                continue
            wrapper = _wrapper(model, use)
            if wrapper is None or not _unsharded(loaders, use):
                continue
            reported.add(id(build.call))
            yield Violation(build.call, _message(model, use, wrapper))


def _wrapper(model: ScriptModel, use: LoaderUse) -> ast.Call | None:
    """The DistributedDataParallel call of a model the loop's forward runs."""
    for event in model.events_in(use.frame, FORWARD):
        wrapper = model.loaders.data_parallel(event)
        if wrapper is not None:
            return wrapper
    return None


def _unsharded(loaders: Loaders, use: LoaderUse) -> bool:
    """Does every process draw from the whole dataset: no sampler (or only samplers of one process) over a
    map-style dataset that is not split by rank, and nothing we cannot see gets the loader?"""
    build = use.build
    if build.starred or build.given(build.batch_sampler):
        return False
    kinds = {kind for kind, _, _ in loaders.sampler_kinds(build.sampler, build.place)}
    if not kinds <= {NONE, LOCAL}:
        return False
    sized = LOCAL in kinds or build.shuffled is True  # both need a map-style dataset
    if not sized and loaders.dataset_kind(build.dataset, build.place) != MAP:
        return False
    if loaders.mentions_rank(build.dataset, build.place):
        return False
    return not loaders.handed_off({id(build.call)})


def _message(model: ScriptModel, use: LoaderUse, wrapper: ast.Call) -> str:
    build = use.build
    sampler = "a sampler of one process" if build.given(build.sampler) else "no sampler"
    return (f"`{model.code(build.call.func)}(...)` has {sampler}, but the training loop on line "
            f"{model.line(use.frame.node)} feeds its batches to a `{last(model.code(wrapper.func))}` model (line "
            f"{model.line(wrapper)}): every process draws from the whole dataset, so the processes train on the "
            f"same samples; use a `DistributedSampler`")
