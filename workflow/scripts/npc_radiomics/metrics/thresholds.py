"""Metrics at a threshold: Youden's threshold, accuracy, sensitivity, specificity, PPV,
NPV with Wilson CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.lazy import lazy_module
from npc_radiomics.metrics.discrimination import cumulative_counts
from npc_radiomics.metrics.inputs import both_classes, check_predictions, check_scores

stats = lazy_module("scipy.stats")  # only the confidence intervals and tests need it


def youden_threshold(y, p) -> float:
    """Probability cut-off maximising Youden's J = sensitivity + specificity - 1.

    Meant for training out-of-fold predictions, then applied unchanged to every cohort.
    The cut-off is the midpoint between the chosen score and the next lower distinct
    score (as pROC does): identical classification of the training patients, but it
    does not sit exactly on one training patient's score. Ties in J go to the highest
    cut-off (fewest positives). NaN with one class.
    """
    y, p = check_scores(y, p)
    if not both_classes(y):
        return float("nan")
    scores, tp, fp = cumulative_counts(y, p)
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


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``; (NaN, NaN) when n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    frac = successes / n
    centre = (frac + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(frac * (1 - frac) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
