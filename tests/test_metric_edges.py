"""Degenerate inputs never crash and never print nonsense (issue 27, bullet 5): constant
predictions, perfect separation, one class, too few risk groups, ties, numpy reprs.
Each gives NaN with a note naming why, in metrics.tsv and in the report's Table 3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from npc_radiomics import metrics
from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import write_tsv
from npc_radiomics.report.sections import table3_section

Y = np.array([0, 1] * 15)


def test_constant_predictions_give_nan_slope_and_a_note():
    """A stepwise clinical model that keeps no variable predicts the prevalence for
    everyone: the slope fit used to die with IndexError (sm.add_constant drops a
    constant column)."""
    p = np.full(Y.size, 0.4)
    recal = metrics.logistic_recalibration(Y, p)
    assert np.isnan(recal.slope) and np.isnan(recal.slope_ci[0])
    assert "constant predictions" in recal.note
    # calibration-in-the-large is still defined: logit(0.5) - logit(0.4)
    assert recal.intercept == pytest.approx(np.log(0.4 / 0.6) * -1, rel=1e-6)
    row = metrics.evaluate_one(Y, p, 0.5, n_bootstrap=50)
    assert np.isnan(row["calibration_slope"]) and np.isnan(row["auc_ci_low"])
    assert "constant predictions" in row["note"]
    assert np.isnan(row["hl_df"]) and "one risk group" in row["note"]


def test_constant_scores_have_no_auc_ci():
    res = metrics.delong_ci(Y, np.full(Y.size, 0.3))
    assert res.auc == 0.5 and np.isnan(res.ci_low) and np.isnan(res.ci_high)
    assert "constant predictions" in res.note
    boot = metrics.bootstrap_ci(Y, np.full(Y.size, 0.3), 200)
    assert np.isnan(boot.ci_low) and "constant predictions" in boot.note


def test_perfect_separation_gives_nan_slope_not_fifty():
    rng = np.random.default_rng(0)
    p = np.where(Y == 1, rng.uniform(0.6, 0.99, Y.size), rng.uniform(0.01, 0.4, Y.size))
    recal = metrics.logistic_recalibration(Y, p)
    assert np.isnan(recal.slope) and np.isnan(recal.slope_ci[1])
    assert "separate the classes" in recal.note
    assert np.isfinite(recal.intercept)  # its MLE exists with both classes present
    # quasi-complete: one tie at the boundary is separation too
    tied = p.copy()
    tied[np.argmin(np.where(Y == 1, p, 2))] = p[np.argmax(np.where(Y == 0, p, -1))]
    assert np.isnan(metrics.logistic_recalibration(Y, tied).slope)
    row = metrics.evaluate_one(Y, p, 0.5, n_bootstrap=50, development=True)
    # AUC 1: not the degenerate 1.00 (1.00-1.00) but the score interval [low, 1]
    assert row["auc"] == 1.0 and row["auc_ci_high"] == 1.0 and 0.5 < row["auc_ci_low"] < 1
    assert "perfect separation" in row["note"] and "slope infinite" in row["note"]
    # an in-sample forest: probabilities exactly 0 and 1; no intercept CI of +-693 either
    saturated = metrics.logistic_recalibration(Y, Y.astype(float))
    assert np.isnan(saturated.intercept) and "no information" in saturated.note


def test_near_separation_reports_only_finite_sane_numbers():
    rng = np.random.default_rng(1)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        p = np.clip(np.where(Y == 1, 0.8, 0.2) + rng.normal(0, 0.15, Y.size), 0.001, 0.999)
        r = metrics.logistic_recalibration(Y, p)
        for value in (r.slope, *r.slope_ci, r.intercept, *r.intercept_ci):
            assert np.isnan(value) or abs(value) < 100


def test_hosmer_lemeshow_never_reports_a_negative_df():
    for p in (np.full(Y.size, 0.4), np.where(np.arange(Y.size) < 10, 0.2, 0.7)):
        for development in (True, False):
            hl = metrics.hosmer_lemeshow(Y, p, development=development)
            assert np.isnan(hl.df) and np.isnan(hl.p_value) and hl.note


def test_single_class_gives_nan_with_notes():
    y = np.ones(12, int)
    p = np.linspace(0.1, 0.9, 12)
    assert "one class only" in metrics.delong_ci(y, p).note
    assert "one class only" in metrics.bootstrap_ci(y, p).note
    assert "one class only" in metrics.logistic_recalibration(y, p).note
    assert "one class only" in metrics.delong_test(y, p, p[::-1]).note
    row = metrics.evaluate_one(y, p, 0.5, n_bootstrap=50)
    assert np.isnan(row["auc"]) and np.isnan(row["calibration_slope"])
    assert "one class only" in row["note"]


def test_heavy_ties_are_midranked():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    p = np.where(rng.uniform(size=80) < 0.3 + 0.4 * y, 0.7, 0.3)  # two values only
    res = metrics.delong_ci(y, p)
    assert res.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert 0 < res.ci_low < res.auc < res.ci_high < 1 and res.note == ""
    row = metrics.evaluate_one(y, p, 0.5, n_bootstrap=50)
    assert np.isfinite(row["calibration_slope"]) and "1 risk group (tied" in row["note"]


def test_messages_show_values_not_numpy_reprs():
    table = pd.DataFrame(
        {
            "patient_id": ["a", "b"],
            "cohort": "test",
            "model": "svm",
            "probability": 0.5,
            "label": np.array([2, 1], dtype=np.int64),
        }
    )
    with pytest.raises(InputError) as err:
        metrics.check_predictions(table)
    assert "label 2," in str(err.value) and "np." not in str(err.value)
    from npc_radiomics.evaluation.clinical import univariate_logistic

    clinical = pd.DataFrame(
        {"patient_id": ["a", "b"], "cohort": "train", "response": np.array([2, 1]), "age": 1.0}
    )
    with pytest.raises(InputError) as err:
        univariate_logistic(clinical, "response", ["age"])
    assert "response=2," in str(err.value) and "np." not in str(err.value)


def test_notes_reach_metrics_tsv_and_the_reports_table3(tmp_path):
    rng = np.random.default_rng(3)
    y = np.array([0, 1] * 20)
    parts = {
        "test": rng.uniform(0.2, 0.8, y.size),
        "ND": np.full(y.size, 0.35),  # constant: e.g. a clinical model with no variable
    }
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient_id": [f"{c}{i}" for i in range(y.size)],
                    "cohort": c,
                    "model": "lr",
                    "probability": p,
                    "label": y,
                }
            )
            for c, p in parts.items()
        ],
        ignore_index=True,
    )
    out = metrics.evaluate_predictions(table, {"lr": 0.5}, n_bootstrap=50)
    path = tmp_path / "metrics.tsv"
    write_tsv(out, path)
    written = pd.read_csv(path, sep="\t").set_index("cohort")
    assert "calibration slope undefined" in written.loc["ND", "note"]
    html = "".join(table3_section({"metrics": str(path)}, {}).blocks)
    assert "ND cohort" in html and "calibration slope undefined" in html
    assert "no AUC CI" in html


def test_an_auc_of_one_gets_newcombes_score_interval():
    """At AUC 1 the DeLong variance is 0: Newcombe's (2006) method-5 interval instead,
    whose lower end solves (1 - theta)^2 = z^2 V_HM(theta) and grows with the sample."""
    from scipy import stats

    low, high = metrics.boundary_auc_interval(1.0, 15, 10)
    n_star, z = (15 + 10) / 2 - 1, stats.norm.ppf(0.975)
    q = (1 - low) / (2 - low) + low / (1 + low)
    v = low * (1 - low) * (1 + (n_star - 1) * q) / (15 * 10)
    assert high == 1.0 and (1 - low) ** 2 == pytest.approx(z**2 * v, rel=1e-9)
    assert metrics.boundary_auc_interval(1.0, 31, 21)[0] > low > 0.5
    assert metrics.boundary_auc_interval(0.0, 15, 10) == pytest.approx((0.0, 1 - low))
    y = np.r_[np.ones(15, int), np.zeros(10, int)]
    res = metrics.delong_ci(y, np.r_[np.linspace(0.6, 0.9, 15), np.linspace(0.1, 0.4, 10)])
    assert (res.ci_low, res.ci_high) == pytest.approx((low, 1.0))


def test_auc_intervals_cover_in_small_cohorts_where_auc_one_happens():
    """15 / 10 patients at AUC 0.90: 2.7% of cohorts separate perfectly. With the score
    interval there, coverage is 96% (benchmarks/bench_auc_ci.py); the clipped normal
    interval covered 85%, a NaN interval at AUC 1 would cost those cohorts."""
    from scipy import stats

    rng = np.random.default_rng(15)
    d = np.sqrt(2) * stats.norm.ppf(0.90)
    y = np.r_[np.ones(15, int), np.zeros(10, int)]
    hits, ones = [], 0
    for _ in range(1500):
        p = np.r_[rng.normal(d, 1, 15), rng.normal(0, 1, 10)]
        res = metrics.delong_ci(y, p)
        ones += res.auc == 1.0
        hits.append(res.ci_low <= 0.90 <= res.ci_high)
    assert ones > 10 and 0.945 <= np.mean(hits) <= 0.975
