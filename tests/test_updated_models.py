"""External cohorts: calibration-in-the-large, O/E with CI and updated-model rows
(logistic recalibration fitted on the cohort itself; TRIPOD+AI 12f; issue 27 bullet 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from npc_radiomics import metrics
from npc_radiomics.evaluation import performance


def _cohort(rng, n, shift=0.0, scale=1.0):
    lp = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-lp))).astype(int)
    return y, 1 / (1 + np.exp(-(scale * lp + shift)))  # miscalibrated by shift / scale


def _frame(cohort, model, y, p):
    return pd.DataFrame(
        {
            "patient_id": [f"{cohort}{i}" for i in range(y.size)],
            "cohort": cohort,
            "model": model,
            "probability": p,
            "label": y,
        }
    )


def test_observed_expected_ratio_and_ci():
    y = np.array([1] * 12 + [0] * 28)
    p = np.full(40, 0.4)  # expected 16, observed 12
    ratio, low, high = metrics.observed_expected(y, p)
    # one risk for everyone: corrected in the large it is 12 / 40, and the SE that of
    # Debray et al. (2017), sqrt((1 - O / N) / O)
    se = np.sqrt((1 - 12 / 40) / 12)
    assert ratio == pytest.approx(12 / 16)
    expected = (0.75 * np.exp(-1.959964 * se), 0.75 * np.exp(1.959964 * se))
    assert (low, high) == pytest.approx(expected, rel=1e-6)
    assert all(np.isnan(metrics.observed_expected([0, 0, 0], [0.1, 0.2, 0.3])))


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_observed_expected_ci_covers(shift):
    """150-patient cohorts with spread-out risks, calibrated or over-predicting: the CI
    covers the expected O/E (sum of true risks over sum of predictions) about 95% of the
    time (measured 94.5%; the equal-risk SE of Debray et al. covered 97.3%)."""
    rng = np.random.default_rng(12)
    hits = []
    for _ in range(1000):
        lp = rng.normal(0, 1.5, 150)
        risk = 1 / (1 + np.exp(-lp))
        y = (rng.uniform(size=150) < risk).astype(int)
        p = 1 / (1 + np.exp(-(lp + shift)))
        _, low, high = metrics.observed_expected(y, p)
        hits.append(low <= risk.sum() / p.sum() <= high)
    assert 0.93 <= np.mean(hits) <= 0.965


def test_updated_rows_are_recalibrated_on_the_cohort_itself():
    rng = np.random.default_rng(0)
    y, p = _cohort(rng, 400, shift=1.0, scale=2.0)  # over-predicts and overconfident
    table = metrics.updated_model_rows(_frame("ND", "svm", y, p), {"svm": 0.5}, ["ND"], 200)
    assert table["row_type"].tolist() == ["recalibrated_intercept", "recalibrated_logistic"]
    rows = table.set_index("row_type")
    original = metrics.evaluate_one(y, p, 0.5, n_bootstrap=200)
    assert original["oe_ratio"] < 0.8  # over-prediction: fewer events than expected
    # intercept-only: calibration-in-the-large fixed exactly (the score equation), slope kept
    ci = rows.loc["recalibrated_intercept"]
    assert ci["oe_ratio"] == pytest.approx(1, abs=1e-6)
    assert ci["calibration_intercept"] == pytest.approx(0, abs=1e-6)
    assert ci["calibration_slope"] == pytest.approx(original["calibration_slope"], rel=1e-5)
    # intercept + slope: calibrated in the large and in slope on these patients
    lo = rows.loc["recalibrated_logistic"]
    assert lo["calibration_slope"] == pytest.approx(1, abs=1e-5)
    assert lo["calibration_intercept"] == pytest.approx(0, abs=1e-5)
    assert lo["brier"] < ci["brier"] < original["brier"]
    # a monotone update: the AUC and the classification at the (mapped) threshold stay
    for row in (ci, lo):
        assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert row["sensitivity"] == original["sensitivity"]
        assert row["specificity"] == original["specificity"]
        assert "fitted on this cohort's own patients" in row["note"]


def test_updates_only_on_external_cohorts_and_never_in_the_choice():
    rng = np.random.default_rng(1)
    parts, nested = [], []
    for model, noise in (("knn", 1.5), ("logistic_regression", 0.8)):
        for cohort, n in (("train", 60), ("test", 40), ("ND", 50)):
            y = np.tile([0, 1], n // 2)
            p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=noise, size=y.size) + 1)))
            parts.append(_frame(cohort, model, y, p))
        y = np.tile([0, 1], 30)
        p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=noise, size=y.size))))
        nested.append(
            _frame("train", model, y, p).drop(columns="cohort").assign(outer_fold=np.arange(60) % 3)
        )
    predictions, nested = pd.concat(parts), pd.concat(nested)
    one_class = _frame("XC", "knn", np.ones(6, int), np.linspace(0.2, 0.8, 6))
    kw = {"models": ["knn", "logistic_regression"], "threshold_method": "youden_nested_cv"}
    with_xc = pd.concat([predictions, *(one_class.assign(model=m) for m in kw["models"])])
    tables = performance.evaluation_tables(with_xc, nested, n_bootstrap=100, **kw)
    m = tables.metrics
    updated = m[m["row_type"] != "original"]
    assert set(updated["cohort"]) == {"ND", "XC"}
    assert len(updated) == 2 * 2 * 2  # 2 models x 2 cohorts x 2 updates
    # one original row per model x cohort, the updated ones right after their cohort's
    original = metrics.original_rows(m)
    assert not original.duplicated(["model", "cohort"]).any()
    knn = m[m["model"] == "knn"]
    expected = ["nested_cv", "train", "test", *["ND"] * 3, *["XC"] * 3]
    assert knn["cohort"].tolist() == expected
    xc = updated[updated["cohort"] == "XC"]
    assert xc["calibration_slope"].isna().all() and xc["note"].str.contains("one class").all()
    # the choice and thresholds do not look at updated rows: same without the external cohorts
    pool = predictions[predictions["cohort"] != "ND"]
    alone = performance.evaluation_tables(pool, nested, n_bootstrap=100, **kw)
    assert alone.chosen == tables.chosen
    pd.testing.assert_frame_equal(alone.thresholds, tables.thresholds)


def test_report_shows_the_updated_models(tmp_path):
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.report.sections import table3_section

    rng = np.random.default_rng(2)
    y, p = _cohort(rng, 120, shift=0.8)
    preds = pd.concat([_frame("test", "svm", y, p), _frame("ND", "svm", *_cohort(rng, 80, 1.0))])
    table = metrics.evaluate_predictions(preds, {"svm": 0.5}, n_bootstrap=50)
    updated = metrics.updated_model_rows(preds, {"svm": 0.5}, ["ND"], 50)
    write_tsv(pd.concat([table, updated]), tmp_path / "metrics.tsv")
    html = "".join(table3_section({"metrics": str(tmp_path / "metrics.tsv")}, {}).blocks)
    assert "Updated models" in html and "recalibrated_logistic" in html
    assert "FITTED ON THAT COHORT" in html and "O/E" in html
