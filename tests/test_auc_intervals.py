"""AUC intervals with coverage (issue 27, bullet 4): DeLong on the logit scale, BCa
bootstrap, and the CI of a paired AUC difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from npc_radiomics import metrics


def binormal(rng, auc: float, n_pos: int, n_neg: int):
    d = np.sqrt(2) * stats.norm.ppf(auc)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, np.r_[rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg)]


def test_delong_ci_is_the_logit_interval_and_never_clipped():
    y, p = binormal(np.random.default_rng(3), 0.95, 31, 21)
    res = metrics.delong_ci(y, p)
    a, se = res.auc, np.sqrt(res.variance)
    centre, half = np.log(a / (1 - a)), 1.959963984540054 * se / (a * (1 - a))
    assert res.ci_low == pytest.approx(1 / (1 + np.exp(-(centre - half))), rel=1e-12)
    assert res.ci_high == pytest.approx(1 / (1 + np.exp(-(centre + half))), rel=1e-12)
    # asymmetric towards 0.5 and strictly inside (0, 1): the normal one ran past 1
    assert a + 1.96 * se > 1 > res.ci_high
    assert res.ci_high - a < a - res.ci_low


def test_delong_logit_ci_covers_at_the_papers_test_set():
    """The paper's test set (31 / 21 patients, AUC 0.935): 1,000 cohorts. The interval on
    the AUC scale clipped at 1 covered 88% (benchmarks/bench_auc_ci.py); on the logit
    scale 94%."""
    rng = np.random.default_rng(27)
    covered = []
    for _ in range(1000):
        y, p = binormal(rng, 0.935, 31, 21)
        res = metrics.delong_ci(y, p)
        covered.append(res.ci_low <= 0.935 <= res.ci_high)
    assert 0.92 <= np.mean(covered) <= 0.975


def test_bootstrap_ci_is_bca():
    """BCa against an independent computation: bias correction z0 from the share of
    stratified replicates below the AUC, acceleration from the jackknife (sklearn AUCs,
    leaving out one patient at a time). A percentile interval misses it by ~0.02."""
    rng = np.random.default_rng(4)
    y, p = binormal(rng, 0.93, 30, 20)
    a = roc_auc_score(y, p)
    res = metrics.bootstrap_ci(y, p, n_bootstrap=20000, seed=1)
    reps = metrics.bootstrap_auc(y, p, 20000, seed=5)
    z0 = stats.norm.ppf((np.sum(reps < a) + 0.5 * np.sum(reps == a)) / reps.size)
    keep = ~np.eye(y.size, dtype=bool)
    jack = np.array([roc_auc_score(y[k], p[k]) for k in keep])
    pos = y == 1
    u = np.r_[jack[pos].mean() - jack[pos], jack[~pos].mean() - jack[~pos]]
    accel = (u**3).sum() / (6 * (u**2).sum() ** 1.5)
    z = stats.norm.ppf([0.025, 0.975])
    expected = np.quantile(reps, stats.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    assert (res.ci_low, res.ci_high) == pytest.approx(tuple(expected), abs=0.006)
    percentile = np.quantile(reps, [0.025, 0.975])
    assert abs(res.ci_low - percentile[0]) > 0.015
    assert res.method == "bootstrap" and res.auc == pytest.approx(a)


def test_bootstrap_ci_is_seeded_and_in_the_metrics_table():
    y, p = binormal(np.random.default_rng(8), 0.8, 25, 20)
    one = metrics.bootstrap_ci(y, p, 500, seed=3)
    assert one == metrics.bootstrap_ci(y, p, 500, seed=3)
    preds = pd.DataFrame(
        {
            "patient_id": range(y.size),
            "cohort": "test",
            "model": "svm",
            "probability": 1 / (1 + np.exp(-p)),
            "label": y,
        }
    )
    table = metrics.evaluate_predictions(preds, {"svm": 0.5}, "bootstrap", 500, seed=3)
    row = table.iloc[0]
    assert row["ci_method"] == "bootstrap"
    assert (row["auc_ci_low"], row["auc_ci_high"]) == (one.ci_low, one.ci_high)


def naive_difference_variance(y, p1, p2) -> float:
    """Var(AUC1 - AUC2) from the pairwise kernels (DeLong 1988, the O(m n) definition)."""

    def components(p):
        pos, neg = p[y == 1], p[y == 0]
        k = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return k.mean(axis=1), k.mean(axis=0)

    (a10, a01), (b10, b01) = components(p1), components(p2)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    m, n = a10.size, a01.size
    cov = s10 / m + s01 / n
    return cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def test_delong_difference_ci_matches_the_pairwise_variance_and_the_test():
    rng = np.random.default_rng(5)
    n = 90
    y = rng.integers(0, 2, n)
    shared = rng.normal(0, 1, n)
    p1 = np.round(2.0 * (y - 0.5) + shared + rng.normal(0, 0.7, n), 1)  # ties
    p2 = np.round(1.0 * (y - 0.5) + shared + rng.normal(0, 0.7, n), 1)
    test = metrics.delong_test(y, p1, p2)
    se = np.sqrt(naive_difference_variance(y, p1, p2))
    assert test.se == pytest.approx(se, rel=1e-10)
    assert test.ci_low == pytest.approx(test.difference - 1.959963984540054 * se, rel=1e-9)
    assert test.ci_high == pytest.approx(test.difference + 1.959963984540054 * se, rel=1e-9)
    # duality with the test: 0 outside the CI exactly when p < 0.05
    assert (test.ci_low > 0 or test.ci_high < 0) == (test.p_value < 0.05)
    diff, low, high = metrics.delong_difference_ci(y, p1, p2)
    assert (diff, low, high) == (test.difference, test.ci_low, test.ci_high)
    # identical models: no variance, no CI, and a note saying why
    same = metrics.delong_test(y, p1, p1)
    assert np.isnan(same.ci_low) and "variance" in same.note
