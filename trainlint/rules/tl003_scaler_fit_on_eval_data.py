from __future__ import annotations

import ast
import builtins

from ..analysis import Event, ScriptModel
from ..analysis import knowledge as K
from ..analysis.events import DATA_FIT, base_key
from ..analysis.names import dotted, last
from ..analysis.roles import DATA_SCALER
from ..analysis.splits import (EVAL, HELPER, ROWS, TRAIN, DataSplits, Keys, Reads, SplitCall, appended,
                               assigned_pairs, exclusive, sources)
from ..fixes import SAFE, UNSAFE, Fix, InsertAfter, Remove, Replace, statement
from .base import FIX_SAFE, Rule, Violation
from .common import contains, enclosing_block, lone_statement, source_text

_BUILTINS = frozenset(dir(builtins))
_FITS = frozenset({"fit", "fit_transform", "partial_fit", "adapt"})  # adapt(): Keras preprocessing layers
# What a Keras preprocessing layer learns in adapt(), for messages.
_LEARNED = {"Normalization": "mean and variance", "TextVectorization": "vocabulary", "StringLookup": "vocabulary",
            "IntegerLookup": "vocabulary", "Discretization": "bin boundaries",
            "FeatureSpace": "statistics and vocabularies"}


class ScalerFitOnEvalData(Rule):
    """
    ## What it does
    Checks for scikit-learn scalers and other fitted transformers (`StandardScaler`, `MinMaxScaler`,
    `RobustScaler`, `QuantileTransformer`, `PCA`, `SimpleImputer`, `TfidfVectorizer`, ...) that are fit on
    validation or test data: `scaler.fit(X_val)`, `scaler.fit_transform(X_test)` after fitting on
    `X_train`, `StandardScaler().fit_transform(val_df[cols])`, and a fit on the whole data set before it
    is split. The splits it knows:
    - `train_test_split` (sklearn's, or a project's own), and other split helpers (`split_data`,
      `train_val_split`, `np.split`) unpacked into names that say training and held out;
    - slices of the fitted data or of data made from it: `train, test = scaled[:n], scaled[n:]`, windows
      of a scaled series appended to `X_train` / `X_test` in loops, `X, y = create_dataset(scaled, w)`
      then `X[:n]` / `X[n:]`;
    - a sample and its complement: `train = df.sample(frac=0.8)` with `df.drop(train.index)` or
      `df[~df.index.isin(train.index)]`;
    - cross-validation folds: `for tr_idx, va_idx in kf.split(X)` with `X[tr_idx]` / `X[va_idx]` (KFold,
      StratifiedKFold, GroupKFold, TimeSeriesSplit, ShuffleSplit, ...), whatever the indices are named.

    In Keras scripts, preprocessing layers adapted on held-out data are reported the same way:
    `Normalization().adapt(x_val)`, `TextVectorization.adapt(test_ds)`, `StringLookup`, `IntegerLookup`
    and `Discretization` (`adapt(x_train)` is correct).

    Which data is held out is read from `train_test_split` targets, fold positions, subscripts such as
    `data["test"]`, `df[df.split == "val"]`, `X[val_idx]` or `X[n_train:]`, complements of a training
    part, and from names (`X_val`, `test_df`, `y_dev`); names that say nothing (`a, b = load()`) are not
    guessed at. Not reported: fitting on training data (or the training rows, `scaler.fit(X[:n_train])`)
    and transforming the rest; scalers inside a `Pipeline` given to `cross_val_score` / `GridSearchCV`;
    per-fold fits (`scaler.fit(X[train_idx])`); a `fit()` / `adapt()` on held-out data that a fit on the
    training split replaces before anything uses it; category encoders fit before a split; a slice that
    is no split (`X[:100]`, `X[:, :3]`); data the script itself trains a model on or splits into folds
    (stacking on holdout predictions); a model's predictions scaled to blend them; train and test
    concatenated after the fit and cut back apart; code under `if False:`.

    ## Why is this bad?
    A fitted scaler learns statistics (mean and scale, min and max, quantiles, components). Fit on the
    validation or test split, it normalizes that split with its *own* statistics instead of the ones the
    model was trained with: the inputs the model sees at evaluation are shifted and rescaled, and the
    held-out data has leaked into preprocessing. A Keras `Normalization` layer adapted on `x_val` is
    part of the model: it normalizes every training batch with the validation mean and variance, and a
    `TextVectorization` adapted on the test texts builds its vocabulary from them. Fit on the full data
    set before the split, the training features carry the test set's statistics. No error is raised;
    the validation or test metrics are simply not what the model would score on new data.

    ## Example
    ```python
    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = torch.randn(100, 4).numpy(), torch.randn(100).numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.fit_transform(X_test)
    model = torch.nn.Linear(4, 1)
    pred = model(torch.tensor(X_test, dtype=torch.float32))
    ```

    A series scaled as a whole, then sliced into training and test rows:
    ```python
    import torch
    from sklearn.preprocessing import MinMaxScaler

    prices = torch.cumsum(torch.rand(500, 1), 0).numpy()
    scaler = MinMaxScaler()
    scaled = scaler.fit_transform(prices)
    n_train = int(len(scaled) * 0.8)
    train, test = scaled[:n_train], scaled[n_train:]
    ```

    ## Use instead
    ```python
    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = torch.randn(100, 4).numpy(), torch.randn(100).numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.transform(X_test)
    model = torch.nn.Linear(4, 1)
    pred = model(torch.tensor(X_test, dtype=torch.float32))
    ```

    Fit on the training rows only:
    ```python
    import torch
    from sklearn.preprocessing import MinMaxScaler

    prices = torch.cumsum(torch.rand(500, 1), 0).numpy()
    n_train = int(len(prices) * 0.8)
    scaler = MinMaxScaler()
    scaled = scaler.fit(prices[:n_train]).transform(prices)
    train, test = scaled[:n_train], scaled[n_train:]
    ```

    ## Fix safety
    When the same scaler was already fit on the training split, the fix keeps that fit:
    `fit_transform(X_test)` becomes `transform(X_test)` and a repeated `fit(X_val)` or `adapt(x_test)` is
    removed. When it was not, the fit moves to the training split that mirrors the held-out one
    (`fit(X_val)` becomes `fit(X_train)`, `fit_transform(X_val)` becomes `fit(X_train).transform(X_val)`,
    `adapt(x_val)` becomes `adapt(x_train)`), if that split is unambiguous: the sibling of a
    `train_test_split` or the only name with the split word swapped, holding data at the same stage of
    preprocessing. These fixes are safe. They are unsafe when the earlier training fit runs only under a
    condition, or when the two splits were reassigned several times. A fit on all the data before
    `train_test_split` is fixed (unsafely) by fitting on the training part after the split and
    transforming the held-out part; the scaled full data set is no longer available afterwards.
    A fit whose result is then sliced is fixed (unsafely: every value the scaler produces changes) by
    fitting on the training slice's rows: `s = sc.fit_transform(X); tr, te = s[:n], s[n:]` becomes
    `s = sc.fit(X[:n]).transform(X)` when `n` is known at the fit; when it is computed later, the fit
    moves after the slices (`tr = sc.fit_transform(tr)`, `te = sc.transform(te)`) if the two slices are
    the only rows taken, in one statement or two in a row, and nothing else reads the scaled data. Folds,
    complements, windows and split helpers get no fix: their training rows are chosen in a loop, at
    random, or inside a helper.
    """

    code = "TL003"
    name = "scaler-fit-on-eval-data"
    summary = "Data scaler fit on validation/test data, or on all data before the split"
    fix = FIX_SAFE
    frameworks = ("pytorch", "keras")
    requires = (("fit", "adapt"), ("sklearn", "Normalization", "TextVectorization", "StringLookup", "IntegerLookup",
                                   "Discretization", "FeatureSpace", "Scaler", "QuantileTransformer",
                                   "PowerTransformer"))  # a fit, and a transformer that learns

    def check(self, model: ScriptModel, options):
        fits = [e for e in model.of_kind(DATA_FIT) if _learns_from_data(e) and e.detail.get("data") is not None
                and not _never_runs(e)]
        if not any(e.detail["method"] in _FITS for e in fits):
            return
        splits = model.splits
        split_of = {id(e): splits.of(e.detail["data"], e.context.function, e.context.loops) for e in fits}
        transforms: dict = {}  # scaler -> statement -> its transform() calls there
        for e in fits:
            if e.detail["method"] == "transform" and e.subject is not None and e.stmt is not None:
                transforms.setdefault(e.subject, {}).setdefault(id(e.stmt), []).append(e)
        for event in fits:
            if event.detail["method"] not in _FITS:
                continue
            if split_of[id(event)] == EVAL:
                if (event.role.qualname.startswith(K.EXPLORATORY_PREFIXES) or
                        splits.is_prediction(event.detail["data"], event.context.function)) and \
                        not _paired(splits, event, fits, split_of):
                    continue  # PCA(2).fit_transform(test_features) for a plot; min-max of test predictions to blend
                if _overwritten(splits, event, fits, split_of):
                    continue  # `norm.adapt(x_val); norm.adapt(x_train)`: the second adapt replaces what the first learned
                yield _fit_on_eval(model, splits, event, _prior_train_fit(event, fits, split_of))
            elif last(event.role.qualname) not in K.CATEGORY_ENCODERS and event.detail["method"] != "adapt":
                found = _split_after(splits, event, transforms)
                if found is not None and not any(
                        e.subject == event.subject and e.index > event.index and e.detail["method"] in _FITS
                        and split_of[id(e)] == TRAIN for e in fits if event.subject is not None):
                    yield _fit_before_split(model, splits, event, *found)


def _learns_from_data(event: Event) -> bool:
    """A scikit-learn transformer whose fit learns statistics of the data (not its shape), or a Keras
    preprocessing layer's adapt() (mean and variance, vocabulary, bin boundaries)."""
    role = event.role
    if role is None or role.kind != DATA_SCALER or not role.qualname:
        return False
    if role.qualname in K.ADAPTABLE_LAYERS:
        return event.detail["method"] == "adapt"
    if not role.qualname.startswith("sklearn.") or event.detail["method"] == "adapt":
        return False
    name = last(role.qualname)
    if name in K.STATELESS_WHEN and role.call is not None:
        keyword, value = K.STATELESS_WHEN[name]
        if any(kw.arg == keyword and isinstance(kw.value, ast.Constant) and kw.value.value == value
               for kw in role.call.keywords):
            return False  # Imputer(axis=1): each row's own mean
    return (name[:1].isupper() or name == "make_column_transformer") and name not in K.STATELESS_TRANSFORMERS \
        and not role.qualname.startswith(K.VISUALIZATION_PREFIXES)


def _never_runs(event: Event) -> bool:
    """Under `if False:` (or the `else` of `if True:`): code switched off by hand, as experiments keep it."""
    for branch, arm in event.context.guards:
        node = branch.node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Constant) and \
                isinstance(node.test.value, (bool, int)) and bool(node.test.value) != (arm == 0):
            return True
    return False


def _overwritten(splits: DataSplits, event: Event, fits: list[Event], split_of: dict) -> bool:
    """Is what this fit learned replaced, before anything uses it, by a fit on the training split? `fit()` and
    `adapt()` start from scratch; the learned state is unused when no statement in between mentions the
    scaler (`norm.adapt(X_test); norm.adapt(X_train)`)."""
    stmt, key = event.stmt, event.spelled
    if event.detail["method"] not in ("fit", "adapt") or stmt is None or key is None \
            or not isinstance(stmt.node, ast.Expr) or stmt.node.value is not event.site.call:
        return False
    later = next((e for e in fits if e.index > event.index and e.subject == event.subject and e.stmt is not None
                  and e.detail["method"] in ("fit", "adapt", "fit_transform") and split_of[id(e)] == TRAIN
                  and e.context.function is event.context.function and e.context.call_chain == event.context.call_chain
                  and e.context.guards == event.context.guards and e.context.loops == event.context.loops), None)
    if later is None:
        return False
    statements = [s for s, _ in splits.statements(event.context.function)]
    if stmt not in statements or later.stmt not in statements:
        return False
    for other in statements[statements.index(stmt) + 1:statements.index(later.stmt)]:
        value = getattr(other.node, "value", None)
        names = Reads(value).closure if isinstance(value, ast.expr) else set()
        if key in names or any(k == key or k.startswith(key + ".") for k, _ in other.targets if k):
            return False
    return True


def _paired(splits: DataSplits, event: Event, fits: list[Event], split_of: dict) -> bool:
    """Is this transformer also fit or applied on training data, or one like it fit on the training split
    that mirrors this held-out data (`pca_tr.fit(X_train)` ... `pca_te.fit(X_test)`)?"""
    key = base_key(event.detail["data"])
    mirrors = splits.counterparts(key, event.context.function) if key else []
    return any(split_of[id(e)] == TRAIN and (
        (e.subject is not None and e.subject == event.subject) or
        (e.detail["method"] in _FITS and e.role.qualname == event.role.qualname
         and base_key(e.detail["data"]) in mirrors)) for e in fits)


def _prior_train_fit(event: Event, fits: list[Event], split_of: dict) -> Event | None:
    if event.subject is None:
        return None
    earlier = [e for e in fits if e.subject == event.subject and e.index < event.index
               and e.detail["method"] in _FITS and split_of[id(e)] == TRAIN]
    return earlier[-1] if earlier else None


# -- messages ---------------------------------------------------------------------------------------
def _code(model: ScriptModel, node: ast.AST) -> str:
    return source_text(model, node, 40)


def _receiver(model: ScriptModel, event: Event) -> str:
    return event.spelled or _code(model, event.site.call.func.value)


def _call_text(model: ScriptModel, event: Event) -> str:
    call = event.site.call
    rest = ", ..." if len(call.args) + len(call.keywords) > 1 else ""
    return f"{_receiver(model, event)}.{event.detail['method']}({_code(model, event.detail['data'])}{rest})"


def _fit_on_eval(model: ScriptModel, splits: DataSplits, event: Event, prior: Event | None) -> Violation:
    data = _code(model, event.detail["data"])
    adapt = event.detail["method"] == "adapt"
    fits, fit = ("adapts", "adapted") if adapt else ("fits", "fit")
    if prior is not None:
        message = (f"`{_call_text(model, event)}` re-{fits} `{_receiver(model, event)}` on held-out data `{data}` "
                   f"after it was {fit} on `{_code(model, prior.detail['data'])}` (line {model.line(prior.node)}): "
                   f"`{data}` is transformed with its own statistics instead of the training data's")
        fix = _keep_training_fit(model, event, prior)
    else:
        learned = _LEARNED.get(last(event.role.qualname), "statistics") if adapt else "statistics"
        message = (f"`{_call_text(model, event)}` {fits} `{_receiver(model, event)}` on held-out data `{data}`: "
                   f"it learns the held-out split's {learned} instead of the training split's (data leakage)")
        fix = _fit_on_counterpart(model, splits, event)
    return Violation(event.site.call, message, fix)


def _fit_before_split(model: ScriptModel, splits: DataSplits, event: Event, split: SplitCall,
                      direct: str | None) -> Violation:
    data = _code(model, event.detail["data"])
    folds = split.kind == ROWS and split.held_out.selector[0] == "key" and \
        splits.is_fold(split.held_out.selector[1], split.function)
    advice = "fit it on each training fold inside the loop" if folds else "fit it on the training part after the split"
    message = (f"`{_call_text(model, event)}` fits `{_receiver(model, event)}` on `{data}` before "
               f"{_split_text(model, split, folds)}: the held-out part's statistics leak into what it learns; {advice}")
    fix = _refit_on_training_rows(model, splits, event, split, direct) if split.kind == ROWS else \
        _refit_after_split(model, splits, event, split, direct)
    return Violation(event.site.call, message, fix)


def _split_text(model: ScriptModel, split: SplitCall, folds: bool) -> str:
    """How a message names the split: "`train_test_split` (line 5) splits it", "it is sliced into training
    rows `scaled[:n]` and held-out rows `scaled[n:]` (line 7)", "the cross-validation folds ... split it"."""
    if split.kind != ROWS:
        name = "train_test_split" if split.kind != HELPER else last(dotted(split.call.func) or "split")
        return f"`{name}` (line {model.line(split.call)}) splits it"
    train, held = (_part_text(model, p) for p in (split.train, split.held_out))
    line = model.line(split.held_out.node)
    if folds:
        return f"the cross-validation folds `{train}` / `{held}` (line {line}) split it"
    sliced = "sliced" if split.held_out.selector[0] == "slice" else "split"
    return f"it is {sliced} into training rows `{train}` and held-out rows `{held}` (line {line})"


def _part_text(model: ScriptModel, part) -> str:
    """`scaled[:n]`, or `X_test.append(scaled[i:i + w])` for rows appended to a list."""
    node = part.stmt.node
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and node.value.args \
            and isinstance(node.value.func, ast.Attribute) and node.value.func.attr in ("append", "extend") \
            and contains(node.value.args[0], part.node):
        return _code(model, node.value)
    return _code(model, part.node)


# -- the fit on all data before train_test_split ------------------------------------------------------
def _split_after(splits: DataSplits, event: Event, transforms: dict) -> tuple[SplitCall, str | None] | None:
    """The first `train_test_split` after the fit, in the same scope, that splits data made from the fitted
    data, when the scaler's statistics reach the split: the split data was scaled by it before the split,
    or a part is transformed by it after. With the key passed to the split when that key holds the fit's
    own result."""
    stmt = event.stmt
    key = base_key(event.detail["data"])
    if stmt is None or key is None or not splits.calls:
        return None
    if splits.selects_rows(event.detail["data"], event.context.function):
        return None  # `scaler.fit(data[:n_train])`: some of the rows, not all of them
    flow = splits.flow(event.context.function)
    start = flow.order.get(id(stmt))
    if start is None or start >= flow.last_split:
        return None
    own_path = splits.path(stmt)
    results = {k for k, v in assigned_pairs(stmt) if contains(v, event.site.call)}
    derived, scaled = Keys({key} | results), Keys(results)
    mine = transforms.get(event.subject, {}) if event.subject is not None else {}
    pending: list[tuple[SplitCall, Keys]] = []  # splits of unscaled data: are the parts scaled later?
    for index in range(start + 1, len(flow.statements)):
        if index > flow.last_split and not pending:
            break
        later, path = flow.statements[index]
        if exclusive(own_path, path):
            continue
        for transform in mine.get(id(later), []):
            data = transform.detail.get("data")
            for call, parts in pending:
                if data is not None and parts.read_by(Reads(data)):
                    return call, None  # `scaler.fit(X); X_tr, X_te = split(X); scaler.transform(X_te)`
        for call, arrays in flow.calls.get(id(later), []):
            if call.kind == ROWS and call.held_out.origin is not None and \
                    not _rows_were_fitted(flow, start, key, derived, call.held_out.origin):
                continue  # `full = concat([train, test]); full[len(train):]`: `test`'s rows, and `test` was not fitted
            if any(derived.read_by(a) for a in arrays):
                if any(scaled.read_by(a) for a in arrays):
                    direct = next((dotted(a) for a in call.arrays if dotted(a) in results), None)
                    return call, direct
                pending.append((call, Keys(t for t in call.targets or [] if t is not None)))
        for target, reads, keeps in flow.assigned[index]:
            if id(later) in mine or scaled.read_by(reads):
                scaled.add(target)
            elif not keeps:
                scaled.discard(target)  # `X = load_other()`: no longer the scaled data
            if derived.read_by(reads):
                derived.add(target)
            elif not keeps:
                derived.discard(target)
    return None


def _rows_were_fitted(flow, start: int, key: str, derived: Keys, origin: list[ast.expr]) -> bool:
    """Were the held-out rows, which came from these arrays, among the fitted ones: made from the fitted data,
    or part of what it was made from?"""
    reads = [Reads(member) for member in origin]
    if any(derived.read_by(r) for r in reads):
        return True
    before = sources(flow, start, {key})
    return any(not r.names.isdisjoint(before) for r in reads)


def _refit_after_split(model: ScriptModel, splits: DataSplits, event: Event, split: SplitCall,
                       direct: str | None) -> Fix | None:
    """`X = s.fit_transform(X); a, b = train_test_split(X)` -> split first, `a = s.fit_transform(a)`,
    `b = s.transform(b)`."""
    stmt, call, scaler = event.stmt, event.site.call, event.spelled
    if direct is None or scaler is None or event.detail["method"] != "fit_transform" \
            or len(call.args) + len(call.keywords) != 1 or split.stmt.line is None \
            or dotted(event.detail["data"]) is None or not isinstance(stmt.node, ast.Assign) \
            or stmt.node.value is not call:
        return None
    parts = split.parts([dotted(a) for a in split.arrays].index(direct))
    if parts is None or None in parts:
        return None
    statements = [s for s, _ in splits.statements(event.context.function)]
    between = statements[statements.index(stmt) + 1:statements.index(split.stmt)]
    if any(e.subject == event.subject and e.stmt in between for e in model.of_kind(DATA_FIT)):
        return None  # the scaler is used before the split: it must stay fitted there
    train, held_out = parts
    if direct == dotted(event.detail["data"]):
        if not _removable(model, stmt):
            return None
        edits = [Remove(stmt.line)]
    else:
        edits = [Replace(call, model.code(event.detail["data"]))]
    edits += [InsertAfter(split.stmt.line, statement(f"{train} = {scaler}.fit_transform({train})")),
              InsertAfter(split.stmt.line, statement(f"{held_out} = {scaler}.transform({held_out})"))]
    return Fix(f"Fit `{scaler}` on `{train}` after the split and transform `{held_out}` with it", edits, UNSAFE)


def _refit_on_training_rows(model: ScriptModel, splits: DataSplits, event: Event, split: SplitCall,
                            direct: str | None) -> Fix | None:
    """A fit on all rows, then slices of its result: fit on the training slice instead.
    `s = sc.fit_transform(X); tr, te = s[:n], s[n:]` -> `s = sc.fit(X[:n]).transform(X)` when `n` is known
    at the fit (every row is still transformed, with the training rows' statistics), else -> `s = X`;
    `tr, te = s[:n], s[n:]`; `tr = sc.fit_transform(tr)`; `te = sc.transform(te)` when nothing else reads `s`."""
    stmt, call, scaler = event.stmt, event.site.call, event.spelled
    train = split.train
    if direct is None or scaler is None or event.detail["method"] != "fit_transform" or train.selector[0] != "slice" \
            or len(call.args) + len(call.keywords) != 1 or not isinstance(stmt.node, ast.Assign) \
            or stmt.node.value is not call or not isinstance(train.node, ast.Subscript):
        return None
    data = event.detail["data"]
    rows = train.selector[1]
    if _known_at_fit(model, splits, event, rows, train.stmt, direct):
        text = model.code(data)
        if not isinstance(data, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
            text = f"({text})"
        return Fix(f"Fit `{scaler}` on the training rows `{text}[{model.code(rows)}]` and transform all rows with it",
                   [Replace(call, f"{model.code(call.func.value)}.fit({text}[{model.code(rows)}]).transform({text})")],
                   UNSAFE)
    if not _slices_alone(model, splits, event, split, direct):
        return None
    return _refit_after_split(model, splits, event, split, direct)


def _known_at_fit(model: ScriptModel, splits: DataSplits, event: Event, rows: ast.Slice, train_stmt,
                  direct: str) -> bool:
    """Can the training slice's bounds be read at the fit: every name they read is assigned before it (or
    a parameter / import), and not again until the slice; the fit's result only in place (`X = s.fit_transform(X)`)."""
    function = event.context.function
    names = set()
    for bound in (rows.lower, rows.upper, rows.step):
        if bound is not None:
            names |= Reads(bound).names
    if direct in names and direct != dotted(event.detail["data"]):
        return False  # `s[:int(len(s) * .8)]` before `s` exists
    fit_line = model.line(event.stmt.node)
    statements = [s for s, _ in splits.statements(function)]
    start, end = statements.index(event.stmt), statements.index(train_stmt)
    for name in names:
        if name == direct or name in _BUILTINS:
            continue
        values = splits.roles.assigned_values(name, function)
        known = splits.roles.is_param(name, function) or name.split(".")[0] in model.imports.names or \
            any(model.line(v) < fit_line for v in values or [])
        if not known:
            return False
    for other in statements[start + 1:end]:
        if any(k in names or any(n.startswith(k + ".") for n in names)
               for k, _ in assigned_pairs(other) + appended(other)):
            return False
    return True


def _slices_alone(model: ScriptModel, splits: DataSplits, event: Event, split: SplitCall, direct: str) -> bool:
    """For the refit after the slices: the training and held-out slices are the only rows taken from the
    fit's result, made in one statement or two in a row, with a row slice that also works on the unscaled
    data; nothing else reads the result afterwards (it will hold unscaled data)."""
    train, held = split.train, split.held_out
    if not (train.plain and held.plain) or train.target is None or held.target is None:
        return False
    if any(isinstance(p.node.slice, ast.Tuple) for p in (train, held)):
        return False  # `s[0:n, :]` on what may be a DataFrame once unscaled
    statements = [s for s, _ in splits.statements(event.context.function)]
    first, second = sorted((statements.index(train.stmt), statements.index(held.stmt)))
    if second - first > 1:
        return False
    own = {id(train.node), id(held.node)}
    for other in statements[statements.index(event.stmt) + 1:]:
        value = getattr(other.node, "value", None)
        if not isinstance(value, ast.expr):
            continue
        for node in ast.walk(value):
            if dotted(node) == direct and not any(id(p) in own for p in _parents(value, node)):
                if not _length_only(value, node):
                    return False
    return True


def _parents(root: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The nodes from `root` down to `target` (excluded)."""
    path: list[ast.AST] = []

    def visit(node: ast.AST) -> bool:
        if node is target:
            return True
        path.append(node)
        for child in ast.iter_child_nodes(node):
            if visit(child):
                return True
        path.pop()
        return False

    visit(root)
    return path


def _length_only(root: ast.expr, node: ast.expr) -> bool:
    """Is `node` read only for its length or shape (`len(s)`, `s.shape[0]`)?"""
    parents = _parents(root, node)
    parent = parents[-1] if parents else None
    if isinstance(parent, ast.Call) and dotted(parent.func) == "len":
        return True
    return isinstance(parent, ast.Attribute) and parent.attr == "shape"


# -- the fit on held-out data ---------------------------------------------------------------------------
def _keep_training_fit(model: ScriptModel, event: Event, prior: Event) -> Fix | None:
    """The scaler already learned the training statistics: transform with them instead of re-fitting."""
    call = event.site.call
    guards = prior.context.guards
    certain = event.context.guards[:len(guards)] == guards  # the training fit ran whenever this does
    applicability = SAFE if certain else UNSAFE
    name = _receiver(model, event)
    if event.detail["method"] == "fit_transform":
        return Fix(f"Use `{name}.transform(...)`: keep the statistics fit on the training data",
                   [Replace(call.func, f"{model.code(call.func.value)}.transform")], applicability)
    stmt = event.stmt
    if stmt is not None and isinstance(stmt.node, ast.Expr) and stmt.node.value is call:
        if not _removable(model, stmt):
            return None
        return Fix(f"Remove the re-fit of `{name}` on held-out data", [Remove(stmt.line)], applicability)
    if dotted(call.func.value) is None or event.detail["method"] == "adapt":  # adapt() returns None
        return None
    return Fix(f"Keep `{name}` fit on the training data", [Replace(call, model.code(call.func.value))], applicability)


def _removable(model: ScriptModel, stmt) -> bool:
    """Can the statement's line go without leaving its block empty?"""
    if not lone_statement(stmt.line):
        return False
    block = enclosing_block(model, stmt.line)
    return block is not None and len(block) > 1


def _fit_on_counterpart(model: ScriptModel, splits: DataSplits, event: Event) -> Fix | None:
    """`fit(X_val)` -> `fit(X_train)` when the training split that mirrors the held-out one is unambiguous."""
    call, function = event.site.call, event.context.function
    swaps: list[tuple[ast.expr, str, str]] = []
    safe = True
    for arg in call.args:
        if isinstance(arg, ast.Starred) or splits.of(arg, function, event.context.loops) != EVAL:
            continue
        key = base_key(arg)
        node = _node_of(arg, key)
        counterparts = splits.counterparts(key, function) if key else []
        if node is None or len(counterparts) != 1:
            return None
        stage = _same_stage(model, splits, event, key, counterparts[0])
        if stage is None:
            return None
        safe = safe and stage
        swaps.append((node, key, counterparts[0]))
    if not swaps:
        return None
    applicability = SAFE if safe else UNSAFE
    names = ", ".join(f"`{c}`" for _, _, c in swaps)
    if event.detail["method"] == "fit_transform":
        if call.keywords or any(isinstance(arg, ast.Starred) for arg in call.args):
            return None
        # `s.fit_transform(X_val, y_val)` -> `s.fit(X_train, y_train).transform(X_val)`
        fit_args = ", ".join(_swapped(model, arg, swaps) for arg in call.args)
        replacement = f"{model.code(call.func.value)}.fit({fit_args}).transform({model.code(call.args[0])})"
        return Fix(f"Fit on {names} and only transform the held-out data", [Replace(call, replacement)],
                   applicability)
    return Fix(f"Fit on {names} instead", [Replace(node, c) for node, _, c in swaps], applicability)


def _swapped(model: ScriptModel, value: ast.expr, swaps) -> str:
    """The code of `value` with each held-out name replaced by its training counterpart."""
    source = model.source
    start = source.start(value)
    text = model.code(value)
    for node, _, counterpart in sorted(swaps, key=lambda swap: source.start(swap[0]), reverse=True):
        if model.contains(value, node):
            lo, hi = source.start(node) - start, source.end(node) - start
            text = text[:lo] + counterpart + text[hi:]
    return text


def _node_of(expr: ast.expr, key: str | None) -> ast.expr | None:
    """The Name/Attribute node spelling `key` at the root of `expr` (`val_df` in `val_df[cols].values`)."""
    while expr is not None and key is not None:
        if dotted(expr) == key:
            return expr
        if isinstance(expr, (ast.Subscript, ast.Attribute)):
            expr = expr.value
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            expr = expr.func.value
        else:
            return None
    return None


def _same_stage(model: ScriptModel, splits: DataSplits, event: Event, key: str, counterpart: str) -> bool | None:
    """Do the held-out key and its training counterpart hold data at the same stage of preprocessing when
    the fit runs? True: provably (unpacked together, or each assigned once); False: plausibly (assigned
    equally often); None: no (one was transformed more often than the other)."""
    function = event.context.function
    line = model.line(event.site.call)
    values = [v for v in splits.roles.assigned_values(key, function) or [] if model.line(v) < line]
    others = [v for v in splits.roles.assigned_values(counterpart, function) or [] if model.line(v) < line]
    if len(values) != len(others):
        return None
    if len(values) <= 1:
        return True
    last_value, last_other = values[-1], others[-1]
    return last_value is last_other and splits.unpacked(key, last_value) is not None or False
