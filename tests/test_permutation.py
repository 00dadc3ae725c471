"""Negative control: the whole pipeline on permuted labels (validation.permutation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.fits import nested_cv_fold
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.zoo import parse_search_spaces
from npc_radiomics.validation import permutation as pm

SETTINGS = TuningSettings.defaults(
    n_trials=2, inner_folds=2, outer_folds=3, mrmr_k=6, lasso_folds=2, n_lambdas=6
)
MODEL = "logistic_regression"


def _space():
    spaces = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["search_spaces"]
    return parse_search_spaces(spaces, [MODEL])[MODEL]


def _table(n=60, n_features=12, signal=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = pd.Series(np.arange(n) % 2, index=[f"P{k:03d}" for k in range(n)], name="label")
    X = pd.DataFrame(rng.normal(size=(n, n_features)), index=y.index)
    X.columns = [f"T2__f{k}" for k in range(n_features)]
    X.iloc[:, :4] += signal * y.to_numpy()[:, None]
    return X, y


def test_permuted_runs_never_see_the_real_labels():
    X, y = _table(signal=1.5)
    seen = []

    def spy(model, space, X_, y_, fold, settings, seed, n_jobs=1):
        seen.append(y_.copy())
        return nested_cv_fold(model, space, X_, y_, fold, settings, seed, n_jobs=n_jobs)

    rows = [
        pm.permuted_nested_cv(MODEL, _space(), X, y, k, SETTINGS, 7, fold_fn=spy) for k in (0, 1)
    ]
    assert len(seen) == 2 * SETTINGS.outer_folds
    for labels in seen:
        assert list(labels.index) == list(y.index)
        assert (labels.to_numpy() != y.to_numpy()).sum() > 10  # shuffled, not the real ones
        assert labels.sum() == y.sum()  # same class counts
    # each permutation's folds see the same shuffle; two permutations differ
    assert all((s.to_numpy() == seen[0].to_numpy()).all() for s in seen[: SETTINGS.outer_folds])
    assert not (seen[0].to_numpy() == seen[-1].to_numpy()).all()
    # with a strong planted signal, the real-label run is far above the permuted ones
    real = pm.permuted_nested_cv(MODEL, _space(), X, y, 0, SETTINGS, 7, fold_fn=_unpermuted)
    assert real["auc_mean"] > 0.85
    assert all(r["auc_mean"] < real["auc_mean"] - 0.2 for r in rows)


def _unpermuted(model, space, X, y, fold, settings, seed, n_jobs=1):
    """Undo the shuffle: the same procedure on the real labels (the real run)."""
    return nested_cv_fold(model, space, X, _REAL[0], fold, settings, seed, n_jobs=n_jobs)


_REAL = [_table(signal=1.5)[1]]


def test_null_table_permutations_centre_on_one_half():
    X, y = _table(n=60, signal=0.0, seed=3)
    rows = [pm.permuted_nested_cv(MODEL, _space(), X, y, k, SETTINGS, 5) for k in range(8)]
    aucs = [r["auc_mean"] for r in rows]
    assert abs(np.mean(aucs) - 0.5) < 0.05, aucs
    assert len(set(aucs)) > 4  # different shuffles give different runs


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
    s = pm.permutation_summary(null, {"a": 0.9, "b": 0.7}).set_index("model")
    assert s.loc["a", "p_value"] == pytest.approx(1 / 5)
    assert s.loc["b", "p_value"] == pytest.approx((1 + 3) / 5)
    assert s.loc["a", "null_mean"] == pytest.approx(0.5125)


def test_permutation_labels_are_seeded():
    y = pd.Series(np.arange(30) % 2, index=[f"P{k}" for k in range(30)])
    a, b = pm.permuted_labels(y, 1, 0), pm.permuted_labels(y, 1, 0)
    assert (a == b).all() and not (a == pm.permuted_labels(y, 1, 1)).all()


def test_permutation_target(tmp_path):
    (tmp_path / "c.json").write_text('{"model": "knn"}')
    assert pm.permutation_models("chosen", tmp_path / "c.json", ["knn", "svm"]) == ["knn"]
    assert pm.permutation_models("svm", None, ["knn", "svm"]) == ["svm"]
    (tmp_path / "n.json").write_text('{"model": null}')
    assert pm.permutation_models("chosen", tmp_path / "n.json", ["knn"]) == []
    with pytest.raises(InputError, match="mlp"):
        pm.permutation_models("mlp", None, ["knn"])


def test_null_figure(tmp_path):
    null = pd.DataFrame(
        {"model": "a", "permutation": range(5), "auc_mean": np.linspace(0.4, 0.6, 5)}
    )
    summary = pm.permutation_summary(null, {"a": 0.8})
    pm.plot_null_distribution(null, summary, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
