"""Checked inputs of every metric: labels 0/1 and scores or probabilities of the same
length, a predictions table's columns; class counts for the notes of degenerate cohorts;
the kinds of metrics rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError, shown
from npc_radiomics.base.layout import PREDICTION_COLUMNS

# Below this many patients in either class the AUC CI and HL test are still computed
# but flagged: the normal approximation behind DeLong and the chi2 of HL are poor.
FEW_PER_CLASS = 5


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


def both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


def class_counts_note(y: np.ndarray) -> str:
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if y.size == 0:
        return "no patients: AUC undefined"
    if not both_classes(y):
        return f"one class only ({n_pos} positive, {n_neg} negative): AUC undefined"
    if min(n_pos, n_neg) < 2:
        return f"fewer than 2 patients in a class ({n_pos}/{n_neg}): no AUC CI"
    return ""


#: Kinds of metrics rows: the model as fitted, and updated models of an external cohort.
ROW_TYPES = ("original", "recalibrated_intercept", "recalibrated_logistic")


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
