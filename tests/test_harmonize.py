"""ComBat across centres as a modelling-pipeline step: it removes a planted centre shift,
equals combatlearn's own output, never fits on test/external rows, and survives a bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from combatlearn import ComBat
from combatlearn.core import ComBatModel

from npc_radiomics.base.errors import InputError
from npc_radiomics.checks import check_harmonization_config
from npc_radiomics.deploy.pipeline_file import dump_pipeline, load_pipeline_file
from npc_radiomics.modelling.design import Design
from npc_radiomics.modelling.fits import final_cv_threshold, fit_final, nested_cv_fold
from npc_radiomics.modelling.harmonize import (
    CENTRE_COLUMN,
    COVARIATE_PREFIX,
    CentreComBat,
    covariate_columns,
)
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import model_pipeline
from npc_radiomics.modelling.zoo import parse_search_spaces
from npc_radiomics.validation.centres import centre_predictability

SEED = 20251121
SETTINGS = TuningSettings.defaults(
    n_trials=2, inner_folds=3, outer_folds=3, mrmr_k=6, lasso_folds=3, n_lambdas=6, combat=True
)
SPACES = parse_search_spaces(
    {"logistic_regression": {"C": {"type": "float", "low": 1e-2, "high": 10.0, "log": True}}},
    ["logistic_regression"],
)


def shifted_cohort(seed=0, n_per_centre=40, p=12, centres=("A", "B", "C", "D")):
    """Features with a multiplicative + additive shift per centre, and a label signal."""
    rng = np.random.default_rng(seed)
    rows, labels, centre = [], [], []
    for k, c in enumerate(centres):
        X = rng.normal(size=(n_per_centre, p))
        y = (X[:, 0] + rng.normal(scale=0.7, size=n_per_centre) > 0).astype(int)
        X = X * (1.0 + 0.8 * k) + 2.5 * k  # the scanner: scale and offset per centre
        rows.append(X)
        labels.append(y)
        centre += [c] * n_per_centre
    ids = [f"P{i:03d}" for i in range(len(centre))]
    X = pd.DataFrame(np.vstack(rows), index=ids, columns=[f"T1__f{j:02d}" for j in range(p)])
    X.index.name = "patient_id"
    return X, pd.Series(np.concatenate(labels), index=ids), pd.Series(centre, index=ids)


def with_centre(X, centre):
    out = X.copy()
    out[CENTRE_COLUMN] = centre.reindex(X.index).astype(str)
    return out


def test_planted_centre_shift_is_removed():
    X, _, centre = shifted_cohort(centres=("A", "B"), n_per_centre=60)
    before = centre_predictability(X, centre, SEED)
    # ComBat refitted inside each CV fold (harmonising everyone first, then
    # cross-validating, pushes the AUC below 0.5: each held-out fold's mean is the
    # mirror of its training part's).
    after = centre_predictability(X, centre, SEED, harmonise=True)
    assert before["auc"] > 0.8, before
    assert abs(after["auc"] - 0.5) < 0.1, after
    harmonised = CentreComBat().fit_transform(with_centre(X, centre))
    assert list(harmonised.columns) == list(X.columns)  # the centre column is consumed


@pytest.mark.parametrize("covariates", [False, True])
def test_harmonised_training_data_equal_the_library_output(covariates):
    X, y, centre = shifted_cohort(seed=3)
    Xa = with_centre(X, centre)
    cov = None
    if covariates:
        age = pd.Series(np.random.default_rng(1).normal(55, 10, len(X)), index=X.index)
        Xa[f"{COVARIATE_PREFIX}age"] = age
        cov = age.to_frame("age")
    ours = CentreComBat().fit(Xa, y).transform(Xa)
    library = ComBat(batch=centre, continuous_covariates=cov, method="fortin").fit_transform(X)
    np.testing.assert_allclose(ours.to_numpy(), library.to_numpy(), rtol=1e-12, atol=1e-12)


def test_the_outcome_never_shapes_the_harmonisation():
    X, y, centre = shifted_cohort(seed=4)
    Xa = with_centre(X, centre)
    a = CentreComBat().fit(Xa, y).transform(Xa)
    b = CentreComBat().fit(Xa, 1 - y).transform(Xa)
    pd.testing.assert_frame_equal(a, b)


def test_unseen_centre_choices():
    X, _, centre = shifted_cohort(seed=5, centres=("A", "B", "C"))
    seen = centre != "C"
    step = CentreComBat().fit(with_centre(X[seen], centre[seen]))
    unseen = with_centre(X[~seen], centre[~seen])
    prior = step.transform(unseen)
    # the EB prior mean: the training centres' locations and scales weighted by their rows
    w = step.centre_rows_ / step.centre_rows_.sum()
    gamma, delta = w @ step.gamma_, w @ step.delta_
    scale = np.sqrt(step.pooled_var_)
    expected = ((X[~seen] - step.grand_mean_) / scale - gamma) / np.sqrt(delta) * scale
    np.testing.assert_allclose(prior.to_numpy(), (expected + step.grand_mean_).to_numpy())
    none = CentreComBat(unseen="none").fit(with_centre(X[seen], centre[seen]))
    pd.testing.assert_frame_equal(none.transform(unseen), X[~seen])
    with pytest.raises(InputError, match="unseen_centre"):
        CentreComBat(unseen="drop").fit(with_centre(X, centre))


def test_an_unseen_centre_patient_scored_alone_equals_the_same_patient_in_a_batch():
    """The harmonised values of a patient of a centre absent from the fit do not depend on
    who else is scored with it: alone, in a batch of 10, in a batch of 5."""
    X, _, centre = shifted_cohort(seed=8, centres=("A", "B", "C"))
    seen = centre != "C"
    step = CentreComBat().fit(with_centre(X[seen], centre[seen]))
    unseen = with_centre(X[~seen], centre[~seen])
    alone = step.transform(unseen.iloc[:1])
    in_ten = step.transform(unseen.iloc[:10])
    in_five = step.transform(unseen.iloc[[0, 11, 12, 13, 14]])
    np.testing.assert_allclose(alone.to_numpy(), in_ten.iloc[:1].to_numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(alone.to_numpy(), in_five.iloc[:1].to_numpy(), rtol=0, atol=0)
    # and it is harmonised, not left as it is (C's shift is partly removed)
    assert not np.allclose(alone.to_numpy(), X[~seen].iloc[:1].to_numpy())


def test_non_finite_values_stay_for_the_selection_steps():
    X, _, centre = shifted_cohort(seed=6)
    X.iloc[3, 2] = np.nan
    X.iloc[50, 4] = np.inf
    out = CentreComBat().fit_transform(with_centre(X, centre))
    assert np.isnan(out.iloc[3, 2]) and np.isinf(out.iloc[50, 4])
    assert np.isfinite(out.drop(index=[X.index[3], X.index[50]]).to_numpy()).all()


def test_missing_centre_column_is_one_clear_error():
    X, _, _ = shifted_cohort()
    with pytest.raises(InputError, match="__center__"):
        CentreComBat().fit(X)


def combat_design(seed=7):
    """Training centres A, B (train/test), external C and D."""
    X, y, centre = shifted_cohort(seed=seed, n_per_centre=36)
    rng = np.random.default_rng(seed)
    cohort = pd.Series("train", index=X.index)
    pool = centre.isin(["A", "B"]).to_numpy()
    test = pool & (rng.random(len(X)) < 0.3)
    cohort[test] = "test"
    cohort[~pool] = centre[~pool]
    aux = pd.DataFrame({CENTRE_COLUMN: centre})
    return Design(X=X, y=y, cohort=cohort, aux=aux)


def test_no_test_or_external_row_reaches_fit(monkeypatch):
    design = combat_design()
    seen: list[set[str]] = []
    original = ComBatModel.fit

    def spy(self, X, *args, **kwargs):
        seen.append(set(map(str, X.index)))
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(ComBatModel, "fit", spy)
    train = set(design.cohort.index[design.cohort == "train"])
    pipe, pred = fit_final("logistic_regression", {"C": 1.0}, design, SETTINGS, SEED)
    assert pipe.steps[0][0] == "combat" and seen[-1] == train
    X, y = design.train()
    final_cv_threshold("logistic_regression", {"C": 1.0}, X, y, SETTINGS, SEED)
    nested_cv_fold("logistic_regression", SPACES["logistic_regression"], X, y, 0, SETTINGS, SEED)
    assert len(seen) > 1 + SETTINGS.outer_folds  # every fold refits it
    assert all(rows <= train for rows in seen)
    assert any(rows < train for rows in seen)
    # Every cohort was predicted, external centres through their own location/scale,
    # and pooled (two external centres).
    assert pred["cohort"].drop_duplicates().tolist() == ["train", "test", "C", "D", "external"]
    pooled = pred[pred["cohort"] == "external"].set_index("patient_id")["probability"]
    each = pred[pred["cohort"].isin(["C", "D"])].set_index("patient_id")["probability"]
    pd.testing.assert_series_equal(pooled.sort_index(), each.sort_index())
    assert pred["probability"].notna().all()


def test_a_combat_pipeline_round_trips_through_skops(tmp_path):
    design = combat_design(seed=8)
    X, y = design.train()
    pipe = model_pipeline(
        "logistic_regression", {"C": 1.0}, SETTINGS.selection(SEED), 1, n_jobs=1
    ).fit(X, y.to_numpy())
    path = tmp_path / "pipeline.skops"
    dump_pipeline(pipe, path)
    loaded = load_pipeline_file(path)
    everyone = design.model_X
    np.testing.assert_array_equal(
        loaded.predict_proba(everyone)[:, 1], pipe.predict_proba(everyone)[:, 1]
    )
    assert CENTRE_COLUMN in list(loaded.feature_names_in_)


def test_startup_config_checks():
    base = {
        "outcome": {"column": "response"},
        "cohorts": {"train_centers": ["QZ"], "external_centers": ["ND"]},
        "clinical_variables": {"continuous": ["age"], "categorical": ["gender"]},
        "harmonization": {"combat": True, "covariates": []},
    }
    with pytest.raises(InputError, match="two or more training centres") as err:
        check_harmonization_config(base)
    assert "\n" not in str(err.value)
    base["cohorts"]["train_centers"] = ["QZ", "XY"]
    check_harmonization_config(base)
    base["harmonization"]["covariates"] = ["age", "response"]
    with pytest.raises(InputError, match="outcome 'response' must not be a ComBat covariate"):
        check_harmonization_config(base)
    base["harmonization"]["covariates"] = ["bmi"]
    with pytest.raises(InputError, match="not declared"):
        check_harmonization_config(base)
    base["harmonization"] = {"combat": False, "covariates": ["response"]}
    with pytest.raises(InputError, match="must not be"):
        check_harmonization_config(base)


def test_covariate_columns_dummies_and_missing():
    clinical = pd.DataFrame(
        {"age": [50.0, 61.0, 47.0], "gender": ["F", "M", "F"]}, index=["a", "b", "c"]
    )
    cols = covariate_columns(clinical, ["age", "gender"], ["gender"])
    assert list(cols.columns) == [f"{COVARIATE_PREFIX}age", f"{COVARIATE_PREFIX}gender=M"]
    assert cols[f"{COVARIATE_PREFIX}gender=M"].tolist() == [0.0, 1.0, 0.0]
    clinical.loc["b", "age"] = np.nan
    with pytest.raises(InputError, match="missing for patient b"):
        covariate_columns(clinical, ["age"], [])


def test_predict_path_feeds_the_centre_to_a_combat_bundle():
    from types import SimpleNamespace

    from npc_radiomics.deploy.bundle import predict_probabilities

    design = combat_design(seed=9)
    X, y = design.train()
    pipe = model_pipeline(
        "logistic_regression", {"C": 1.0}, SETTINGS.selection(SEED), 1, n_jobs=1
    ).fit(X, y.to_numpy())
    bundle = SimpleNamespace(features=list(pipe.feature_names_in_), pipeline=pipe)
    new = design.X[design.cohort == "D"].reset_index()
    centres = dict.fromkeys(new["patient_id"], "D")
    got = predict_probabilities(bundle, new, centres=centres)
    expected = pipe.predict_proba(design.model_X[design.cohort == "D"])[:, 1]
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(InputError, match="needs each patient's centre"):
        predict_probabilities(bundle, new)
    assert np.array_equal(predict_probabilities(bundle, new.assign(center="D")), expected)


def test_load_design_carries_centre_and_covariates(tmp_path):
    from npc_radiomics.modelling.design import load_design

    X, y, centre = shifted_cohort(seed=10, n_per_centre=6, p=4)
    table = X.reset_index()
    table.to_csv(tmp_path / "features.tsv", sep="\t", index=False)
    split = pd.DataFrame(
        {"patient_id": X.index, "center": centre, "cohort": "train", "label": y.to_numpy()}
    )
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    clinical = pd.DataFrame(
        {"patient_id": X.index, "age": np.arange(len(X)) + 40.0, "gender": ["F", "M"] * 12}
    )
    clinical.to_csv(tmp_path / "clinical.tsv", sep="\t", index=False)
    plain = load_design(tmp_path / "features.tsv", tmp_path / "split.tsv")
    assert plain.aux is None and list(plain.train()[0].columns) == list(X.columns)
    design = load_design(
        tmp_path / "features.tsv",
        tmp_path / "split.tsv",
        combat_covariates=["age", "gender"],
        clinical_path=tmp_path / "clinical.tsv",
        categorical=("gender",),
    )
    Xt, _ = design.train()
    assert design.features == list(X.columns)
    assert list(Xt.columns[len(X.columns) :]) == [
        CENTRE_COLUMN,
        f"{COVARIATE_PREFIX}age",
        f"{COVARIATE_PREFIX}gender=M",
    ]
    assert Xt[CENTRE_COLUMN].tolist() == centre.tolist()


def test_one_fit_centre_is_the_reference_and_unseen_ones_keep_its_scale():
    X, _, centre = shifted_cohort(seed=11, centres=("A", "B"))
    a = centre == "A"
    step = CentreComBat().fit(with_centre(X[a], centre[a]))
    pd.testing.assert_frame_equal(step.transform(with_centre(X[a], centre[a])), X[a])
    # the prior of one reference centre is location 0, scale 1: an unseen centre's rows
    # stay on the reference's scale as they are (nothing estimated from the scored rows)
    moved = step.transform(with_centre(X[~a], centre[~a]))
    np.testing.assert_allclose(moved.to_numpy(), X[~a].to_numpy(), atol=1e-9)
