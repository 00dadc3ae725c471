"""The novelty flag: Mahalanobis distance (Ledoit-Wolf covariance of the training patients,
in the space the classifier sees) with a threshold at the 99th percentile of the training
patients' leave-one-out distances; stored in the bundle as plain numbers, never refitted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import LedoitWolf
from test_bundle import CONFIG, PARAMS, SETTINGS, _design, _fit, _tables

from npc_radiomics.deploy.bundle import MANIFEST, load_bundle, write_bundle
from npc_radiomics.deploy.novelty import (
    NOVELTY_QUANTILE,
    conformal_threshold,
    fit_novelty,
    novelty_scores,
)
from npc_radiomics.deploy.predict import predictions_table


def _bundle(tmp_path, X, y):
    pipe = _fit(X=X, y=y)
    thresholds, metrics, split, zscore, provenance = _tables(tmp_path)
    directory = tmp_path / "bundle"
    write_bundle(
        directory,
        pipeline=pipe,
        model="logistic_regression",
        choice={"model": "logistic_regression"},
        thresholds=thresholds,
        metrics=metrics,
        split=split,
        settings=SETTINGS,
        config=CONFIG,
        zscore_path=zscore,
        params_path=PARAMS,
        feature_provenance=provenance,
        train_X=X.set_index("patient_id"),
    )
    return pipe, directory


def test_the_threshold_is_the_99th_percentile_of_leave_one_out_distances():
    rng = np.random.default_rng(0)
    Z = rng.multivariate_normal([1.0, -2.0, 0.0], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 0.5]], 60)
    reference = fit_novelty(Z, ["a", "b", "c"])
    # Independently: each patient against scikit-learn's Ledoit-Wolf fit of the others
    # (LedoitWolf.mahalanobis gives squared distances).
    loo = [
        np.sqrt(LedoitWolf().fit(np.delete(Z, i, axis=0)).mahalanobis(Z[i : i + 1])[0])
        for i in range(len(Z))
    ]
    # The conformal rank ceil((n + 1) q) of 60 distances is beyond n: the largest.
    assert reference["threshold"] == pytest.approx(max(loo), rel=1e-10)
    assert conformal_threshold(np.arange(1.0, 201.0), NOVELTY_QUANTILE) == 199.0
    whole = LedoitWolf().fit(Z)
    score, _ = novelty_scores(reference, Z[:5])
    np.testing.assert_allclose(score**2, whole.mahalanobis(Z[:5]), rtol=1e-10)
    # Plain numbers, JSON as is.
    assert json.loads(json.dumps(reference)) == reference


def test_at_most_about_one_percent_of_training_like_patients_are_flagged():
    """New patients drawn like 150 training ones are flagged at most at about the nominal
    1 % (the conformal rank of the leave-one-out distances; measured 0.6 % over 20
    training sets x 500 new patients); a far-out one always is."""
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.6, 0.2, 0.0], [0.6, 1.0, 0.1, 0.0], [0.2, 0.1, 1.0, 0.4],
                    [0.0, 0.0, 0.4, 1.0]])  # fmt: skip
    rates = []
    for _ in range(20):
        reference = fit_novelty(rng.multivariate_normal(np.zeros(4), cov, 150), list("abcd"))
        _, flag = novelty_scores(reference, rng.multivariate_normal(np.zeros(4), cov, 500))
        rates.append(flag.mean())
    assert 0.001 < np.mean(rates) < 0.015, rates
    far = novelty_scores(reference, np.array([[6.0, -6.0, 6.0, -6.0]]))[1]
    assert far[0] == 1.0


def test_degenerate_references_give_nan_with_a_reason():
    none = fit_novelty(np.zeros((30, 0)), [])
    assert none["location"] is None and "no feature" in none["reason"]
    few = fit_novelty(np.ones((3, 2)), ["a", "b"])
    assert few["location"] is None and "fewer than" in few["reason"]
    score, flag = novelty_scores(none, np.zeros((2, 0)))
    assert np.isnan(score).all() and np.isnan(flag).all()
    reference = fit_novelty(np.random.default_rng(2).normal(size=(40, 2)), ["a", "b"])
    score, flag = novelty_scores(reference, np.array([[np.nan, 0.0], [0.0, 0.0]]))
    assert np.isnan(score[0]) and np.isnan(flag[0]) and flag[1] == 0.0


def test_a_planted_far_out_patient_is_flagged_through_the_bundle_without_refitting(
    tmp_path, monkeypatch
):
    X, y = _design(n=80, seed=3)
    pipe, directory = _bundle(tmp_path, X, y)
    manifest = json.loads((directory / MANIFEST).read_text())
    reference = manifest["novelty"]
    selected = list(pipe[:-1].get_feature_names_out(list(X.columns[1:])))
    assert reference["features"] == selected and reference["n_train"] == 80
    assert len(reference["precision"]) == len(selected) and reference["threshold"] > 0
    loaded = load_bundle(directory)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__}.fit called while predicting")

    monkeypatch.setattr(LedoitWolf, "fit", refuse)
    for _, step in loaded.pipeline.steps:
        for name in ("fit", "fit_transform"):
            if hasattr(type(step), name):
                monkeypatch.setattr(type(step), name, refuse)
    # New patients drawn like the training ones, and one 8 SD out on every feature.
    new, _ = _design(n=30, seed=4)
    new["patient_id"] = [f"N{i:03d}" for i in range(30)]
    far = new.iloc[[0]].copy()
    far["patient_id"] = "FAR"
    far.iloc[0, 1:] = 8.0
    table = predictions_table(loaded, pd.concat([new, far], ignore_index=True))
    rows = table.set_index("patient_id")
    assert rows.loc["FAR", "novelty_flag"] == 1
    assert rows.loc["FAR", "novelty_score"] > 3 * reference["threshold"]
    typical = rows.drop(index="FAR")
    # Training-like patients: few flagged (at most about 1 / 81 on average over training
    # sets of 80; one set's threshold is itself a noisy estimate).
    assert typical["novelty_flag"].sum() <= 3
    assert (typical["novelty_score"] < rows.loc["FAR", "novelty_score"]).all()
