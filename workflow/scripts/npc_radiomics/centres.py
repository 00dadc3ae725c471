"""Centres as first-class data (pipeline step 21): centre-effect diagnostics.

``centre_predictability`` asks how well the features tell the centres apart: the
cross-validated AUC (one-vs-rest macro average with three or more centres) and balanced
accuracy of a standardised logistic regression predicting the centre. Close to 0.5 / 1/k
means little centre effect is left; well above means the features still carry the
scanner. With ``harmonise`` ComBat (npc_radiomics.harmonize) is refitted inside every
fold, as in the modelling pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .config import derived_seed
from .errors import InputError


def centre_predictability(
    X: pd.DataFrame, centre: pd.Series, seed: int, harmonise: bool = False, folds: int = 5
) -> dict:
    """Cross-validated centre prediction from the feature columns of ``X``.

    X: patients x features (finite; indexed by patient_id); centre: each patient's centre
    (indexed like X). Returns {auc, balanced_accuracy, n, n_centres, folds, harmonised}.
    """
    from .harmonize import CENTRE_COLUMN, CentreComBat

    centre = centre.reindex(X.index).astype(str)
    counts = centre.value_counts()
    if len(counts) < 2:
        raise InputError("centre diagnostics need two or more centres")
    k = int(min(folds, counts.min()))
    if k < 2:
        raise InputError(
            f"centre diagnostics: centre {counts.idxmin()} has {counts.min()} patient(s)"
        )
    steps = [
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(C=1.0, max_iter=2000)),
    ]
    data = X.astype(float)
    if harmonise:
        data = data.assign(**{CENTRE_COLUMN: centre})
        steps.insert(0, ("combat", CentreComBat()))
    classes = sorted(counts.index)
    y = np.array([classes.index(c) for c in centre])
    prob = np.zeros((len(y), len(classes)))
    skf = StratifiedKFold(k, shuffle=True, random_state=derived_seed(seed, "centre_diag"))
    for tr, va in skf.split(np.zeros(len(y)), y):
        pipe = Pipeline(steps).fit(data.iloc[tr], y[tr])
        prob[va] = pipe.predict_proba(data.iloc[va])
    if len(classes) == 2:
        auc = roc_auc_score(y, prob[:, 1])
    else:
        auc = roc_auc_score(y, prob, multi_class="ovr", average="macro")
    return {
        "auc": float(auc),
        "balanced_accuracy": float(balanced_accuracy_score(y, prob.argmax(axis=1))),
        "n": int(len(y)),
        "n_centres": len(classes),
        "folds": k,
        "harmonised": bool(harmonise),
    }
