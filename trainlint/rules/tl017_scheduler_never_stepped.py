from __future__ import annotations

from ..analysis import ScriptModel
from ..analysis.events import APPLY_GRADIENTS, OPT_STEP
from ..analysis.hyperparams import in_unit_test
from ..analysis.names import dotted, last
from ..analysis.schedulers import IDLE, SchedulerBuild
from ..analysis.structure import item_calls, walk_items
from .base import Rule, Violation
from .common import source_text


class SchedulerNeverStepped(Rule):
    """
    ## What it does
    Checks for learning-rate schedulers that are built and then never stepped: nothing calls
    `scheduler.step()` (or timm's `step_update()`), and the scheduler is not handed to anything that
    could step it. In Keras, a `LearningRateScheduler` or `ReduceLROnPlateau` callback never passed to
    `fit()` (nor put in a list of callbacks), and a `keras.optimizers.schedules` schedule never given to
    an optimizer.

    Not reported: a scheduler stepped anywhere in the file (per batch, per epoch, `ReduceLROnPlateau`
    with its metric, under a condition), passed to a function or a trainer (`Trainer(...,
    lr_scheduler=scheduler)`, `train_one_epoch(..., scheduler)`, `SequentialLR(...)`), returned
    (Lightning's `configure_optimizers`), stored (`self.scheduler = ...`, a list or dict of schedulers),
    or seen by a nested function; a module-level scheduler of a module that does not train (a config
    module whose objects a runner imports).

    ## Why is this bad?
    A PyTorch scheduler only changes the optimizer's learning rate in `step()`. Built and never
    stepped, it leaves the learning rate at its first value for the whole run: no warmup, no decay, no
    plateau reduction, and no error. (Building it already applies the schedule's first value: a warmup
    that starts at 0 then keeps the learning rate at 0.) A Keras schedule or callback that nothing
    holds does nothing at all.

    ## Example
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for epoch in range(3):
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    import torch

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for epoch in range(3):
        for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        scheduler.step()
    ```

    ## Fix safety
    No fix is offered: where the step belongs (after every batch or after every epoch, with which
    metric) depends on the schedule's unit, which only the author knows.
    """

    code = "TL017"
    name = "scheduler-never-stepped"
    summary = "Learning-rate scheduler built but never stepped"
    frameworks = ("pytorch", "keras")
    # every tracked constructor's name: lr_scheduler.*, get_*schedule*, timm.scheduler, keras schedules,
    # LearningRateScheduler, WarmupLinearSchedule, SWALR, Keras ReduceLROnPlateau
    requires = (("schedule", "Schedule", "SWALR", "ReduceLROnPlateau"),)
    sees_helpers = False  # only this file's builds are judged

    def check(self, model: ScriptModel, options):
        trains = None
        for build in model.scheduler_builds:
            if build.fate != IDLE or in_unit_test(build.function):  # tests build objects to inspect them
                continue
            if build.function is None and build.name is not None:
                if trains is None:
                    trains = _trains_here(model)
                if not trains:
                    continue  # a module-level name of a config or fixtures module: read where it is imported
            yield Violation(build.call, _message(model, build))


def _trains_here(model: ScriptModel) -> bool:
    """Does the file run training itself (steps an optimizer, applies gradients, calls `fit()`)? A module that
    does not (a config of objects for a runner, doctest fixtures) defines its globals for others to read."""
    if model.of_kind(OPT_STEP, APPLY_GRADIENTS):
        return True
    return any(site.method == "fit" for item, _ in walk_items(model.structure) for site in item_calls(item))


def _message(model: ScriptModel, build: SchedulerBuild) -> str:
    what = f"`{dotted(build.call.func) or source_text(model, build.call.func)}(...)` (line {model.line(build.call)})"
    name = f"`{build.name}`" if build.name else "it"
    kind = last(build.qualname)
    if build.qualname.startswith("keras.callbacks."):
        return (f"{what} builds a `{kind}` callback that is never passed to `fit()` (nor kept in a list of "
                f"callbacks): the learning rate never changes")
    if build.keras:
        return f"{what} builds a learning-rate schedule that no optimizer is given: the learning rate never changes"
    return (f"{what} builds a learning-rate scheduler that nothing steps: {name} is never stepped nor handed to "
            f"anything that could step it, so the learning rate stays at its first value")
