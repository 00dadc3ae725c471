"""Clinical analysis checked against statsmodels and scipy called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from npc_radiomics.base.errors import InputError
from npc_radiomics.evaluation import clinical

CONTINUOUS = ["age", "ki67", "ebv_dna", "alb", "tc", "ldh", "wbc", "tk1", "lym", "d_dimer", "neut"]
CATEGORICAL = ["gender", "t_stage", "n_stage", "clinical_stage"]
BIOMARKERS = ["ebv_dna", "ldh", "clinical_stage"]


def clinical_table(n: int = 173, seed: int = 3, signal: float = 1.0) -> pd.DataFrame:
    """Demo-like clinical table (the paper's Table 1 ranges); WBC and NEUT carry
    ``signal`` (lower in responders), the rest is noise. 70/30 train/test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    d = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "response": y,
            "age": rng.normal(52, 12, n).round(),
            "ki67": np.clip(rng.normal(0.56, 0.19, n), 0.01, 0.99),
            "ebv_dna": rng.lognormal(6, 1.5, n),
            "alb": rng.normal(46, 5, n),
            "tc": rng.normal(5, 1, n),
            "ldh": rng.normal(190, 50, n),
            "wbc": rng.normal(7, 2.2, n) - 1.2 * signal * y,
            "tk1": rng.lognormal(-0.5, 0.8, n),
            "lym": rng.normal(2, 0.5, n),
            "d_dimer": rng.lognormal(-0.8, 0.8, n),
            "neut": rng.normal(4.6, 1.8, n) - 0.9 * signal * y,
            "gender": rng.integers(0, 2, n),
            "t_stage": rng.choice([1, 2, 3, 4], n, p=[0.4, 0.2, 0.35, 0.05]),
            "n_stage": rng.choice([0, 1, 2, 3], n, p=[0.1, 0.17, 0.7, 0.03]),
            "clinical_stage": rng.choice([1, 2, 3, 4], n, p=[0.07, 0.1, 0.78, 0.05]),
        }
    )
    d["cohort"] = np.where(np.arange(n) < int(0.7 * n), "train", "test")
    return d


def test_univariate_logistic_matches_statsmodels():
    d = clinical_table()
    train = d[d["cohort"] == "train"]
    table2 = clinical.univariate_logistic(train, "response", CONTINUOUS + CATEGORICAL)
    assert table2["variable"].tolist() == CONTINUOUS + CATEGORICAL
    for var in ("wbc", "ebv_dna", "t_stage"):
        fit = sm.Logit(train["response"], sm.add_constant(train[[var]])).fit(disp=0)
        row = table2.set_index("variable").loc[var]
        ci = fit.conf_int().loc[var]
        assert row["log_or"] == pytest.approx(fit.params[var], rel=1e-6)
        assert row["log_or_ci_low"] == pytest.approx(ci[0], rel=1e-6)
        assert row["log_or_ci_high"] == pytest.approx(ci[1], rel=1e-6)
        assert row["or"] == pytest.approx(np.exp(fit.params[var]), rel=1e-6)
        assert row["or_ci_high"] == pytest.approx(np.exp(ci[1]), rel=1e-6)
        assert row["p_value"] == pytest.approx(fit.pvalues[var], rel=1e-6)
    assert table2.set_index("variable").loc["wbc", "p_value"] < 0.1  # the planted signal


def test_univariate_separation_gives_nan_and_note():
    d = clinical_table(60)
    d["leaky"] = d["response"] * 10.0  # perfectly separates the outcome
    row = clinical.univariate_logistic(d, "response", ["leaky"]).iloc[0]
    assert np.isnan(row["p_value"]) and "separation" in row["note"]


def test_compare_continuous_chooses_by_normality():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 60)
    p, name = clinical.compare_continuous(a, b)
    assert name == "t-test" and p == pytest.approx(stats.ttest_ind(a, b).pvalue)
    a, b = rng.lognormal(0, 1.2, 60), rng.lognormal(0.5, 1.2, 60)
    p, name = clinical.compare_continuous(a, b)
    assert name == "Mann-Whitney U"
    assert p == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert clinical.compare_continuous(a, np.array([]))[1].startswith("not tested")


def test_compare_categorical_chooses_by_expected_counts():
    p, name = clinical.compare_categorical(np.array([[40, 30], [35, 45]]))
    assert name == "chi-square (Yates)"
    assert p == pytest.approx(stats.chi2_contingency([[40, 30], [35, 45]]).pvalue)
    p, name = clinical.compare_categorical(np.array([[8, 2], [1, 5]]))
    assert name == "Fisher exact" and p == pytest.approx(0.034965034965)
    small = np.array([[3, 5], [5, 8], [50, 44], [1, 5]])
    p1, name = clinical.compare_categorical(small, seed=1)
    assert name == "Fisher-Freeman-Halton (MC)"
    assert p1 == clinical.compare_categorical(small, seed=1)[0]  # seeded
    # an absent level (a 0 row) is dropped, not tested as an expected count of 0
    p, name = clinical.compare_categorical(np.array([[40, 30], [35, 45], [0, 0]]))
    assert name == "chi-square (Yates)"
    # a sparse 3 x 2 table scipy answers with a one-element array (a small external centre)
    p, name = clinical.compare_categorical(np.array([[0, 1], [1, 1], [1, 0]]))
    assert name == "Fisher-Freeman-Halton (MC)" and 0.0 <= p <= 1.0


def test_table1_layout_and_counts():
    d = clinical_table()
    t1 = clinical.table1(d, "response", CONTINUOUS, CATEGORICAL)
    for c in ("train", "test"):
        for s in ("all", "non_cr", "cr", "p", "test"):
            assert f"{c}_{s}" in t1.columns
    age = t1[t1["variable"] == "age"].iloc[0]
    train = d[d["cohort"] == "train"]
    assert age["train_all"] == f"{train['age'].mean():.2f} ± {train['age'].std():.2f}"
    stage = t1[(t1["variable"] == "t_stage") & (t1["level"] != "")]
    assert stage["level"].tolist() == ["1", "2", "3", "4"]
    counts = stage["train_all"].str.extract(r"^(\d+) ")[0].astype(int)
    assert counts.sum() == len(train)
    header = t1[(t1["variable"] == "t_stage") & (t1["level"] == "")].iloc[0]
    assert 0 <= header["train_p"] <= 1 and header["train_test"]


def test_stepwise_selects_planted_predictors_and_matches_direct_fit():
    d = clinical_table(400, seed=5, signal=1.5)
    train = d[d["cohort"] == "train"]
    result = clinical.stepwise_logistic(train, "response", ["wbc", "neut", "age", "tc"], 0.1, 0.1)
    assert {"wbc", "neut"} <= set(result.selected)
    assert result.steps["action"].iloc[0] == "enter"
    fit = sm.Logit(train["response"], sm.add_constant(train[result.selected])).fit(disp=0)
    coef = result.coefficients.set_index("variable")
    for v in result.selected:
        assert coef.loc[v, "log_or"] == pytest.approx(fit.params[v], rel=1e-6)
        assert coef.loc[v, "p_value"] == pytest.approx(fit.pvalues[v], rel=1e-6)
    preds = clinical.clinical_model_predictions(result, d, "response")
    assert list(preds.columns) == ["patient_id", "cohort", "model", "probability", "label"]
    np.testing.assert_allclose(
        preds.loc[preds["cohort"] == "train", "probability"], fit.predict(), rtol=1e-8
    )


def radiomics_scores(d: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A radiomics model's predictions for the patients of ``d``, mildly informative."""
    rng = np.random.default_rng(seed)
    return d[["patient_id", "cohort"]].assign(
        probability=np.clip(0.5 + 0.3 * (d["response"] - 0.5) + rng.normal(0, 0.2, len(d)), 0, 1),
        label=d["response"],
    )


def test_no_variable_passing_entry_is_reported_not_raised():
    d = clinical_table(signal=0.0, seed=11)
    rad = radiomics_scores(d, seed=0)
    res = clinical.clinical_analysis(
        d, "response", CONTINUOUS, CATEGORICAL, BIOMARKERS, entry_p=1e-6, radiomics=rad
    )
    assert res.stepwise.model is None and res.stepwise.selected == []
    assert "no clinical variable had univariate p < 1e-06" in res.stepwise.note
    assert res.clinical_predictions["probability"].isna().all()
    assert set(res.delong_tests["comparator"]) == set(BIOMARKERS)
    assert res.delong_tests["p_value"].notna().all()


def test_clinical_analysis_end_to_end():
    d = clinical_table(signal=1.5, seed=2)
    rad = radiomics_scores(d, seed=1)
    oof = rad[rad["cohort"] == "train"]
    res = clinical.clinical_analysis(
        d, "response", CONTINUOUS, CATEGORICAL, BIOMARKERS, radiomics=rad, radiomics_oof=oof
    )
    assert res.stepwise.selected  # WBC / NEUT enter
    aucs = res.comparator_aucs.set_index(["comparator", "cohort"])
    assert set(aucs.index.get_level_values(0)) == set(BIOMARKERS) | {"clinical"}
    assert aucs.loc[("clinical", "train"), "auc"] > 0.6
    tests = res.delong_tests
    assert len(tests) == 2 * (len(BIOMARKERS) + 1)  # train and test
    from npc_radiomics.metrics import delong_test

    row = tests[(tests["comparator"] == "ldh") & (tests["cohort"] == "test")].iloc[0]
    test = d[d["cohort"] == "test"]
    score = res.biomarker_direction["ldh"] * test["ldh"].to_numpy()
    direct = delong_test(test["response"], rad.loc[test.index, "probability"], score)
    assert row["p_value"] == pytest.approx(direct.p_value)


def test_biomarker_direction_is_fixed_on_train():
    d = clinical_table(signal=1.5, seed=2)
    scores, direction = clinical.biomarker_scores(d, "response", ["wbc"])
    assert direction["wbc"] == -1  # lower WBC in responders
    aucs = clinical.comparator_aucs(scores).set_index("cohort")
    assert aucs.loc["train", "auc"] > 0.5


def test_one_class_cohort_gives_nan_and_note():
    d = clinical_table()
    d.loc[d["cohort"] == "test", "response"] = 1
    scores, _ = clinical.biomarker_scores(d, "response", ["ldh"])
    aucs = clinical.comparator_aucs(scores).set_index("cohort")
    assert np.isnan(aucs.loc["test", "auc"]) and aucs.loc["test", "note"]


def test_label_mismatch_raises():
    d = clinical_table(80)
    scores, _ = clinical.biomarker_scores(d, "response", ["ldh"])
    rad = d[["patient_id", "cohort"]].assign(probability=0.5, label=1 - d["response"])
    with pytest.raises(InputError, match="label"):
        clinical.delong_versus(rad, scores)


def test_merge_split_and_bad_input():
    d = clinical_table(30)
    split = d[["patient_id", "cohort"]].iloc[:20]
    merged = clinical.merge_split(d.drop(columns="cohort"), split)
    assert len(merged) == 20 and "cohort" in merged
    with pytest.raises(InputError, match="no row for patient"):
        clinical.merge_split(d.iloc[:10].drop(columns="cohort"), split)
    bad = d.assign(gender=np.where(d["gender"] == 1, "M", "F"))
    with pytest.raises(InputError, match="numerically coded"):
        clinical.univariate_logistic(bad, "response", ["gender"])


def test_training_comparisons_use_out_of_fold_predictions_and_holm():
    from statsmodels.stats.multitest import multipletests

    from npc_radiomics.metrics import auc

    d = clinical_table(signal=1.5, seed=2)
    train = d["cohort"] == "train"
    rng = np.random.default_rng(7)
    # in-sample radiomics predictions on train are perfect; the out-of-fold ones are not
    rad = d[["patient_id", "cohort"]].assign(
        probability=np.where(
            train, d["response"], np.clip(0.5 + 0.3 * (d["response"] - 0.5), 0, 1)
        ).astype(float),
        label=d["response"],
    )
    n_train = int(train.sum())
    y_train = d.loc[train, "response"].to_numpy()
    noisy = 0.5 + 0.2 * (y_train - 0.5) + rng.normal(0, 0.3, n_train)
    oof = d.loc[train, ["patient_id"]].assign(probability=np.clip(noisy, 0, 1), label=y_train)
    res = clinical.clinical_analysis(
        d, "response", CONTINUOUS, CATEGORICAL, BIOMARKERS, radiomics=rad, radiomics_oof=oof, seed=3
    )
    tests = res.delong_tests
    tr = tests[tests["cohort"] == "train"]
    assert len(tr) == len(BIOMARKERS) + 1
    assert tr["auc_model"].to_numpy() == pytest.approx(auc(oof["label"], oof["probability"]))
    assert (tr["auc_model"] < 0.99).all()  # never the in-sample fit
    assert tr["predictions"].str.startswith("out-of-fold").all()
    # the clinical model on train: cross-validated (stepwise redone per fold), not in-sample
    cv = clinical.clinical_cv_predictions(
        d[train], "response", CONTINUOUS + CATEGORICAL, 0.1, 0.1, 5, seed=3
    )
    clin = tr[tr["comparator"] == "clinical"].iloc[0]
    assert clin["auc_comparator"] == pytest.approx(auc(cv["label"], cv["probability"]))
    in_sample = res.clinical_predictions[res.clinical_predictions["cohort"] == "train"]
    assert clin["auc_comparator"] < auc(in_sample["label"], in_sample["probability"])
    # Holm over the whole family, both p-values kept
    expected = multipletests(tests["p_value"], method="holm")[1]
    np.testing.assert_allclose(tests["p_holm"], expected, rtol=1e-12)
    assert (tests["p_holm"] >= tests["p_value"]).all()


def test_delong_tables_carry_the_ci_of_the_auc_difference():
    from npc_radiomics.metrics import delong_test

    d = clinical_table(signal=1.5, seed=2)
    rad = radiomics_scores(d, seed=1)
    res = clinical.clinical_analysis(
        d, "response", CONTINUOUS, CATEGORICAL, BIOMARKERS, radiomics=rad
    )
    tests = res.delong_tests
    assert tests[["difference_ci_low", "difference_ci_high"]].notna().all().all()
    row = tests[(tests["comparator"] == "ebv_dna") & (tests["cohort"] == "test")].iloc[0]
    test = d[d["cohort"] == "test"]
    score = res.biomarker_direction["ebv_dna"] * test["ebv_dna"].to_numpy()
    direct = delong_test(test["response"], rad.loc[test.index, "probability"], score)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(
        (direct.ci_low, direct.ci_high)
    )
    assert row["difference_ci_low"] < row["difference"] < row["difference_ci_high"]
