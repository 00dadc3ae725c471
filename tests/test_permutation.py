"""Negative control: the whole procedure on permuted labels (validation.permutation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.modelling.fits import nested_cv_fold
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.zoo import parse_search_spaces
from npc_radiomics.validation import permutation as pm

SETTINGS = TuningSettings.defaults(
    n_trials=2, inner_folds=2, outer_folds=3, mrmr_k=6, lasso_folds=2, n_lambdas=6
)


def _table(n=60, n_features=12, signal=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = pd.Series(np.arange(n) % 2, index=[f"P{k:03d}" for k in range(n)], name="label")
    X = pd.DataFrame(rng.normal(size=(n, n_features)), index=y.index)
    X.columns = [f"T2__f{k}" for k in range(n_features)]
    X.iloc[:, :4] += signal * y.to_numpy()[:, None]
    return X, y


MODELS = ["knn", "logistic_regression"]


def _spaces(models=MODELS):
    spaces = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["search_spaces"]
    return parse_search_spaces(spaces, models)


def test_permuted_runs_never_see_the_real_labels():
    X, y = _table(signal=1.5)
    seen = []

    def spy(model, space, X_, y_, fold, settings, seed, n_jobs=1, cache=None):
        seen.append(y_.copy())
        return nested_cv_fold(
            model, space, X_, y_, fold, settings, seed, n_jobs=n_jobs, cache=cache
        )

    runs = [
        pm.permuted_procedure(MODELS, _spaces(), X, y, k, SETTINGS, 7, fold_fn=spy) for k in (0, 1)
    ]
    # every configured model in every outer fold of every permutation
    assert len(seen) == 2 * SETTINGS.outer_folds * len(MODELS)
    for labels in seen:
        assert list(labels.index) == list(y.index)
        assert (labels.to_numpy() != y.to_numpy()).sum() > 10  # shuffled, not the real ones
        assert labels.sum() == y.sum()  # same class counts
    per_perm = SETTINGS.outer_folds * len(MODELS)
    assert all((s.to_numpy() == seen[0].to_numpy()).all() for s in seen[:per_perm])
    assert not (seen[0].to_numpy() == seen[-1].to_numpy()).all()
    # the procedure's row first, then one row per model
    for rows in runs:
        assert [r["model"] for r in rows] == [PROCEDURE, *MODELS]
        assert set(rows[0]["fold_models"].split(";")) <= set(MODELS)
    # with a strong planted signal, the real-label run is far above the permuted ones
    _, _, real = pm.procedure_run(MODELS, _spaces(), X, y, SETTINGS, 7)
    assert real["auc"] > 0.85
    assert all(rows[0]["auc_mean"] < real["auc"] - 0.2 for rows in runs)


def test_a_permuted_run_repeats_the_real_procedure(monkeypatch):
    """The permutation statistic is the headline's: with the identity permutation, one
    permutation job gives exactly the procedure's AUC that the workflow's per-model
    nested-CV jobs (rules cv_selection + nested_cv_fold) and rule choose_model give."""
    from npc_radiomics.evaluation.performance import nested_model_choice
    from npc_radiomics.modelling.folds import fit_context_selection

    X, y = _table(signal=0.6, seed=4)
    preds, infos = [], []
    for fold in range(SETTINGS.outer_folds):  # the real run, job by job
        cache = fit_context_selection(X, y, SETTINGS, 11, f"outer{fold}")
        for model in MODELS:
            pred, info = nested_cv_fold(
                model, _spaces()[model], X, y, fold, SETTINGS, 11, cache=cache
            )
            preds.append(pred)
            infos.append(info)
    real = nested_model_choice(infos, pd.concat(preds, ignore_index=True))
    monkeypatch.setattr(pm, "permuted_labels", lambda y, seed, k: y)
    rows = pm.permuted_procedure(MODELS, _spaces(), X, y, 0, SETTINGS, 11)
    assert rows[0]["model"] == PROCEDURE
    assert rows[0]["auc_mean"] == pytest.approx(real["auc"], abs=1e-12)
    assert rows[0]["fold_models"] == ";".join(f["model"] for f in real["folds"])


def test_null_table_permutations_centre_on_one_half():
    X, y = _table(n=60, signal=0.0, seed=3)
    rows = [pm.permuted_procedure(MODELS, _spaces(), X, y, k, SETTINGS, 5)[0] for k in range(6)]
    aucs = [r["auc_mean"] for r in rows]
    assert abs(np.mean(aucs) - 0.5) < 0.07, aucs
    assert len(set(aucs)) > 3  # different shuffles give different runs


def test_the_permutation_models_switch_is_gone():
    """Every permutation runs every configured model: no ``permutation.models`` switch."""
    from npc_radiomics.base.config import load_yaml, validate_config

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    assert "models" not in cfg["permutation"]
    cfg["permutation"]["models"] = "chosen"
    with pytest.raises(Exception, match="models"):
        validate_config(cfg, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_permutation_p_value_and_summary():
    null = pd.DataFrame(
        {
            "model": ["a"] * 4 + ["b"] * 4,
            "permutation": [0, 1, 2, 3] * 2,
            "auc_mean": [0.4, 0.5, 0.55, 0.6, 0.5, 0.7, 0.8, 0.9],
            "n_folds": 3,
            "fold_aucs": "",
        }
    )
    null.loc[null["model"] == "b", "model"] = PROCEDURE
    summary = pm.permutation_summary(null, {"a": 0.9, PROCEDURE: 0.7})
    assert summary["model"].iloc[0] == PROCEDURE  # the tested statistic first
    assert (summary["p_value_min"] == 1 / 5).all()
    s = summary.set_index("model")
    s.loc["b"] = s.loc[PROCEDURE]
    assert s.loc["a", "p_value"] == pytest.approx(1 / 5)
    assert s.loc["b", "p_value"] == pytest.approx((1 + 3) / 5)
    assert s.loc["a", "null_mean"] == pytest.approx(0.5125)


def test_permutation_labels_are_seeded():
    y = pd.Series(np.arange(30) % 2, index=[f"P{k}" for k in range(30)])
    a, b = pm.permuted_labels(y, 1, 0), pm.permuted_labels(y, 1, 0)
    assert (a == b).all() and not (a == pm.permuted_labels(y, 1, 1)).all()


def test_null_figure(tmp_path):
    null = pd.DataFrame(
        {"model": "a", "permutation": range(5), "auc_mean": np.linspace(0.4, 0.6, 5)}
    )
    summary = pm.permutation_summary(null, {"a": 0.8})
    pm.plot_null_distribution(null, summary, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
