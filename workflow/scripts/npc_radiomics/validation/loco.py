"""Leave-one-centre-out validation over the training centres (pipeline step 21).

For each training centre ``c`` and model, the whole modelling procedure (ComBat when on,
selection, tuning, refit, threshold) is fitted on the ``train`` patients of the OTHER
training centres and evaluated on every training-pool patient of ``c`` (its train and
test patients). No test patient is ever fitted on, and no patient of ``c`` reaches a
step fitted inside the loop (ComBat, selection, tuning, refit, threshold). The steps
before the modelling pipeline are fitted once, outside the loop: the z-score
normalisation statistics and the ICC robustness filter use the training patients of every
training centre, ``c`` included (every cohort with ``reference: all``), so ``c`` is not
wholly unseen; the report says so (``report.sections.fitted_claims``). One job per centre
x model (rule ``loco_fold``); rule ``loco`` gathers the table and the forest plot.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.layout import POOL_COHORTS

log = logging.getLogger(__name__)

#: Columns of results/loco/{centre}/{model}.tsv (and results/loco/predictions.tsv).
LOCO_PREDICTION_COLUMNS = ["patient_id", "held_out_center", "model", "probability", "label"]
#: Columns of results/loco/loco.tsv.
LOCO_COLUMNS = [
    "model",
    "held_out_center",
    "n",
    "events",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "calibration_slope",
    "calibration_slope_ci_low",
    "calibration_slope_ci_high",
    "threshold",
    "n_fit",
    "note",
]


def loco_rows(design, centre: str) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the design's patients: (fit rows, held-out rows) for ``centre``."""
    if design.centre is None:
        raise InputError("leave-one-centre-out: the split table has no 'center' column")
    centres = design.centre.reindex(design.X.index).astype(str).to_numpy()
    cohort = design.cohort.to_numpy()
    fit = (cohort == "train") & (centres != centre)
    held = np.isin(cohort, POOL_COHORTS) & (centres == centre)
    if not held.any():
        raise InputError(f"leave-one-centre-out: training centre {centre!r} has no patient")
    if not fit.any():
        raise InputError(
            f"leave-one-centre-out: no training patient outside centre {centre!r} "
            "(LOCO needs two or more training centres)"
        )
    return fit, held


def loco_fold(model, space, design, centre, settings, seed, n_jobs=1):
    """One held-out centre: tune, refit and threshold on the other centres' training
    patients, predict the held-out centre. Returns (predictions, info)."""
    from npc_radiomics.modelling.fits import final_cv_threshold
    from npc_radiomics.modelling.folds import check_fold_sizes
    from npc_radiomics.modelling.studies import best_params, model_pipeline, model_seed, tune

    fit, held = loco_rows(design, centre)
    X, y = design.model_X, design.y
    X_fit, y_fit = X[fit], y[fit]
    check_fold_sizes(y_fit, settings, nested=True)
    selection = settings.selection(seed)
    study, _ = tune(
        model, space, X_fit, y_fit, settings, seed, f"loco-{centre}", selection, n_jobs=n_jobs
    )
    best = best_params(study, model, settings.n_trials)
    pipe = model_pipeline(model, best["params"], selection, model_seed(seed, model), n_jobs)
    pipe.fit(X_fit, y_fit.to_numpy())
    threshold, _ = final_cv_threshold(
        model, best["params"], X_fit, y_fit, settings, seed, selection, n_jobs
    )
    pred = pd.DataFrame(
        {
            "patient_id": X.index[held],
            "held_out_center": centre,
            "model": model,
            "probability": pipe.predict_proba(X[held])[:, 1],
            "label": y[held].to_numpy(),
        }
    ).sort_values("patient_id", kind="mergesort")
    info = {
        "model": model,
        "held_out_center": centre,
        "params": best["params"],
        "inner_cv_auc": best["inner_cv_auc"],
        "threshold": threshold["threshold"],
        "n_fit": int(fit.sum()),
        "fit_centres": sorted(set(design.centre[fit].astype(str))),
        "selected_features": list(pipe[:-1].get_feature_names_out(design.features)),
    }
    return pred.reset_index(drop=True), info


def loco_rule(model, search_spaces, design, centre, settings, seed, n_jobs=1):
    """Rule ``loco_fold``: :func:`loco_fold`, a numerical failure of the model recorded
    (empty predictions, ``failed: true`` and the reason), bad input raised."""
    from npc_radiomics.modelling.studies import NUMERICAL_FAILURES
    from npc_radiomics.modelling.zoo import parse_search_spaces

    space = parse_search_spaces(search_spaces, [model])[model]
    try:
        pred, info = loco_fold(model, space, design, centre, settings, seed, n_jobs)
    except InputError:
        raise
    except NUMERICAL_FAILURES as err:
        log.error("%s, held-out centre %s failed: %s", model, centre, err)
        pred = pd.DataFrame(columns=LOCO_PREDICTION_COLUMNS)
        info = {"model": model, "held_out_center": centre, "failed": True, "reason": str(err)}
    return pred, info


def loco_table(predictions: pd.DataFrame, infos: list[dict]) -> pd.DataFrame:
    """One row per model x held-out centre (every centre of ``infos`` once per model):
    n, events, AUC with DeLong 95% CI, calibration slope with CI, threshold, n_fit, note."""
    from npc_radiomics.metrics import delong_ci, logistic_recalibration
    from npc_radiomics.validation.centres import MIN_EVENTS

    rows = []
    for info in sorted(infos, key=lambda i: (i["model"], str(i["held_out_center"]))):
        model, centre = info["model"], str(info["held_out_center"])
        g = predictions[
            (predictions["model"] == model) & (predictions["held_out_center"].astype(str) == centre)
        ]
        y = g["label"].to_numpy(dtype=int)
        p = g["probability"].to_numpy(dtype=float)
        row = {"model": model, "held_out_center": centre, "n": len(g), "events": int(y.sum())}
        nan = float("nan")
        row.update(
            auc=nan,
            auc_ci_low=nan,
            auc_ci_high=nan,
            calibration_slope=nan,
            calibration_slope_ci_low=nan,
            calibration_slope_ci_high=nan,
            threshold=info.get("threshold"),
            n_fit=info.get("n_fit"),
            note="",
        )
        if info.get("failed"):
            row["note"] = f"failed: {info['reason']}"
        elif len(g) and 0 < y.sum() < len(y):
            a = delong_ci(y, p)
            cal = logistic_recalibration(y, p)
            row.update(
                auc=a.auc,
                auc_ci_low=a.ci_low,
                auc_ci_high=a.ci_high,
                calibration_slope=cal.slope,
                calibration_slope_ci_low=cal.slope_ci[0],
                calibration_slope_ci_high=cal.slope_ci[1],
            )
            if min(y.sum(), len(y) - y.sum()) < MIN_EVENTS:
                row["note"] = f"fewer than {MIN_EVENTS} events or non-events: AUC unstable"
        else:
            row["note"] = "one outcome class only: no AUC"
        rows.append(row)
    return pd.DataFrame(rows, columns=LOCO_COLUMNS)


def plot_loco_forest(table: pd.DataFrame, path, model: str | None = None):
    """Forest plot: held-out-centre AUC with 95% CI (one row per centre, per model when
    ``model`` is None), reference line at 0.5."""
    import matplotlib.pyplot as plt

    from npc_radiomics.figures import PANEL_IN, STYLE, model_colours, save_figure

    shown = table if model is None else table[table["model"] == model]
    shown = shown[np.isfinite(shown["auc"].astype(float))]
    if shown.empty:
        raise InputError("leave-one-centre-out: no held-out centre has an AUC")
    colours = model_colours(table["model"])
    labels = [
        f"{r.held_out_center} ({r.model}; n={r.n}, events={r.events})" for r in shown.itertuples()
    ]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PANEL_IN * 1.6, 0.6 + 0.28 * len(shown)))
        ypos = np.arange(len(shown))[::-1]
        for yk, r in zip(ypos, shown.itertuples(), strict=True):
            lo = r.auc_ci_low if np.isfinite(r.auc_ci_low) else r.auc
            hi = r.auc_ci_high if np.isfinite(r.auc_ci_high) else r.auc
            ax.plot([lo, hi], [yk, yk], color=colours[r.model])
            ax.plot([r.auc], [yk], "s", color=colours[r.model], markersize=4)
        ax.axvline(0.5, color="#7f7f7f", linestyle="--", linewidth=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(labels)
        ax.set_xlim(0, 1)
        ax.set_xlabel("AUC on the held-out centre (95% CI, DeLong)")
        ax.set_title("Leave-one-centre-out")
    return save_figure(fig, path)


def gather_loco(prediction_paths, info_paths, out, chosen_model: str | None = None) -> str:
    """Rule ``loco``: the table, the gathered predictions and the forest plot (of the
    chosen model when given, else every model)."""
    import json
    from pathlib import Path

    from npc_radiomics.base.io import read_table, write_tsv
    from npc_radiomics.figures import figure_or_placeholder

    parts = [read_table(p, dtype={"patient_id": str}) for p in sorted(map(str, prediction_paths))]
    parts = [p for p in parts if len(p)]
    predictions = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=LOCO_PREDICTION_COLUMNS)
    )
    predictions = predictions.sort_values(
        ["model", "held_out_center", "patient_id"], kind="mergesort"
    )[LOCO_PREDICTION_COLUMNS]
    infos = [json.loads(Path(p).read_text()) for p in sorted(map(str, info_paths))]
    table = loco_table(predictions, infos)
    write_tsv(predictions, out.predictions)
    write_tsv(table, out.table)
    model = chosen_model if chosen_model in set(table["model"]) else None
    reason = figure_or_placeholder(plot_loco_forest, out.forest, table, model=model)
    return f"LOCO: {len(table)} rows ({table['held_out_center'].nunique()} centres) {reason}"
