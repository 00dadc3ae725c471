"""Baselines on the same footing as the radiomics models (npc_radiomics.validation.baselines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from npc_radiomics.base.errors import InputError
from npc_radiomics.metrics import auc
from npc_radiomics.modelling.design import Design
from npc_radiomics.modelling.fits import nested_cv_fold
from npc_radiomics.modelling.folds import context_rows, fit_context_selection, outer_folds
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import model_pipeline
from npc_radiomics.modelling.zoo import parse_search_spaces
from npc_radiomics.validation import baselines as bl

SETTINGS = TuningSettings.defaults(
    n_trials=2, inner_folds=3, outer_folds=3, mrmr_k=8, lasso_folds=3, n_lambdas=10
)
SEED = 11


def planted_design(signal: str, n_train=90, n_test=40, n_features=20, seed=0) -> Design:
    """Features ``T2__f*`` and ``T2__original_shape_MeshVolume``; ``signal`` says which
    carry the label: ``features`` (five texture features, volume pure noise) or
    ``volume`` (the volume alone)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.r_[np.arange(n_train) % 2, np.arange(n_test) % 2]
    x = rng.normal(size=(n, n_features))
    log_volume = rng.normal(8.0, 0.6, n)
    if signal == "features":
        x[:, :5] += 1.2 * y[:, None]
    else:
        log_volume += 0.9 * y
        x[:, :3] = log_volume[:, None] + rng.normal(0, 0.05, (n, 3))  # shape features track it
    ids = [f"P{k:03d}" for k in range(n)]
    X = pd.DataFrame(x, index=ids, columns=[f"T2__f{k:02d}" for k in range(n_features)])
    X["T2__original_shape_MeshVolume"] = np.exp(log_volume)
    X.index.name = "patient_id"
    cohort = pd.Series(["train"] * n_train + ["test"] * n_test, index=X.index)
    return Design(X=X, y=pd.Series(y, index=X.index), cohort=cohort)


def radiomics_predictions(design: Design, model="logistic_regression"):
    """Nested CV (real selection + Optuna tuning per outer fold) and a final fit of one
    radiomics model, as the workflow's rules make them."""
    spaces = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["search_spaces"]
    space = parse_search_spaces(spaces, [model])[model]
    X, y = design.train()
    folds = [nested_cv_fold(model, space, X, y, k, SETTINGS, SEED) for k in range(3)]
    nested = pd.concat([pred for pred, _ in folds], ignore_index=True)
    _INFOS[id(design)] = [info for _, info in folds]
    params = folds[0][1]["params"]
    pipe = model_pipeline(model, params, SETTINGS.selection(SEED), SEED).fit(X, y.to_numpy())
    final = pd.DataFrame(
        {
            "patient_id": design.X.index,
            "cohort": design.cohort.to_numpy(),
            "model": model,
            "probability": pipe.predict_proba(design.X)[:, 1],
            "label": design.y.to_numpy(),
        }
    )
    return final, nested


_INFOS: dict[int, list[dict]] = {}


def inner_scores(design: Design, model="logistic_regression") -> pd.DataFrame:
    """Rule inner_scores on the design: the chosen model's inner out-of-fold scores per
    outer fold, from each fold's tuned parameters and the fold's selection cache."""
    X, y = design.train()
    parts = []
    for info in _INFOS[id(design)]:
        k = info["outer_fold"]
        cache = fit_context_selection(X, y, SETTINGS, SEED, f"outer{k}")
        X_k, y_k = context_rows(X, y, SETTINGS, SEED, f"outer{k}")
        scores = bl.inner_oof_scores(model, info["params"], cache, X_k, y_k, SETTINGS, SEED)
        parts.append(scores.assign(outer_fold=k))
    return pd.concat(parts, ignore_index=True)


def _baselines(design, final, nested, chosen="logistic_regression"):
    rows = bl.baseline_rows(design, chosen, final, nested, "T2__original_shape_MeshVolume")
    folds = outer_folds(design.y[design.cohort == "train"], SETTINGS, SEED)
    return bl.run_baselines(rows, folds, None, 0.1, 0.1)


def _nested_auc(nested, model):
    g = nested[nested["model"] == model]
    return np.mean([auc(f["label"], f["probability"]) for _, f in g.groupby("outer_fold")])


@pytest.fixture(scope="module")
def feature_signal():
    design = planted_design("features")
    final, nested = radiomics_predictions(design)
    return design, final, nested, _baselines(design, final, nested)


def test_radiomics_beats_volume_when_the_features_carry_the_signal(feature_signal):
    design, final, nested, (b_final, b_nested, records, notes) = feature_signal
    radiomics = _nested_auc(nested, "logistic_regression")
    volume = _nested_auc(b_nested, bl.VOLUME)
    assert radiomics > 0.8 and volume < 0.65, (radiomics, volume)
    test = b_final[(b_final["cohort"] == "test") & (b_final["model"] == bl.VOLUME)]
    assert auc(test["label"], test["probability"]) < 0.7
    assert notes == {bl.CLINICAL: "no clinical table in this run", bl.COMBINED: notes[bl.COMBINED]}
    assert [r["model"] for r in records] == [bl.VOLUME]


def test_volume_baseline_matches_radiomics_when_only_volume_carries_signal():
    design = planted_design("volume", seed=1)
    final, nested = radiomics_predictions(design)
    _, b_nested, _, _ = _baselines(design, final, nested)
    radiomics = _nested_auc(nested, "logistic_regression")
    volume = _nested_auc(b_nested, bl.VOLUME)
    assert volume > 0.7
    assert abs(volume - radiomics) < 0.08, (radiomics, volume)


def test_baselines_use_the_radiomics_outer_folds_and_training_rows_only(feature_signal):
    design, final, nested, _ = feature_signal
    rows = bl.baseline_rows(
        design, "logistic_regression", final, nested, "T2__original_shape_MeshVolume"
    )
    seen = []

    def spy(train_rows):
        seen.append(set(train_rows.index))
        return lambda new: np.full(len(new), 0.5)

    folds = outer_folds(design.y[design.cohort == "train"], SETTINGS, SEED)
    _, b_nested, _ = bl.procedure_predictions("spy", spy, rows, folds)
    train = set(design.cohort.index[design.cohort == "train"])
    assert all(s <= train for s in seen)  # test patients never reach a fit
    assert seen[-1] == train  # the final fit: every training patient
    for k in range(3):  # the same held-out patients as the radiomics model's outer folds
        held = set(b_nested.loc[b_nested["outer_fold"] == k, "patient_id"])
        assert held == set(nested.loc[nested["outer_fold"] == k, "patient_id"])
        assert not held & seen[k]


def test_combined_model_uses_out_of_fold_scores_on_train(feature_signal):
    design, final, nested, _ = feature_signal
    rows = bl.baseline_rows(
        design, "logistic_regression", final, nested, "T2__original_shape_MeshVolume"
    )
    oof = nested.set_index("patient_id")["probability"]
    train = rows[rows["cohort"] == "train"]
    assert np.allclose(train["score"], oof.reindex(train.index))
    test = rows[rows["cohort"] == "test"]
    f = final.set_index("patient_id")["probability"]
    assert np.allclose(test["score"], f.reindex(test.index))


def test_clinical_and_combined_baselines_with_a_clinical_variable(feature_signal):
    design, final, nested, _ = feature_signal
    rng = np.random.default_rng(5)
    clinical = pd.DataFrame(
        {
            "patient_id": design.X.index,
            "ebv": design.y.to_numpy() * 1.5 + rng.normal(size=len(design.y)),
            "age": rng.normal(50, 10, len(design.y)),
        }
    )
    rows = bl.baseline_rows(
        design,
        "logistic_regression",
        final,
        nested,
        "T2__original_shape_MeshVolume",
        clinical,
        (["ebv", "age"], []),
    )
    folds = outer_folds(design.y[design.cohort == "train"], SETTINGS, SEED)
    b_final, b_nested, records, notes = bl.run_baselines(
        rows, folds, ["ebv", "age"], 0.1, 0.1, inner_scores(design)
    )
    assert not notes
    assert sorted(b_final["model"].unique()) == sorted(bl.BASELINES)
    assert _nested_auc(b_nested, bl.CLINICAL) > 0.75  # ebv carries signal
    # combined = radiomics score + ebv: better than the clinical model, as good as radiomics
    combined = _nested_auc(b_nested, bl.COMBINED)
    assert combined > _nested_auc(b_nested, bl.CLINICAL) + 0.05
    assert combined > _nested_auc(nested, "logistic_regression") - 0.03
    tests, reclass = bl.comparisons(b_final, b_nested, "logistic_regression", final, nested, 200, 0)
    assert set(tests["comparator"]) == set(bl.BASELINES)
    assert set(tests["cohort"]) == {"train", "test"}
    train_reclass = reclass[reclass["cohort"] == "train"].iloc[0]
    assert train_reclass["idi"] > 0 and train_reclass["nri"] > 0
    assert train_reclass["nri_ci_low"] <= train_reclass["nri"] <= train_reclass["nri_ci_high"]


def test_reclassification_by_hand():
    y = np.array([1, 1, 0, 0])
    old = np.array([0.5, 0.5, 0.5, 0.5])
    new = np.array([0.7, 0.4, 0.2, 0.6])
    r = bl.reclassification(y, new, old, n_bootstrap=50, seed=0)
    # events: one up one down -> 0; non-events: one down one up -> 0
    assert r["nri"] == 0 and r["nri_events"] == 0
    assert r["idi"] == pytest.approx((0.55 - 0.5) - (0.4 - 0.5))
    same = bl.reclassification(y, old, old, n_bootstrap=10)
    assert same["nri"] == 0 and same["idi"] == 0


def test_bad_volume_names_the_patient():
    design = planted_design("features")
    design.X.loc["P004", "T2__original_shape_MeshVolume"] = 0.0
    with pytest.raises(InputError, match="patient P004"):
        bl.baseline_rows(
            design, None, pd.DataFrame(), pd.DataFrame(), "T2__original_shape_MeshVolume"
        )


def test_no_volume_column_is_a_reported_gap():
    design = planted_design("features")
    rows = bl.baseline_rows(design, None, pd.DataFrame(), pd.DataFrame(), "T2__nope")
    folds = outer_folds(design.y[design.cohort == "train"], SETTINGS, SEED)
    final, nested, records, notes = bl.run_baselines(rows, folds, None, 0.1, 0.1)
    assert final.empty and records == [] and "no volume column" in notes[bl.VOLUME]


def test_table_has_column(tmp_path):
    pd.DataFrame({"a": [1], "T2__v": [2.0]}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"a": [1], "T2__v": [2.0]}).to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        assert bl.table_has_column(tmp_path / name, "T2__v")
        assert not bl.table_has_column(tmp_path / name, "T2__w")


def test_combined_baseline_stacks_inner_scores_never_the_leaky_outer_ones(
    feature_signal, monkeypatch
):
    """A planted leak: the training rows' outer out-of-fold scores (what outer fold k's
    combined fit used to see: scores of fold models trained with fold k's held-out
    patients) are replaced by the labels themselves. The combined fit of fold k must see
    only the inner out-of-fold scores within fold k's training part."""
    design, final, nested, _ = feature_signal
    clinical = pd.DataFrame(
        {"patient_id": design.X.index, "ebv": np.random.default_rng(2).normal(size=len(design.y))}
    )
    rows = bl.baseline_rows(
        design,
        "logistic_regression",
        final,
        nested,
        "T2__original_shape_MeshVolume",
        clinical,
        (["ebv"], []),
    )
    train = rows["cohort"] == "train"
    leak = np.where(rows.loc[train, "label"] == 1, 0.999, 0.001)
    rows.loc[train, "score"] = leak  # the planted leak
    inner = inner_scores(design)
    # each inner score comes from a model fitted inside the outer fold's training part
    folds = outer_folds(design.y[design.cohort == "train"], SETTINGS, SEED)
    train_ids = rows.index[train]
    for k, (tr, va) in enumerate(folds):
        g = inner[inner["outer_fold"] == k]
        assert set(g["patient_id"]) == set(train_ids[tr])  # every training row, once
        assert not set(g["patient_id"]) & set(train_ids[va])
    seen = []
    real = bl.combined_procedure

    def spy(variables, entry_p, stay_p):
        fit = real(variables, entry_p, stay_p)

        def record(fit_rows):
            seen.append(fit_rows[["score"]].copy())
            return fit(fit_rows)

        return record

    monkeypatch.setattr(bl, "combined_procedure", spy)
    _, b_nested, _, notes = bl.run_baselines(rows, folds, ["ebv"], 0.1, 0.1, inner)
    assert bl.COMBINED not in notes
    assert len(seen) == len(folds) + 1  # one fit per outer fold, then the final fit
    for k, fit_rows in enumerate(seen[:-1]):
        expected = inner[inner["outer_fold"] == k].set_index("patient_id")["probability"]
        assert np.allclose(fit_rows["score"], expected.reindex(fit_rows.index))
        assert not np.isin(fit_rows["score"], [0.999, 0.001]).any()  # the leak never seen
    # without the leak in the fits, the held-out AUC reflects the real scores, not 1.0
    combined = b_nested[b_nested["model"] == bl.COMBINED]
    assert combined["probability"].notna().all()
    # the same run without inner scores cannot stack: a reported gap, never the leak
    _, _, _, notes = bl.run_baselines(rows, folds, ["ebv"], 0.1, 0.1, None)
    assert "inner out-of-fold" in notes[bl.COMBINED]


def test_the_baseline_logistic_models_are_unpenalised(feature_signal):
    """A nomogram is a maximum-likelihood logistic regression: the volume baseline's
    predictions equal statsmodels' unpenalised Logit fit."""
    import statsmodels.api as sm

    design, *_ = feature_signal
    rows = pd.DataFrame(
        {
            "volume": design.X["T2__original_shape_MeshVolume"],
            "label": design.y,
        }
    )
    predict = bl.volume_procedure()(rows)
    x = sm.add_constant(np.log(rows["volume"]).to_numpy())
    mle = sm.Logit(rows["label"].to_numpy(), x).fit(disp=0)
    assert np.allclose(predict(rows), mle.predict(x), atol=1e-5)
