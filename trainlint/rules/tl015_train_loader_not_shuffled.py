from __future__ import annotations

import ast
import re

from ..analysis import ScriptModel
from ..analysis.events import DATA_FIT, FORWARD, LoopFrame
from ..analysis.loaders import MAP, LoaderBuild, Place, tf_pipeline_order
from ..analysis.names import argument, bool_value, dotted, keyword
from ..analysis.roles import MODEL
from ..analysis.splits import EVAL, split_of_name
from ..fixes import UNSAFE, Fix, Replace
from .base import FIX_UNSAFE, Rule, Violation

# Words of a comment that explains an order kept on purpose.
_ORDER_WORDS = re.compile(r"(?i)order|sequen|tempor|\btime|chrono|curricul|shuffl|sort|consecutive|stateful|"
                          r"deliberate|intention|on purpose|keep")


class TrainLoaderNotShuffled(Rule):
    """
    ## What it does
    Checks for training data drawn in the same order every epoch: a `DataLoader` over a map-style dataset
    (a `TensorDataset`, a torchvision dataset, HF `datasets`, a class with `__getitem__` and `__len__`)
    whose batches reach `backward()` and an optimizer step, built without `shuffle=True`, a `sampler` or a
    `batch_sampler`; a LightningModule's `train_dataloader()` that returns such a loader; Keras
    `model.fit(x, y, shuffle=False)`; and a `tf.data.Dataset.from_tensor_slices(...)` pipeline with no
    `.shuffle()` handed to `model.fit`.

    Not reported: validation and test loaders, loaders with any sampler, `IterableDataset`s and streams (they keep
    their own order), `shuffle=` set from a variable, a single pass over the data (no epoch loop around the
    batches, or an epoch count that can only be 1: `range(1)`, `num_epochs = 1` handed to a helper; `fit` with one
    epoch), full-batch loaders (`batch_size=len(dataset)`), data drawn at random (`torch.randn`, `np.random`,
    `make_classification`, a `RandomDataset`: its order means nothing), a training loop that carries a recurrent
    state from one batch to the next (truncated backpropagation through time needs the order), Keras models with a
    stateful layer, and an explicit `shuffle=False` with a comment about the order on its line (`# keep the time
    order`: kept on purpose).

    ## Why is this bad?
    `DataLoader`'s `shuffle` defaults to `False`: every epoch then sees the batches in the order the
    dataset stores them, and every batch holds the same samples. Data sets are often stored sorted (an
    `ImageFolder` by class, a table by date or label): the model then trains on one class after another
    and forgets the first ones, and even on well-mixed data the fixed batches make SGD's steps correlated
    from epoch to epoch. The loss curve looks normal; the model is just worse.

    ## Example
    ```python
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    features, targets = torch.load("train.pt")
    loader = DataLoader(TensorDataset(features, targets), batch_size=8)
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
    from torch.utils.data import DataLoader, TensorDataset

    features, targets = torch.load("train.pt")
    loader = DataLoader(TensorDataset(features, targets), batch_size=8, shuffle=True)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    ```

    ## Fix safety
    The fix passes `shuffle=True` (in Keras, turns `shuffle=False` into `shuffle=True`). It is unsafe: it
    changes which samples each batch holds and so the results of training, and the rule cannot rule out
    that the order was meant (a curriculum, a sequence split into consecutive batches). A `tf.data`
    pipeline gets no fix: `.shuffle()` needs a buffer size only the author can choose.
    """

    code = "TL015"
    name = "train-loader-not-shuffled"
    summary = "Training data is drawn in the same order every epoch"
    fix = FIX_UNSAFE
    frameworks = ("pytorch", "keras")
    # a DataLoader, Keras fit(shuffle=False), or a tf.data pipeline built with from_tensor_slices
    requires = (("DataLoader", "shuffle", "from_tensor_slices"),)

    def check(self, model: ScriptModel, options):
        loaders = model.loaders
        frames: dict[int, list[LoopFrame]] = {}
        builds: dict[int, LoaderBuild] = {}
        for use in loaders.uses:
            if loaders.epoch_loop(use.frame) is None:
                continue  # one pass over the data: no epoch repeats another's order
            builds.setdefault(id(use.build.call), use.build)
            frames.setdefault(id(use.build.call), []).append(use.frame)
        for key, build in builds.items():
            loops = frames[key]
            if any(_carries_state(model, frame) or _names_eval(frame.node.iter) for frame in loops):
                continue
            if _unshuffled(model, build):
                where = f"the training loop on line {model.line(loops[0].node)}"
                yield Violation(build.call, _message(model, build, where), _fix(model, build))
        for build in _lightning_train_loaders(model):
            if id(build.call) not in builds and _unshuffled(model, build):
                builds[id(build.call)] = build
                yield Violation(build.call, _message(model, build, "Lightning's training loop (on one device)"),
                                _fix(model, build))
        yield from _keras(model)


def _unshuffled(model: ScriptModel, build: LoaderBuild) -> bool:
    """A DataLoader of this file over a map-style training dataset, built with no shuffle and no sampler."""
    if model.home(build.call) is not None or build.shuffled is not False:
        return False
    if build.given(build.sampler) or build.given(build.batch_sampler):
        return False
    if model.loaders.dataset_kind(build.dataset, build.place) != MAP \
            or model.loaders.synthetic(build.dataset, build.place):
        return False  # a stream keeps its own order; the order of random data means nothing
    if model.splits.of(build.dataset, build.place.function) == EVAL or _full_batch(build):
        return False
    return not _explained(model, build.shuffle)


def _full_batch(build: LoaderBuild) -> bool:
    """`batch_size=len(dataset)`, `batch_size=X.shape[0]`: one batch of everything, whose order does not matter."""
    size = argument(build.call, 1, ("batch_size",))
    return (isinstance(size, ast.Call) and dotted(size.func) == "len"
            or isinstance(size, ast.Subscript) and isinstance(size.value, ast.Attribute) and size.value.attr == "shape")


def _explained(model: ScriptModel, value: ast.expr | None) -> bool:
    """An explicit `shuffle=False` with a comment about order on its line or the line above (`# keep the time
    order`, `# sequential on purpose`): kept in order on purpose."""
    if value is None:
        return False
    line = model.source.line(value.end_lineno)
    rest = line[model.source.char_column(value.end_lineno, value.end_col_offset):]
    comments = [rest[rest.index("#"):]] if "#" in rest else []
    above = model.source.line(value.lineno - 1).strip()
    if above.startswith("#"):
        comments.append(above)
    return any(_ORDER_WORDS.search(comment) for comment in comments)


def _names_eval(expr: ast.expr) -> bool:
    """`for x in val_loader`: a loop over held-out data (it may still run backward: test-time adaptation)."""
    return any(split_of_name(dotted(node)) == EVAL for node in ast.walk(expr) if dotted(node) is not None)


def _carries_state(model: ScriptModel, frame: LoopFrame) -> bool:
    """Does the loop hand a value from one batch's forward to the next one's (`out, hidden = model(x, hidden)`):
    a recurrent state over consecutive batches, whose order is the point?"""
    for event in model.events_in(frame, FORWARD):
        if event.stmt is None or event.site is None:
            continue
        produced = {key for key, _ in event.stmt.targets if key}
        call = event.site.call
        given = {dotted(a) for a in [*call.args, *(k.value for k in call.keywords)]}
        if produced & given:
            return True
    return False


def _lightning_train_loaders(model: ScriptModel) -> list[LoaderBuild]:
    """The DataLoaders a LightningModule's / LightningDataModule's `train_dataloader()` returns: Lightning's
    loop trains on them (and shuffles them itself only when it adds a DistributedSampler, on several devices)."""
    found = []
    for klass in model.structure.classes.values():
        method = klass.methods.get("train_dataloader")
        if method is None or not any(base.startswith("pytorch_lightning.") for owner in model.roles.class_chain(klass)
                                     for base in owner.bases):
            continue
        for value in method.returns:
            found.extend(model.loaders.builds_of(value, Place(method)) or ())
    return found


def _message(model: ScriptModel, build: LoaderBuild, where: str) -> str:
    how = "with `shuffle=False`" if build.shuffle is not None else "without `shuffle=True`"
    return (f"`{model.code(build.call.func)}(...)` feeds {where} {how} and no sampler: every epoch draws the "
            f"same batches in the order the dataset stores them (sorted data trains one class or period at a time)")


def _fix(model: ScriptModel, build: LoaderBuild) -> Fix | None:
    message = "Pass `shuffle=True`"
    if build.shuffle is not None:
        return Fix(message, [Replace(build.shuffle, "True")], UNSAFE)
    return _add_keyword(model, build.call, "shuffle=True", message)


def _add_keyword(model: ScriptModel, call: ast.Call, text: str, message: str) -> Fix | None:
    """`f(a, b)` -> `f(a, b, text)`: after the last argument, so a trailing comma and the layout stay."""
    arguments = [*call.args, *call.keywords]
    if not arguments:
        return None
    source = model.source
    last_end = max((a.end_lineno, a.end_col_offset) for a in arguments)
    cut = source.offset(*last_end) - source.start(call)
    code = model.code(call)
    return Fix(message, [Replace(call, f"{code[:cut]}, {text}{code[cut:]}")], UNSAFE)


# -- Keras / TensorFlow ------------------------------------------------------------------------------------
def _keras(model: ScriptModel):
    if not (model.uses("keras") or model.uses("tensorflow") or model.uses("tf_keras")):
        return
    stateful = "stateful=True" in model.source.text  # a stateful RNN needs its batches in order
    seen: set[int] = set()
    for event in model.of_kind(DATA_FIT):
        call = event.site.call if event.site is not None else None
        if call is None or id(call) in seen or event.detail.get("method") != "fit":
            continue
        if event.role is None or event.role.kind != MODEL or model.home(call) is not None:
            continue
        seen.add(id(call))
        epochs = argument(call, 3, ("epochs",))
        place = Place(event.context.function, event.context.call_chain)
        if epochs is None or max(model.loaders.int_values(epochs, place), default=2) <= 1:
            continue  # one epoch (fit's default): no epoch repeats another's order
        x, y = argument(call, 0, ("x",)), argument(call, 1, ("y",))
        shuffle = keyword(call, "shuffle")
        if y is not None and bool_value(shuffle) is False and not stateful and not _explained(model, shuffle):
            if model.splits.of(x, place.function) != EVAL and not model.loaders.synthetic(x, place):
                # arrays (a `y` is given only with arrays); the order of random arrays means nothing
                yield Violation(call, f"`{model.code(call.func)}(..., shuffle=False)` trains on the arrays in the "
                                      f"same order every epoch: every epoch sees the same batches in the order the "
                                      f"data is stored", Fix("Pass `shuffle=True`", [Replace(shuffle, "True")],
                                                             UNSAFE))
        elif y is None and x is not None and not stateful and model.splits.of(x, place.function) != EVAL \
                and tf_pipeline_order(model.loaders, x, place) == "fixed":
            yield Violation(call, f"`{model.code(x)}` is a `tf.data` pipeline with no `.shuffle()`: "
                                  f"`{model.code(call.func)}()` trains on it in the same order every epoch "
                                  f"(fit's `shuffle` does not apply to datasets)")
