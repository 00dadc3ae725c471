"""Discrimination and calibration metrics for binary response predictions.

Conventions used throughout: ``y`` holds labels (1 = complete response, 0 = non-CR),
``p`` holds predicted probabilities of label 1 (unitless, in [0, 1]); a patient is
called positive when ``p >= threshold`` (the same rule as scikit-learn's ``roc_curve``
and the ``dcurves`` package).

Degenerate cohorts (one class only, very few patients) give NaN rather than an
exception; :func:`evaluate_predictions` says why in its ``note`` column. Malformed
input (labels other than 0/1, probabilities outside [0, 1], length mismatch) raises
:class:`~npc_radiomics.base.errors.InputError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError, shown
from npc_radiomics.base.layout import PREDICTION_COLUMNS, cohort_order
from npc_radiomics.base.lazy import lazy_module

log = logging.getLogger(__name__)

stats = lazy_module("scipy.stats")  # only the confidence intervals and tests need it

#: Columns of ``results/evaluation/metrics.tsv`` (results layout, docs/pipeline.md), in order.
METRICS_COLUMNS = [
    "model",
    "cohort",
    "n",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "auprc",
    "accuracy",
    "sensitivity",
    "specificity",
    "threshold",
    "brier",
    "hl_p",
]
#: Extra columns written after the results layout's ones.
EXTRA_COLUMNS = [
    "n_positive",
    "n_negative",
    "ppv",
    "npv",
    "hl_chi2",
    "hl_df",
    "ci_method",
    "note",
]
#: Calibration and uncertainty columns, written after :data:`EXTRA_COLUMNS`.
CALIBRATION_COLUMNS = [
    "calibration_intercept",
    "calibration_intercept_ci_low",
    "calibration_intercept_ci_high",
    "calibration_slope",
    "calibration_slope_ci_low",
    "calibration_slope_ci_high",
    "ici",
]
#: 95% CIs: Wilson for the proportions, stratified bootstrap for AUPRC and Brier.
CI_COLUMNS = [
    f"{metric}_ci_{side}"
    for metric in ("sensitivity", "specificity", "ppv", "npv", "auprc", "brier")
    for side in ("low", "high")
]

#: Model updating (TRIPOD+AI 12f) and calibration-in-the-large: which kind of row
#: (``original``: the model as fitted on the training set; ``recalibrated_intercept`` /
#: ``recalibrated_logistic``: the model updated on the cohort's own patients, external
#: cohorts only) and the observed / expected event ratio with its CI. Written last.
UPDATING_COLUMNS = ["row_type", "oe_ratio", "oe_ci_low", "oe_ci_high"]
#: ``row_type`` values, in table order.
ROW_TYPES = ("original", "recalibrated_intercept", "recalibrated_logistic")

# Below this many patients in either class the AUC CI and HL test are still computed
# but flagged: the normal approximation behind DeLong and the chi2 of HL are poor.
FEW_PER_CLASS = 5


# --------------------------------------------------------------------------- input


def check_scores(y, p, name: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels and probabilities to 1-d numpy arrays."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=float)
    if y.ndim != 1 or p.ndim != 1:
        raise InputError(f"{name}: labels and probabilities must be 1-d")
    if y.shape != p.shape:
        raise InputError(f"{name}: {y.size} labels but {p.size} probabilities")
    if y.size and not np.isin(y, (0, 1)).all():
        bad = sorted({str(v) for v in np.unique(y[~np.isin(y, (0, 1))])})[:5]
        raise InputError(f"{name}: labels must be 0 or 1, found {bad}")
    if not np.isfinite(p).all():
        raise InputError(f"{name}: {int((~np.isfinite(p)).sum())} probabilities are NaN/inf")
    return y.astype(np.int8), p


def check_probabilities(y, p, name: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    y, p = check_scores(y, p, name)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise InputError(f"{name}: probabilities must lie in [0, 1], found [{p.min()}, {p.max()}]")
    return y, p


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


# --------------------------------------------------------------------------- AUC + DeLong


def _delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, ...]:
    """Fast DeLong (Sun & Xu 2014): AUCs and structural components via midranks.

    ``scores`` has shape (k, n): k score vectors on the same n patients. Returns
    ``(auc (k,), v10 (k, m), v01 (k, n_neg))``: v10[i] is, for each positive, the
    fraction of negatives it outranks (ties count 1/2); v01 the same for negatives.
    O(k n log n) because midranks replace the m x n pairwise comparison.
    """
    pos = scores[:, y == 1]
    neg = scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    # midranks within positives, within negatives, and over the pooled sample
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def _delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k)."""
    auc, v10, v01 = _delong_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return auc, s10 / m + s01 / n


def auc(y, p) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties count 1/2).

    Returns NaN when ``y`` has one class only (AUC undefined).
    """
    y, p = check_scores(y, p)
    if not _both_classes(y):
        return float("nan")
    return float(_delong_components(y, p[None, :])[0][0])


@dataclass(frozen=True)
class AUCResult:
    """AUC with a two-sided confidence interval (``level``, e.g. 0.95).

    ``note`` says why the CI (or the AUC) is NaN, or is empty.
    """

    auc: float
    ci_low: float
    ci_high: float
    variance: float
    method: str
    level: float
    note: str = ""


def _class_counts_note(y: np.ndarray) -> str:
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if y.size == 0:
        return "no patients: AUC undefined"
    if not _both_classes(y):
        return f"one class only ({n_pos} positive, {n_neg} negative): AUC undefined"
    if min(n_pos, n_neg) < 2:
        return f"fewer than 2 patients in a class ({n_pos}/{n_neg}): no AUC CI"
    return ""


def _degenerate_auc_note(a: float, p: np.ndarray, why: str = "DeLong variance 0") -> str:
    """Why an AUC has no ordinary CI although both classes are present: constant scores
    (no CI at all) or a perfect (or perfectly inverted) separation (the boundary interval
    of :func:`boundary_auc_interval`) leave every structural component equal."""
    if np.ptp(p) == 0:
        return "constant predictions: no ranking (AUC 0.5 by ties); no AUC CI"
    if a in (0.0, 1.0):
        return (
            f"perfect separation in this cohort (AUC {a:.0f}): {why}; AUC CI by Newcombe's "
            "score method, one end at the boundary"
        )
    return f"{why}: no AUC CI"


def boundary_auc_interval(a: float, m: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """CI of an AUC of exactly 1 (or 0) on ``m`` positives and ``n`` negatives, where the
    DeLong variance is 0: Newcombe's (2006, method 5) score-type interval, the values of
    theta with (a - theta)^2 <= z^2 V(theta), V the Hanley-McNeil variance at theta with
    m - 1 and n - 1 both replaced by N* - 1, N* = (m + n) / 2 - 1. For a = 1 it is
    [theta_low, 1] (for a = 0 the mirror image): a lower end that reflects the sample size
    instead of the degenerate 1.00-1.00.
    """
    from scipy.optimize import brentq

    if a not in (0.0, 1.0) or min(m, n) < 1:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    n_star = (m + n) / 2 - 1

    def variance(theta: float) -> float:
        q = (1 - theta) / (2 - theta) + theta / (1 + theta)
        return theta * (1 - theta) * (1 + (n_star - 1) * q) / (m * n)

    low = brentq(lambda t: (1 - t) ** 2 - z**2 * variance(t), 0.0, 1 - 1e-12)
    return (float(low), 1.0) if a == 1.0 else (0.0, float(1 - low))


def logit_auc_interval(a: float, variance: float, level: float = 0.95) -> tuple[float, float]:
    """CI of an AUC ``a`` from its (DeLong) ``variance`` on the logit scale.

    logit(AUC) is closer to normal than the AUC near 0 or 1, and its interval maps back
    inside (0, 1) without clipping: se_logit = se / (a (1 - a)) (delta method), CI =
    expit(logit(a) -+ z se_logit). (NaN, NaN) when ``a`` is 0 or 1 or the variance is not
    positive (no interval can be formed).
    """
    nan = float("nan")
    if not (np.isfinite(a) and np.isfinite(variance)) or not 0 < a < 1 or variance <= 0:
        return nan, nan
    z = stats.norm.ppf(0.5 + level / 2)
    centre = np.log(a / (1 - a))
    half = z * np.sqrt(variance) / (a * (1 - a))
    return float(_expit(centre - half)), float(_expit(centre + half))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def delong_ci(y, p, level: float = 0.95) -> AUCResult:
    """AUC with DeLong variance and a CI on the logit scale (:func:`logit_auc_interval`).

    Never clipped: the interval lies inside (0, 1) by construction. Measured coverage
    (benchmarks/bench_auc_ci.py): about 95% at AUC 0.935 with 31 / 21 patients, where the
    normal interval on the AUC scale clipped at 1 covers about 88%. NaN AUC with one
    class; NaN variance / CI with fewer than 2 patients in a class; NaN CI for constant
    scores; an AUC of exactly 1 or 0 (perfect separation, DeLong variance 0) gets the
    score-type interval of :func:`boundary_auc_interval`. ``note`` says which.
    """
    y, p = check_scores(y, p)
    nan = float("nan")
    note = _class_counts_note(y)
    if not _both_classes(y):
        return AUCResult(nan, nan, nan, nan, "delong", level, note)
    a = auc(y, p)
    if note:
        return AUCResult(a, nan, nan, nan, "delong", level, note)
    _, cov = _delong_covariance(y, p[None, :])
    var = float(max(cov[0, 0], 0.0))
    low, high = logit_auc_interval(a, var, level)
    if not np.isfinite(low):
        low, high = boundary_auc_interval(a, int(y.sum()), int(y.size - y.sum()), level)
        note = _degenerate_auc_note(a, p)
    return AUCResult(a, low, high, var, "delong", level, note)


def _auc_statistic(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mann-Whitney AUC of positives' scores ``pos`` against negatives' ``neg``,
    vectorised over leading axes (the form scipy.stats.bootstrap calls)."""
    pos = np.moveaxis(np.asarray(pos, dtype=float), axis, -1)
    neg = np.moveaxis(np.asarray(neg, dtype=float), axis, -1)
    m, n = pos.shape[-1], neg.shape[-1]
    lead = np.broadcast_shapes(pos.shape[:-1], neg.shape[:-1])
    sample = np.concatenate(
        [np.broadcast_to(pos, (*lead, m)), np.broadcast_to(neg, (*lead, n))], axis=-1
    )
    ranks = stats.rankdata(sample, axis=-1)
    return (ranks[..., :m].sum(axis=-1) - m * (m + 1) / 2) / (m * n)


def bootstrap_auc(y, p, n_bootstrap: int = 2000, seed: int = 0, batch: int = 500) -> np.ndarray:
    """AUCs of ``n_bootstrap`` stratified bootstrap resamples (seeded, deterministic).

    Positives and negatives are resampled separately (as pROC does by default) so
    that every replicate has both classes and keeps the cohort's class balance.
    Returns an empty array when ``y`` has one class.
    """
    y, p = check_scores(y, p)
    if not _both_classes(y):
        return np.empty(0)
    rng = np.random.default_rng(seed)
    pos, neg = p[y == 1], p[y == 0]
    m, n = pos.size, neg.size
    out = np.empty(n_bootstrap)
    # batches bound memory at batch x (m + n) doubles whatever n_bootstrap is
    for start in range(0, n_bootstrap, batch):
        b = min(batch, n_bootstrap - start)
        out[start : start + b] = _auc_statistic(
            pos[rng.integers(0, m, (b, m))], neg[rng.integers(0, n, (b, n))]
        )
    return out


def bootstrap_ci(y, p, n_bootstrap: int = 2000, level: float = 0.95, seed: int = 0) -> AUCResult:
    """AUC with a BCa (bias-corrected and accelerated) CI from a stratified, seeded
    bootstrap: ``scipy.stats.bootstrap`` with the positives' and the negatives' scores as
    two independent samples (each resampled within itself; acceleration from the
    jackknife of both). ``variance`` is the bootstrap replicates' variance.

    NaN CI with a note when the replicates are all equal (constant scores, perfect
    separation: BCa is undefined) or a class has fewer than 2 patients.
    """
    y, p = check_scores(y, p)
    nan = float("nan")
    note = _class_counts_note(y)
    if not _both_classes(y):
        return AUCResult(nan, nan, nan, nan, "bootstrap", level, note)
    a = auc(y, p)
    if note:
        return AUCResult(a, nan, nan, nan, "bootstrap", level, note)
    import warnings

    with warnings.catch_warnings():
        # all-equal replicates: scipy warns and returns NaN; the note below says why
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (p[y == 1], p[y == 0]),
            _auc_statistic,
            n_resamples=n_bootstrap,
            batch=500,
            vectorized=True,
            confidence_level=level,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    replicates = res.bootstrap_distribution
    if not (np.isfinite(low) and np.isfinite(high)) or np.ptp(replicates) == 0:
        low, high = boundary_auc_interval(a, int(y.sum()), int(y.size - y.sum()), level)
        why = "every bootstrap AUC equal"
        return AUCResult(a, low, high, nan, "bootstrap", level, _degenerate_auc_note(a, p, why))
    return AUCResult(a, low, high, float(replicates.var(ddof=1)), "bootstrap", level)


def auc_ci(y, p, method: str = "delong", level: float = 0.95, n_bootstrap: int = 2000, seed=0):
    """AUC with the configured CI (``evaluation.ci_method``): ``delong`` (logit scale,
    :func:`delong_ci`) or ``bootstrap`` (BCa, :func:`bootstrap_ci`)."""
    if method == "delong":
        return delong_ci(y, p, level)
    if method == "bootstrap":
        return bootstrap_ci(y, p, n_bootstrap, level, seed)
    raise InputError(f"evaluation.ci_method must be delong or bootstrap, not {method!r}")


@dataclass(frozen=True)
class DeLongTest:
    """Paired DeLong test of two AUCs measured on the same patients, with the CI of
    their difference (normal on the difference scale, which is not bounded near 0)."""

    auc1: float
    auc2: float
    difference: float  # auc1 - auc2
    se: float
    z: float
    p_value: float  # two-sided
    ci_low: float = float("nan")  # of the difference
    ci_high: float = float("nan")
    level: float = 0.95
    note: str = ""


def delong_test(y, p1, p2, level: float = 0.95) -> DeLongTest:
    """Paired two-sided DeLong test of H0: AUC(p1) == AUC(p2) on the same patients, and a
    ``level`` CI of AUC(p1) - AUC(p2): difference -+ z se.

    The covariance of the two AUCs enters the variance of their difference, which is
    what makes the test paired. When that variance is 0 (identical rankings, or both
    models separating the classes perfectly) p is 1 if the AUCs are equal and 0
    otherwise, and the CI is NaN with a note. NaN with one class or fewer than 2
    patients in a class.
    """
    y, p1 = check_scores(y, p1, "model 1")
    _, p2 = check_scores(y, p2, "model 2")
    nan = float("nan")
    note = _class_counts_note(y)
    if note:
        a1 = auc(y, p1) if _both_classes(y) else nan
        a2 = auc(y, p2) if _both_classes(y) else nan
        return DeLongTest(a1, a2, a1 - a2, nan, nan, nan, nan, nan, level, f"{note}: no test")
    aucs, cov = _delong_covariance(y, np.vstack([p1, p2]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        p_value = 1.0 if abs(diff) < 1e-12 else 0.0
        why = "variance of the AUC difference is 0 (same ranking or both separate perfectly)"
        return DeLongTest(
            float(aucs[0]), float(aucs[1]), diff, 0.0, nan, p_value, nan, nan, level, why
        )
    se = float(np.sqrt(var))
    z = diff / se
    half = float(stats.norm.ppf(0.5 + level / 2)) * se
    return DeLongTest(
        float(aucs[0]),
        float(aucs[1]),
        diff,
        se,
        float(z),
        float(2 * stats.norm.sf(abs(z))),
        diff - half,
        diff + half,
        level,
    )


def delong_difference_ci(y, p1, p2, level: float = 0.95) -> tuple[float, float, float]:
    """(AUC(p1) - AUC(p2), ci_low, ci_high) from the paired DeLong test
    (:func:`delong_test`); for any table that compares two models on the same patients."""
    test = delong_test(y, p1, p2, level)
    return test.difference, test.ci_low, test.ci_high


# --------------------------------------------------------------------------- curves, AUPRC


def roc_curve_points(y, p) -> pd.DataFrame:
    """ROC curve: columns threshold, fpr, tpr (one row per distinct score, plus (0, 0)).

    Empty frame when ``y`` has one class.
    """
    y, p = check_scores(y, p)
    if not _both_classes(y):
        return pd.DataFrame(columns=["threshold", "fpr", "tpr"], dtype=float)
    thresholds, tp, fp = _cumulative_counts(y, p)
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, thresholds],
            "fpr": np.r_[0.0, fp / (y.size - y.sum())],
            "tpr": np.r_[0.0, tp / y.sum()],
        }
    )


def _cumulative_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct scores in descending order and TP / FP counts at ``p >= score``."""
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    # last index of each run of equal scores: all tied patients switch at once
    last = np.r_[np.flatnonzero(np.diff(p_sorted)), p_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last].astype(float)
    fp = (last + 1) - tp
    return p_sorted[last], tp, fp


def average_precision(y, p) -> float:
    """Area under the precision-recall curve as average precision (step-wise).

    AP = sum_k (R_k - R_{k-1}) P_k over distinct thresholds; no interpolation, the same
    definition as scikit-learn's ``average_precision_score``. NaN without positives.
    """
    y, p = check_scores(y, p)
    if y.sum() == 0:
        return float("nan")
    _, tp, fp = _cumulative_counts(y, p)
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pr_curve_points(y, p) -> pd.DataFrame:
    """Precision-recall curve: columns threshold, recall, precision. Empty without positives."""
    y, p = check_scores(y, p)
    if y.sum() == 0:
        return pd.DataFrame(columns=["threshold", "recall", "precision"], dtype=float)
    thresholds, tp, fp = _cumulative_counts(y, p)
    # start at recall 0 with precision 1, the usual anchor of a PR plot
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, thresholds],
            "recall": np.r_[0.0, tp / y.sum()],
            "precision": np.r_[1.0, tp / (tp + fp)],
        }
    )


# --------------------------------------------------------------------------- thresholds


def youden_threshold(y, p) -> float:
    """Probability cut-off maximising Youden's J = sensitivity + specificity - 1.

    Meant for training out-of-fold predictions, then applied unchanged to every cohort.
    The cut-off is the midpoint between the chosen score and the next lower distinct
    score (as pROC does): identical classification of the training patients, but it
    does not sit exactly on one training patient's score. Ties in J go to the highest
    cut-off (fewest positives). NaN with one class.
    """
    y, p = check_scores(y, p)
    if not _both_classes(y):
        return float("nan")
    scores, tp, fp = _cumulative_counts(y, p)
    j = tp / y.sum() - fp / (y.size - y.sum())
    k = int(np.argmax(j))
    if k + 1 < scores.size:
        return float((scores[k] + scores[k + 1]) / 2)
    return float(scores[k])


def youden_thresholds(oof_predictions: pd.DataFrame) -> dict[str, float]:
    """Youden cut-off per model from training out-of-fold predictions.

    ``oof_predictions``: predictions table (patient_id, cohort, model, probability,
    label) holding only the training patients' out-of-fold rows. Returns model ->
    threshold (NaN for a model with one class or no prediction).
    """
    df = check_predictions(oof_predictions)
    df = df[df["probability"].notna()]
    return {
        model: youden_threshold(g["label"].to_numpy(), g["probability"].to_numpy())
        for model, g in df.groupby("model", sort=True)
    }


def threshold_metrics(y, p, threshold: float) -> dict[str, float]:
    """Confusion-matrix metrics with positive = ``p >= threshold``.

    Returns accuracy, sensitivity, specificity, ppv, npv (fractions) and tp, fp, tn, fn
    (counts); a ratio with a zero denominator is NaN.
    """
    y, p = check_scores(y, p)
    predicted = p >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    tn = int(np.sum(~predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "accuracy": ratio(tp + tn, y.size),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


# --------------------------------------------------------------------------- calibration


def brier_score(y, p) -> float:
    """Mean squared difference between probability and label (0 = perfect). NaN if empty."""
    y, p = check_probabilities(y, p)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def _risk_groups(p: np.ndarray, groups: int) -> np.ndarray:
    """Group index per patient from quantile cut points of the predicted risk.

    Cut points are the ``groups``-quantiles of ``p``; duplicated cut points and empty
    groups (many tied probabilities) are merged away, so fewer groups can come out, as
    in R's ``ResourceSelection::hoslem.test``. Groups are numbered 0.. by risk.
    """
    edges = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    if edges.size < 2:
        return np.zeros(p.size, dtype=int)
    # right-closed intervals, lowest one closed on the left too
    group = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, edges.size - 2)
    # interpolated cut points can leave a group empty when probabilities tie: renumber
    return np.unique(group, return_inverse=True)[1]


@dataclass(frozen=True)
class HosmerLemeshow:
    """Hosmer-Lemeshow goodness-of-fit test (small p = poor calibration)."""

    chi2: float
    df: float  # g - 2 or g; NaN when the test cannot be made (then ``note`` says why)
    p_value: float
    table: pd.DataFrame  # group, n, observed, expected, mean_predicted
    note: str = ""


def hosmer_lemeshow(y, p, groups: int = 10, development: bool = True) -> HosmerLemeshow:
    """Hosmer-Lemeshow test over ``groups`` groups of predicted risk (deciles by default).

    chi2 = sum over groups and both outcomes of (observed - expected)^2 / expected,
    expected events = sum of p in the group; with g the groups actually formed, df = g - 2
    on the development data (the model was fitted on these patients) and df = g on a
    validation cohort (Hosmer & Lemeshow 2013: no parameter was estimated on it). With
    fewer than 3 groups (ties: constant or two-valued predictions) chi2, df and p are NaN
    and ``note`` says why; a df below 1 is never reported.
    """
    y, p = check_probabilities(y, p)
    nan = float("nan")
    if y.size == 0:
        return HosmerLemeshow(nan, nan, nan, pd.DataFrame(), "no patients")
    group = _risk_groups(p, groups)
    g = int(group.max()) + 1
    n_g = np.bincount(group, minlength=g).astype(float)
    observed = np.bincount(group, weights=y, minlength=g)
    expected = np.bincount(group, weights=p, minlength=g)
    table = pd.DataFrame(
        {
            "group": np.arange(1, g + 1),
            "n": n_g.astype(int),
            "observed": observed,
            "expected": expected,
            "mean_predicted": expected / n_g,
        }
    )
    df = g - 2 if development else g
    if df < 1 or g < 3:
        why = (
            "constant predictions: one risk group"
            if np.ptp(p) == 0
            else f"{g} risk group{'s' if g > 1 else ''} (tied predictions)"
        )
        return HosmerLemeshow(
            nan, nan, nan, table, f"Hosmer-Lemeshow needs >= 3 risk groups: {why}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        events = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0)
        non_events = np.where(
            n_g - expected > 0, (observed - expected) ** 2 / (n_g - expected), 0.0
        )
    # an observed event where none was expected (p == 0 or 1 exactly) is infinitely unlikely
    impossible = ((expected == 0) & (observed > 0)) | ((n_g - expected == 0) & (observed < n_g))
    chi2 = float("inf") if impossible.any() else float(np.sum(events + non_events))
    return HosmerLemeshow(chi2, float(df), float(stats.chi2.sf(chi2, df)), table)


def calibration_curve(y, p, bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Calibration curve data: one row per bin of predicted risk.

    ``strategy`` "quantile" (equal-count bins, as in the HL test) or "uniform" (equal
    width on [0, 1]). Columns: bin, n, mean_predicted, observed_fraction, ci_low,
    ci_high (Wilson 95% interval of the observed fraction). Empty bins are dropped.
    """
    y, p = check_probabilities(y, p)
    columns = ["bin", "n", "mean_predicted", "observed_fraction", "ci_low", "ci_high"]
    if y.size == 0:
        return pd.DataFrame(columns=columns)
    if strategy == "quantile":
        group = _risk_groups(p, bins)
    elif strategy == "uniform":
        group = np.clip((p * bins).astype(int), 0, bins - 1)
    else:
        raise InputError(
            f"calibration_curve: strategy must be quantile or uniform, not {strategy!r}"
        )
    g = int(group.max()) + 1
    n_g = np.bincount(group, minlength=g)
    keep = n_g > 0
    n_g = n_g[keep]
    events = np.bincount(group, weights=y, minlength=g)[keep]
    mean_p = np.bincount(group, weights=p, minlength=g)[keep] / n_g
    frac = events / n_g
    z = stats.norm.ppf(0.975)
    centre = (frac + z**2 / (2 * n_g)) / (1 + z**2 / n_g)
    half = z * np.sqrt(frac * (1 - frac) / n_g + z**2 / (4 * n_g**2)) / (1 + z**2 / n_g)
    return pd.DataFrame(
        {
            "bin": np.arange(1, n_g.size + 1),
            "n": n_g,
            "mean_predicted": mean_p,
            "observed_fraction": frac,
            "ci_low": np.clip(centre - half, 0, 1),
            "ci_high": np.clip(centre + half, 0, 1),
        },
        columns=columns,
    )


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``; (NaN, NaN) when n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    frac = successes / n
    centre = (frac + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(frac * (1 - frac) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    q = np.clip(p, eps, 1 - eps)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Recalibration:
    """Logistic recalibration of predicted probabilities (Cox 1958; Van Calster 2016).

    ``note`` says why a NaN is NaN (one class, constant predictions, separation).
    """

    intercept: float  # calibration-in-the-large: a in logit(P(y)) = a + logit(p); ideal 0
    intercept_ci: tuple[float, float]
    slope: float  # b in logit(P(y)) = a' + b logit(p); ideal 1
    slope_ci: tuple[float, float]
    slope_model_intercept: float = float("nan")  # a' of the intercept + slope model
    note: str = ""


#: Wald SE (logit units) above which a recalibration coefficient is not reported: its
#: 95% CI would span odds ratios beyond e^+-19.6, i.e. the likelihood is flat (predictions
#: at 0 / 1, near-separation); such a "CI of +-58,000" is noise, not an estimate.
FLAT_SE = 10.0


def _separates(y: np.ndarray, lp: np.ndarray) -> bool:
    """True when a threshold on ``lp`` splits the classes (ties at the boundary allowed:
    quasi-complete separation). The logistic slope's MLE is then infinite."""
    pos, neg = lp[y == 1], lp[y == 0]
    return bool(neg.max() <= pos.min() or pos.max() <= neg.min())


def logistic_recalibration(y, p, level: float = 0.95) -> Recalibration:
    """Calibration intercept (slope fixed at 1, logit(p) as offset) and slope, with Wald
    CIs from a binomial GLM (statsmodels); probabilities are clipped to [1e-6, 1 - 1e-6].

    Degenerate input gives NaN and a ``note``, never an exception or an absurd number:
    one class or fewer than 3 patients (both NaN); constant predictions (slope undefined,
    intercept still estimated); predictions that separate the classes, completely or
    with ties at the boundary (slope infinite: NaN; the intercept, whose MLE exists
    whenever both classes are present, is kept); a fit that fails or does not converge;
    a coefficient whose Wald SE exceeds :data:`FLAT_SE` (flat likelihood).
    """
    import warnings

    import statsmodels.api as sm

    y, p = check_probabilities(y, p)
    nan, nan2 = float("nan"), (float("nan"), float("nan"))
    if y.size < 3 or not _both_classes(y):
        why = _class_counts_note(y) if not _both_classes(y) else f"only {y.size} patients"
        return Recalibration(nan, nan2, nan, nan2, nan, f"{why}: no recalibration")
    lp = _logit(p)
    alpha = 1 - level
    binomial = sm.families.Binomial()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_a = sm.GLM(y, np.ones((y.size, 1)), family=binomial, offset=lp).fit()
        a, a_ci = float(fit_a.params[0]), tuple(map(float, fit_a.conf_int(alpha)[0]))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        return Recalibration(nan, nan2, nan, nan2, nan, f"recalibration fit failed: {err}")
    if not np.isfinite(a):
        return Recalibration(nan, nan2, nan, nan2, nan, "calibration intercept not finite")
    if float(fit_a.bse[0]) > FLAT_SE:
        why = (
            f"predictions at (or next to) 0 and 1 carry no information on calibration: "
            f"intercept SE {float(fit_a.bse[0]):.0f} on the logit scale, no estimate"
        )
        return Recalibration(nan, nan2, nan, nan2, nan, why)
    if np.ptp(lp) == 0:
        why = "constant predictions: calibration slope undefined"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    if _separates(y, lp):
        why = "the predictions separate the classes: calibration slope infinite (no estimate)"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_b = sm.GLM(y, np.column_stack([np.ones(y.size), lp]), family=binomial).fit()
        a0, b = float(fit_b.params[0]), float(fit_b.params[1])
        b_ci = tuple(map(float, fit_b.conf_int(alpha)[1]))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        return Recalibration(a, a_ci, nan, nan2, nan, f"calibration slope fit failed: {err}")
    if not (np.isfinite(b) and np.isfinite(a0) and fit_b.converged):
        return Recalibration(a, a_ci, nan, nan2, nan, "calibration slope fit did not converge")
    if float(fit_b.bse[1]) > FLAT_SE:
        why = f"calibration slope SE {float(fit_b.bse[1]):.0f}: likelihood flat, no estimate"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    return Recalibration(a, a_ci, b, b_ci, a0)


def lowess_calibration(y, p, frac: float = 2 / 3) -> np.ndarray:
    """Smoothed observed probability at each patient's predicted probability: LOWESS of
    the label on the prediction (statsmodels, no robustness iterations, as suits a 0/1
    outcome), clipped to [0, 1]; in the input order."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    y, p = check_probabilities(y, p)
    if y.size < 3:
        return np.full(y.size, np.nan)
    if np.ptp(p) == 0:  # one x value: the smooth is the observed fraction
        return np.full(y.size, float(y.mean()))
    smoothed = lowess(y, p, frac=frac, it=0, return_sorted=False)
    return np.clip(smoothed, 0, 1)


def integrated_calibration_index(y, p, frac: float = 2 / 3) -> float:
    """ICI (Austin & Steyerberg 2019): mean |LOWESS-smoothed observed - predicted| over the
    patients. 0 = perfect calibration; NaN with fewer than 3 patients or one class."""
    y, p = check_probabilities(y, p)
    if y.size < 3 or not _both_classes(y):
        return float("nan")
    return float(np.nanmean(np.abs(lowess_calibration(y, p, frac) - p)))


def smoothed_calibration(
    y, p, n_bootstrap: int = 200, level: float = 0.95, seed: int = 0, n_grid: int = 50
) -> pd.DataFrame:
    """LOWESS calibration curve on a grid of predicted probabilities, with a percentile
    bootstrap band (patients resampled with replacement, seeded).

    Columns predicted, observed, ci_low, ci_high; the grid spans the observed range of
    ``p``. Empty with fewer than 3 patients or one class.
    """
    y, p = check_probabilities(y, p)
    columns = ["predicted", "observed", "ci_low", "ci_high"]
    if y.size < 3 or not _both_classes(y) or np.ptp(p) == 0:
        return pd.DataFrame(columns=columns)
    grid = np.linspace(p.min(), p.max(), n_grid)

    def curve(yy, pp):
        order = np.argsort(pp, kind="mergesort")
        fitted = lowess_calibration(yy, pp)[order]
        xs, first = np.unique(pp[order], return_index=True)
        return np.interp(grid, xs, fitted[first]) if xs.size > 1 else np.full(grid.size, np.nan)

    rng = np.random.default_rng(seed)
    boots = np.array([curve(y[i], p[i]) for i in rng.integers(0, y.size, (n_bootstrap, y.size))])
    with np.errstate(all="ignore"):
        low, high = np.nanquantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return pd.DataFrame(
        {"predicted": grid, "observed": curve(y, p), "ci_low": low, "ci_high": high},
        columns=columns,
    )


def _stratified_resamples(y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """(n_bootstrap, n) row indices, resampling within each class (seeded)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    parts = []
    for idx in (pos, neg):
        if idx.size:
            parts.append(idx[rng.integers(0, idx.size, size=(n_bootstrap, idx.size))])
    return np.concatenate(parts, axis=1)


def bootstrap_metric_ci(
    y, p, metric, n_bootstrap: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of ``metric(y, p)`` over stratified, seeded bootstrap resamples."""
    y, p = check_probabilities(y, p)
    if y.size < 2 or not _both_classes(y) or n_bootstrap < 1:
        return float("nan"), float("nan")
    values = np.array([metric(y[i], p[i]) for i in _stratified_resamples(y, n_bootstrap, seed)])
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# --------------------------------------------------------------------------- tables


def check_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Validate a predictions table (results layout: patient_id, cohort, model, probability, label).

    Rows with a missing probability are kept (a model that failed for some patients);
    callers drop them with a note. Raises InputError on missing columns, duplicated
    (patient, cohort, model) rows, labels other than 0/1 or probabilities outside [0, 1].
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise InputError(f"predictions: missing column(s) {missing}")
    df = predictions[PREDICTION_COLUMNS].copy()
    dup = df.duplicated(["patient_id", "cohort", "model"])
    if dup.any():
        row = df[dup].iloc[0]
        raise InputError(
            f"predictions: patient {row.patient_id} appears twice for model {row.model} "
            f"in cohort {row.cohort}"
        )
    if not df["label"].isin([0, 1]).all():
        row = df[~df["label"].isin([0, 1])].iloc[0]
        raise InputError(
            f"predictions: patient {row.patient_id} has label {shown(row.label)}, not 0/1"
        )
    prob = pd.to_numeric(df["probability"], errors="coerce")
    outside = prob.notna() & ((prob < 0) | (prob > 1))
    if outside.any():
        row = df[outside].iloc[0]
        raise InputError(
            f"predictions: patient {row.patient_id}, model {row.model}: probability "
            f"{row.probability} outside [0, 1]"
        )
    df["probability"] = prob.astype(float)
    df["label"] = df["label"].astype(int)
    return df


def _groups(df: pd.DataFrame):
    """(model, cohort, rows) in a deterministic order: models sorted, then cohort_order."""
    cohorts = cohort_order(df["cohort"])
    for model in sorted(df["model"].unique()):
        for cohort in cohorts:
            rows = df[(df["model"] == model) & (df["cohort"] == cohort)]
            if len(rows):
                yield model, cohort, rows


def evaluate_one(
    y,
    p,
    threshold: float,
    ci_method: str = "delong",
    n_bootstrap: int = 2000,
    level: float = 0.95,
    hl_groups: int = 10,
    seed: int = 0,
    development: bool = False,
) -> dict:
    """All metrics of one model on one cohort; never raises on degenerate cohorts.

    Returns a dict with the results layout's metric keys plus n_positive, n_negative, ppv, npv,
    hl_chi2, hl_df, ci_method, ``note`` (";"-separated reasons for any NaN or caveat),
    :data:`CALIBRATION_COLUMNS` and :data:`CI_COLUMNS`. ``development``: the model was
    fitted on these patients (train rows: in-sample; Hosmer-Lemeshow df g - 2, else g).
    The bootstrap CIs of AUPRC and Brier use ``n_bootstrap`` resamples seeded by ``seed``.
    """
    y, p = check_probabilities(y, p)
    notes: list[str] = []
    nan = float("nan")
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    row: dict = {"n": int(y.size), "n_positive": n_pos, "n_negative": n_neg}
    if y.size == 0:
        notes.append("no patients with a prediction")
    elif not _both_classes(y):
        notes.append(f"one class only ({n_pos} positive, {n_neg} negative): AUC undefined")
    elif min(n_pos, n_neg) < 2:
        notes.append(
            f"fewer than 2 patients in a class ({n_pos}/{n_neg}): no AUC CI, "
            "Hosmer-Lemeshow unreliable"
        )
    elif min(n_pos, n_neg) < FEW_PER_CLASS:
        notes.append(
            f"few patients in a class ({n_pos}/{n_neg}): AUC CI and Hosmer-Lemeshow unreliable"
        )

    res = auc_ci(y, p, ci_method, level, n_bootstrap, seed)
    if res.note and min(n_pos, n_neg) >= 2:  # the class counts have their note above
        notes.append(res.note)
    row.update(auc=res.auc, auc_ci_low=res.ci_low, auc_ci_high=res.ci_high, ci_method=ci_method)
    row["auprc"] = average_precision(y, p) if y.size else nan

    if threshold is None or not np.isfinite(threshold):
        notes.append("no threshold from training out-of-fold predictions")
        tm = dict.fromkeys(["accuracy", "sensitivity", "specificity", "ppv", "npv"], nan)
        threshold = nan
    else:
        tm = threshold_metrics(y, p, threshold)
    row.update({k: tm[k] for k in ("accuracy", "sensitivity", "specificity", "ppv", "npv")})
    row["threshold"] = threshold
    row["brier"] = brier_score(y, p) if y.size else nan
    if "tp" in tm:
        tp, fp, tn, fn = tm["tp"], tm["fp"], tm["tn"], tm["fn"]
        for name, k, n in (
            ("sensitivity", tp, tp + fn),
            ("specificity", tn, tn + fp),
            ("ppv", tp, tp + fp),
            ("npv", tn, tn + fn),
        ):
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = wilson_ci(k, n, level)
    for name, fn_metric, offset in (("auprc", average_precision, 1), ("brier", brier_score, 2)):
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = bootstrap_metric_ci(
            y, p, fn_metric, n_bootstrap, level, seed + offset
        )

    hl = hosmer_lemeshow(y, p, hl_groups, development=development)
    row.update(hl_chi2=hl.chi2, hl_df=hl.df, hl_p=hl.p_value)
    if y.size and hl.note:
        notes.append(hl.note)
    recal = logistic_recalibration(y, p, level)
    if recal.note and _both_classes(y) and y.size >= 3:  # class counts noted above
        notes.append(recal.note)
    row.update(
        calibration_intercept=recal.intercept,
        calibration_intercept_ci_low=recal.intercept_ci[0],
        calibration_intercept_ci_high=recal.intercept_ci[1],
        calibration_slope=recal.slope,
        calibration_slope_ci_low=recal.slope_ci[0],
        calibration_slope_ci_high=recal.slope_ci[1],
        ici=integrated_calibration_index(y, p),
    )
    row["oe_ratio"], row["oe_ci_low"], row["oe_ci_high"] = observed_expected(y, p, level)
    row["note"] = "; ".join(notes)
    return row


def evaluate_predictions(
    predictions: pd.DataFrame,
    thresholds: dict[str, float],
    ci_method: str = "delong",
    n_bootstrap: int = 2000,
    level: float = 0.95,
    hl_groups: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Metrics per model x cohort (the table behind the paper's Table 3).

    ``predictions``: columns patient_id, cohort, model, probability, label.
    ``thresholds``: model -> probability cut-off fixed on training out-of-fold
    predictions (see :func:`youden_threshold`). Returns one row per model x cohort with
    :data:`METRICS_COLUMNS` then :data:`EXTRA_COLUMNS`. A missing probability means the
    model failed for that patient: the row is left out and counted in ``note``.
    The bootstrap (if chosen) is seeded with ``seed`` for every model x cohort, so the
    result does not depend on row order.
    """
    df = check_predictions(predictions)
    rows = []
    for model, cohort, g in _groups(df):
        missing = int(g["probability"].isna().sum())
        g = g[g["probability"].notna()]
        row = {"model": model, "cohort": cohort}
        row.update(
            evaluate_one(
                g["label"].to_numpy(),
                g["probability"].to_numpy(),
                thresholds.get(model, float("nan")),
                ci_method=ci_method,
                n_bootstrap=n_bootstrap,
                level=level,
                hl_groups=hl_groups,
                seed=seed,
                development=cohort == "train",
            )
        )
        if missing:
            extra = f"{missing} patient(s) without a prediction left out"
            row["note"] = f"{row['note']}; {extra}" if row["note"] else extra
        row["row_type"] = "original"
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=METRICS_COLUMNS
        + EXTRA_COLUMNS
        + CALIBRATION_COLUMNS
        + CI_COLUMNS
        + UPDATING_COLUMNS,
    )


def observed_expected(y, p, level: float = 0.95) -> tuple[float, float, float]:
    """Observed / expected events, O/E = sum(y) / sum(p) (1 = calibrated in the large;
    > 1: the model under-predicts), with a CI on the log scale: ln(O/E) +- z SE, SE =
    sqrt(sum q (1 - q)) / O, where q are the predictions corrected in the large (logit q
    = a + logit p with sum q = O), the variance of O under those risks, E taken as fixed.

    Debray et al. (2017)'s sqrt((1 - O/N) / O) treats every patient as having the same
    risk and over-covers when risks vary (97-98% for a nominal 95% in 150-patient cohorts
    with spread-out risks; this one 94-95%, tests/test_updated_models.py). NaN without
    events, without expected events or with every patient an event.
    """
    from scipy.optimize import brentq

    y, p = check_probabilities(y, p)
    nan = float("nan")
    observed, expected = float(y.sum()), float(p.sum())
    if y.size == 0 or observed == 0 or expected == 0 or observed == y.size:
        return nan, nan, nan
    ratio = observed / expected
    lp = _logit(p)
    a = brentq(lambda a: float(np.sum(1 / (1 + np.exp(-(a + lp))))) - observed, -50, 50)
    q = 1 / (1 + np.exp(-(a + lp)))
    se = np.sqrt(np.sum(q * (1 - q))) / observed
    z = stats.norm.ppf(0.5 + level / 2)
    return ratio, float(ratio * np.exp(-z * se)), float(ratio * np.exp(z * se))


def recalibrate(y, p, kind: str, level: float = 0.95) -> tuple[np.ndarray | None, object, str]:
    """The model updated on (y, p) by logistic recalibration (TRIPOD+AI 12f).

    ``kind`` ``recalibrated_intercept``: logit(p') = a + logit(p) (calibration-in-the-
    large corrected, ranking and slope kept); ``recalibrated_logistic``: logit(p') = a' +
    b logit(p). Returns (p', the map p -> p' for thresholds, note); p' is None with the
    reason in the note when the fit has no estimate (one class, constant predictions,
    separation, a slope <= 0 that would reverse the ranking).
    """
    rec = logistic_recalibration(y, p, level)
    if kind == "recalibrated_intercept":
        if not np.isfinite(rec.intercept):
            return None, None, rec.note or "no calibration intercept"

        def shift(q, a=rec.intercept):
            return 1 / (1 + np.exp(-(a + _logit(np.asarray(q, dtype=float)))))

        return shift(p), shift, f"intercept a = {rec.intercept:.3f}"
    if kind != "recalibrated_logistic":
        raise InputError(f"recalibrate: kind must be one of {ROW_TYPES[1:]}, not {kind!r}")
    if not np.isfinite(rec.slope):
        return None, None, rec.note or "no calibration slope"
    if rec.slope <= 0:
        return (
            None,
            None,
            f"calibration slope {rec.slope:.3f} <= 0: updating would reverse the ranking",
        )

    def linear(q, a=rec.slope_model_intercept, b=rec.slope):
        return 1 / (1 + np.exp(-(a + b * _logit(np.asarray(q, dtype=float)))))

    return linear(p), linear, f"a = {rec.slope_model_intercept:.3f}, b = {rec.slope:.3f}"


def updated_model_rows(
    predictions: pd.DataFrame,
    thresholds: dict[str, float],
    cohorts,
    n_bootstrap: int = 2000,
    level: float = 0.95,
    hl_groups: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Updated-model rows of metrics.tsv for each model on each of ``cohorts`` (the
    external ones): logistic recalibration, intercept only then intercept + slope, FITTED
    ON THE COHORT'S OWN PATIENTS (TRIPOD+AI 12f) and evaluated on them, so their
    calibration is in-sample for that cohort by construction. The AUC does not change
    (a monotone map); the model's training threshold is carried through the same map, so
    the classification, and with it accuracy, sensitivity and specificity, stay those of
    the original row. Never used to choose a model or as a headline. Columns as
    :func:`evaluate_predictions`; ``row_type`` names the update, ``note`` its
    coefficients or why it has none.
    """
    df = check_predictions(predictions)
    df = df[df["probability"].notna() & df["cohort"].isin(list(cohorts))]
    rows = []
    for model, cohort, g in _groups(df):
        y, p = g["label"].to_numpy(), g["probability"].to_numpy()
        for kind in ROW_TYPES[1:]:
            new, mapping, why = recalibrate(y, p, kind, level)
            row = {"model": model, "cohort": cohort, "row_type": kind}
            if new is None:
                row.update(n=len(g), note=f"{kind.replace('_', ' ')}: not estimable ({why})")
                rows.append(row)
                continue
            t = thresholds.get(model, float("nan"))
            mapped = float(mapping(t)) if t is not None and np.isfinite(t) else float("nan")
            row.update(
                evaluate_one(
                    y,
                    new,
                    mapped,
                    n_bootstrap=n_bootstrap,
                    level=level,
                    hl_groups=hl_groups,
                    seed=seed,
                    development=True,
                )
            )
            label = (
                "updated model: calibration-in-the-large corrected"
                if kind == "recalibrated_intercept"
                else "updated model: logistic recalibration (intercept + slope)"
            )
            extra = (
                f"{label} ({why}), fitted on this cohort's own patients (TRIPOD+AI 12f): "
                "calibration in-sample, never used to choose; threshold mapped likewise"
            )
            row["note"] = f"{extra}; {row['note']}" if row["note"] else extra
            row["row_type"] = kind
            rows.append(row)
    return pd.DataFrame(
        rows,
        columns=METRICS_COLUMNS
        + EXTRA_COLUMNS
        + CALIBRATION_COLUMNS
        + CI_COLUMNS
        + UPDATING_COLUMNS,
    )


def original_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of metrics.tsv that describe the models as fitted (``row_type``
    original, or a table from before the column existed): one per model x cohort."""
    if "row_type" not in metrics:
        return metrics
    return metrics[metrics["row_type"].fillna("original") == "original"]


def curve_table(predictions: pd.DataFrame, kind: str, bins: int = 10) -> pd.DataFrame:
    """Tidy ROC, PR or calibration curve data of every model x cohort, for plotting.

    ``kind``: "roc" (threshold, fpr, tpr), "pr" (threshold, recall, precision) or
    "calibration" (see :func:`calibration_curve`); columns model and cohort come first.
    Cohorts where a curve is undefined (ROC with one class, PR without positives)
    contribute no rows.
    """
    curve = {
        "roc": roc_curve_points,
        "pr": pr_curve_points,
        "calibration": lambda y, p: calibration_curve(y, p, bins),
    }
    if kind not in curve:
        raise InputError(f"curve_table: kind must be roc, pr or calibration, not {kind!r}")
    df = check_predictions(predictions)
    df = df[df["probability"].notna()]
    parts = []
    for model, cohort, g in _groups(df):
        points = curve[kind](g["label"].to_numpy(), g["probability"].to_numpy())
        if len(points):
            parts.append(points.assign(model=model, cohort=cohort))
    if not parts:
        return pd.DataFrame(columns=["model", "cohort"])
    out = pd.concat(parts, ignore_index=True)
    return out[["model", "cohort"] + [c for c in out.columns if c not in ("model", "cohort")]]


def shap_importance(shap_values, feature_names) -> pd.DataFrame:
    """Mean |SHAP| per feature (in the model output's units), largest first.

    ``shap_values``: array (n_patients, n_features). Ties keep the input order.
    """
    values = np.asarray(shap_values, dtype=float)
    names = list(feature_names)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise InputError("SHAP: values must have shape (n_patients, n_features) matching names")
    importance = np.abs(values).mean(axis=0)
    order = np.argsort(-importance, kind="mergesort")
    return pd.DataFrame({"feature": [names[j] for j in order], "mean_abs_shap": importance[order]})
