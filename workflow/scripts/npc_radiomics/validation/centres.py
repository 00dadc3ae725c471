"""Centres as first-class data (pipeline step 21): centre-effect diagnostics.

``centre_predictability`` asks how well the features tell the centres apart: the
cross-validated AUC (one-vs-rest macro average with three or more centres) and balanced
accuracy of a standardised logistic regression predicting the centre. Close to 0.5 / 1/k
means little centre effect is left; well above means the features still carry the
scanner. With ``harmonise`` ComBat (npc_radiomics.modelling.harmonize) is refitted inside every
fold, as in the modelling pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.config import derived_seed
from npc_radiomics.base.errors import InputError


def centre_predictability(
    X: pd.DataFrame, centre: pd.Series, seed: int, harmonise: bool = False, folds: int = 5
) -> dict:
    """Cross-validated centre prediction from the feature columns of ``X``.

    X: patients x features (finite; indexed by patient_id); centre: each patient's centre
    (indexed like X). Returns {auc, balanced_accuracy, n, n_centres, folds, harmonised}.
    """
    # scikit-learn here, not at the top: the report imports this module for its section.
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from npc_radiomics.modelling.harmonize import CENTRE_COLUMN, CentreComBat

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


#: Fewer events (or non-events) than this: the report flags the centre's AUC as unstable.
MIN_EVENTS = 10


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


# ------------------------------------------------------------- centre-effect diagnostics
DIAGNOSTIC_COLUMNS = [
    "patients",
    "harmonised",
    "n",
    "n_centres",
    "auc",
    "balanced_accuracy",
    "folds",
    "note",
]


def _selected_matrix(design, features: list[str]) -> pd.DataFrame:
    """The selected features of every patient, non-finite values -> the training median."""
    X = design.X[[f for f in features if f in design.X.columns]].astype(float)
    X = X.where(np.isfinite(X))
    median = X[design.cohort.reindex(X.index).to_numpy() == "train"].median()
    return X.fillna(median).fillna(0.0)


def centre_diagnostics(design, features: list[str], seed: int, combat: bool) -> pd.DataFrame:
    """How well the selected ``features`` predict the centre (:func:`centre_predictability`)
    among the training patients and among all patients, before and (with ComBat refitted in
    each CV fold) after harmonisation. A scope with fewer than two centres, or centres too
    small to cross-validate, is a row with the reason in ``note``."""
    X = _selected_matrix(design, features)
    centre = design.centre.reindex(X.index).astype(str)
    train = design.cohort.reindex(X.index).to_numpy() == "train"
    rows = []
    for scope, keep in (("training", train), ("all", np.ones(len(X), dtype=bool))):
        for harmonised in (False, True):
            row = {"patients": scope, "harmonised": harmonised, "n": int(keep.sum())}
            try:
                if X.shape[1] == 0:
                    raise InputError("no selected feature")
                row.update(centre_predictability(X[keep], centre[keep], seed, harmonise=harmonised))
                row["note"] = ""
                if harmonised and not combat:
                    row["note"] = "what ComBat would do (harmonization.combat is off)"
            except (InputError, ValueError) as err:
                row.update(
                    n_centres=int(centre[keep].nunique()),
                    auc=np.nan,
                    balanced_accuracy=np.nan,
                    folds=0,
                    note=str(err),
                )
            rows.append(row)
    return pd.DataFrame(rows)[DIAGNOSTIC_COLUMNS]


def centre_pca(design, features: list[str], combat: bool, unseen: str):
    """2-D PCA of the selected features, fitted on the training patients (standardised on
    them) and applied to every patient; with ComBat a second embedding after harmonising
    (ComBat fitted on the training patients, centres it has not seen per ``unseen``).
    Returns {title: DataFrame(patient_id, center, role, pc1, pc2)}."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from npc_radiomics.modelling.harmonize import CENTRE_COLUMN, CentreComBat

    X = _selected_matrix(design, features)
    centre = design.centre.reindex(X.index).astype(str)
    cohort = design.cohort.reindex(X.index).astype(str)
    train = (cohort == "train").to_numpy()
    role = np.where(cohort.isin(["train", "test"]), "training pool", "external")
    views = {"before ComBat" if combat else "selected features": X}
    if combat and centre[train].nunique() >= 2:
        data = X.assign(**{CENTRE_COLUMN: centre})
        step = CentreComBat(unseen=unseen).fit(data[train])
        views["after ComBat"] = step.transform(data)
    out = {}
    for title, values in views.items():
        scaler = StandardScaler().fit(values[train])
        n_comp = min(2, values.shape[1], int(train.sum()))
        pca = PCA(n_components=n_comp).fit(scaler.transform(values[train]))
        pcs = pca.transform(scaler.transform(values))
        if n_comp < 2:
            pcs = np.column_stack([pcs, np.zeros(len(pcs))])
        out[title] = pd.DataFrame(
            {
                "patient_id": X.index,
                "center": centre.to_numpy(),
                "role": role,
                "pc1": pcs[:, 0],
                "pc2": pcs[:, 1],
            }
        )
    return out


def plot_centre_pca(embeddings: dict, path):
    """One panel per embedding: patients coloured by centre, external ones as triangles."""
    import matplotlib.pyplot as plt

    from npc_radiomics.figures import PALETTE, PANEL_IN, STYLE, save_figure

    if not embeddings:
        raise InputError("no embedding to plot")
    centres = sorted({c for e in embeddings.values() for c in e["center"]})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(centres)}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1, len(embeddings), figsize=(PANEL_IN * len(embeddings), PANEL_IN), squeeze=False
        )
        for ax, (title, e) in zip(axes[0], embeddings.items(), strict=True):
            for c in centres:
                for role, marker in (("training pool", "o"), ("external", "^")):
                    g = e[(e["center"] == c) & (e["role"] == role)]
                    if len(g):
                        ax.scatter(
                            g["pc1"],
                            g["pc2"],
                            s=9,
                            marker=marker,
                            color=colour[c],
                            alpha=0.8,
                            label=f"{c} ({role})",
                        )
            ax.set_title(title)
            ax.set_xlabel("PC1")
            ax.set_ylabel("PC2")
        axes[0][-1].legend(loc="best")
    return save_figure(fig, path)


def centres_rule(design, split: pd.DataFrame, features, cfg: dict, seed: int, out) -> str:
    """Rule ``centre_diagnostics``: the per-centre table, the centre-predictability
    diagnostics and the PCA figure (``out``: table, diagnostics, pca)."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.figures import figure_or_placeholder, placeholder_figure

    combat = bool(cfg["combat"])
    write_tsv(centre_table(split, list(cfg["train_centers"])), out.table)
    if design.centre is None or design.centre.nunique() < 2:
        reason = "one centre only: no centre effect to measure"
        write_tsv(pd.DataFrame(columns=DIAGNOSTIC_COLUMNS), out.diagnostics)
        placeholder_figure(out.pca, reason)
        return reason
    diagnostics = centre_diagnostics(design, features, seed, combat)
    write_tsv(diagnostics, out.diagnostics)
    if not features:
        placeholder_figure(out.pca, "no selected feature")
    else:
        figure_or_placeholder(
            plot_centre_pca, out.pca, centre_pca(design, features, combat, cfg["unseen_centre"])
        )
    return f"centre diagnostics on {len(features)} selected features: {len(diagnostics)} rows"
