"""Tuning, nested CV and final fit: no leakage, determinism, parallel workers."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from npc_radiomics.modelling.design import Design
from npc_radiomics.modelling.fits import final_cv_threshold, fit_final, nested_cv_fold
from npc_radiomics.modelling.folds import outer_folds
from npc_radiomics.modelling.rules import final_model
from npc_radiomics.modelling.selection import selection_pipeline
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import best_params, finished_slots, trials_table, tune
from npc_radiomics.modelling.zoo import parse_search_spaces

SEED = 20251121
SETTINGS = TuningSettings.defaults(
    n_trials=4, inner_folds=3, outer_folds=3, mrmr_k=8, lasso_folds=3, n_lambdas=8
)
SPACES = parse_search_spaces(
    {
        "logistic_regression": {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
        "knn": {
            "n_neighbors": {"type": "int", "low": 3, "high": 15},
            "weights": {"type": "categorical", "choices": ["uniform", "distance"]},
        },
    },
    ["logistic_regression", "knn"],
)


def make_design(seed=0, n_train=72, n_test=30, n_ext=24, p=30) -> Design:
    """Train / test / external ND cohorts; 'leak' predicts the label in the test set only."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test + n_ext
    X = rng.normal(size=(n, p))
    y = (X[:, 0] - X[:, 1] + rng.normal(scale=0.8, size=n) > 0).astype(int)
    cohort = np.array(["train"] * n_train + ["test"] * n_test + ["ND"] * n_ext)
    leak = rng.normal(size=n)
    test = cohort == "test"
    leak[test] = y[test] * 3.0 + rng.normal(scale=0.1, size=test.sum())
    ids = [f"P{i:03d}" for i in range(n)]
    df = pd.DataFrame(X, columns=[f"T1__f{i:02d}" for i in range(p)], index=ids)
    df["T2__leak"] = leak
    df.index.name = "patient_id"
    return Design(X=df, y=pd.Series(y, index=df.index), cohort=pd.Series(cohort, index=df.index))


class Spy(TransformerMixin, BaseEstimator):
    """Records the patient IDs of every fit; passes data through (class-level record,
    because clone() copies the step)."""

    seen: list[list[str]] = []

    def fit(self, X, y=None):
        Spy.seen.append(list(X.index))
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_ if input_features is None else np.asarray(input_features)


def spied_selection() -> Pipeline:
    steps = selection_pipeline(SETTINGS.mrmr_k, SETTINGS.lasso_folds, SETTINGS.n_lambdas).steps
    return Pipeline([("spy", Spy())] + steps)


@pytest.fixture(scope="module")
def design():
    return make_design()


def test_no_test_or_external_patient_reaches_a_fit(design):
    Spy.seen.clear()
    X, y = design.train()
    train_ids = set(X.index)
    study, _ = tune(
        "logistic_regression",
        SPACES["logistic_regression"],
        X,
        y,
        SETTINGS,
        SEED,
        selection=spied_selection(),
    )
    best = best_params(study, "logistic_regression", SETTINGS.n_trials)
    _, pred = fit_final(
        "logistic_regression", best["params"], design, SETTINGS, SEED, selection=spied_selection()
    )
    assert Spy.seen and all(set(ids) <= train_ids for ids in Spy.seen)
    assert set(pred["cohort"]) == {"train", "test", "ND"}  # ... yet every cohort is predicted

    Spy.seen.clear()
    nested_cv_fold(
        "logistic_regression",
        SPACES["logistic_regression"],
        X,
        y,
        1,
        SETTINGS,
        SEED,
        selection=spied_selection(),
    )
    outer_train = set(X.index[outer_folds(y, SETTINGS, SEED)[1][0]])
    assert Spy.seen and all(set(ids) <= outer_train for ids in Spy.seen)


def test_threshold_is_youden_on_cv_predictions_of_the_final_configuration(design):
    from sklearn.base import clone

    from npc_radiomics.metrics import youden_threshold

    best = {"params": {"n_neighbors": 7, "weights": "distance"}}
    pipe, _, record = final_model("knn", best, design, SETTINGS, SEED)
    X, y = design.train()
    # Independent recomputation: the final pipeline's own configuration refitted on each
    # outer fold's training rows, pooled out-of-fold probabilities, Youden's J.
    prob = pd.Series(np.nan, index=X.index)
    for tr, va in outer_folds(y, SETTINGS, SEED):
        fold_pipe = clone(pipe).fit(X.iloc[tr], y.iloc[tr].to_numpy())
        prob.iloc[va] = fold_pipe.predict_proba(X.iloc[va])[:, 1]
    assert record["threshold"] == pytest.approx(youden_threshold(y.to_numpy(), prob.to_numpy()))
    assert record["n"] == len(X) and "final configuration" in record["source"]
    # kNN with distance weights: the refit predicts its own training patients as 0 or 1,
    # so a threshold from those in-sample scores would be meaningless; this one is not.
    assert 0 < record["threshold"] < 1


def test_test_cohort_labels_change_no_threshold(design):
    best = {"params": {"C": 0.5}}
    _, _, one = final_model("logistic_regression", best, design, SETTINGS, SEED)
    test = (design.cohort == "test").to_numpy()
    flipped = Design(X=design.X, y=design.y.where(~test, 1 - design.y), cohort=design.cohort)
    _, pred, two = final_model("logistic_regression", best, flipped, SETTINGS, SEED)
    assert one == two
    assert (pred.query("cohort == 'test'")["label"].to_numpy() == 1 - design.y[test]).all()
    X, y = design.train()
    record, oof = final_cv_threshold("logistic_regression", best["params"], X, y, SETTINGS, SEED)
    assert record == one and set(oof["patient_id"]) == set(X.index)


def test_feature_informative_only_in_test_is_never_selected(design):
    Xte, yte = design.subset("test")
    assert roc_auc_score(yte, Xte["T2__leak"]) > 0.95  # the plant is real
    X, y = design.train()
    pipe, _ = fit_final("knn", {"n_neighbors": 5}, design, SETTINGS, SEED)
    assert "T2__leak" not in pipe[:-1].get_feature_names_out(design.features)
    for fold in range(SETTINGS.outer_folds):
        _, info = nested_cv_fold("knn", SPACES["knn"], X, y, fold, SETTINGS, SEED)
        assert "T2__leak" not in info["selected_features"]


def test_same_seed_same_features_params_and_predictions(design):
    X, y = design.train()
    runs = []
    for _ in range(2):
        study, _ = tune("knn", SPACES["knn"], X, y, SETTINGS, SEED)
        best = best_params(study, "knn", SETTINGS.n_trials)
        pipe, pred = fit_final("knn", best["params"], design, SETTINGS, SEED)
        table = trials_table(finished_slots(study), "knn")
        runs.append((best, list(pipe[:-1].get_feature_names_out(design.features)), pred, table))
    (b1, f1, p1, t1), (b2, f2, p2, t2) = runs
    assert b1 == b2 and f1 == f2
    pd.testing.assert_frame_equal(p1, p2)
    pd.testing.assert_frame_equal(t1, t2)
    n1, i1 = nested_cv_fold("knn", SPACES["knn"], X, y, 0, SETTINGS, SEED)
    n2, i2 = nested_cv_fold("knn", SPACES["knn"], X, y, 0, SETTINGS, SEED)
    pd.testing.assert_frame_equal(n1, n2)
    assert i1 == i2
    other, _ = tune("knn", SPACES["knn"], X, y, SETTINGS, SEED + 1)
    assert trials_table(finished_slots(other), "knn")["params"].tolist() != t1["params"].tolist()


def _table(study):
    t = trials_table(finished_slots(study), "knn")
    return t[["slot", "state", "auc", "fold_aucs", "params"]]


def test_parallel_workers_reproduce_a_single_worker(design, tmp_path):
    """Slots drawn from earlier batches only: 1 worker, 2 concurrent, 2 sequential agree."""
    X, y = design.train()
    settings = TuningSettings.defaults(**{**SETTINGS.__dict__, "n_trials": 6, "batch_size": 2})

    def run(journal, worker):
        return tune(
            "knn",
            SPACES["knn"],
            X,
            y,
            settings,
            SEED,
            storage_path=journal,
            worker=worker,
            poll_s=0.05,
        )[0]

    single = _table(run(tmp_path / "a" / "study.journal", "0"))
    with ThreadPoolExecutor(2) as pool:
        studies = list(pool.map(lambda w: run(tmp_path / "b" / "study.journal", w), ["0", "1"]))
    parallel = _table(studies[0])
    run(tmp_path / "c" / "study.journal", "0")
    sequential = _table(run(tmp_path / "c" / "study.journal", "1"))  # finds all slots done
    assert len(single) == 6
    pd.testing.assert_frame_equal(single, parallel)
    pd.testing.assert_frame_equal(single, sequential)
    pd.testing.assert_frame_equal(_table(studies[1]), parallel)  # both workers see all slots


def test_stale_claim_of_a_dead_worker_is_taken_over(design, tmp_path):
    X, y = design.train()
    journal = tmp_path / "study.journal"
    settings = TuningSettings.defaults(**{**SETTINGS.__dict__, "n_trials": 2})
    _, name = tune("knn", SPACES["knn"], X, y, settings, SEED, storage_path=journal)
    claim = tmp_path / "claims" / name / "slot00002.claim"
    claim.write_text("dead-host 1\n")
    old = time.time() - 3600
    os.utime(claim, (old, old))
    more = TuningSettings.defaults(**{**settings.__dict__, "n_trials": 3})
    study, _ = tune(
        "knn", SPACES["knn"], X, y, more, SEED, storage_path=journal, stale_after_s=60, poll_s=0.05
    )
    assert sorted(finished_slots(study)) == [0, 1, 2]


class _Broken(BaseEstimator):
    """A classifier whose fit raises what it is given (a bug, or a numerical failure)."""

    def __init__(self, error=None):
        self.error = error

    def fit(self, X, y):
        raise self.error

    def predict_proba(self, X):  # pragma: no cover - never reached
        raise AssertionError


@pytest.mark.parametrize(
    "error",
    [
        NameError("name 'coef' is not defined"),
        TypeError("fit() got an unexpected keyword"),
        AttributeError("'NoneType' object has no attribute 'shape'"),
        KeyError("n_neighbors"),
        ImportError("no module named lightgbm"),
    ],
)
def test_a_programming_error_inside_fit_stops_the_run(design, monkeypatch, error):
    import npc_radiomics.modelling.studies as tuning

    monkeypatch.setattr(tuning, "build_model", lambda *a, **k: _Broken(error))
    X, y = design.train()
    with pytest.raises(type(error)):
        tune("knn", SPACES["knn"], X, y, SETTINGS, SEED)


def test_numerical_failures_are_failed_trials_counted_with_their_reason(design, monkeypatch):
    import npc_radiomics.modelling.studies as tuning
    from npc_radiomics.base.errors import ModelFitError
    from npc_radiomics.modelling.zoo import build_model

    calls = {"n": 0}

    def flaky(model, params, seed, n_jobs=1):
        calls["n"] += 1
        if params["n_neighbors"] > 8:
            return _Broken(ValueError("degenerate fold"))
        return build_model(model, params, seed, n_jobs)

    monkeypatch.setattr(tuning, "build_model", flaky)
    X, y = design.train()
    settings = TuningSettings.defaults(**{**SETTINGS.__dict__, "n_trials": 6})
    study, _ = tune("knn", SPACES["knn"], X, y, settings, SEED)
    done = finished_slots(study)
    table = trials_table(done, "knn")
    failed = table[table["state"] == "FAIL"]
    assert 0 < len(failed) < 6 and set(failed["error"]) == {"ValueError: degenerate fold"}
    best = best_params(study, "knn", settings.n_trials)
    assert best["n_failed"] == len(failed)
    assert best["failure_reasons"] == {"ValueError: degenerate fold": len(failed)}

    # every trial failing numerically: a failed model, not a crash
    monkeypatch.setattr(tuning, "build_model", lambda *a, **k: _Broken(ValueError("no")))
    study, _ = tune("knn", SPACES["knn"], X, y, SETTINGS, SEED + 5)
    with pytest.raises(ModelFitError, match="every tuning trial failed"):
        best_params(study, "knn", SETTINGS.n_trials)


def test_non_finite_features_are_dropped_or_imputed_on_training_rows_only(design):
    from npc_radiomics.modelling.selection import NonFiniteFilter, non_finite_tables

    X = design.X.copy()
    train = (design.cohort == "train").to_numpy()
    tr_ids = X.index[train]
    # f00 (informative) has a few inf / NaN in training: imputed, still usable;
    # f01 (informative) is non-finite in 30% of training patients: dropped;
    # f02 is NaN in every held-out patient only: kept (held-out rows decide nothing).
    X.loc[tr_ids[:2], "T1__f00"] = np.inf
    X.loc[tr_ids[2:4], "T1__f00"] = -np.inf
    X.loc[tr_ids[4], "T1__f00"] = np.nan
    X.loc[tr_ids[: int(0.3 * len(tr_ids))], "T1__f01"] = np.inf
    X.loc[X.index[~train], "T1__f02"] = np.nan
    broken = Design(X=X, y=design.y, cohort=design.cohort)
    pipe, pred = fit_final("logistic_regression", {"C": 1.0}, broken, SETTINGS, SEED)
    assert np.isfinite(pred["probability"]).all()
    kept = list(pipe.named_steps["non_finite"].get_feature_names_out(broken.features))
    assert "T1__f01" not in kept and {"T1__f00", "T1__f02"} <= set(kept)
    assert "T1__f00" in pipe[:-1].get_feature_names_out(broken.features)  # imputed, selected
    record, _ = final_cv_threshold(
        "logistic_regression", {"C": 1.0}, *broken.train(), SETTINGS, SEED
    )
    assert record["threshold"] is not None
    features, patients = non_finite_tables(X, design.cohort, SETTINGS.max_non_finite_share)
    table = features.set_index("feature")
    assert table.loc["T1__f00", ["n_inf_train", "n_nan_train", "action"]].tolist() == [
        4,
        1,
        "imputed",
    ]
    assert table.loc["T1__f01", "action"] == "dropped"
    assert table.loc["T1__f02", ["n_nan_train", "n_nan_other", "action"]].tolist() == [
        0,
        (~train).sum(),
        "held-out only",
    ]
    assert set(patients["patient_id"]) == set(tr_ids[: int(0.3 * len(tr_ids))]) | set(
        X.index[~train]
    ) | set(tr_ids[:5])
    # the filter decides from its fit rows only
    f = NonFiniteFilter(0.1).fit(X.iloc[train])
    assert f.support_.sum() == X.shape[1] - 1
