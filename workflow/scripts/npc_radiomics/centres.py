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


#: Cohort names a centre may not take (the pool's cohorts and the pooled external one).
RESERVED_CENTRE_NAMES = ("train", "test", "external")
#: Fewer events (or non-events) than this: the report flags the centre's AUC as unstable.
MIN_EVENTS = 10


def check_centre_config(cfg: dict) -> None:
    """InputError (one line, naming the key and centre) for a centre listed in both
    cohorts, twice in one list, or under a reserved cohort name."""
    train = list(cfg["cohorts"]["train_centers"])
    external = list(cfg["cohorts"]["external_centers"])
    both = sorted(set(train) & set(external))
    if both:
        raise InputError(
            f"config key cohorts: centre {both[0]!r} is listed both in cohorts.train_centers "
            "and cohorts.external_centers (a centre is either training or external)"
        )
    if (cfg.get("validation") or {}).get("leave_one_centre_out") and len(train) < 2:
        raise InputError(
            "config key validation.leave_one_centre_out: true needs two or more training "
            f"centres, cohorts.train_centers has {len(train)} ({', '.join(train) or 'none'})"
        )
    for key, centres in (("train_centers", train), ("external_centers", external)):
        twice = sorted({c for c in centres if centres.count(c) > 1})
        if twice:
            raise InputError(f"config key cohorts.{key}: centre {twice[0]!r} is listed twice")
        reserved = [c for c in centres if str(c).lower() in RESERVED_CENTRE_NAMES]
        if reserved:
            raise InputError(
                f"config key cohorts.{key}: {reserved[0]!r} is a cohort name of the results "
                f"({', '.join(RESERVED_CENTRE_NAMES)}); rename the centre"
            )


def centre_class_warnings(cfg: dict, patients: pd.DataFrame) -> list[str]:
    """Warning lines (the run goes on) for a centre whose patients are all one class:
    no AUC can be computed for it, and the report shows that gap with this reason.

    ``patients``: patient_id, center, label (0/1). LOCO needs both classes in every
    training centre (its held-out AUC): there this is an InputError.
    """
    train = list(cfg["cohorts"]["train_centers"])
    external = list(cfg["cohorts"]["external_centers"])
    loco = bool((cfg.get("validation") or {}).get("leave_one_centre_out"))
    lines = []
    for centre in [*train, *external]:
        labels = patients.loc[patients["center"] == centre, "label"]
        if labels.empty or labels.nunique() > 1:
            continue
        value = int(labels.iloc[0])
        role = "training" if centre in train else "external"
        line = (
            f"{role} centre {centre}: all {len(labels)} patients have outcome {value}; "
            "no AUC can be computed for it (the report shows the gap)"
        )
        if loco and role == "training":
            raise InputError(
                f"validation.leave_one_centre_out: training centre {centre!r} has only "
                f"outcome {value} ({len(labels)} patients): no held-out AUC; drop the centre "
                "from LOCO by merging it or set validation.leave_one_centre_out: false"
            )
        lines.append(line)
    return lines


def centre_table(split: pd.DataFrame, cfg_train: list[str]) -> pd.DataFrame:
    """One row per centre: center, role (training / external), n, events (label 1),
    non_events, cohorts (where its patients went) and note (one class: no AUC; fewer than
    :data:`MIN_EVENTS` events or non-events: AUC unstable). ``split``: split.tsv."""
    rows = []
    for centre, g in split.groupby(split["center"].astype(str), sort=True):
        events = int((g["label"] == 1).sum())
        non_events = int((g["label"] == 0).sum())
        note = ""
        if min(events, non_events) == 0:
            note = "one outcome class only: no AUC"
        elif min(events, non_events) < MIN_EVENTS:
            note = f"fewer than {MIN_EVENTS} events or non-events: AUC unstable (wide CI)"
        rows.append(
            {
                "center": centre,
                "role": "training" if centre in cfg_train else "external",
                "n": len(g),
                "events": events,
                "non_events": non_events,
                "cohorts": ", ".join(sorted(g["cohort"].astype(str).unique())),
                "note": note,
            }
        )
    return pd.DataFrame(
        rows, columns=["center", "role", "n", "events", "non_events", "cohorts", "note"]
    )


def patient_labels(samples: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """patient_id, center, label of every patient of a sample sheet (``labels``:
    patient_id -> 0/1)."""
    first = samples.drop_duplicates("patient_id").sort_values("patient_id")
    return pd.DataFrame(
        {
            "patient_id": first["patient_id"].to_numpy(),
            "center": first["center"].astype(str).to_numpy(),
            "label": [int(labels[p]) for p in first["patient_id"]],
        }
    )
