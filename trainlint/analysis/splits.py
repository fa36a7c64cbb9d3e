"""Data splits: which expressions hold training data and which hold held-out (validation / test) data.

Evidence, strongest first:
1. the targets of sklearn's `train_test_split`: in `X_tr, X_te, y_tr, y_te = train_test_split(X, y)`
   each array's odd position is its held-out part and its even position the training part (a held-out
   set split again stays held out: `X_val, X_test = train_test_split(X_rest)`);
2. subscripts into named splits: `data["test"]`, `df[df.split == "val"]`, `X[val_idx]`, `X[n_train:]`
   (the rows selected decide, whatever the indexed data holds: `X_trainval.iloc[val_idx]` is held out),
   and named loads: `MNIST(root, train=False)`, `load("valid")`;
3. flow: an expression made from one split only (`torch.tensor(X_val)`, `val_df[cols].values`,
   `scaler.transform(X_test)`) is that split, one made from both (`np.vstack([X_train, X_val])`) neither;
4. names, as whole tokens split on `_`, digits and case changes: `X_val`, `val_df`, `test_x`, `Xtest`,
   `y_dev` — never `latest`, `contest`, `device`; `train_val` names both and so neither; a bare `val`,
   `valid`, `dev` (a value, a device, a flag) or a `valid_mask` says nothing.
Opaque names (`a, b = load()`) are not guessed at, and evidence that disagrees means "unknown".
Cross-validation folds are positional too: in `for a, b in kf.split(X)` (KFold, StratifiedKFold,
GroupKFold, TimeSeriesSplit, ShuffleSplit, ...) `a` indexes the training rows and `b` the held-out ones;
`df.drop(train.index)` and `df[~df.index.isin(train.index)]` hold the rows `train` does not.

The model also lists the *splits* of a scope (`calls`), every statement in source order with the
`if`/`try` arms it sits in, and what each assignment reads (`flow`), so rules can follow data forward
from a statement: "is what this scaler was fit on split afterwards?" A split is
- a call of sklearn's `train_test_split` (positional: train, held out, train, held out, ...);
- a call of another split helper (`split_data`, a project's own `train_test_split`, `np.split`) unpacked
  into names that say training and held out (`X_tr, X_val = split_data(X)`): the names decide;
- two *row parts* of the same array, one training and one held out: slices (`scaled[:n]` / `scaled[n:]`,
  windows appended to `X_train` / `X_test` in loops), fold rows (`X[tr_idx]` / `X[va_idx]`), a sample and
  its complement (`df.sample(frac=0.8)` / `df.drop(train.index)`), rows picked by a column
  (`df[df.fold != k]` / `df[df.fold == k]`). Which part is which comes from the rows selected
  (`X[n_train:]`, fold positions, the complement of a training part), else from the name the part is
  assigned or appended to. A lone slice (`X[:100]` for a look) or a column selection (`X[:, :3]`) is no split.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ast

from . import knowledge as K
from .events import base_key
from .names import bool_value, dotted, string
from .roles import ACCELERATOR, ARGS, DATA_SCALER, GRAD_SCALER, MODEL, OPTIMIZER, SCHEDULER, Roles
from .structure import FOR_TYPES, TRY_TYPES, Branch, FunctionInfo, Item, Loop, Stmt, Structure, With

TRAIN = "train"
EVAL = "eval"
MIXED = "mixed"  # made from both splits, or the evidence disagrees

_MAX_DEPTH = 12
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Objects whose method results are not "their" data: `scaler.transform(X_val)` is X_val's split.
_NOT_DATA = frozenset({DATA_SCALER, MODEL, OPTIMIZER, SCHEDULER, GRAD_SCALER, ACCELERATOR, ARGS})
_SPLIT_KEYWORDS = frozenset({"split", "subset", "split_name", "mode", "partition", "stage"})
_BOTH = frozenset({TRAIN, EVAL})

Path = tuple[tuple[int, int], ...]  # (id of an if/try/match node, arm index), outermost first


def name_tokens(name: str) -> list[str]:
    """`X_val` -> [x, val]; `valDF` -> [val, df]; `Xtest` -> [test]: x/y glued to a split word is the split."""
    tokens = []
    for token in _TOKEN.findall(name):
        token = token.lower()
        if len(token) > 2 and token[0] in "xy" and _word_split(token[1:]) is not None:
            token = token[1:]
        tokens.append(token)
    return tokens


def _word_split(word: str) -> str | None:
    if word in K.EVAL_SPLIT_WORDS:
        return EVAL
    if word in K.TRAIN_SPLIT_WORDS:
        return TRAIN
    return None


# Alone, these words more often mean something else: a value, a device, a validity flag.
_BARE_AMBIGUOUS = frozenset({"val", "valid", "dev", "tr", "eval"})


def split_of_name(key: str) -> str | None:
    """The split a dotted name says it holds: TRAIN, EVAL, MIXED (names both) or None."""
    found = set()
    for part in key.split("."):
        if part in ("self", "cls"):
            continue
        tokens = name_tokens(part)
        if len(tokens) == 1 and tokens[0] in _BARE_AMBIGUOUS or "valid" in tokens and "mask" in tokens:
            continue  # `val = row[1]`, `x.to(dev)`, `X[valid_mask]` (rows without NaN)
        for token in tokens:
            split = _word_split(token)
            if split:
                found.add(split)
    if len(found) > 1:
        return MIXED
    return found.pop() if found else None


def combine(splits) -> str | None:
    known = {s for s in splits if s is not None}
    if MIXED in known or known == _BOTH:
        return MIXED
    return known.pop() if known else None


def _literal_split(node: ast.expr) -> str | None:
    """`"val"`, `"test"` (the whole string), or a file path whose stem names a split (`"data/test.csv"`)."""
    value = string(node)
    if value is None:
        return None
    split = _word_split(value.lower())
    if split is not None:
        return split
    if "/" in value or re.search(r"\.[A-Za-z0-9]{2,5}$", value):
        stem = re.split(r"[\\/]", value)[-1].rsplit(".", 1)[0]
        return (_word_split(stem.lower()) or split_of_name(stem)) if stem else None  # "valid.csv"
    return None


# Kinds of split (SplitCall.kind).
SKLEARN = "train_test_split"  # sklearn's: the targets' positions say which part is which
HELPER = "helper"  # another split function, unpacked into names that say which part is which
ROWS = "rows"  # two row parts of one array: a training one and a held-out one


@dataclass(eq=False)
class RowPart:
    """Some of the rows of an array: `scaled[:n]`, `X[va_idx]`, `df.sample(frac=0.8)`, `df.drop(tr.index)`."""

    stmt: Stmt
    path: Path
    function: FunctionInfo | None
    key: str  # the array the rows come from
    base: ast.expr  # its node
    node: ast.expr  # the expression selecting the rows
    selector: tuple  # how the rows are chosen: ("slice", node), ("key", key), ("compare", node), ...
    target: str | None  # the key the rows are assigned or appended to (None: used in place)
    plain: bool  # assigned as they are: `target = base[rows]` or `target = base[rows, cols]`
    split: str | None = None  # TRAIN or EVAL (resolved once the scope is scanned)
    # Where the rows came from, when the array is a concatenation cut at its first member's length:
    # `full = pd.concat([train, test]); full[:len(train)]` holds `train`'s rows, `full[len(train):]` `test`'s.
    origin: list[ast.expr] | None = None


@dataclass(eq=False)
class SplitCall:
    """One split of data into a training and a held-out part (see the module docstring for the kinds)."""

    call: ast.Call | None  # the splitting call (None for two row parts)
    stmt: Stmt  # where the split is complete (for row parts: the later one's statement)
    function: FunctionInfo | None
    path: Path
    arrays: list[ast.expr]  # what is split: the positional arrays (empty when passed with *), the row parts' array
    targets: list[str | None] | None  # the unpacked target keys; for row parts (training, held-out)
    kind: str = SKLEARN
    train: RowPart | None = None  # ROWS: the training part
    held_out: RowPart | None = None  # ROWS: the held-out part

    def parts(self, index: int) -> tuple[str | None, str | None] | None:
        """(training key, held-out key) for the array at `index`, when the split is assigned to names
        whose positions say which part is which: sklearn's targets, or two plainly assigned row parts."""
        if self.kind == ROWS:
            if index == 0 and self.train.plain and self.held_out.plain:
                return self.train.target, self.held_out.target
            return None
        if self.kind != SKLEARN or self.targets is None or len(self.targets) != 2 * len(self.arrays) \
                or index >= len(self.arrays):
            return None
        return self.targets[2 * index], self.targets[2 * index + 1]


class DataSplits:
    """The data-split fact of one file (ScriptModel.splits)."""

    def __init__(self, structure: Structure, roles: Roles) -> None:
        self.structure = structure
        self.roles = roles
        self.imports = structure.imports
        self.calls: list[SplitCall] = []
        # (id(value), key) -> (position, all target keys) for `a, b = value`
        self._unpacked: dict[tuple[int, str], tuple[int, list[str | None]]] = {}
        self._statements: dict[int, list[tuple[Stmt, Path]]] = {}
        self._paths: dict[int, Path] = {}
        self._cache: dict[tuple[str, int], str | None] = {}
        self._flows: dict[int, ScopeFlow] = {}
        # id(function) -> names bound by nested unpacking: `(x_train, y_train), (x_test, y_test) = load_data()`
        self._nested: dict[int, set[str]] = {}
        # (id(function), key) -> TRAIN / EVAL for the row indices a cross-validation splitter yields
        self._folds: dict[tuple[int, str], str] = {}
        self._parts: list[RowPart] = []
        # key -> (scope, key, receiver) for `receiver.fit(key, y, ...)`: an estimator trained on the data
        self._trained: dict[str, list[tuple[FunctionInfo | None, str, str]]] = {}
        self._pools: dict[int, set[str]] | None = None  # id(function) -> keys of the data split there
        self._scan(structure.body, None)
        for function in structure.all_functions:
            self._scan(function.body, function)
        self._pair_parts()
        self._pools = {}
        for call in self.calls:
            keys = [call.train.key, call.held_out.key] if call.kind == ROWS else [dotted(a) for a in call.arrays]
            self._pools.setdefault(id(call.function), set()).update(k for k in keys if k is not None)
        self._cache.clear()  # answers given while the splits were being found did not know them all

    # -- public questions -------------------------------------------------------------------------
    def of(self, expr: ast.expr | None, function: FunctionInfo | None, loops=()) -> str | None:
        """TRAIN, EVAL, MIXED or None (unknown) for the data an expression holds. `loops` are the loops
        (LoopFrames) around the expression: their targets hold what the loop iterates over there, even
        when the name is reused (`for xb in train_loader: ...` then `for xb in val_loader: ...`)."""
        bound = {}
        for frame in loops:
            node = frame.node
            if frame.function is function and isinstance(node, FOR_TYPES) and isinstance(node.target, ast.Name):
                bound[node.target.id] = node.iter
        return self._expr(expr, function, 0, bound)

    def of_key(self, key: str | None, function: FunctionInfo | None, _depth: int = 0) -> str | None:
        if key is None or _depth > _MAX_DEPTH:
            return None
        cache_key = (key, id(function))
        if cache_key in self._cache:
            return self._cache[cache_key]
        self._cache[cache_key] = None  # a cycle (`X = f(X)`) says nothing
        result = self._key(key, function, _depth)
        self._cache[cache_key] = result
        return result

    def flow(self, function: FunctionInfo | None) -> "ScopeFlow":
        """The data flow of a scope's statements (built on first use, once per scope)."""
        found = self._flows.get(id(function))
        if found is None:
            found = self._flows[id(function)] = ScopeFlow(self, function)
        return found

    def statements(self, function: FunctionInfo | None) -> list[tuple[Stmt, Path]]:
        """Every simple statement written directly in a scope, in source order, with its if/try arms."""
        return self._statements.get(id(function), [])

    def path(self, stmt: Stmt | None) -> Path:
        return self._paths.get(id(stmt), ()) if stmt is not None else ()

    def is_prediction(self, expr: ast.expr | None, function: FunctionInfo | None) -> bool:
        """Does the expression hold a model's outputs: a name like `pred2` / `test_probs` / `oof`, or the
        result of `model.predict(...)` / `predict_proba(...)`?"""
        if _predicts(expr):
            return True
        key = _base(expr)
        if key is None:
            return False
        if not K.PREDICTION_WORDS.isdisjoint(name_tokens(last_part(key))):
            return True
        values = self.roles.assigned_values(key, function) or []
        return bool(values) and all(_predicts(v) for v in values)

    def selects_rows(self, expr: ast.expr | None, function: FunctionInfo | None) -> bool:
        """Does the expression take some of an array's rows (`X[:n]`, `X[tr_idx]`, `df.sample(frac=.8)`,
        `df[df.year < 2020]`), rather than all of them (`X`, `df[cols]`, `X[:, :3]`)?"""
        found = _row_core(expr) if expr is not None else None  # through `[cols]`, `.values`, `np.array(...)`
        if found is None:
            return False
        selector = found[1][1]
        return selector[0] != "key" or self._index_key(selector[1], function)

    def unpacked(self, key: str, value: ast.expr) -> tuple[int, list[str | None]] | None:
        """(position, target keys) when `key` got `value` by tuple unpacking: `a, b = value`."""
        return self._unpacked.get((id(value), key))

    def counterparts(self, key: str, function: FunctionInfo | None) -> list[str]:
        """Training-split keys that mirror the held-out key: the sibling target of a `train_test_split`
        (`X_train` for `X_test`), else the same name with the split word swapped (`train_df` for `val_df`)."""
        for value in self.roles.assigned_values(key, function) or []:
            found = self.unpacked(key, value)
            if found is None or self._split_call(value) is None:
                continue
            position, targets = found
            if position % 2 == 1 and targets[position - 1] and \
                    self.of_key(targets[position - 1], function) == TRAIN:
                return [targets[position - 1]]
        found = []
        for candidate in _swapped_names(key):
            if candidate != key and candidate not in found and self._known(candidate, function) \
                    and self.of_key(candidate, function) == TRAIN:
                found.append(candidate)
        return found

    # -- evidence ---------------------------------------------------------------------------------
    def _known(self, key: str, function: FunctionInfo | None) -> bool:
        return (self.roles.assigned_values(key, function) is not None or self.roles.is_param(key, function)
                or key in self._nested.get(id(function), ()) or key in self._nested.get(id(None), ())
                or key in self.imports.names or key in self.imports.relative)  # `from data import X_train`

    def _split_call(self, value: ast.expr) -> SplitCall | None:
        if isinstance(value, ast.Call) and self.imports.qualify(value.func) in K.TRAIN_TEST_SPLIT:
            for call in self.calls:
                if call.call is value and call.kind == SKLEARN:
                    return call
        return None

    def _key(self, key: str, function: FunctionInfo | None, depth: int) -> str | None:
        fold = self._folds.get((id(function), key))
        if fold is not None:
            return fold  # `for tr, va in kf.split(X)`: the position decides, whatever the name
        results = []
        by_position = False
        for value in self.roles.assigned_values(key, function) or []:
            unpacked = self.unpacked(key, value)
            if unpacked is None:
                results.append(self._expr(value, function, depth + 1))
                continue
            split = self._split_call(value)
            if split is None:
                continue  # `a, b = load()`: the call's value says nothing about each name
            by_position = True
            position, targets = unpacked
            if position % 2 == 1:
                results.append(EVAL)
            else:
                index = position // 2
                source = split.arrays[index] if index < len(split.arrays) and \
                    len(targets) == 2 * len(split.arrays) else None
                results.append(EVAL if self._expr(source, function, depth + 1) == EVAL else TRAIN)
        from_values = combine(results)
        from_name = split_of_name(key)
        if from_values is None and from_name is None and "." in key and not results:
            owner = key.rsplit(".", 1)[0]  # `df.values` holds what `df` holds
            if owner not in ("self", "cls"):
                return self.of_key(owner, function, depth + 1)
        if from_values in _BOTH and from_name in _BOTH and from_values != from_name:
            return MIXED
        if from_values == EVAL and from_name is None and not by_position and self._used_for_training(key, function):
            return None  # made from a holdout set, but this script trains on it: a second stage's training data
        return from_values or from_name

    def _used_for_training(self, key: str, function: FunctionInfo | None) -> bool:
        """Does this scope train on the data (`clf.fit(x, y)`), or split it into training and held-out
        parts itself (`for tr, va in kf.split(x): x[tr] ...`)? Stacking trains a second model on the first
        models' holdout predictions: there the holdout set is the training data."""
        if self._pools is not None and key in self._pools.get(id(function), ()):
            return True
        for scope, data, receiver in self._trained.get(key, ()):
            if scope is function:
                role = self.roles.of(receiver, function)
                if role is None or role.kind != DATA_SCALER:
                    return True
        return False

    def _expr(self, node: ast.expr | None, function: FunctionInfo | None, depth: int,
              bound: dict | None = None) -> str | None:
        if node is None or depth > _MAX_DEPTH:
            return None
        key = dotted(node)
        if key is not None:
            if bound and key in bound:
                return self._expr(bound[key], function, depth + 1)
            if "." in key and self.imports.qualify(node) is not None:
                return None  # `np.random.rand`, `torch.randn`: a library's, not data
            return self.of_key(key, function, depth)  # a bare imported name is data: `from data import X_test`
        if isinstance(node, ast.Subscript):
            return self._subscript(node, function, depth, bound)
        if isinstance(node, ast.Call):
            return self._call(node, function, depth, bound)
        if isinstance(node, ast.Attribute):
            return self._expr(node.value, function, depth + 1, bound)
        if isinstance(node, ast.Constant):
            return _literal_split(node)
        if isinstance(node, ast.BinOp):
            return combine([self._expr(node.left, function, depth + 1, bound),
                            self._expr(node.right, function, depth + 1, bound)])
        if isinstance(node, ast.BoolOp):
            return combine(self._expr(v, function, depth + 1, bound) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            return self._expr(node.operand, function, depth + 1, bound)
        if isinstance(node, (ast.Tuple, ast.List)):
            return combine(self._expr(e.value if isinstance(e, ast.Starred) else e, function, depth + 1, bound)
                           for e in node.elts)
        if isinstance(node, ast.IfExp):
            return combine([self._expr(node.body, function, depth + 1, bound),
                            self._expr(node.orelse, function, depth + 1, bound)])
        return None

    def _subscript(self, node: ast.Subscript, function, depth: int, bound: dict | None = None) -> str | None:
        base = self._expr(node.value, function, depth + 1, bound)
        index = node.slice
        if isinstance(index, ast.Tuple):
            if not index.elts:
                return base
            index = index.elts[0]
        if isinstance(index, ast.Slice):
            if index.lower is None and index.upper is None:
                return base  # X_val[:, 0]
            return _slice_split(index)  # a row range: only named bounds say which
        if isinstance(index, ast.Constant) and isinstance(index.value, str):
            split = _word_split(index.value.lower())
            return split or base  # data["test"]; val_df["age"]
        if isinstance(index, ast.Compare):
            split = None
            for operator, comparator in zip(index.ops, index.comparators):
                if isinstance(operator, ast.Eq) and string(comparator) is not None:
                    split = _literal_split(comparator)  # df[df.split == "val"]
            return split or base
        key = dotted(index)
        if key is not None:
            # The rows an index selects decide: `X_train_val.iloc[val_idx]` is held out. A name that is no
            # index of rows picks columns: `X_trn_df[f]` for `f in X_test.columns` is still training data.
            by_position = isinstance(node.value, ast.Attribute) and node.value.attr in ("iloc", "loc")
            if by_position or self._index_key(key, function):
                return self._expr(index, function, depth + 1, bound) or base  # X[val_idx]
            return base
        member = _isin(index)
        if member is not None:  # df[df.index.isin(train.index)], df[~df.index.isin(train.index)]
            split = self._expr(member[0], function, depth + 1, bound)
            return _opposite(split) if member[1] else (split if split in _BOTH else None)
        if isinstance(index, (ast.Constant, ast.List, ast.UnaryOp)):
            return base  # val_df[["a", "b"]], X_test[0], val_df[~val_df.bad], X_val[..., np.newaxis]
        return None

    def _call(self, node: ast.Call, function, depth: int, bound: dict | None = None) -> str | None:
        dropped = _dropped_rows(node)
        if dropped is not None:  # `df.drop(train.index)`: the rows `train` does not hold
            return _opposite(self._expr(dropped, function, depth + 1, bound))
        results = []
        func = node.func
        if isinstance(func, ast.Attribute) and self.imports.qualify(func.value) is None:
            receiver = dotted(func.value)
            role = self.roles.of(receiver, function) if receiver else None
            if role is None or role.kind not in _NOT_DATA:
                results.append(self._expr(func.value, function, depth + 1, bound))  # X_val.reshape(-1, 1)
        literal = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                continue
            if string(arg) is not None:
                literal.append(_literal_split(arg))  # load("valid"), pd.read_csv("test.csv")
            else:
                results.append(self._expr(arg, function, depth + 1, bound))
        for kw in node.keywords:
            if kw.arg in _SPLIT_KEYWORDS:
                literal.append(_literal_split(kw.value))  # load(split="validation")
            elif kw.arg == "train" and bool_value(kw.value) is not None:
                literal.append(TRAIN if bool_value(kw.value) else EVAL)  # MNIST(root, train=False)
        return combine(results) or combine(literal)

    # -- the scan: unpacking targets, train_test_split calls, statements in order -----------------
    def _scan(self, items: list[Item], function: FunctionInfo | None, path: Path = ()) -> None:
        out = self._statements.setdefault(id(function), [])
        for item in items:
            if isinstance(item, Stmt):
                out.append((item, path))
                self._paths[id(item)] = path
                self._note(item, function, path)
            elif isinstance(item, Loop):
                if isinstance(item.node, FOR_TYPES):
                    self._note_targets(item.node.target, item.node.iter)
                    self._note_folds(item.node.target, item.node.iter, function)
                self._scan(item.body, function, path)
                self._scan(item.orelse, function, path)
            elif isinstance(item, Branch):
                is_try = isinstance(item.node, TRY_TYPES)
                for index, arm in enumerate(item.arms):
                    self._scan(arm, function, path if is_try and index == 0 else path + ((id(item.node), index),))
                self._scan(item.always, function, path)
            elif isinstance(item, With):
                self._scan(item.body, function, path)

    def _note(self, stmt: Stmt, function: FunctionInfo | None, path: Path) -> None:
        node = stmt.node
        targets: list[str | None] | None = None
        if isinstance(node, ast.Assign):
            for target in node.targets:
                keys = self._note_targets(target, node.value)
                if keys is not None:
                    targets = keys
                self._note_nested(target, function)
                if isinstance(node.value, ast.Call) and dotted(node.value.func) == "next" and node.value.args:
                    self._note_folds(target, node.value.args[0], function)  # `tr, va = next(kf.split(X))`
        for site in stmt.calls:
            if site.method == "fit" and site.receiver is not None and len(site.call.args) >= 2 \
                    and dotted(site.call.args[0]) is not None:
                data = dotted(site.call.args[0])
                self._trained.setdefault(data, []).append((function, data, site.receiver))
            mine = targets if isinstance(node, ast.Assign) and node.value is site.call else None
            args = site.call.args
            arrays = [] if any(isinstance(a, ast.Starred) for a in args) else list(args)
            if self.imports.qualify(site.call.func) in K.TRAIN_TEST_SPLIT:
                self.calls.append(SplitCall(site.call, stmt, function, path, arrays, mine))
            elif mine is not None and self._split_helper(site.call):
                names = {split_of_name(t) for t in mine if t is not None}
                if _BOTH <= names:  # `X_tr, X_val = split_data(X)`: the names say which part is which
                    func = site.call.func
                    if isinstance(func, ast.Attribute) and self.imports.qualify(func.value) is None:
                        arrays = [func.value] + arrays  # `df.randomSplit([0.8, 0.2])`
                    self.calls.append(SplitCall(site.call, stmt, function, path, arrays, mine, HELPER))
        self._note_parts(stmt, function, path)

    def _split_helper(self, call: ast.Call) -> bool:
        """A function that splits, by its name (`split_data`, `train_val_split`, a project's own
        `train_test_split`, `np.split`), other than a cross-validation splitter's `split`."""
        key = dotted(call.func)
        if key is None or "split" not in name_tokens(last_part(key)):
            return False
        return not (isinstance(call.func, ast.Attribute) and call.func.attr == "split" and not call.args[1:] and
                    any(isinstance(a, ast.Constant) for a in call.args))  # "a,b".split(",")

    # -- cross-validation folds ----------------------------------------------------------------------
    def _note_folds(self, target: ast.expr, iterable: ast.expr, function: FunctionInfo | None) -> None:
        """`for tr, va in kf.split(X)`, `for k, (tr, va) in enumerate(kf.split(X))`: `tr` indexes the
        training rows, `va` the held-out ones."""
        for _ in range(3):
            if not isinstance(iterable, ast.Call) or not iterable.args:
                return
            name = dotted(iterable.func)
            if name == "enumerate" and isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == 2:
                iterable, target = iterable.args[0], target.elts[1]
            elif name is not None and last_part(name) in ("tqdm", "tqdm_notebook", "list", "iter"):
                iterable = iterable.args[0]
            else:
                break
        if not (isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == 2 and self._cv_split(iterable, function)):
            return
        for element, split in zip(target.elts, (TRAIN, EVAL)):
            key = dotted(element)
            if key is not None:
                self._folds[(id(function), key)] = split

    def _cv_split(self, node: ast.expr, function: FunctionInfo | None) -> bool:
        """`kf.split(X, y)` where `kf` is built by a cross-validation splitter (KFold, TimeSeriesSplit, ...)."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "split"):
            return False
        receiver = node.func.value
        if isinstance(receiver, ast.Call):
            return self._splitter(receiver.func)
        key = dotted(receiver)
        values = self.roles.assigned_values(key, function) if key else None
        return bool(values) and all(isinstance(v, ast.Call) and self._splitter(v.func) for v in values)

    def _splitter(self, func: ast.expr) -> bool:
        key = dotted(func)
        if key is None or last_part(key) not in K.CV_SPLITTERS:
            return False
        qualname = self.imports.qualify(func)
        return qualname is None and "." not in key or qualname is not None and qualname.startswith(K.CV_SPLITTER_MODULES)

    # -- row parts ------------------------------------------------------------------------------------
    def _note_parts(self, stmt: Stmt, function: FunctionInfo | None, path: Path) -> None:
        """Row parts in a statement: those assigned (`train = scaled[:n]`) or appended
        (`X_test.append(scaled[i:i + w])`) to a name, and rows picked in place by a training or held-out index
        (`model.fit(X[tr_idx])`)."""
        node = stmt.node
        cores: list[tuple[str, ast.expr]] = [(k, v) for k, v in stmt.targets if k is not None]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr in ("append", "extend") \
                    and len(call.args) == 1 and dotted(call.func.value) is not None:
                cores.append((dotted(call.func.value), call.args[0]))
        seen = set()
        for target, value in cores:
            found = _row_core(value)
            if found is not None:
                part, (base, selector), plain = found
                seen.add(id(part))
                self._parts.append(RowPart(stmt, path, function, dotted(base), base, part, selector, target, plain))
        value = getattr(node, "value", None)
        if not isinstance(value, ast.expr):
            return
        for sub in _subscripts_in(value):
            if id(sub) not in seen:
                found = _row_selection(sub)
                if found is not None and found[1][0] in ("key", "isin"):
                    base, selector = found
                    self._parts.append(RowPart(stmt, path, function, dotted(base), base, sub, selector, None, False))

    def is_fold(self, key: str, function: FunctionInfo | None) -> bool:
        """Does the key hold the row indices of a cross-validation fold (`tr` in `for tr, va in kf.split(X)`)?"""
        return (id(function), key) in self._folds

    def _index_key(self, key: str, function: FunctionInfo | None) -> bool:
        """Is the key an index of rows: fold indices, or a name like `train_idx` / `val_mask`?"""
        return (id(function), key) in self._folds or not K.ROW_INDEX_WORDS.isdisjoint(name_tokens(last_part(key)))

    def _part_split(self, part: RowPart) -> str | None:
        """TRAIN or EVAL: from the rows selected, else from the name the part is assigned or appended to."""
        kind, *args = part.selector
        function = part.function
        if kind == "slice":
            split = _slice_split(args[0])
        elif kind == "key":
            if not self._index_key(args[0], function):
                return None  # `df[feature_cols]`: columns, not rows
            split = self.of_key(args[0], function)
        elif kind == "compare":
            split = self._subscript_compare(args[0])
        elif kind == "isin":
            split = self.of(args[0], function)
            split = _opposite(split) if args[1] else split
        elif kind == "drop":
            split = _opposite(self.of(args[0], function))
        else:
            split = None  # df.sample(frac=0.8), df.head(n)
        split = split if split in _BOTH else None
        named = split_of_name(part.target) if part.target is not None else None
        named = named if named in _BOTH else None
        if split and named and split != named:
            return None
        return split or named

    @staticmethod
    def _subscript_compare(index: ast.Compare) -> str | None:
        for operator, comparator in zip(index.ops, index.comparators):
            if isinstance(operator, ast.Eq) and string(comparator) is not None:
                return _literal_split(comparator)  # df[df.split == "val"]
        return None

    def _origin(self, part: RowPart) -> list[ast.expr] | None:
        """The members of a concatenation whose rows a slice at the first member's length takes back:
        `full[:len(train)]` -> [train], `full[len(train):]` -> [test] for `full = pd.concat([train, test])`."""
        if part.selector[0] != "slice":
            return None
        rows = part.selector[1]
        starts = rows.lower is None or isinstance(rows.lower, ast.Constant) and rows.lower.value == 0
        if starts and rows.upper is not None and rows.step is None:
            head, bound = True, rows.upper
        elif rows.lower is not None and rows.upper is None and rows.step is None:
            head, bound = False, rows.lower
        else:
            return None
        first = self._length_of(bound, part.function)
        if first is None:
            return None
        for value in self.roles.assigned_values(part.key, part.function) or []:
            members = _members(value)  # (`full = pd.get_dummies(full)` keeps the rows of the concatenation)
            if members and _base(members[0]) == first:
                return members[:1] if head else members[1:]
        return None

    def _length_of(self, expr: ast.expr, function: FunctionInfo | None, depth: int = 0) -> str | None:
        """`X` for `len(X)`, `X.shape[0]`, or a name assigned one of them once (`train_len = len(train)`)."""
        if isinstance(expr, ast.Call) and dotted(expr.func) == "len" and len(expr.args) == 1:
            return _base(expr.args[0])
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape" \
                and isinstance(expr.slice, ast.Constant) and expr.slice.value == 0:
            return _base(expr.value.value)
        key = dotted(expr)
        values = self.roles.assigned_values(key, function) if key is not None and depth < 2 else None
        if values and len(values) == 1:
            return self._length_of(values[0], function, depth + 1)
        return None

    def _pair_parts(self) -> None:
        """Two row parts of one array in a scope, one training and one held out, are a split: one per
        held-out part, with the nearest training part (in the same statement if there is one)."""
        groups: dict[tuple[int, str], list[RowPart]] = {}
        for part in self._parts:
            part.split = self._part_split(part)
            if part.split is not None and part.key is not None:
                part.origin = self._origin(part)
                groups.setdefault((id(part.function), part.key), []).append(part)
        for parts in groups.values():
            trains = [p for p in parts if p.split == TRAIN]
            held = [p for p in parts if p.split == EVAL]
            if not trains or not held:
                continue
            order = {id(s): i for i, (s, _) in enumerate(self.statements(parts[0].function))}
            for part in held:
                here = order.get(id(part.stmt), 0)
                partner = min(trains, key=lambda t: (abs(order.get(id(t.stmt), 0) - here), order.get(id(t.stmt), 0)))
                later = part if here >= order.get(id(partner.stmt), 0) else partner
                self.calls.append(SplitCall(None, later.stmt, part.function, later.path, [part.base],
                                            [partner.target, part.target], ROWS, partner, part))

    def _note_nested(self, target: ast.expr, function: FunctionInfo | None) -> None:
        """Names inside nested target tuples (the model records no value for them)."""
        if not isinstance(target, (ast.Tuple, ast.List)):
            return
        pending = [e for e in target.elts if isinstance(e, (ast.Tuple, ast.List))]
        while pending:
            inner = pending.pop()
            for element in inner.elts:
                element = element.value if isinstance(element, ast.Starred) else element
                if isinstance(element, (ast.Tuple, ast.List)):
                    pending.append(element)
                elif dotted(element) is not None:
                    self._nested.setdefault(id(function), set()).add(dotted(element))

    def _note_targets(self, target: ast.expr, value: ast.expr) -> list[str | None] | None:
        if not isinstance(target, (ast.Tuple, ast.List)):
            return None
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            return None  # `a, b = x, y` pairs names with values one by one
        keys = [dotted(e.value if isinstance(e, ast.Starred) else e) for e in target.elts]
        for position, key in enumerate(keys):
            if key is not None:
                self._unpacked[(id(value), key)] = (position, keys)
        return keys


def _base(expr: ast.expr | None) -> str | None:
    """The name at the root of `pred.reshape(-1, 1)`, `preds[:, 0]`, `df.values`."""
    while expr is not None:
        key = dotted(expr)
        if key is not None:
            return key
        if isinstance(expr, ast.Subscript):
            expr = expr.value
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            expr = expr.func.value
        else:
            return None
    return None


def _subscripts_in(node: ast.expr) -> list[ast.Subscript]:
    """The subscripts an expression holds, walking only expression shapes (cheaper than ast.walk)."""
    found = []
    pending = [node]
    while pending:
        expr = pending.pop()
        kind = type(expr)
        if kind is ast.Subscript:
            found.append(expr)
            pending.append(expr.value)
            pending.append(expr.slice)
        elif kind is ast.Call:
            pending.append(expr.func)
            pending.extend(expr.args)
            pending.extend(k.value for k in expr.keywords)
        elif kind in (ast.Attribute, ast.Starred):
            pending.append(expr.value)
        elif kind is ast.BinOp:
            pending.extend((expr.left, expr.right))
        elif kind in (ast.Tuple, ast.List, ast.Set):
            pending.extend(expr.elts)
        elif kind is ast.BoolOp:
            pending.extend(expr.values)
        elif kind is ast.UnaryOp:
            pending.append(expr.operand)
        elif kind is ast.Compare:
            pending.append(expr.left)
            pending.extend(expr.comparators)
        elif kind is ast.Dict:
            pending.extend(v for v in expr.values if v is not None)
        elif kind is ast.IfExp:
            pending.extend((expr.body, expr.orelse))
    return found


def _members(value: ast.expr) -> list[ast.expr] | None:
    """The arrays a concatenation stacks, in order: `pd.concat([a, b])`, `np.vstack((a, b))`, `a.append(b)`."""
    for _ in range(4):
        if not isinstance(value, ast.Call):
            return None
        name = dotted(value.func)
        method = last_part(name) if name else (value.func.attr if isinstance(value.func, ast.Attribute) else None)
        if method in ("concat", "concatenate", "vstack", "row_stack"):
            arrays = value.args[0] if value.args else next((k.value for k in value.keywords if k.arg == "objs"), None)
            return list(arrays.elts) if isinstance(arrays, (ast.List, ast.Tuple)) else None
        if method == "append" and isinstance(value.func, ast.Attribute) and len(value.args) == 1:
            return [value.func.value, value.args[0]]
        if not isinstance(value.func, ast.Attribute):
            return None
        value = value.func.value  # pd.concat([a, b]).reset_index(drop=True)
    return None


def _predicts(expr: ast.expr | None) -> bool:
    """`model.predict(X)`, `clf.predict_proba(X)[:, 1]`."""
    while isinstance(expr, (ast.Subscript, ast.Attribute)) or isinstance(expr, ast.Call) and \
            isinstance(expr.func, ast.Attribute) and not expr.func.attr.startswith("predict"):
        expr = expr.value if not isinstance(expr, ast.Call) else expr.func.value
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr.startswith("predict")


def last_part(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _opposite(split: str | None) -> str | None:
    return {TRAIN: EVAL, EVAL: TRAIN}.get(split)


def _isin(index: ast.expr) -> tuple[ast.expr, bool] | None:
    """(what, negated) for `df.index.isin(what)` and `~df.index.isin(what)` row masks."""
    negated = isinstance(index, ast.UnaryOp) and isinstance(index.op, (ast.Invert, ast.Not))
    call = index.operand if negated else index
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "isin" \
            and len(call.args) == 1 and not isinstance(call.args[0], ast.Starred):
        return call.args[0], negated
    return None


def _dropped_rows(call: ast.Call) -> ast.expr | None:
    """`train` in `df.drop(train.index)` / `df.drop(index=train.index)`: the rows left out."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr != "drop":
        return None
    for kw in call.keywords:
        if kw.arg == "index":
            return kw.value.value if isinstance(kw.value, ast.Attribute) and kw.value.attr == "index" else kw.value
        if kw.arg in ("columns", "labels") or kw.arg == "axis" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value in (0, "index", "rows")):
            return None
    if len(call.args) == 1 and isinstance(call.args[0], ast.Attribute) and call.args[0].attr == "index":
        return call.args[0].value
    return None


def _row_selection(expr: ast.expr) -> tuple[ast.expr, tuple] | None:
    """(the array, how its rows are chosen) when `expr` takes some of an array's rows: `X[:n]`,
    `X[n:, :]`, `df.iloc[:n]`, `X[tr_idx]` (rows only when the index turns out to be one), `df[df.a == 1]`,
    `df[~df.index.isin(tr.index)]`, `df.sample(frac=0.8)`, `df.head(n)`, `df.drop(train.index)`."""
    if isinstance(expr, ast.Subscript):
        base = expr.value
        if isinstance(base, ast.Attribute) and base.attr in ("iloc", "loc"):
            base = base.value
        if dotted(base) is None:
            return None
        index = expr.slice
        if isinstance(index, ast.Tuple):
            if not index.elts:
                return None
            index = index.elts[0]
        if isinstance(index, ast.Slice):
            return (base, ("slice", index)) if index.lower is not None or index.upper is not None else None
        key = dotted(index)
        if key is not None:
            return base, ("key", key)
        if isinstance(index, ast.Compare):
            return base, ("compare", index)
        member = _isin(index)
        if member is not None:
            return base, ("isin", member[0], member[1])
        return None
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and dotted(expr.func.value) is not None:
        if expr.func.attr in K.ROW_METHODS:
            return expr.func.value, ("method", expr.func.attr)
        dropped = _dropped_rows(expr)
        if dropped is not None:
            return expr.func.value, ("drop", dropped)
    return None


def _row_core(value: ast.expr) -> tuple[ast.expr, tuple[ast.expr, tuple], bool] | None:
    """The row selection an assigned value is made of (part, (array, selector), plain): `scaled[:n]` in
    `np.array(scaled[:n])`, `scaled[:n].reshape(-1, 1)`, `create_dataset(scaled[:n], w)`; plain when the
    value is the selection itself (or its columns: `scaled[:n][:, 0]`)."""
    expr, plain = value, True
    for _ in range(8):
        found = _row_selection(expr)
        if found is not None:
            return expr, found, plain
        if isinstance(expr, ast.Subscript):
            expr = expr.value  # columns of rows: df[:n][cols]
        elif isinstance(expr, ast.Attribute):
            expr, plain = expr.value, False  # .values
        elif isinstance(expr, ast.Call):
            plain = False
            func = expr.func
            if isinstance(func, ast.Attribute) and dotted(func.value) is None:
                expr = func.value  # scaled[:n].reshape(-1, 1)
            elif expr.args and not isinstance(expr.args[0], ast.Starred):
                expr = expr.args[0]  # np.array(scaled[:n]), create_dataset(scaled[:n], w)
            else:
                return None
        else:
            return None
    return None


def _slice_split(node: ast.Slice) -> str | None:
    """`X[:n_train]` is training data, `X[n_train:]` and `X[-n_val:]` held out, `X[:-n_test]` training."""
    def words(bound):
        if bound is None:
            return None, False
        negative = isinstance(bound, ast.UnaryOp) and isinstance(bound.op, ast.USub)
        inner = bound.operand if negative else bound
        found = set()
        pending = [inner]
        while pending:
            expr = pending.pop()
            key = dotted(expr)
            if key is not None:
                found.add(split_of_name(key))
            elif isinstance(expr, ast.BinOp):
                pending.extend((expr.left, expr.right))
            elif isinstance(expr, ast.Call):
                pending.extend(a.value if isinstance(a, ast.Starred) else a for a in expr.args)
                pending.extend(k.value for k in expr.keywords)
        return combine(found), negative

    lower, lower_negative = words(node.lower)
    upper, upper_negative = words(node.upper)
    starts = node.lower is None or isinstance(node.lower, ast.Constant) and node.lower.value == 0  # X[0:n_train]
    if lower in _BOTH and upper is None:
        if lower == TRAIN:
            return None if lower_negative else EVAL  # X[n_train:]
        return EVAL if lower_negative else TRAIN  # X[-n_val:] / X[n_test:]
    if upper in _BOTH and lower is None and starts:
        if upper == TRAIN:
            return None if upper_negative else TRAIN  # X[:n_train]
        return TRAIN if upper_negative else EVAL  # X[:-n_val] / X[:n_test]
    if lower == TRAIN and node.upper is not None:
        return EVAL  # X[n_train:n_train + n_val]
    return None


def _swapped_names(key: str) -> list[str]:
    """`X_val` -> [X_train, X_training, X_tr]; `valDF` -> [trainDF, ...]; only the held-out word changes."""
    head, _, name = key.rpartition(".")
    prefix = head + "." if head else ""
    out = []
    for match in _TOKEN.finditer(name):
        token = match.group(0)
        lower = token.lower()
        glued = ""
        if _word_split(lower) != EVAL:
            if len(lower) > 2 and lower[0] in "xy" and _word_split(lower[1:]) == EVAL:
                glued, token = token[0], token[1:]
            else:
                continue
        for word in ("train", "training", "tr"):
            if token.isupper() and len(token) > 1:
                replacement = word.upper()
            elif token[:1].isupper():
                replacement = word.capitalize()
            else:
                replacement = word
            out.append(prefix + name[:match.start()] + glued + replacement + name[match.end():])
    return out


# -- data flow within a scope, for "is this data split later?" ---------------------------------------
def _names_in(node: ast.expr) -> frozenset[str]:
    """The dotted names an expression reads (`df`, `X.values`), walking only expression shapes (cheap)."""
    found: set[str] = set()
    pending = [node]
    while pending:
        expr = pending.pop()
        key = dotted(expr)
        if key is not None:
            found.add(key)
        elif isinstance(expr, ast.Call):
            pending.append(expr.func)
            pending.extend(expr.args)
            pending.extend(k.value for k in expr.keywords)
        elif isinstance(expr, (ast.Attribute, ast.Starred, ast.Await, ast.NamedExpr)):
            pending.append(expr.value)
        elif isinstance(expr, ast.Subscript):
            pending.append(expr.value)
            index = expr.slice
            pending.extend(e for e in (index.elts if isinstance(index, ast.Tuple) else [index])
                           if not isinstance(e, ast.Slice))
        elif isinstance(expr, ast.BinOp):
            pending.extend((expr.left, expr.right))
        elif isinstance(expr, ast.BoolOp):
            pending.extend(expr.values)
        elif isinstance(expr, ast.UnaryOp):
            pending.append(expr.operand)
        elif isinstance(expr, ast.Compare):
            pending.append(expr.left)
            pending.extend(expr.comparators)
        elif isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            pending.extend(expr.elts)
        elif isinstance(expr, ast.Dict):
            pending.extend(expr.values)
        elif isinstance(expr, ast.IfExp):
            pending.extend((expr.test, expr.body, expr.orelse))
        elif isinstance(expr, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            pending.extend((expr.elt, expr.generators[0].iter))
    return frozenset(found)


def _prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class Reads:
    """What an expression reads: the names, and the names with their prefixes (`X` for `X.values`)."""

    __slots__ = ("names", "closure")

    def __init__(self, node: ast.expr) -> None:
        self.names = _names_in(node)
        self.closure = set(self.names)
        for name in self.names:
            self.closure.update(_prefixes(name))


class Keys:
    """Keys that hold some data, with their prefixes, so "does this expression read one?" is two set lookups:
    reading `X.values` reads `X`, and reading `data` reads `data.X`."""

    def __init__(self, keys=()) -> None:
        self.keys: set[str] = set()
        self.prefixes: dict[str, int] = {}
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        if key not in self.keys:
            self.keys.add(key)
            for prefix in _prefixes(key):
                self.prefixes[prefix] = self.prefixes.get(prefix, 0) + 1

    def discard(self, key: str) -> None:
        if key in self.keys:
            self.keys.discard(key)
            for prefix in _prefixes(key):
                self.prefixes[prefix] -= 1
                if not self.prefixes[prefix]:
                    del self.prefixes[prefix]

    def read_by(self, reads: Reads) -> bool:
        return not self.keys.isdisjoint(reads.closure) or not self.prefixes.keys().isdisjoint(reads.names)


class ScopeFlow:
    """One scope's statements in order, with what each assigns from what it reads, and its
    `train_test_split` calls: enough to follow data forward from a statement (DataSplits.flow)."""

    def __init__(self, splits: "DataSplits", function: FunctionInfo | None) -> None:
        self.statements = splits.statements(function)
        self.order = {id(s): i for i, (s, _) in enumerate(self.statements)}
        # (target, what the value reads, does the value read the target itself: `X = X.astype(...)`)
        self.assigned = []
        for statement, _ in self.statements:
            pairs = []
            for target, value in assigned_pairs(statement):
                reads = Reads(value)
                pairs.append((target, reads, target in reads.closure or not reads.names.isdisjoint(_prefixes(target))))
            for target, value in appended(statement):
                pairs.append((target, Reads(value), True))  # `X_test.append(scaled[i:i + w])` adds to X_test
            self.assigned.append(pairs)
        self.calls: dict[int, list[tuple[SplitCall, list[Reads]]]] = {}
        self.last_split = -1
        for call in splits.calls:
            if id(call.stmt) in self.order:
                self.calls.setdefault(id(call.stmt), []).append((call, [Reads(a) for a in call.arrays]))
                self.last_split = max(self.last_split, self.order[id(call.stmt)])


def sources(flow: "ScopeFlow", index: int, keys: set[str]) -> set[str]:
    """The keys the given ones were computed from, through the statements before `index` (a backward slice):
    for `full = pd.concat([train, test]); s.fit(full)`, `full` comes from `train` and `test`."""
    wanted = set(keys)
    for position in range(index - 1, -1, -1):
        for target, reads, _ in flow.assigned[position]:
            if target in wanted or any(target.startswith(k + ".") or k.startswith(target + ".") for k in wanted):
                wanted |= reads.closure
    return wanted


def exclusive(a: Path, b: Path) -> bool:
    """Do two statements sit in different arms of the same if/try (so at most one of them runs)?"""
    arms = dict(a)
    return any(branch in arms and arms[branch] != arm for branch, arm in b)


def appended(stmt: Stmt) -> list[tuple[str, ast.expr]]:
    """(key, value) for `key.append(value)` / `key.extend(value)`: the list grows by what the value holds."""
    node = stmt.node
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute) and call.func.attr in ("append", "extend") and len(call.args) == 1:
            key = dotted(call.func.value)
            if key is not None and not isinstance(call.args[0], ast.Starred):
                return [(key, call.args[0])]
    return []


def assigned_pairs(stmt: Stmt) -> list[tuple[str, ast.expr]]:
    """(key, value) for each target; `df[cols] = v` and `X.loc[:, c] = v` change `df` and `X` in place."""
    pairs = [(k, v) for k, v in stmt.targets if k is not None]
    if isinstance(stmt.node, ast.Assign):
        for target in stmt.node.targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)) and dotted(target) is None:
                key = base_key(target)
                if key is not None:
                    pairs.append((key, stmt.node.value))
    return pairs
