"""Novelty of a new patient (pipeline step 20): how far its features lie from the training
patients', so that a prediction for a patient unlike any seen in training is flagged.

The space is the one the bundle's classifier sees: the training patients' features passed
through the fitted pipeline without its classifier (imputation, scaling, mRMR, LASSO: the
selected features, standardised; transform only, nothing refitted). In it a shrinkage
covariance (Ledoit-Wolf, scikit-learn's ``LedoitWolf``; well conditioned with fewer
patients than features) is fitted on the training patients; a patient's score is its
Mahalanobis distance from the training mean. The threshold is the 99th percentile
(:data:`NOVELTY_QUANTILE`) of the training patients' leave-one-out distances (each patient
scored against the mean and covariance of the others, as a new patient would be; in-sample
distances are too small), taken at the conformal rank ``ceil((n + 1) * 0.99)`` (the
largest distance below 99 patients): a patient drawn like the training ones is flagged
with probability at most about 1 % (1 / (n + 1) with n < 99 training patients; measured
in tests/test_novelty.py).

Everything predict mode needs is stored in the bundle's manifest as plain numbers
(location, precision matrix, threshold), never pickled; predicting refits nothing.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

#: Quantile of the training patients' leave-one-out distances above which a patient is flagged.
NOVELTY_QUANTILE = 0.99
NOVELTY_METHOD = "mahalanobis_ledoit_wolf"
#: Fewest training patients for a reference (fewer: no novelty score, with the reason).
MIN_PATIENTS = 5


def _fit(Z: np.ndarray):
    from sklearn.covariance import LedoitWolf

    return LedoitWolf(assume_centered=False).fit(Z)


def _distance(Z: np.ndarray, location: np.ndarray, precision: np.ndarray) -> np.ndarray:
    diff = np.atleast_2d(Z) - location
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, precision, diff), 0.0))


def conformal_threshold(scores: np.ndarray, quantile: float) -> float:
    """The ``ceil((n + 1) * quantile)``-th smallest of ``n`` scores (the largest when that
    rank exceeds n): a new score drawn like them exceeds it with probability at most
    ``1 - quantile`` (split-conformal rank; the plain empirical quantile of a few dozen
    scores is exceeded more often)."""
    ordered = np.sort(np.asarray(scores, dtype=float))
    rank = int(np.ceil((len(ordered) + 1) * quantile))
    return float(ordered[min(rank, len(ordered)) - 1])


def fit_novelty(Z: np.ndarray, features: list[str]) -> dict:
    """The novelty reference of the training patients' transformed features ``Z``
    (n patients x k selected features): plain lists and numbers for the manifest.

    Degenerate inputs (no selected feature, fewer than :data:`MIN_PATIENTS` patients,
    non-finite values) give a reference without location whose ``reason`` says why;
    :func:`novelty_scores` then returns NaN.
    """
    Z = np.asarray(Z, dtype=float)
    n, k = Z.shape
    base = {
        "method": NOVELTY_METHOD,
        "features": [str(f) for f in features],
        "n_train": int(n),
        "quantile": NOVELTY_QUANTILE,
        "threshold_source": (
            f"{NOVELTY_QUANTILE:.0%} conformal quantile of the training patients' "
            "leave-one-out Mahalanobis distances"
        ),
    }
    reason = None
    if k == 0:
        reason = "the pipeline selects no feature"
    elif n < MIN_PATIENTS:
        reason = f"{n} training patients (fewer than {MIN_PATIENTS})"
    elif not np.isfinite(Z).all():
        reason = "non-finite transformed training features"
    if reason is not None:
        log.warning("novelty: no reference: %s", reason)
        return {**base, "location": None, "precision": None, "threshold": None, "reason": reason}
    whole = _fit(Z)
    loo = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        fitted = _fit(Z[keep])
        loo[i] = _distance(Z[i], fitted.location_, fitted.precision_)[0]
    threshold = conformal_threshold(loo, NOVELTY_QUANTILE)
    return {
        **base,
        "location": [float(v) for v in whole.location_],
        "precision": [[float(v) for v in row] for row in whole.precision_],
        "shrinkage": float(whole.shrinkage_),
        "threshold": threshold,
        "train_loo_median": float(np.median(loo)),
        "reason": "",
    }


def novelty_scores(reference: dict | None, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, flag) per row of ``Z`` (the new patients' transformed features): the
    Mahalanobis distance to the training patients and whether it exceeds the threshold.
    NaN scores and flags (float NaN) without a reference or for non-finite rows."""
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    n = Z.shape[0]
    if not reference or reference.get("location") is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    location = np.asarray(reference["location"], dtype=float)
    precision = np.asarray(reference["precision"], dtype=float)
    score = np.full(n, np.nan)
    finite = np.isfinite(Z).all(axis=1)
    if finite.any():
        score[finite] = _distance(Z[finite], location, precision)
    flag = np.where(np.isnan(score), np.nan, (score > reference["threshold"]).astype(float))
    return score, flag
