"""Cross-validation folds and the fold-cached selection (pipeline steps 10, 12, 13).

Selection (impute, variance filter, scaler, mRMR, LASSO) depends on the fold's rows
only, never on the classifier's hyper-parameters. So it is fitted once per inner fold
(``fit_fold_selections``) and every trial fits just the classifier on the cached,
already-selected matrices: same result as refitting the whole pipeline per trial,
an order of magnitude faster (benchmarks/bench_tuning.py). A :class:`SelectionCache`
holds one CV context's fits (the whole training set, or an outer fold's training part)
under a key of its rows, folds, settings and seed (``selection_key``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from npc_radiomics.base.config import derived_seed
from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.zoo import (
    build_model,
    fit_for_prediction,
)

log = logging.getLogger(__name__)


def hash_data(h, X: pd.DataFrame, y, folds) -> None:
    """Feed the design matrix, labels and folds into the hash ``h``."""
    numeric = [c for c, dtype in X.dtypes.items() if pd.api.types.is_numeric_dtype(dtype)]
    h.update(np.ascontiguousarray(X[numeric].to_numpy(dtype=float)).tobytes())
    if len(numeric) < X.shape[1]:  # ComBat's centre column (text)
        h.update(json.dumps(X.drop(columns=numeric).astype(str).to_numpy().tolist()).encode())
    h.update(json.dumps(list(map(str, X.columns))).encode())
    h.update(json.dumps(list(map(str, X.index))).encode())
    h.update(np.asarray(y, dtype=np.int64).tobytes())
    for tr, va in folds:
        h.update(np.asarray(tr, dtype=np.int64).tobytes() + b"|" + np.asarray(va).tobytes())


def check_fold_sizes(y, settings: TuningSettings, nested: bool) -> None:
    """InputError unless every CV level has at least one patient per class and fold.

    Levels: outer folds (nested only), inner folds on the (outer-)training rows, and the
    LASSO's CV folds on an inner fold's training rows. Checked before any tuning.
    """
    counts = pd.Series(np.asarray(y)).value_counts()
    if len(counts) < 2:
        raise InputError(f"only one outcome class among the {len(y)} training patients")
    smallest, label = int(counts.min()), counts.idxmin()
    levels = []
    if nested:
        levels.append(("tuning.outer_folds", settings.outer_folds))
    # The LASSO's own CV adapts its fold count to the smallest class (at least 2 folds).
    levels += [
        ("tuning.inner_folds", settings.inner_folds),
        ("selection.lasso.cv_folds", min(2, settings.lasso_folds)),
    ]
    n = smallest
    for key, folds in levels:
        if n < folds:
            raise InputError(
                f"config key {key}: {folds} folds but only {n} patient(s) with label {label} "
                f"at that CV level ({smallest} in the training set); lower it or add patients"
            )
        n -= -(-n // folds)  # patients of that class left in a training part: n - ceil(n/k)


def stratified_folds(y, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified K-fold (train, validation) row indices."""
    y = np.asarray(y)
    skf = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros((len(y), 1)), y))


def outer_folds(y, settings: TuningSettings, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outer folds of nested CV on the training set (the same for every model)."""
    return stratified_folds(y, settings.outer_folds, derived_seed(seed, "outer_folds"))


@dataclass
class FoldCache:
    """One inner fold with its selection fitted once: the classifier's inputs."""

    X_train: np.ndarray  # (n_train, n_selected), already selected and scaled
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    features: list[str]


def fit_fold_selections(X: pd.DataFrame, y, folds, selection: Pipeline) -> list[FoldCache]:
    """Fit a clone of ``selection`` on each fold's training rows; cache the matrices."""
    y = np.asarray(y)
    cache = []
    for i, (tr, va) in enumerate(folds):
        t0 = time.perf_counter()
        sel = clone(selection).fit(X.iloc[tr], y[tr])
        names = list(sel.get_feature_names_out(list(X.columns)))
        cache.append(
            FoldCache(sel.transform(X.iloc[tr]), y[tr], sel.transform(X.iloc[va]), y[va], names)
        )
        log.info(
            "fold %d/%d: selection fitted on %d patients -> %d features (%.1f s)",
            i + 1,
            len(folds),
            len(tr),
            len(names),
            time.perf_counter() - t0,
        )
    return cache


@dataclass
class SelectionCache:
    """The selection of one CV context fitted once, for every model (rule ``cv_selection``).

    ``context`` is ``full`` (the whole training set) or ``outer<k>`` (the training part of
    outer fold k). ``folds`` are the context's inner folds with the selection fitted on
    each fold's training rows (what tuning needs), ``refit`` the selection fitted on all
    the context's rows (what the context's model is fitted behind). ``key`` hashes the
    rows, labels, inner folds, selection settings and seed it was fitted on: a model's job
    uses the cache only if its own inputs give the same key.
    """

    context: str
    key: str
    folds: list[FoldCache]
    refit: Pipeline


def selection_key(X: pd.DataFrame, y, folds, settings: TuningSettings, seed: int) -> str:
    """What a :class:`SelectionCache` depends on: data, folds, selection settings, seed."""
    h = hashlib.sha256()
    hash_data(h, X, y, folds)
    h.update(json.dumps([seed, settings.__dict__], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def context_rows(X: pd.DataFrame, y: pd.Series, settings: TuningSettings, seed: int, context):
    """The training rows of a CV context: all of them (``full``) or outer fold k's
    training part (``outer<k>``)."""
    if context == "full":
        return X, y
    if not context.startswith("outer") or not context[5:].isdigit():
        raise ValueError(f"unknown CV context {context!r}")
    folds = outer_folds(y, settings, seed)
    fold = int(context[5:])
    if not 0 <= fold < len(folds):
        raise InputError(f"outer fold {fold} does not exist ({len(folds)} outer folds)")
    tr, _ = folds[fold]
    return X.iloc[tr], y.iloc[tr]


def inner_folds(y, settings: TuningSettings, seed: int, context: str):
    """The inner folds of tuning in ``context`` (seeded by the context's name)."""
    return stratified_folds(y, settings.inner_folds, derived_seed(seed, "inner_folds", context))


def fit_context_selection(
    X: pd.DataFrame, y: pd.Series, settings: TuningSettings, seed: int, context: str
) -> SelectionCache:
    """Rule ``cv_selection``: the selection of ``context`` on its inner folds and on all its
    rows (X, y: the whole training set)."""
    X_c, y_c = context_rows(X, y, settings, seed, context)
    folds = inner_folds(y_c, settings, seed, context)
    selection = settings.selection(seed)
    cache = fit_fold_selections(X_c, y_c, folds, selection)
    refit = clone(selection).fit(X_c, np.asarray(y_c))
    return SelectionCache(context, selection_key(X_c, y_c, folds, settings, seed), cache, refit)


def check_cache(cache: SelectionCache | None, X, y, folds, settings, seed, context):
    """``cache`` if it was fitted on exactly these rows, folds and settings, else an error
    (a stale cache would silently tune on other data)."""
    if cache is None:
        return None
    key = selection_key(X, y, folds, settings, seed)
    if cache.context != context or cache.key != key:
        raise RuntimeError(
            f"selection cache of {cache.context} ({cache.key}) does not match "
            f"{context} ({key}): rerun rule cv_selection"
        )
    return cache


def pipeline_on_selection(
    model: str, params: dict, fitted: Pipeline, X, y, seed: int, n_jobs: int = 1
) -> Pipeline:
    """The fitted selection ``fitted`` (a copy) followed by the classifier fitted on its
    output: the same pipeline as fitting :func:`model_pipeline` on (X, y), without
    refitting the selection (every step's fit_transform is its fit, then transform)."""
    import copy

    clf = fit_for_prediction(build_model(model, params, seed, n_jobs), fitted.transform(X), y)
    return Pipeline([*copy.deepcopy(fitted).steps, ("model", clf)])


def save_selection_cache(cache: SelectionCache, path) -> None:
    import joblib

    joblib.dump(cache, path)


def load_selection_cache(path) -> SelectionCache | None:
    """The cache at ``path`` (None for no path)."""
    if not path:
        return None
    import joblib

    return joblib.load(path)
