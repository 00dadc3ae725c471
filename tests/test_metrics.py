"""Metrics checked against independent computations (scikit-learn, brute force, resampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import predictions_frame
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

from npc_radiomics import metrics
from npc_radiomics.base.errors import InputError


def scored_cohort(n: int, separation: float, seed: int, decimals: int | None = 2):
    """Labels and probabilities with a tunable signal; rounding creates ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(separation * (y - 0.5) + rng.normal(0, 1, n))))
    return y, (np.round(p, decimals) if decimals is not None else p)


def naive_delong_variance(y, p) -> float:
    """DeLong variance from the O(m n) pairwise kernel, the textbook definition."""
    pos, neg = p[y == 1], p[y == 0]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    return v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decimals", [1, 2, None])
def test_auc_and_auprc_match_sklearn(seed, decimals):
    y, p = scored_cohort(90, 1.5, seed, decimals)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert metrics.average_precision(y, p) == pytest.approx(
        average_precision_score(y, p), abs=1e-12
    )


def test_roc_points_match_sklearn():
    y, p = scored_cohort(60, 1.0, 4)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    points = metrics.roc_curve_points(y, p)
    np.testing.assert_allclose(points["fpr"], fpr)
    np.testing.assert_allclose(points["tpr"], tpr)


@pytest.mark.parametrize("seed", [0, 5])
def test_delong_variance_matches_pairwise_definition(seed):
    y, p = scored_cohort(70, 1.0, seed, 1)  # 1 decimal: many ties
    res = metrics.delong_ci(y, p)
    assert res.variance == pytest.approx(naive_delong_variance(y, p), rel=1e-10)


def test_delong_ci_agrees_with_large_bootstrap():
    y, p = scored_cohort(150, 1.5, 11, None)
    delong = metrics.delong_ci(y, p)
    boot = metrics.bootstrap_ci(y, p, n_bootstrap=4000, seed=3)
    # measured: AUC 0.866, DeLong 0.809-0.924, bootstrap 0.807-0.919, SE 0.0292 vs 0.0293
    assert np.sqrt(delong.variance) == pytest.approx(np.sqrt(boot.variance), rel=0.1)
    assert delong.ci_low == pytest.approx(boot.ci_low, abs=0.02)
    assert delong.ci_high == pytest.approx(boot.ci_high, abs=0.02)
    assert delong.ci_low < delong.auc < delong.ci_high


def test_bootstrap_is_seeded():
    y, p = scored_cohort(50, 1.0, 2)
    a = metrics.bootstrap_ci(y, p, n_bootstrap=300, seed=7)
    b = metrics.bootstrap_ci(y, p, n_bootstrap=300, seed=7)
    c = metrics.bootstrap_ci(y, p, n_bootstrap=300, seed=8)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def paired_permutation_pvalue(y, p1, p2, n_permutations: int, seed: int) -> float:
    """Two-sided p of AUC1 - AUC2 by randomly swapping the two models' (rank-scaled)
    scores within patients: under H0 the two models are exchangeable."""
    r1 = stats.rankdata(p1) / y.size  # AUC is rank-invariant; common scale for swapping
    r2 = stats.rankdata(p2) / y.size
    observed = roc_auc_score(y, r1) - roc_auc_score(y, r2)
    rng = np.random.default_rng(seed)
    swap = rng.integers(0, 2, (n_permutations, y.size)).astype(bool)
    a = np.where(swap, r2, r1)
    b = np.where(swap, r1, r2)
    pos, m, n = y == 1, int(y.sum()), int((1 - y).sum())

    def aucs(scores):
        ranks = stats.rankdata(scores, axis=1)
        return (ranks[:, pos].sum(axis=1) - m * (m + 1) / 2) / (m * n)

    null = aucs(a) - aucs(b)
    return float((np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (n_permutations + 1))


# second model weaker by a varying margin; 2.0 = same strength (H0 true).
# measured DeLong vs permutation p: 0.0299 vs 0.0270, 0.151 vs 0.147, 0.076 vs 0.083,
# 0.443 vs 0.438
@pytest.mark.parametrize(("strength2", "seed"), [(1.5, 0), (1.5, 1), (1.3, 2), (2.0, 2)])
def test_paired_delong_agrees_with_permutation(strength2, seed):
    rng = np.random.default_rng(seed)
    n = 120
    y = rng.integers(0, 2, n)
    signal, shared = y - 0.5, rng.normal(0, 1, n)  # shared noise: correlated models
    p1 = 1 / (1 + np.exp(-(2.0 * signal + shared + rng.normal(0, 0.7, n))))
    p2 = 1 / (1 + np.exp(-(strength2 * signal + shared + rng.normal(0, 0.7, n))))
    test = metrics.delong_test(y, p1, p2)
    perm = paired_permutation_pvalue(y, p1, p2, n_permutations=3000, seed=seed)
    assert test.difference == pytest.approx(roc_auc_score(y, p1) - roc_auc_score(y, p2))
    # the permutation p has Monte Carlo error ~ sqrt(p (1 - p) / 3000) <= 0.009
    assert abs(test.p_value - perm) < 0.02 + 0.1 * perm


def test_delong_test_identical_models():
    y, p = scored_cohort(40, 1.0, 3)
    test = metrics.delong_test(y, p, p)
    assert test.difference == 0 and test.p_value == 1.0


def test_hosmer_lemeshow_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1, 1])
    # 5 groups of 2 by quantiles of p; per group (O - E)^2 / E for events and non-events
    by_hand = [
        0.3**2 / 0.3 + 0.3**2 / 1.7,  # {0.1, 0.2}: O1 = 0, E1 = 0.3
        0.3**2 / 0.7 + 0.3**2 / 1.3,  # {0.3, 0.4}: O1 = 1, E1 = 0.7
        0.1**2 / 1.1 + 0.1**2 / 0.9,  # {0.5, 0.6}: O1 = 1, E1 = 1.1
        0.5**2 / 1.5 + 0.5**2 / 0.5,  # {0.7, 0.8}: O1 = 1, E1 = 1.5
        0.15**2 / 1.85 + 0.15**2 / 0.15,  # {0.9, 0.95}: O1 = 2, E1 = 1.85
    ]
    hl = metrics.hosmer_lemeshow(y, p, groups=5)
    assert hl.df == 3
    assert hl.chi2 == pytest.approx(sum(by_hand), rel=1e-12)  # 1.39977
    assert hl.p_value == pytest.approx(stats.chi2.sf(sum(by_hand), 3), rel=1e-12)
    assert hl.table["n"].tolist() == [2, 2, 2, 2, 2]
    assert hl.table["observed"].tolist() == [0, 1, 1, 1, 2]


def test_hosmer_lemeshow_too_few_groups_is_nan():
    hl = metrics.hosmer_lemeshow([0, 1, 0, 1], [0.3, 0.3, 0.7, 0.7], groups=10)
    # two groups: no test, and no df (g - 2 = 0 is not a degree of freedom to report)
    assert np.isnan(hl.df) and np.isnan(hl.p_value) and "2 risk groups" in hl.note


def test_youden_threshold_maximises_j_on_training():
    y, p = scored_cohort(100, 1.2, 9)
    t = metrics.youden_threshold(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    m = metrics.threshold_metrics(y, p, t)
    assert m["sensitivity"] + m["specificity"] - 1 == pytest.approx(np.max(tpr - fpr))
    assert not np.isin(t, p)  # a midpoint, not a patient's score


def test_youden_thresholds_per_model():
    preds = predictions_table()
    train = preds[preds["cohort"] == "train"]
    thresholds = metrics.youden_thresholds(train)
    assert sorted(thresholds) == ["lr", "svm"]
    svm = train[train["model"] == "svm"]
    assert thresholds["svm"] == metrics.youden_threshold(svm["label"], svm["probability"])


def test_threshold_metrics_match_confusion_matrix():
    y, p = scored_cohort(80, 1.0, 6)
    tn, fp, fn, tp = confusion_matrix(y, (p >= 0.45).astype(int)).ravel()
    m = metrics.threshold_metrics(y, p, 0.45)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["accuracy"] == pytest.approx((tp + tn) / y.size)


def test_brier_and_calibration_match_sklearn():
    from sklearn.calibration import calibration_curve

    y, p = scored_cohort(200, 1.0, 8, None)
    assert metrics.brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    frac, mean = calibration_curve(y, p, n_bins=5, strategy="uniform")
    ours = metrics.calibration_curve(y, p, bins=5, strategy="uniform")
    np.testing.assert_allclose(ours["observed_fraction"], frac)
    np.testing.assert_allclose(ours["mean_predicted"], mean)
    assert (ours["ci_low"] <= ours["observed_fraction"]).all()


def predictions_table() -> pd.DataFrame:
    parts = []
    for model, sep in (("svm", 2.0), ("lr", 1.0)):
        for cohort, n, seed in (("train", 80, 1), ("test", 40, 2), ("ND", 30, 3)):
            y, p = scored_cohort(n, sep, seed + len(model))
            parts.append((cohort, model, cohort, p, y))
    return predictions_frame(parts)


def test_evaluate_predictions_table():
    preds = predictions_table()
    out = metrics.evaluate_predictions(preds, {"svm": 0.5, "lr": 0.4})
    assert list(out.columns[: len(metrics.METRICS_COLUMNS)]) == metrics.METRICS_COLUMNS
    assert list(zip(out["model"], out["cohort"], strict=True)) == [
        ("lr", "train"),
        ("lr", "test"),
        ("lr", "ND"),
        ("svm", "train"),
        ("svm", "test"),
        ("svm", "ND"),
    ]
    row = out[(out["model"] == "svm") & (out["cohort"] == "test")].iloc[0]
    g = preds[(preds["model"] == "svm") & (preds["cohort"] == "test")]
    assert row["auc"] == pytest.approx(roc_auc_score(g["label"], g["probability"]))
    assert row["threshold"] == 0.5 and row["n"] == 40
    assert (out["note"] == "").all()
    boot = metrics.evaluate_predictions(preds, {"svm": 0.5, "lr": 0.4}, "bootstrap", 200)
    assert (boot["ci_method"] == "bootstrap").all()
    assert boot["auc"].tolist() == pytest.approx(out["auc"].tolist())


def test_degenerate_cohorts_give_nan_and_a_note():
    preds = predictions_table()
    one_class = preds["cohort"] == "ND"
    preds.loc[one_class, "label"] = 1  # an external centre with responders only
    tiny = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "cohort": "XM",
            "model": "svm",
            "probability": [0.2, 0.7, 0.9],
            "label": [0, 1, 1],
        }
    )
    failed = preds[(preds["model"] == "lr") & (preds["cohort"] == "test")].index[:5]
    preds.loc[failed, "probability"] = np.nan  # the model failed for five patients
    out = metrics.evaluate_predictions(pd.concat([preds, tiny]), {"svm": 0.5})
    nd = out[out["cohort"] == "ND"]
    assert nd["auc"].isna().all() and nd["auc_ci_low"].isna().all()
    assert nd["note"].str.contains("one class only").all()
    # sensitivity is still defined for a responders-only cohort (svm has a threshold)
    assert np.isfinite(nd.loc[nd["model"] == "svm", "sensitivity"]).all()
    xm = out[out["cohort"] == "XM"].iloc[0]
    assert np.isfinite(xm["auc"]) and np.isnan(xm["auc_ci_low"])
    assert "fewer than 2" in xm["note"] and "Hosmer-Lemeshow unreliable" in xm["note"]
    lr_test = out[(out["model"] == "lr") & (out["cohort"] == "test")].iloc[0]
    assert lr_test["n"] == 35 and "5 patient(s) without a prediction" in lr_test["note"]
    assert "no threshold" in lr_test["note"] and np.isnan(lr_test["accuracy"])


def test_all_predictions_missing_is_not_an_error():
    preds = predictions_table()
    preds.loc[preds["model"] == "lr", "probability"] = np.nan
    out = metrics.evaluate_predictions(preds, {"svm": 0.5, "lr": 0.5})
    lr = out[out["model"] == "lr"]
    assert (lr["n"] == 0).all() and lr["auc"].isna().all()
    assert lr["note"].str.contains("no patients with a prediction").all()


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("label", 2, "not 0/1"), ("probability", 1.5, "outside"), ("patient_id", "train0", "twice")],
)
def test_bad_predictions_raise(column, value, message):
    preds = predictions_table()
    preds.loc[1, column] = value
    with pytest.raises(InputError, match=message):
        metrics.evaluate_predictions(preds, {})


def test_curve_table_is_tidy():
    preds = predictions_table()
    roc = metrics.curve_table(preds, "roc")
    assert list(roc.columns[:2]) == ["model", "cohort"]
    assert set(roc["cohort"]) == {"train", "test", "ND"}
    cal = metrics.curve_table(preds, "calibration", bins=5)
    assert cal.groupby(["model", "cohort"])["n"].sum().tolist() == [30, 40, 80] * 2


def test_hosmer_lemeshow_df_is_g_on_validation_cohorts():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1, 1])
    dev = metrics.hosmer_lemeshow(y, p, groups=5, development=True)
    val = metrics.hosmer_lemeshow(y, p, groups=5, development=False)
    assert (dev.df, val.df) == (3, 5) and val.chi2 == dev.chi2
    assert val.p_value == pytest.approx(stats.chi2.sf(dev.chi2, 5), rel=1e-12)
    # in metrics.tsv: train rows are development data, the other cohorts validation
    table = metrics.evaluate_predictions(
        pd.DataFrame(
            {
                "patient_id": [f"P{i}" for i in range(10)] * 2,
                "cohort": ["train"] * 10 + ["test"] * 10,
                "model": "svm",
                "probability": np.r_[p, p],
                "label": np.r_[y, y],
            }
        ),
        {"svm": 0.5},
        hl_groups=5,
        n_bootstrap=50,
    ).set_index("cohort")
    assert table.loc["train", "hl_df"] == 3 and table.loc["test", "hl_df"] == 5


def _calibrated(n: int, seed: int):
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    p = 1 / (1 + np.exp(-lp))
    return (rng.uniform(size=n) < p).astype(int), lp, p


def test_logistic_recalibration_matches_an_unpenalised_sklearn_fit():
    from sklearn.linear_model import LogisticRegression

    y, lp, _ = _calibrated(4000, 0)
    over = 1 / (1 + np.exp(-2 * lp))  # overconfident: true slope 0.5
    res = metrics.logistic_recalibration(y, over)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit((2 * lp)[:, None], y)
    assert res.slope == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert res.slope_ci[0] < 0.5 < res.slope_ci[1]
    well = metrics.logistic_recalibration(y, 1 / (1 + np.exp(-lp)))
    assert well.slope_ci[0] < 1 < well.slope_ci[1]
    assert well.intercept_ci[0] < 0 < well.intercept_ci[1]
    # calibration-in-the-large catches a shift the slope cannot
    shifted = metrics.logistic_recalibration(y, 1 / (1 + np.exp(-(lp + 1))))
    assert shifted.intercept == pytest.approx(-1, abs=0.15)
    assert np.isnan(metrics.logistic_recalibration([1, 1, 1], [0.2, 0.5, 0.9]).slope)


def test_integrated_calibration_index():
    y, lp, p = _calibrated(4000, 1)
    assert metrics.integrated_calibration_index(y, p) < 0.02
    worse = np.clip(p + 0.15, 0, 1)
    assert metrics.integrated_calibration_index(y, worse) == pytest.approx(0.15, abs=0.04)


def test_wilson_intervals_match_statsmodels_and_bootstrap_is_seeded():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 7), (3, 7), (7, 7), (45, 60)):
        assert metrics.wilson_ci(k, n) == pytest.approx(
            proportion_confint(k, n, alpha=0.05, method="wilson"), rel=1e-12
        )
    y, p = scored_cohort(60, 1.5, 4, None)
    row = metrics.evaluate_one(y, p, 0.5, n_bootstrap=300, seed=11)
    tm = metrics.threshold_metrics(y, p, 0.5)
    assert (row["sensitivity_ci_low"], row["sensitivity_ci_high"]) == pytest.approx(
        proportion_confint(tm["tp"], tm["tp"] + tm["fn"], method="wilson")
    )
    for name in ("auprc", "brier"):
        assert row[f"{name}_ci_low"] < row[name] < row[f"{name}_ci_high"]
    again = metrics.evaluate_one(y, p, 0.5, n_bootstrap=300, seed=11)
    other = metrics.evaluate_one(y, p, 0.5, n_bootstrap=300, seed=12)
    assert again["auprc_ci_low"] == row["auprc_ci_low"] != other["auprc_ci_low"]


def test_metrics_table_keeps_the_layout_columns_first():
    y, p = scored_cohort(40, 1.0, 5)
    table = metrics.evaluate_predictions(
        pd.DataFrame(
            {
                "patient_id": range(40),
                "cohort": "test",
                "model": "svm",
                "probability": p,
                "label": y,
            }
        ),
        {"svm": 0.5},
        n_bootstrap=20,
    )
    n = len(metrics.METRICS_COLUMNS)
    assert list(table.columns[:n]) == metrics.METRICS_COLUMNS
    assert set(metrics.CALIBRATION_COLUMNS + metrics.CI_COLUMNS) <= set(table.columns)


def test_smoothed_calibration_band_is_seeded_and_covers_the_curve():
    y, _, p = _calibrated(300, 2)
    one = metrics.smoothed_calibration(y, p, n_bootstrap=100, seed=3)
    two = metrics.smoothed_calibration(y, p, n_bootstrap=100, seed=3)
    pd.testing.assert_frame_equal(one, two)
    assert len(one) == 50 and one["predicted"].is_monotonic_increasing
    inner = one.iloc[5:-5]  # the LOWESS curve lies inside its band away from the edges
    assert (inner["ci_low"] <= inner["observed"]).all()
    assert (inner["observed"] <= inner["ci_high"]).all()
    # well calibrated: the curve follows the diagonal
    assert np.abs(inner["observed"] - inner["predicted"]).max() < 0.12
    assert metrics.smoothed_calibration([1, 1, 1], [0.2, 0.4, 0.6]).empty
