"""TL003 scaler-fit-on-eval-data: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import (
    autofixed,
    fix_is_unsafe,
    fix_snippet,
    fixtures,
    lint_snippet,
    rows,
    run_both,
)

from trainlint.analysis.splits import EVAL, MIXED, TRAIN, name_tokens, split_of_name

BUGS = fixtures("TL003")


findings = partial(lint_snippet, code="TL003")
codes = partial(rows, code="TL003")
fixed = fix_snippet


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_runtime_scaler_learns_held_out_statistics_and_the_fix_uses_training_ones(path, tmp_path):
    buggy, fixed_run = run_both(path, autofixed(path, tmp_path, unsafe=fix_is_unsafe(path)))
    # The scaler the script ends with does not apply the training split's statistics ...
    assert buggy["fitted_vs_train"] > 0.1, "the buggy fixture's scaler should not use the training statistics"
    if not fix_is_unsafe(path):
        # ... but exactly the held-out split's (a fit on everything is between the two).
        assert buggy["fitted_vs_held_out"] < 1e-9
    assert fixed_run["fitted_vs_train"] < 1e-9, "after the fix the scaler must apply the training statistics"
    assert fixed_run["fitted_vs_held_out"] > 0.1
    if "test_mse" in buggy:  # the model sees test inputs normalized the way it was trained
        assert buggy["test_mse"] > 1.0 and fixed_run["test_mse"] < 0.01


# -- the model's data-split fact ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, split", [
    ("X_val", EVAL), ("val_df", EVAL), ("test_x", EVAL), ("Xtest", EVAL), ("XTest", EVAL), ("X_valid", EVAL),
    ("y_dev", EVAL), ("holdout_set", EVAL), ("X_test2", EVAL), ("valDF", EVAL), ("X_train", TRAIN),
    ("ytrain", TRAIN), ("X_tr", TRAIN), ("train_val", MIXED), ("X_trainval", None), ("latest", None),
    ("contest_scores", None), ("device", None), ("evaluation_metrics", None), ("X", None), ("protest", None),
    ("val", None), ("dev", None), ("valid", None), ("valid_mask", None), ("test", EVAL), ("train", TRAIN),
    ("val_mask", EVAL), ("data.val_mask", EVAL),
])
def test_split_words_are_whole_tokens(name, split):
    assert split_of_name(name) == split, name_tokens(name)


def _splits(source: str):
    import ast

    from trainlint.analysis import ScriptModel
    source = textwrap.dedent(source)
    model = ScriptModel(ast.parse(source), source)
    return lambda key: model.splits.of_key(key, None)


def test_split_fact_from_train_test_split_positions_subscripts_and_flow():
    split = _splits("""\
        import numpy as np, torch
        from sklearn.model_selection import train_test_split
        X_tr, X_te, y_tr, y_te = train_test_split(X, y)
        a, b = train_test_split(df)
        X_val, X_test = train_test_split(X_te)
        c, d = load()
        tensor = torch.tensor(X_te, dtype=torch.float32)
        rows = df[df.split == "val"]
        part = data["test"]
        column = df["test_score"]
        picked = X[val_idx]
        head = X[:n_train]
        tail = X[n_train:]
        both = np.vstack([X_tr, X_te])
        mnist = MNIST(root, train=False)
        frame = pd.read_csv("data/valid.csv")
        scaled = scaler.transform(X_te)
        """)
    expected = {"X_tr": TRAIN, "X_te": EVAL, "y_tr": TRAIN, "y_te": EVAL, "a": TRAIN, "b": EVAL, "X_val": EVAL,
                "X_test": EVAL, "c": None, "d": None, "tensor": EVAL, "rows": EVAL, "part": EVAL, "column": None,
                "picked": EVAL, "head": TRAIN, "tail": EVAL, "both": MIXED, "mnist": EVAL, "frame": EVAL,
                "scaled": EVAL}
    assert {key: split(key) for key in expected} == expected


# -- detection of each shape ----------------------------------------------------------------------------------
DETECTED = {
    "fit_on_val_dataframe_columns": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        scaler.fit(val_df[feature_cols])
        """,
    "split_by_column_value": """\
        from sklearn.preprocessing import MinMaxScaler
        held = df[df["split"] == "test"]
        mm = MinMaxScaler()
        mm.fit(held[cols].values)
        """,
    "named_split_of_a_dict": """\
        from sklearn.preprocessing import RobustScaler
        rs = RobustScaler()
        rs.fit(data["validation"])
        """,
    "chained_constructor_fit_transform": """\
        from sklearn.preprocessing import StandardScaler
        X_test = StandardScaler().fit_transform(X_test)
        """,
    "chained_constructor_fit_bound_to_a_name": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler().fit(X_val)
        """,
    "opaque_names_from_train_test_split": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        a, b = train_test_split(table, test_size=0.2)
        s = StandardScaler()
        s.fit(b)
        """,
    "held_out_set_split_again": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        X_fit, X_rest = train_test_split(X, test_size=0.4)
        X_a, X_b = train_test_split(X_rest, test_size=0.5)
        s = StandardScaler()
        s.fit(X_a)
        """,
    "module_alias_quantile_transformer": """\
        from sklearn import preprocessing as pp
        qt = pp.QuantileTransformer(n_quantiles=10)
        Xt = qt.fit_transform(Xtest)
        """,
    "pca_refit_on_test_after_train": """\
        from sklearn.decomposition import PCA
        pca = PCA(n_components=8)
        train_feats = pca.fit_transform(X_train)
        test_feats = pca.fit_transform(X_test)
        """,
    "separate_pca_fit_on_the_mirrored_test_split": """\
        from sklearn.decomposition import PCA
        X_train, X_test = load_features()
        pca_train, pca_test = PCA(8), PCA(8)
        Z_train = pca_train.fit_transform(X_train)
        Z_test = pca_test.fit_transform(X_test)
        """,
    "feature_selection_with_validation_labels": """\
        from sklearn.feature_selection import SelectKBest
        selector = SelectKBest(k=10)
        selector.fit(X_val, y_val)
        """,
    "partial_fit_over_the_validation_loader": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        for batch in train_loader:
            scaler.partial_fit(batch)
        for batch in val_loader:
            scaler.partial_fit(batch)
        """,
    "helper_with_named_parameters": """\
        from sklearn.preprocessing import StandardScaler
        def scale(train, test):
            s = StandardScaler()
            return s.fit_transform(train), s.fit_transform(test)
        """,
    "imputer_fit_on_test": """\
        from sklearn.impute import SimpleImputer
        imputer = SimpleImputer(strategy="mean")
        X_test = imputer.fit_transform(X_test)
        """,
    "column_transformer_fit_on_dev": """\
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import StandardScaler
        ct = ColumnTransformer([("num", StandardScaler(), num_cols)])
        ct.fit(dev_df)
        """,
    "dataframe_columns_scaled_in_place_before_split": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        df[num_cols] = scaler.fit_transform(df[num_cols])
        train_df, test_df = train_test_split(df, test_size=0.2)
        """,
    "fit_then_transform_before_split_through_a_tensor": """\
        import torch
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler()
        scaler.fit(features)
        features = scaler.transform(features)
        tensor = torch.tensor(features)
        X_train, X_test = train_test_split(tensor)
        """,
    # Cross-validation inside a train+val pool (reduced from a public notebook): the fold rows decide.
    "kfold_over_a_train_val_pool_refits_on_the_validation_fold": """\
        from sklearn.preprocessing import StandardScaler
        for train_idx, val_idx in kf.split(X_train_val, y_train_val):
            X_train, X_val = X_train_val.iloc[train_idx].copy(), X_train_val.iloc[val_idx].copy()
            scaler = StandardScaler()
            X_train = scaler.fit_transform(X_train)
            X_val = scaler.fit_transform(X_val)
        """,
    "fit_on_all_then_transform_a_part_after_the_split": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler().fit(X)
        X_train, X_test = train_test_split(X, test_size=0.2)
        X_train = scaler.transform(X_train)
        X_test = scaler.transform(X_test)
        """,
}
DETECTED_LINE = {
    "fit_on_val_dataframe_columns": 3, "split_by_column_value": 4, "named_split_of_a_dict": 3,
    "chained_constructor_fit_transform": 2, "chained_constructor_fit_bound_to_a_name": 2,
    "opaque_names_from_train_test_split": 5, "held_out_set_split_again": 6, "module_alias_quantile_transformer": 3,
    "pca_refit_on_test_after_train": 4, "separate_pca_fit_on_the_mirrored_test_split": 5, "feature_selection_with_validation_labels": 3,
    "partial_fit_over_the_validation_loader": 6, "helper_with_named_parameters": 4, "imputer_fit_on_test": 3,
    "column_transformer_fit_on_dev": 4, "dataframe_columns_scaled_in_place_before_split": 4,
    "fit_then_transform_before_split_through_a_tensor": 5, "fit_on_all_then_transform_a_part_after_the_split": 3,
    "kfold_over_a_train_val_pool_refits_on_the_validation_fold": 6,
}


@pytest.mark.parametrize("case", DETECTED, ids=DETECTED.keys())
def test_reports_each_shape(case):
    assert codes(DETECTED[case]) == [(DETECTED_LINE[case], "TL003")]


def test_messages_name_the_scaler_the_data_and_the_training_fit():
    [finding] = findings("""\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X_train = scaler.fit_transform(X_train)
        X_test = scaler.fit_transform(X_test)
        """)
    assert "`scaler.fit_transform(X_test)`" in finding.message
    assert "`X_train` (line 3)" in finding.message
    [finding] = findings(DETECTED["dataframe_columns_scaled_in_place_before_split"])
    assert "before `train_test_split` (line 5)" in finding.message and "`df[num_cols]`" in finding.message


# -- fixes --------------------------------------------------------------------------------------------------
def test_fix_turns_the_second_fit_transform_into_transform():
    source = """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X_train = scaler.fit_transform(X_train)
        X_test = scaler.fit_transform(X_test)
        """
    assert fixed(source).splitlines()[3] == "X_test = scaler.transform(X_test)"


def test_fix_removes_a_repeated_fit_and_unchains_fit_transform_calls():
    source = """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        scaler.fit(X_train)
        scaler.fit(X_val)
        X_val_s = scaler.fit(X_val).transform(X_val)
        """
    assert fixed(source).splitlines()[2:] == ["scaler.fit(X_train)", "X_val_s = scaler.transform(X_val)"]


def test_no_fix_that_would_leave_an_empty_block():
    source = """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler().fit(X_train)
        if refit:
            scaler.fit(X_val)
        """
    [finding] = findings(source)
    assert finding.fix is None


def test_fix_is_unsafe_when_the_training_fit_runs_only_under_a_condition():
    source = """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        if not resume:
            X_train = scaler.fit_transform(X_train)
        X_test = scaler.fit_transform(X_test)
        """
    [finding] = findings(source)
    assert finding.fix.applicability == "unsafe"
    assert fixed(source) == textwrap.dedent(source)
    assert "X_test = scaler.transform(X_test)" in fixed(source, unsafe=True)


def test_fix_fits_on_the_training_counterpart_when_unambiguous():
    source = """\
        from sklearn.model_selection import train_test_split
        from sklearn.feature_selection import SelectKBest
        from sklearn.preprocessing import StandardScaler
        X_tr, X_te, y_tr, y_te = train_test_split(X, y)
        selector = SelectKBest(k=3).fit(X_te, y_te)
        val_df = frames["val"]
        train_df = frames["train"]
        s = StandardScaler()
        val_scaled = s.fit_transform(val_df[cols])
        sel = SelectKBest(k=2)
        X_te_sel = sel.fit_transform(X_te, y_te)
        """
    lines = fixed(source).splitlines()
    assert lines[4] == "selector = SelectKBest(k=3).fit(X_tr, y_tr)"
    assert lines[8] == "val_scaled = s.fit(train_df[cols]).transform(val_df[cols])"
    assert lines[10] == "X_te_sel = sel.fit(X_tr, y_tr).transform(X_te)"


def test_no_fix_when_the_counterpart_was_transformed_and_the_held_out_data_not():
    """`X_train` already holds the scaled data: fitting on it would make the test transform a no-op."""
    source = """\
        from sklearn.preprocessing import StandardScaler
        X_train, X_test = load()
        X_train = StandardScaler().fit_transform(X_train)
        X_test = StandardScaler().fit_transform(X_test)
        """
    [finding] = findings(source)
    assert finding.fix is None


def test_no_fix_when_the_counterpart_is_ambiguous():
    source = """\
        from sklearn.preprocessing import StandardScaler
        X_train, X_tr = load_a(), load_b()
        X_val = load_c()
        StandardScaler().fit(X_val)
        """
    [finding] = findings(source)
    assert finding.fix is None


def test_no_fix_for_a_fit_before_the_split_whose_result_is_wrapped():
    source = """\
        import torch
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X = torch.tensor(scaler.fit_transform(X))
        X_train, X_test = train_test_split(X)
        """
    [finding] = findings(source)
    assert finding.fix is None


def test_fix_for_a_fit_before_the_split_fits_on_the_training_part_after_it_and_is_unsafe():
    source = """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X_scaled = scaler.fit_transform(X)
        X_train, X_test, y_train, y_test = train_test_split(X_scaled, y)
        """
    [finding] = findings(source)
    assert finding.fix.applicability == "unsafe"
    assert fixed(source, unsafe=True).splitlines()[3:] == [
        "X_scaled = X",
        "X_train, X_test, y_train, y_test = train_test_split(X_scaled, y)",
        "X_train = scaler.fit_transform(X_train)",
        "X_test = scaler.transform(X_test)",
    ]


# -- silence on correct code -----------------------------------------------------------------------------------
QUIET = {
    # The canonical correct shape: fit on the training split, transform the others.
    "fit_on_train_then_transform_test": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
        scaler = StandardScaler()
        X_train = scaler.fit_transform(X_train)
        X_test = scaler.transform(X_test)
        """,
    "fit_on_X_train_transform_X_valid": """\
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler().fit(X_train)
        X_valid = scaler.transform(X_valid)
        X_test = scaler.transform(X_test)
        """,
    # Scalers inside a Pipeline are re-fit per fold by the model-selection helpers.
    "pipeline_in_grid_search_and_cross_val_score": """\
        from sklearn.model_selection import GridSearchCV, cross_val_score
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC
        pipe = Pipeline([("scaler", StandardScaler()), ("clf", SVC())])
        search = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}).fit(X, y)
        scores = cross_val_score(make_pipeline(StandardScaler(), SVC()), X, y, cv=5)
        best = search.best_estimator_.fit(X_train, y_train)
        test_score = search.score(X_test, y_test)
        """,
    # Cross-validation: each fold's scaler is fit on that fold's training indices.
    "kfold_fit_on_train_indices": """\
        from sklearn.model_selection import KFold
        from sklearn.preprocessing import StandardScaler
        kf = KFold(n_splits=5)
        for train_idx, val_idx in kf.split(X):
            scaler = StandardScaler()
            scaler.fit(X[train_idx])
            X_tr, X_va = scaler.transform(X[train_idx]), scaler.transform(X[val_idx])
        """,
    # torchvision transforms, tokenizers and user classes have fit/transform methods too.
    "non_sklearn_fit_and_transform": """\
        import torchvision.transforms as T
        from mylib import Normalizer
        class StandardScaler:
            def fit(self, x):
                self.mean = x.mean(0)
                return self
        transform = T.Compose([T.ToTensor()])
        img = transform(img_test)
        norm = Normalizer()
        norm.fit(X_val)
        scaler = StandardScaler()
        scaler.fit(X_test)
        tokenizer.fit(test_texts)
        val_ds.transform(X_val)
        """,
    # Plotting held-out embeddings: t-SNE has no transform, a lone PCA projects what it is shown.
    "tsne_and_pca_to_plot_test_embeddings": """\
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE
        emb_2d = TSNE(n_components=2).fit_transform(test_embeddings)
        pca_2d = PCA(n_components=2).fit_transform(test_embeddings)
        """,
    # A PCA reduces training features, another one only projects test embeddings for a plot.
    "plot_pca_next_to_a_preprocessing_pca": """\
        from sklearn.decomposition import PCA
        reducer = PCA(n_components=32)
        train_features = reducer.fit_transform(train_features)
        points = PCA(n_components=2).fit_transform(test_embeddings)
        """,
    # Stateless transformers learn nothing from the values they are fit on.
    "stateless_transformers": """\
        from sklearn.preprocessing import Normalizer, PolynomialFeatures
        X_test = Normalizer().fit_transform(X_test)
        poly = PolynomialFeatures(2).fit(X_val)
        """,
    # Category encoders learn the set of labels; encoding all labels before the split is usual.
    "label_encoder_on_all_labels_before_split": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import LabelEncoder
        y = LabelEncoder().fit_transform(df["label"])
        X_train, X_test, y_train, y_test = train_test_split(X, y)
        """,
    # Names that say nothing are not guessed at; train+val together is the final-model fit.
    "opaque_and_combined_names": """\
        import numpy as np
        from sklearn.preprocessing import StandardScaler
        a, b = load()
        scaler = StandardScaler()
        scaler.fit(b)
        scaler.fit(np.vstack([X_train, X_val]))
        scaler.fit(X_trainval)
        scaler.fit(train_val_df)
        """,
    # `val` for a value, `dev` for a device, a mask of valid (non-NaN) rows.
    "bare_words_that_mean_something_else": """\
        import torch
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        val = prices.reshape(-1, 1)
        scaler.fit(val)
        feats = torch.tensor(X_train).to(dev)
        scaler.fit(feats)
        scaler.fit(X[valid_mask])
        """,
    "words_that_contain_split_words": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        scaler.fit(latest_readings)
        scaler.fit(contest_scores)
        scaler.fit(device_stats)
        scaler.fit(df["test_score"])
        """,
    # Fit on everything first, but re-fit on the training split after splitting: the first fit is gone.
    "full_fit_overwritten_by_a_training_fit_after_the_split": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        scaler.fit(X)
        X_train, X_test = train_test_split(X)
        scaler.fit(X_train)
        """,
    "fit_and_split_in_exclusive_branches": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        if args.predict:
            scaler.fit(X)
        else:
            X_train, X_test = train_test_split(X)
            scaler.fit(X_train)
        """,
    # The frame is scaled for a plot; the split is of its unscaled columns (reduced from a statistics notebook).
    "scaled_copy_is_not_what_gets_split": """\
        import pandas as pd
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        df_scaled = pd.DataFrame(scaler.fit_transform(weekly.select_dtypes(include="number")))
        y = weekly[["points"]].values
        X = weekly[feature_cols].values
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5)
        """,
    "split_first_then_fit_on_the_training_part": """\
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
        X_train, X_test = train_test_split(X)
        scaler = StandardScaler()
        X = scaler.fit_transform(X_train)
        """,
    # Hugging Face datasets have their own train_test_split method: not sklearn's, and not of the fitted data.
    "datasets_train_test_split_method": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        feats = scaler.fit_transform(feats)
        split_dataset = dataset["train"].train_test_split(test_size=0.0005, seed=2357, shuffle=True)
        """,
    # Calibrating on the validation split is the correct practice (not a data scaler).
    "calibration_on_validation_data": """\
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.isotonic import IsotonicRegression
        iso = IsotonicRegression().fit(val_probs, y_val)
        cal = CalibratedClassifierCV(clf, cv="prefit").fit(X_val, y_val)
        """,
    # A scaler loaded from training only transforms.
    "loaded_scaler_transforms_test": """\
        import joblib
        scaler = joblib.load("scaler.pkl")
        X_test = scaler.transform(X_test)
        """,
    "partial_fit_on_train_batches_transform_val_batches": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        for xb in train_loader:
            scaler.partial_fit(xb)
        for xb in val_loader:
            out = scaler.transform(xb)
        """,
    # fit() starts from scratch: a fit on the validation split that nothing uses before the training fit.
    "fit_on_val_replaced_by_the_fit_on_train": """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        scaler.fit(X_val)
        scaler.fit(X_train)
        X_val = scaler.transform(X_val)
        """,
    # Keras' own fit on validation data is not a data scaler (and history is not one either).
    "keras_model_fit_returns_history": """\
        import keras
        from sklearn.preprocessing import StandardScaler
        model = keras.Sequential([keras.layers.Dense(1)])
        history = model.fit(X_train, y_train, validation_data=(X_val, y_val))
        history.fit(X_val)
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_code(source):
    assert codes(source) == []


# -- Keras preprocessing layers: adapt() is their fit -------------------------------------------------------
KERAS_DETECTED = {
    "normalization_adapted_on_x_val": ("""\
        import keras
        (x_train, y_train), (x_val, y_val) = keras.datasets.boston_housing.load_data()
        normalizer = keras.layers.Normalization(axis=-1)
        normalizer.adapt(x_val)
        """, 4),
    "tf_keras_text_vectorization_adapted_on_the_test_dataset": ("""\
        import tensorflow as tf
        test_ds = tf.keras.utils.text_dataset_from_directory("aclImdb/test", batch_size=32)
        vectorize_layer = tf.keras.layers.TextVectorization(max_tokens=20000)
        vectorize_layer.adapt(test_ds.map(lambda x, y: x))
        """, 4),
    "keras_core_string_lookup_adapted_on_the_validation_subset": ("""\
        import keras_core as keras
        from keras_core.layers import StringLookup
        val_ds = keras.utils.image_dataset_from_directory("data", validation_split=0.2, subset="validation", seed=1)
        lookup = StringLookup()
        lookup.adapt(val_ds.map(lambda x, y: y))
        """, 5),
    "discretization_imported_from_layers_adapted_on_test_features": ("""\
        from keras import layers
        bins = layers.Discretization(num_bins=8)
        bins.adapt(test_features["age"])
        """, 3),
    "normalization_adapted_again_on_the_test_data_before_evaluation": ("""\
        import keras
        norm = keras.layers.Normalization()
        norm.adapt(x_train)
        model = keras.Sequential([norm, keras.layers.Dense(1)])
        model.fit(x_train, y_train, epochs=5)
        norm.adapt(x_test)
        model.evaluate(x_test, y_test)
        """, 6),
    "experimental_preprocessing_normalization_from_tensorflow_keras": ("""\
        from tensorflow.keras.layers.experimental import preprocessing
        normalizer = preprocessing.Normalization()
        normalizer.adapt(np.array(test_features))
        """, 3),
    # A second layer for the test split normalizes it with its own statistics (reduced from a public notebook).
    "separate_normalization_layer_for_the_test_split": ("""\
        import tensorflow as tf
        from sklearn.model_selection import train_test_split
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2)
        norm_train = tf.keras.layers.Normalization(axis=-1)
        norm_train.adapt(x_train)
        norm_test = tf.keras.layers.Normalization(axis=-1)
        norm_test.adapt(x_test)
        xn_test = norm_test(x_test)
        """, 7),
    # An inference script rebuilds its TextVectorization from the texts it predicts on (public code, reduced):
    # the token ids no longer match the ones the model was trained with.
    "inference_script_rebuilds_the_vocabulary_from_test_texts": ("""\
        import tensorflow as tf
        model = tf.keras.models.load_model("classifier.keras")
        test_texts = load_texts("data/test")
        vectorizer = tf.keras.layers.TextVectorization(max_tokens=2000, output_sequence_length=150)
        vectorizer.adapt(test_texts)
        predictions = model.predict(vectorizer(tf.constant(test_texts)))
        """, 5),
    # The layer maps the test texts with their own vocabulary before the training adapt replaces it.
    "held_out_adapt_used_before_the_training_adapt": ("""\
        import keras
        vectorizer = keras.layers.TextVectorization()
        vectorizer.adapt(texts_test)
        test_ids = vectorizer(texts_test)
        vectorizer.adapt(texts_train)
        """, 3),
    "adapt_on_an_ellipsis_subscript_of_the_validation_split": ("""\
        import numpy as np
        import tensorflow as tf
        norm = tf.keras.layers.Normalization(axis=(1, 2))
        norm.adapt(X_val[..., np.newaxis])
        """, 4),
}


@pytest.mark.parametrize("case", KERAS_DETECTED, ids=KERAS_DETECTED.keys())
def test_reports_each_keras_adapt_shape(case):
    source, line = KERAS_DETECTED[case]
    assert codes(source) == [(line, "TL003")]


def test_keras_message_says_what_the_layer_learns():
    [finding] = findings(KERAS_DETECTED["normalization_adapted_on_x_val"][0])
    assert finding.message.startswith("`normalizer.adapt(x_val)` adapts `normalizer` on held-out data `x_val`")
    assert "mean and variance" in finding.message
    [finding] = findings(KERAS_DETECTED["tf_keras_text_vectorization_adapted_on_the_test_dataset"][0])
    assert "vocabulary" in finding.message


def test_keras_fix_adapts_on_the_training_split_from_load_data():
    """`(x_train, y_train), (x_val, y_val) = load_data()` binds the training counterpart by nested unpacking."""
    source = KERAS_DETECTED["normalization_adapted_on_x_val"][0]
    assert fixed(source).splitlines()[3] == "normalizer.adapt(x_train)"


def test_keras_fix_swaps_the_dataset_inside_the_map_call():
    source = """\
        import tensorflow as tf
        train_ds = tf.keras.utils.text_dataset_from_directory("aclImdb/train", batch_size=32)
        test_ds = tf.keras.utils.text_dataset_from_directory("aclImdb/test", batch_size=32)
        vectorize_layer = tf.keras.layers.TextVectorization(max_tokens=20000)
        vectorize_layer.adapt(test_ds.map(lambda x, y: x))
        """
    assert fixed(source).splitlines()[4] == "vectorize_layer.adapt(train_ds.map(lambda x, y: x))"


def test_keras_successive_adapts_on_each_split_report_the_held_out_ones():
    """Reduced from public code: adapt() starts from scratch, so the layer ends with the test statistics."""
    source = """\
        import numpy as np
        import tensorflow as tf
        norm = tf.keras.layers.Normalization(axis=(1, 2))
        norm.adapt(X_train[..., np.newaxis])
        norm.adapt(X_val[..., np.newaxis])
        norm.adapt(X_test[..., np.newaxis])
        """
    assert codes(source) == [(5, "TL003"), (6, "TL003")]
    assert fixed(source).splitlines()[3:] == ["norm.adapt(X_train[..., np.newaxis])"]


def test_keras_fix_with_a_sibling_from_train_test_split():
    lines = fixed(KERAS_DETECTED["separate_normalization_layer_for_the_test_split"][0]).splitlines()
    assert lines[6] == "norm_test.adapt(x_train)"


def test_keras_fix_removes_the_re_adapt_on_test_data():
    source = KERAS_DETECTED["normalization_adapted_again_on_the_test_data_before_evaluation"][0]
    assert "norm.adapt(x_test)" not in fixed(source)
    assert "norm.adapt(x_train)" in fixed(source)


KERAS_QUIET = {
    # Public code, reduced: the adapt on the test split is replaced by the training adapt before anything uses it.
    "held_out_adapt_overwritten_by_the_training_adapt": """\
        import tensorflow as tf
        X_test = tf.convert_to_tensor(val_df.drop(columns=["target"]))
        X_train = tf.convert_to_tensor(train_df.drop(columns=["target"]))
        normalizer = tf.keras.layers.Normalization(axis=-1)
        normalizer.adapt(X_test)
        normalizer.adapt(X_train)
        model = tf.keras.Sequential([normalizer, tf.keras.layers.Dense(1)])
        """,
    # The keras.io idiom: adapt on the training images (through a Sequential's first layer, or directly).
    "adapt_on_training_data": """\
        import keras
        from keras import layers
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar100.load_data()
        data_augmentation = keras.Sequential([layers.Normalization(), layers.Resizing(72, 72)])
        data_augmentation.layers[0].adapt(x_train)
        normalizer = layers.Normalization()
        normalizer.adapt(x_train)
        model = keras.Sequential([normalizer, layers.Dense(1)])
        history = model.fit(x_train, y_train, validation_data=(x_test, y_test))
        model.evaluate(x_test, y_test)
        preds = model.predict(x_test)
        """,
    "text_vectorization_adapted_on_text_only_training_dataset": """\
        import keras
        from keras.layers import TextVectorization
        raw_train_ds = keras.utils.text_dataset_from_directory("aclImdb/train", subset="training",
                                                               validation_split=0.2, seed=1337)
        vectorize_layer = TextVectorization(max_tokens=20000, output_sequence_length=500)
        text_ds = raw_train_ds.map(lambda x, y: x)
        vectorize_layer.adapt(text_ds)
        """,
    # Text with no split at all (a language model's whole corpus) and a FeatureSpace adapted on training rows.
    "whole_corpus_and_feature_space_on_training_rows": """\
        import keras
        from keras.layers import TextVectorization
        from keras.utils import FeatureSpace
        vectorize_layer = TextVectorization(max_tokens=20000)
        vectorize_layer.adapt(text_ds)
        feature_space = FeatureSpace(features={"age": FeatureSpace.float_normalized()})
        train_ds_with_no_labels = train_ds.map(lambda x, _: x)
        feature_space.adapt(train_ds_with_no_labels)
        """,
    # Training and validation data together is a deliberate choice, not a held-out fit.
    "adapt_on_train_and_validation_together": """\
        import numpy as np
        from keras import layers
        norm = layers.Normalization()
        norm.adapt(np.concatenate([x_train, x_val]))
        """,
    # Objects with an adapt() method that are not Keras preprocessing layers (domain adaptation, a user's class).
    "adapt_methods_of_other_objects": """\
        import keras
        class Adapter:
            def adapt(self, data):
                self.stats = data.mean()
        adapter = Adapter()
        adapter.adapt(x_val)
        domain_model.adapt(test_loader)
        model = keras.Sequential([keras.layers.Dense(1)])
        model.adapt(x_test)
        """,
    # A Keras model's fit / evaluate / predict on the splits: the model trains on them, nothing is adapted.
    "keras_model_fit_evaluate_predict_on_named_splits": """\
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        history = model.fit(x_val, y_val, epochs=1)
        model.evaluate(x_test, y_test)
        model.predict(x_test)
        scores = history.history["loss"]
        """,
}


@pytest.mark.parametrize("source", KERAS_QUIET.values(), ids=KERAS_QUIET.keys())
def test_quiet_on_correct_keras_code(source):
    assert codes(source) == []


# -- splits beyond train_test_split: slices, complements, folds, split helpers ------------------------------
# Each shape is reduced from public code (simisimon/kaggle-notebooks, BloodAxe/Kaggle-2020-Alaska2, tutorials).
def test_fit_on_the_whole_series_reports_when_its_result_is_sliced_into_train_and_test():
    """scaled = scaler.fit_transform(data); train = scaled[:n]; test = scaled[n:]"""
    assert codes("""\
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler()
        scaled = scaler.fit_transform(data)
        n = int(len(scaled) * 0.8)
        train = scaled[:n]
        test = scaled[n:]
        """) == [(3, "TL003")]


def test_fit_on_the_whole_series_reports_when_tuple_slices_split_it():
    """The LSTM airline-passengers tutorial: dataset = scaler.fit_transform(dataset); train_size = ...;
    train, test = dataset[0:train_size,:], dataset[train_size:len(dataset),:]"""
    [finding] = findings("""\
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler(feature_range=(0, 1))
        dataset = scaler.fit_transform(dataset)
        train_size = int(len(dataset) * 0.67)
        train, test = dataset[0:train_size,:], dataset[train_size:len(dataset),:]
        trainX, trainY = create_dataset(train, look_back)
        """)
    assert finding.location.row == 3
    assert "sliced into training rows `dataset[0:train_size,:]` and held-out rows" in finding.message


def test_fit_on_the_whole_series_reports_when_windows_are_appended_to_train_and_test_lists():
    """scaled_data = scaler.fit_transform(dataset); for i in range(60, split): x_train.append(scaled_data[i-60:i, 0])
    ... for i in range(split, len(scaled_data)): x_test.append(scaled_data[i-60:i, 0])"""
    [finding] = findings("""\
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler()
        scaled_data = scaler.fit_transform(dataset)
        x_train, x_test = [], []
        for i in range(60, split):
            x_train.append(scaled_data[i - 60:i, 0])
        for i in range(split, len(scaled_data)):
            x_test.append(scaled_data[i - 60:i, 0])
        """)
    assert finding.location.row == 3 and "`x_test.append(scaled_data[i - 60:i, 0])`" in finding.message
    assert finding.fix is None  # windows of the scaled series: the training rows are not written down


def test_fit_on_the_whole_series_reports_when_windows_made_from_it_are_sliced():
    """scaled = sc.fit_transform(values); X, y = create_dataset(scaled, look_back); X_train, X_test = X[:n], X[n:]"""
    source = """\
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler()
        scaled = sc.fit_transform(values)
        X, y = create_dataset(scaled, look_back)
        X_train, X_test = X[:n], X[n:]
        y_train, y_test = y[:n], y[n:]
        """
    [finding] = findings(source)
    assert finding.location.row == 3 and finding.fix is None


def test_fit_on_the_whole_frame_reports_when_a_sample_and_its_complement_split_it():
    """df[cols] = scaler.fit_transform(df[cols]); train = df.sample(frac=0.8, random_state=0);
    test = df.drop(train.index)"""
    [finding] = findings("""\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        df[cols] = scaler.fit_transform(df[cols])
        train_dataset = df.sample(frac=0.8, random_state=0)
        test_dataset = df.drop(train_dataset.index)
        """)
    assert finding.location.row == 3 and "held-out rows `df.drop(train_dataset.index)`" in finding.message


def test_fit_on_the_whole_frame_reports_when_isin_picks_the_complement_of_a_named_training_sample():
    """The complement of a training part is held out, whatever its name: part = df[~df.index.isin(tr.index)]"""
    assert codes("""\
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler()
        df[num] = sc.fit_transform(df[num])
        train_rows = df.sample(frac=0.75)
        rest = df[~df.index.isin(train_rows.index)]
        """) == [(3, "TL003")]


def test_complements_of_a_training_part_are_held_out_in_the_split_fact():
    split = _splits("""\
        train = df.sample(frac=0.8)
        a = df.drop(train.index)
        b = df[~df.index.isin(train.index)]
        c = df[df.index.isin(train.index)]
        d = df.drop(columns=["label"])
        """)
    assert [split(k) for k in "abcd"] == [EVAL, EVAL, TRAIN, None]


@pytest.mark.parametrize("splitter, loop", [
    ("KFold(n_splits=5)", "for train_idx, val_idx in cv.split(X_scaled):"),
    ("StratifiedKFold(5, shuffle=True)", "for fold, (train_idx, val_idx) in enumerate(cv.split(X_scaled, y)):"),
    ("GroupKFold(n_splits=4)", "for train_idx, val_idx in cv.split(X_scaled, y, groups):"),
    ("TimeSeriesSplit(n_splits=3)", "for train_idx, val_idx in tqdm(cv.split(X_scaled)):"),
    ("ShuffleSplit(n_splits=3, test_size=0.2)", "for train_idx, val_idx in cv.split(X_scaled):"),
])
def test_fit_on_all_rows_reports_before_a_cross_validation_loop(splitter, loop):
    """X_scaled = scaler.fit_transform(X); for tr, va in kf.split(X_scaled): model.fit(X_scaled[tr]) ..."""
    source = f"""\
        from sklearn.model_selection import {splitter.split("(")[0]}
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X_scaled = scaler.fit_transform(X)
        cv = {splitter}
        {loop}
            X_tr, X_va = X_scaled[train_idx], X_scaled[val_idx]
        """
    [finding] = findings(source)
    assert finding.location.row == 4 and finding.fix is None
    assert "cross-validation folds `X_scaled[train_idx]` / `X_scaled[val_idx]`" in finding.message
    assert "fit it on each training fold inside the loop" in finding.message


def test_fold_positions_decide_when_the_fold_names_say_nothing():
    """BloodAxe/Kaggle-2020-Alaska2: for trn, other in folds.split(x): x[trn] is training, x[other] held out."""
    split = _splits("""\
        from sklearn.model_selection import KFold
        folds = KFold(5)
        for trn, other in folds.split(x):
            a = x[trn]
            b = x[other]
        """)
    assert (split("trn"), split("other"), split("a"), split("b")) == (TRAIN, EVAL, TRAIN, EVAL)


def test_fit_on_all_rows_reports_before_folds_picked_in_place():
    """model.fit(Xs[a], y[a]); model.score(Xs[b], y[b]) inside `for a, b in kf.split(Xs)`"""
    assert codes("""\
        from sklearn.model_selection import KFold
        from sklearn.preprocessing import StandardScaler
        Xs = StandardScaler().fit_transform(X)
        for a, b in KFold(5).split(Xs):
            model.fit(Xs[a], y[a])
            model.score(Xs[b], y[b])
        """) == [(3, "TL003")]


def test_fit_on_all_rows_reports_before_a_project_train_test_split():
    """A notebook's own `def train_test_split(X, y, ratio)`: the unpacked names say which part is which."""
    [finding] = findings("""\
        from sklearn.preprocessing import StandardScaler
        def train_test_split(X, y, ratio=0.8):
            n = int(len(X) * ratio)
            return X[:n], X[n:], y[:n], y[n:]
        X = StandardScaler().fit_transform(X)
        X_train, X_test, y_train, y_test = train_test_split(X, y)
        """)
    assert finding.location.row == 5 and "before `train_test_split` (line 6) splits it" in finding.message
    assert finding.fix is None  # the helper's return order is its own


@pytest.mark.parametrize("imported, call", [
    ("from utils import train_test_split", "X_tr, X_val = train_test_split(X_s)"),
    ("from .data import split_data", "train_x, val_x, train_y, val_y = split_data(X_s, y)"),
    ("import helpers", "X_train, X_valid = helpers.train_val_split(X_s, 0.1)"),
])
def test_fit_on_all_rows_reports_before_a_split_helper_unpacked_into_split_names(imported, call):
    """from utils import train_test_split / split_data / train_val_split, unpacked into train and val names"""
    assert codes(f"""\
        {imported}
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X_s = scaler.fit_transform(X)
        {call}
        """) == [(4, "TL003")]


def test_fit_on_all_rows_reports_before_folds_of_a_stacking_holdout_pool():
    """BloodAxe/Kaggle-2020-Alaska2 (make_submissions_xgb_cls.py): the first models' holdout predictions are
    the stacking model's training pool: x = sc.fit_transform(x); ... for train_index, valid_index in
    group_kfold.split(x, y, groups=image_ids): x_train, x_valid = x[train_index], x[valid_index]. The fit is on
    the whole pool before the folds (not on "held-out data")."""
    [finding] = findings("""\
        import numpy as np
        from sklearn.model_selection import GroupKFold
        from sklearn.preprocessing import StandardScaler
        holdout_ds = get_holdout("")
        quality_h = np.eye(3)[holdout_ds.quality]
        x, y = get_x_y_for_stacking(holdout_predictions)
        x = np.column_stack([x, quality_h])
        sc = StandardScaler()
        x = sc.fit_transform(x)
        x_test = sc.transform(x_test)
        for train_index, valid_index in GroupKFold(n_splits=5).split(x, y, groups=image_ids):
            x_train, x_valid = x[train_index], x[valid_index]
            cls.fit(x_train, y[train_index])
        """)
    assert finding.location.row == 9 and "before the cross-validation folds" in finding.message


SPLIT_QUIET = {
    # The hard negative of the slicing split: the scaler learns from the training rows only.
    "fit_on_the_training_slice_then_transform_all_rows": """\
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler()
        sc.fit(data[:n])
        scaled = sc.transform(data)
        train = scaled[:n]
        test = scaled[n:]
        """,
    "fit_on_the_named_training_slice": """\
        from sklearn.preprocessing import MinMaxScaler
        train, test = data[:n_train], data[n_train:]
        scaler = MinMaxScaler().fit(train)
        train, test = scaler.transform(train), scaler.transform(test)
        """,
    "fit_on_the_rows_of_a_period": """\
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler().fit(df[df.year < 2020][cols])
        df[cols] = sc.transform(df[cols])
        train, test = df[df.year < 2020], df[df.year >= 2020]
        """,
    # Slices that are no split: a first look at some rows, a column slice.
    "a_lone_slice_and_a_column_slice": """\
        from sklearn.preprocessing import StandardScaler
        X = StandardScaler().fit_transform(X)
        head = X[:100]
        first_three = X[:, :3]
        train_cols = X[:, 3:]
        """,
    # PCA of everything for a plot; the raw data is what gets sliced.
    "pca_for_a_plot_then_the_raw_data_is_sliced": """\
        from sklearn.decomposition import PCA
        points = PCA(n_components=2).fit_transform(X)
        plt.scatter(points[:, 0], points[:, 1])
        X_train, X_test = X[:split], X[split:]
        """,
    # Cross-validation done right: a fresh scaler fit on each training fold.
    "scaler_refit_on_each_training_fold": """\
        from sklearn.model_selection import StratifiedKFold
        from sklearn.preprocessing import StandardScaler
        skf = StratifiedKFold(n_splits=5)
        for fold, (trn, val) in enumerate(skf.split(X, y)):
            sc = StandardScaler()
            X_trn = sc.fit_transform(X[trn])
            X_val = sc.transform(X[val])
        """,
    # Category encoders learn the label set: encoding before slicing is usual.
    "label_encoder_before_slicing": """\
        from sklearn.preprocessing import LabelEncoder
        y = LabelEncoder().fit_transform(labels)
        y_train, y_test = y[:n], y[n:]
        """,
    # A split helper whose targets say nothing, and a string split.
    "split_helper_with_opaque_targets_and_a_string_split": """\
        from sklearn.preprocessing import StandardScaler
        X = StandardScaler().fit_transform(X)
        a, b = split_data(X)
        train_path, test_path = paths.split(",")
        """,
    # simisimon/kaggle-notebooks (nfl-big-data-bowl-2020): the encoder is fit on the training frame's column
    # `f`; `f` loops over the test frame's columns, it picks a column, not held-out rows.
    "column_named_by_a_loop_over_test_columns": """\
        from sklearn import preprocessing
        for f in X_test.columns:
            if X_test[f].dtype == "object":
                lbl = preprocessing.LabelEncoder()
                lbl.fit(list(X_trn_df[f]) + [-999])
                X_test[f] = lbl.transform(list(X_test[f]))
        """,
    # simisimon/kaggle-notebooks (nyc-taxi): one encoder over train and test concatenated, column by column.
    "label_encoder_over_train_and_test_concatenated_by_column": """\
        import pandas as pd
        from sklearn.preprocessing import LabelEncoder
        label_encoder = LabelEncoder()
        big_df = pd.concat((train, test), axis=0, sort=True)
        for label_feature in label_features:
            big_df[label_feature] = label_encoder.fit_transform(big_df[label_feature].values)
        """,
    # simisimon/kaggle-notebooks (u-s-pppm ensemble): each model's test predictions min-max scaled to blend them.
    "test_predictions_min_max_scaled_to_blend": """\
        import numpy as np
        from sklearn.preprocessing import MinMaxScaler
        pred1 = np.mean(predictions, axis=0)
        pred2 = np.mean(inference_model(test, seed), axis=1)
        MMscaler = MinMaxScaler()
        pred1_mm = MMscaler.fit_transform(pred1.reshape(-1, 1)).reshape(-1)
        pred2_mm = MMscaler.fit_transform(pred2.reshape(-1, 1)).reshape(-1)
        test_scores = MinMaxScaler().fit_transform(clf.predict_proba(X_test))
        final = pred1_mm * 0.66 + pred2_mm * 0.33
        """,
    # simisimon/kaggle-notebooks (two-sigma): the old Imputer with axis=1 fills each row with its own mean.
    "row_wise_imputer_on_test": """\
        from sklearn.preprocessing import Imputer
        fill_NaN = Imputer(missing_values=np.nan, strategy="mean", axis=1)
        train_imputed = fill_NaN.fit_transform(train_df[features_to_use])
        test_imputed = fill_NaN.fit_transform(test_df[features_to_use])
        """,
    # BloodAxe/Kaggle-2020-Alaska2 (make_submissions_xgb_gs.py): stacking trains a second model on the first
    # models' holdout predictions; there the holdout set is the training data.
    "holdout_predictions_are_the_training_data_of_a_second_model": """\
        import numpy as np
        from sklearn.preprocessing import StandardScaler
        x, y = get_x_y_for_stacking(holdout_predictions)
        x = np.column_stack([x, quality_h])
        sc = StandardScaler()
        x = sc.fit_transform(x)
        x_test = sc.transform(x_test)
        random_search.fit(x, y)
        """,
    # BloodAxe/Kaggle-2020-Alaska2 (make_submissions_lda.py): experiments switched off by hand.
    "fits_under_if_false": """\
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler
        if False:
            sc = StandardScaler()
            X_val = sc.fit_transform(X_val)
        if True:
            pass
        else:
            X_test = PCA(16).fit_transform(X_test)
        """,
}


@pytest.mark.parametrize("source", SPLIT_QUIET.values(), ids=SPLIT_QUIET.keys())
def test_quiet_when_no_held_out_rows_reach_the_fit(source):
    assert codes(source) == []


def test_fix_for_slices_fits_on_the_training_rows_when_the_bound_is_known_at_the_fit():
    """n_train known before the fit: every row is still transformed, with the training rows' statistics."""
    source = """\
        from sklearn.preprocessing import StandardScaler
        n_train = int(len(data) * 0.8)
        scaler = StandardScaler()
        scaled = scaler.fit_transform(data)
        X_train, X_test = scaled[:n_train], scaled[n_train:]
        """
    [finding] = findings(source)
    assert finding.fix.applicability == "unsafe"
    assert fixed(source) == textwrap.dedent(source)
    assert fixed(source, unsafe=True).splitlines()[3] == "scaled = scaler.fit(data[:n_train]).transform(data)"


def test_fix_for_slices_refits_after_them_when_the_bound_comes_later():
    source = """\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        series = scaler.fit_transform(series)
        split = int(len(series) * 0.7)
        train = series[:split]
        test = series[split:]
        """
    assert fixed(source, unsafe=True).splitlines()[2:] == [
        "split = int(len(series) * 0.7)",
        "train = series[:split]",
        "test = series[split:]",
        "train = scaler.fit_transform(train)",
        "test = scaler.transform(test)",
    ]


def test_no_fix_for_slices_when_the_scaled_series_is_read_after_them():
    """The airline tutorial plots `scaler.inverse_transform(dataset)` later: it must stay the scaled series."""
    source = """\
        from sklearn.preprocessing import MinMaxScaler
        scaler = MinMaxScaler()
        dataset = scaler.fit_transform(dataset)
        train_size = int(len(dataset) * 0.67)
        train, test = dataset[:train_size], dataset[train_size:]
        plt.plot(scaler.inverse_transform(dataset))
        """
    [finding] = findings(source)
    assert finding.fix is None


def test_no_fix_for_a_complement_split():
    """df.sample / df.drop: the training rows are random, they are not known at the fit."""
    [finding] = findings("""\
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler()
        X = scaler.fit_transform(X)
        train = X.sample(frac=0.8)
        test = X.drop(train.index)
        """)
    assert finding.fix is None


def test_quiet_when_train_and_test_are_concatenated_after_the_fit_and_cut_back_apart():
    """simisimon/kaggle-notebooks (titanic-one-feature, mean-median-feature-engineering): the scaler is fit
    on `train` only; train and test are then concatenated for get_dummies and cut back at len(train):
    train[num_list] = scaler.fit_transform(train[num_list]); test[num_list] = scaler.transform(test[num_list]);
    train_test = pd.concat(objs=[train, test]); train = train_test[:train_len]; test = train_test[train_len:]"""
    assert codes("""\
        import pandas as pd
        from sklearn.preprocessing import StandardScaler
        def preprocess(train, test, str_list, num_list):
            scaler = StandardScaler()
            train[num_list] = scaler.fit_transform(train[num_list])
            test[num_list] = scaler.transform(test[num_list])
            train_len = len(train)
            train_test = pd.concat(objs=[train, test], axis=0).reset_index(drop=True)
            train_test = pd.get_dummies(train_test, columns=str_list)
            train = train_test[:train_len]
            test = train_test[train_len:]
            return train, test
        """) == []


def test_fit_on_train_and_test_concatenated_reports_when_cut_back_apart():
    """simisimon/kaggle-notebooks (spaceship-titanic-lightautoml): the scaler is fit on the concatenation:
    train_test[num_list] = scaler.fit_transform(train_test[num_list]); train = train_test[:train_len]; ..."""
    assert codes("""\
        import pandas as pd
        from sklearn.preprocessing import StandardScaler
        train_len = len(train)
        train_test = pd.concat(objs=[train, test], axis=0).reset_index(drop=True)
        scaler = StandardScaler()
        train_test[num_list] = scaler.fit_transform(train_test[num_list])
        train = train_test[:train_len]
        test = train_test[train_len:]
        """) == [(6, "TL003")]


def test_docs_slicing_example_reports_and_its_use_instead_is_quiet():
    """The page's second Example / Use instead pair (test_rule_docs runs the first)."""
    import re

    from trainlint.rules.tl003_scaler_fit_on_eval_data import ScalerFitOnEvalData
    page = ScalerFitOnEvalData.page()

    def blocks(heading):
        section = page.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        return re.findall(r"```python\n(.*?)```", section, re.S)

    bad, good = blocks("Example")[1], blocks("Use instead")[1]
    assert [f.code for f in findings(bad)] == ["TL003"]
    assert findings(good) == []
