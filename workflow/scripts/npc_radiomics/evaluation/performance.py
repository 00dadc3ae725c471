"""Evaluation tables (rule ``evaluate``): Table 3, thresholds, curve data, the chosen model.

Youden thresholds fixed on the training set on each final model's own probability scale
(cross-validated predictions of its final configuration, written by rule fit_final), metrics
per model x cohort plus one nested-CV row per model, ROC / PR / calibration curve data,
and the chosen model, picked by its mean nested-CV AUC only (never by test or external
results).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_table
from npc_radiomics.base.layout import (
    NESTED_PREDICTION_COLUMNS,
    POOL_COHORTS,
    POOLED_EXTERNAL,
    PREDICTION_COLUMNS,
    cohort_order,
    cohort_rank,
)
from npc_radiomics.evaluation.procedure import procedure_metrics_row
from npc_radiomics.metrics import (
    CALIBRATION_COLUMNS,
    CI_COLUMNS,
    EXTRA_COLUMNS,
    METRICS_COLUMNS,
    ROW_TYPES,
    UPDATING_COLUMNS,
    curve_table,
    evaluate_one,
    evaluate_predictions,
    original_rows,
    updated_model_rows,
    youden_thresholds,
)

#: Cohort name of the nested-CV rows in metrics.tsv (training out-of-fold predictions).
NESTED_CV = "nested_cv"
#: Columns added after metrics.EXTRA_COLUMNS: spread of the AUC over outer folds.
NESTED_COLUMNS = ["auc_sd", "n_folds"]


def _concat_tables(
    paths, columns: list[str], sort_by: list[str], key=None, extra=()
) -> pd.DataFrame:
    """Concatenate per-model tables (and ``extra`` frames) sorted by ``sort_by`` (pandas
    ``key``); a failed model's empty table is skipped."""
    frames = [read_table(path, dtype={"patient_id": str}) for path in paths] + list(extra)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(sort_by, key=key, kind="mergesort").reset_index(drop=True)


def gather_predictions(
    final_paths, nested_paths, external_paths=()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule ``gather_predictions``: every model's final predictions on the training pool
    (``final_paths``, train and test) and on each external centre (``external_paths``, one
    table per centre, every model), plus the pooled ``external`` cohort (every external
    patient again) when there are two or more external centres; sorted by model, cohort
    in :func:`~npc_radiomics.base.layout.cohort_order`, patient. And every outer fold's
    nested-CV predictions (sorted by model, outer fold, patient)."""
    paths = [*final_paths, *external_paths]
    frames = [read_table(path, dtype={"patient_id": str}) for path in external_paths]
    centres = {c for f in frames for c in f["cohort"].unique()}
    pooled = []
    if len(centres) >= 2:
        pooled = [f.assign(cohort=POOLED_EXTERNAL) for f in frames if not f.empty]
    final = _concat_tables(
        paths,
        PREDICTION_COLUMNS,
        ["model", "cohort", "patient_id"],
        key=lambda s: pd.Series(cohort_rank(s), index=s.index) if s.name == "cohort" else s,
        extra=pooled,
    )
    nested = _concat_tables(
        nested_paths, NESTED_PREDICTION_COLUMNS, ["model", "outer_fold", "patient_id"]
    )
    return final[PREDICTION_COLUMNS], nested


def external_predictions(design, pipeline_paths, models, centre: str) -> pd.DataFrame:
    """Rule ``predict_external``: every final pipeline's predictions for one external
    centre (patient_id, cohort = the centre, model, probability, label), models in the
    given order. ``design`` holds the training pool and the centre (so the centre's rows
    get exactly the columns the pipelines were fitted on); nothing is fitted here. A model
    whose tuning failed (no pipeline) has no rows."""
    from npc_radiomics.modelling.persistence import load_pipeline

    X, y = design.subset(centre)
    rows = []
    for model, path in zip(models, pipeline_paths, strict=True):
        pipe = load_pipeline(path)
        if pipe is None:
            continue
        probability = pipe.predict_proba(X)[:, 1]
        if probability.dtype != np.float64:
            # A float32 model (XGBoost): the digits its own table holds (shortest float32
            # repr), as the training pool's predictions of fit_final read back, not the
            # float32 widened to float64 when the models' rows are joined.
            probability = probability.astype(str).astype(np.float64)
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": X.index,
                    "cohort": centre,
                    "model": model,
                    "probability": probability,
                    "label": y.to_numpy(),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    return pd.concat(rows, ignore_index=True)[PREDICTION_COLUMNS]


def nested_cv_predictions(nested: pd.DataFrame) -> pd.DataFrame:
    """Out-of-fold predictions of nested CV as a predictions table (cohort ``nested_cv``).

    ``nested``: patient_id, model, outer_fold, probability, label (results/predictions/
    nested_cv.tsv). The outer_fold column is kept.
    """
    missing = [c for c in NESTED_PREDICTION_COLUMNS if c not in nested]
    if missing:
        raise InputError(f"nested-CV predictions: missing column(s) {missing}")
    return nested.assign(cohort=NESTED_CV)


def nested_cv_summary(nested: pd.DataFrame) -> pd.DataFrame:
    """Per model: n_folds, n (patients), auc_mean, auc_sd over outer folds, fold_aucs.

    A fold with one class has no AUC and is left out of the mean (``n_folds`` counts the
    folds with an AUC); auc_sd is the sample SD (ddof 1), NaN with fewer than 2 folds.
    """
    from npc_radiomics.metrics import auc

    rows = []
    for model, g in nested.groupby("model", sort=True):
        g = g[g["probability"].notna()]
        fold_aucs = [
            auc(f["label"].to_numpy(), f["probability"].to_numpy())
            for _, f in g.groupby("outer_fold", sort=True)
        ]
        finite = [a for a in fold_aucs if np.isfinite(a)]
        rows.append(
            {
                "model": model,
                "n": len(g),
                "n_folds_predicted": int(g["outer_fold"].nunique()),
                "n_folds": len(finite),
                "auc_mean": float(np.mean(finite)) if finite else np.nan,
                "auc_sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else np.nan,
                "fold_aucs": ";".join(f"{a:.4f}" for a in fold_aucs),
            }
        )
    columns = ["model", "n", "n_folds_predicted", "n_folds", "auc_mean", "auc_sd", "fold_aucs"]
    return pd.DataFrame(rows, columns=columns)


def choose_model(
    summary: pd.DataFrame, models: list[str], n_outer_folds: int | None = None
) -> dict:
    """The chosen model: highest mean nested-CV AUC; ties to the smaller SD, then the name.

    Test and external cohorts play no part: picking on them would make their AUCs
    optimistic. A model missing the predictions of any outer fold (a failed fold; of
    ``n_outer_folds``, default the most any model has) is not a candidate: its mean
    would rest on the folds where it happened to work. Returns a JSON-ready dict with the
    ranking and the reason; ``model`` is None when no model qualifies.
    """
    if "n_folds_predicted" in summary and len(summary):
        expected = n_outer_folds or int(summary["n_folds_predicted"].max())
        incomplete = summary["n_folds_predicted"] < expected
    else:
        expected, incomplete = n_outer_folds, pd.Series(False, index=summary.index)
    without_all_folds = sorted(summary.loc[incomplete, "model"])
    summary = summary[~incomplete]
    ranked = summary[np.isfinite(summary["auc_mean"])].copy()
    ranked["_sd"] = ranked["auc_sd"].fillna(np.inf)
    ranked = ranked.sort_values(["auc_mean", "_sd", "model"], ascending=[False, True, True])
    ranking = [
        {
            "rank": k,
            "model": r.model,
            "auc_mean": float(r.auc_mean),
            "auc_sd": None if not np.isfinite(r.auc_sd) else float(r.auc_sd),
            "n_folds": int(r.n_folds),
        }
        for k, r in enumerate(ranked.itertuples(index=False), start=1)
    ]
    without = sorted(set(models) - set(ranked["model"]))
    if not ranking:
        return {
            "model": None,
            "reason": "no model has a nested-CV AUC on every outer fold (models failed or "
            "every fold has one class)",
            "ranking": [],
            "models_without_nested_cv": without,
            "models_missing_outer_folds": without_all_folds,
        }
    best = ranking[0]
    sd = f" ± {best['auc_sd']:.3f}" if best["auc_sd"] is not None else ""
    return {
        "model": best["model"],
        "reason": (
            f"highest mean AUC over {best['n_folds']} outer folds of nested cross-validation "
            f"on the training set ({best['auc_mean']:.3f}{sd}); test and external cohorts "
            "were not used to choose"
        ),
        "ranking": ranking,
        "models_without_nested_cv": without,
        "models_missing_outer_folds": without_all_folds,
    }


@dataclass
class EvaluationTables:
    """Everything rule ``evaluate`` writes."""

    metrics: pd.DataFrame
    thresholds: pd.DataFrame
    roc: pd.DataFrame
    pr: pd.DataFrame
    calibration: pd.DataFrame
    chosen: dict
    calibration_smooth: pd.DataFrame | None = None


def _label_optimistic(nested_rows: pd.DataFrame, chosen: dict) -> pd.DataFrame:
    """The chosen model's nested-CV row labelled as optimistic: its AUC is the best of the
    models' nested-CV AUCs, not an estimate of the procedure."""
    model = chosen.get("model")
    if model is None or nested_rows.empty:
        return nested_rows
    label = f"optimistic: best of {len(chosen.get('ranking') or [])} models"
    rows = nested_rows.copy()
    hit = rows["model"] == model
    rows.loc[hit, "note"] = [f"{label}; {n}" if n else label for n in rows.loc[hit, "note"]]
    return rows


def _nested_rows(
    oof: pd.DataFrame,
    summary: pd.DataFrame,
    thresholds: dict[str, float],
    hl_groups: int,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One metrics row per model for nested CV: AUC mean and SD over outer folds; the
    other metrics on the pooled out-of-fold predictions."""
    rows = []
    for model, g in oof.groupby("model", sort=True):
        g = g[g["probability"].notna()]
        s = summary.set_index("model").loc[model]
        row = {"model": model, "cohort": NESTED_CV}
        row.update(
            evaluate_one(
                g["label"].to_numpy(),
                g["probability"].to_numpy(),
                thresholds.get(model, np.nan),
                hl_groups=hl_groups,
                n_bootstrap=n_bootstrap,
                seed=seed,
            )
        )
        row.update(
            auc=s["auc_mean"],
            auc_ci_low=np.nan,
            auc_ci_high=np.nan,
            auc_sd=s["auc_sd"],
            n_folds=int(s["n_folds"]),
            ci_method="",
        )
        note = (
            f"auc = mean of {int(s['n_folds'])} outer-fold AUCs (SD in auc_sd); other metrics "
            "on the pooled out-of-fold predictions, threshold chosen on them (optimistic)"
        )
        row["note"] = f"{note}; {row['note']}" if row["note"] else note
        rows.append(row)
    return pd.DataFrame(rows)


#: ``evaluation.threshold`` values: where the threshold applied to the final models comes from.
THRESHOLD_METHODS = ("youden_final_cv", "youden_nested_cv")
NESTED_SOURCE = "Youden J on nested-CV out-of-fold predictions (training set)"


def final_thresholds(
    records: list[dict] | None, nested_thresholds: dict[str, float], method: str
) -> pd.DataFrame:
    """thresholds.tsv: model, threshold, source, nested_cv_threshold.

    ``youden_final_cv`` (default): each model's threshold from cross-validated
    predictions of its final configuration (``records``, written by rule fit_final), on
    the final model's own probability scale. ``youden_nested_cv``: the nested-CV fold
    models' pooled out-of-fold predictions (other hyper-parameters, another scale).
    """
    if method not in THRESHOLD_METHODS:
        raise InputError(f"config key evaluation.threshold: {method!r} not in {THRESHOLD_METHODS}")
    rows = []
    if method == "youden_final_cv":
        if records is None:
            raise InputError("evaluation.threshold youden_final_cv needs the fit_final thresholds")
        for r in sorted(records, key=lambda r: r["model"]):
            t = r.get("threshold")
            rows.append(
                {
                    "model": r["model"],
                    "threshold": np.nan if t is None else float(t),
                    "source": r.get("source") or f"model failed: {r.get('reason', '')}",
                }
            )
    else:
        rows = [
            {"model": m, "threshold": t, "source": NESTED_SOURCE}
            for m, t in sorted(nested_thresholds.items())
        ]
    table = pd.DataFrame(rows, columns=["model", "threshold", "source"])
    table["nested_cv_threshold"] = table["model"].map(nested_thresholds)
    return table


def evaluation_tables(
    predictions: pd.DataFrame,
    nested: pd.DataFrame,
    models: list[str],
    ci_method: str = "delong",
    n_bootstrap: int = 2000,
    calibration_bins: int = 10,
    seed: int = 0,
    threshold_records: list[dict] | None = None,
    threshold_method: str = "youden_final_cv",
    outer_folds: int | None = None,
    fold_infos: list[dict] | None = None,
    chosen: dict | None = None,
) -> EvaluationTables:
    """Table 3 and the curve data (pipeline step 15).

    predictions: final models on train, test and each external centre (patient_id,
    cohort, model, probability, label); nested: nested-CV out-of-fold predictions on the
    training set (patient_id, model, outer_fold, probability, label); models: the
    configured models, so that one missing from the predictions is reported;
    threshold_records: per model, the threshold that rule fit_final derived on the
    training set (see :func:`final_thresholds`). The nested-CV rows use the Youden
    threshold of the nested-CV out-of-fold predictions themselves (their own scale).
    """
    oof = nested_cv_predictions(nested)
    nested_thresholds = youden_thresholds(oof)
    threshold_table = final_thresholds(threshold_records, nested_thresholds, threshold_method)
    thresholds = dict(zip(threshold_table["model"], threshold_table["threshold"], strict=True))
    metrics = evaluate_predictions(
        predictions,
        thresholds,
        ci_method=ci_method,
        n_bootstrap=n_bootstrap,
        hl_groups=calibration_bins,
        seed=seed,
    )
    # External cohorts: the models updated on the cohort's own patients (TRIPOD+AI 12f),
    # as extra rows after the original ones; never read to choose or to headline.
    external = [c for c in predictions["cohort"].unique() if c not in POOL_COHORTS]
    updated = updated_model_rows(
        predictions,
        thresholds,
        external,
        n_bootstrap=n_bootstrap,
        hl_groups=calibration_bins,
        seed=seed,
    )
    summary = nested_cv_summary(oof)
    nested_rows = _nested_rows(oof, summary, nested_thresholds, calibration_bins, n_bootstrap, seed)
    nested_rows["row_type"] = "original"
    if chosen is None:
        chosen = chosen_model(nested, models, outer_folds, fold_infos, predictions["model"])
    nested_rows = _label_optimistic(nested_rows, chosen)
    columns = (
        METRICS_COLUMNS
        + EXTRA_COLUMNS
        + NESTED_COLUMNS
        + CALIBRATION_COLUMNS
        + CI_COLUMNS
        + UPDATING_COLUMNS
    )
    procedure = []
    if chosen.get("nested_choice"):
        row = procedure_metrics_row(chosen["nested_choice"])
        procedure = [pd.DataFrame([{**row, "cohort": NESTED_CV, "row_type": "original"}])]
    frames = [f for f in (metrics, nested_rows, updated) if len(f)]
    metrics = pd.concat(frames, ignore_index=True).reindex(columns=columns)
    order = {c: k for k, c in enumerate(cohort_order(metrics["cohort"]))}
    order[NESTED_CV] = -1  # nested CV first: it decides the chosen model
    kinds = {k: i for i, k in enumerate(ROW_TYPES)}
    metrics = metrics.sort_values(
        ["model", "cohort", "row_type"],
        key=lambda s: (
            s.map(order) if s.name == "cohort" else s.map(kinds) if s.name == "row_type" else s
        ),
        kind="mergesort",
    ).reset_index(drop=True)
    # Table 3's first row: the procedure as run, model choice included (the headline)
    metrics = pd.concat([*procedure, metrics], ignore_index=True).reindex(columns=columns)
    metrics["n_folds"] = metrics["n_folds"].astype("Int64")
    smooth = chosen_calibration(predictions, chosen["model"], min(n_bootstrap, 500), seed)
    return EvaluationTables(
        calibration_smooth=smooth,
        metrics=metrics,
        thresholds=threshold_table,
        roc=curve_table(predictions, "roc"),
        pr=curve_table(predictions, "pr"),
        calibration=curve_table(predictions, "calibration", calibration_bins),
        chosen=chosen,
    )


def chosen_model(
    nested: pd.DataFrame,
    models: list[str],
    outer_folds: int | None,
    fold_infos: list[dict] | None,
    predicted_models,
) -> dict:
    """Rule ``choose_model``: the chosen model (:func:`choose_model` on the nested-CV
    predictions), the configured models without final predictions (``predicted_models``:
    the models of the final predictions) and the nested choice. Training data only, so
    the choice, and what depends on it, stays put when an external centre is added."""
    summary = nested_cv_summary(nested_cv_predictions(nested))
    chosen = choose_model(summary, models, outer_folds)
    chosen["missing_models"] = sorted(set(models) - set(predicted_models))
    if fold_infos is not None:
        chosen["nested_choice"] = nested_model_choice(fold_infos, nested)
    if chosen["model"] is not None:
        chosen["optimism_note"] = (
            f"the chosen model's nested-CV AUC is the best of {len(chosen['ranking'])} "
            "models' estimates: optimistic as an estimate of the procedure; "
            "nested_choice (the model chosen inside each outer fold) estimates the "
            "procedure as run, model choice included"
        )
    return chosen


def chosen_model_rule(nested_paths, final_paths, fold_param_paths, *, models, outer_folds) -> dict:
    """:func:`chosen_model` from the rule's files: every outer fold's nested-CV predictions
    (the fold files, not the gathered nested_cv.tsv, which gather_predictions rewrites
    with every new external centre), each model's final predictions on the training pool
    and each outer fold's parameters."""
    final = [read_table(path, dtype={"patient_id": str}) for path in final_paths]
    predicted = sorted({m for f in final for m in f["model"].unique()})
    _, nested = gather_predictions([], nested_paths)
    return chosen_model(
        nested,
        list(models),
        outer_folds,
        [json.loads(Path(p).read_text()) for p in fold_param_paths],
        predicted,
    )


def nested_model_choice(fold_infos: list[dict], nested: pd.DataFrame) -> dict:
    """The estimate of the procedure as run, "tune every model, keep the best": the
    choice nested too (:func:`~npc_radiomics.evaluation.procedure.procedure_estimate`:
    per outer fold the model with the best inner-CV AUC, scored on the fold's held-out
    patients; the mean with a 95% CI). ``auc_mean`` repeats ``auc`` for older readers.
    ``fold_infos``: the ``nested_cv/fold{k}.json`` records; ``nested``: nested-CV
    predictions."""
    from npc_radiomics.evaluation.procedure import procedure_estimate

    record = procedure_estimate(fold_infos, nested)
    record["auc_mean"] = record["auc"]
    return record


def chosen_calibration(
    predictions: pd.DataFrame, model: str | None, n_bootstrap: int, seed: int
) -> pd.DataFrame:
    """LOWESS calibration (with bootstrap band) of the chosen model per cohort:
    model, cohort, predicted, observed, ci_low, ci_high."""
    from npc_radiomics.metrics import smoothed_calibration

    columns = ["model", "cohort", "predicted", "observed", "ci_low", "ci_high"]
    if model is None:
        return pd.DataFrame(columns=columns)
    g = predictions[(predictions["model"] == model) & predictions["probability"].notna()]
    parts = [
        smoothed_calibration(
            c["label"].to_numpy(), c["probability"].to_numpy(), n_bootstrap, seed=seed
        ).assign(model=model, cohort=cohort)
        for cohort in cohort_order(g["cohort"])
        for c in [g[g["cohort"] == cohort]]
    ]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def evaluation_rule(
    predictions_path,
    nested_path,
    out,
    *,
    threshold_paths=None,
    threshold_method: str = "youden_final_cv",
    outer_folds: int | None = None,
    fold_param_paths=None,
    chosen_path=None,
    models: list[str],
    ci_method: str,
    n_bootstrap: int,
    calibration_bins: int,
    seed: int,
) -> str:
    """Rule ``evaluate``: :func:`evaluation_tables` from the gathered predictions, written
    to ``out`` (metrics, thresholds, roc, pr, calibration, chosen and the three figures,
    whose legends carry the final models' AUCs). Returns the line to log."""
    from npc_radiomics.base.io import write_json, write_tsv
    from npc_radiomics.figures import (
        figure_or_placeholder,
        placeholder_figure,
        plot_pr_curves,
        plot_roc_curves,
        plot_smoothed_calibration,
    )

    predictions = read_table(predictions_path, dtype={"patient_id": str})
    tables = evaluation_tables(
        predictions,
        read_table(nested_path, dtype={"patient_id": str}),
        models=list(models),
        ci_method=ci_method,
        n_bootstrap=n_bootstrap,
        calibration_bins=calibration_bins,
        seed=seed,
        threshold_records=None
        if threshold_paths is None
        else [json.loads(Path(p).read_text()) for p in threshold_paths],
        threshold_method=threshold_method,
        outer_folds=outer_folds,
        fold_infos=None
        if fold_param_paths is None
        else [json.loads(Path(p).read_text()) for p in fold_param_paths],
        chosen=None if chosen_path is None else json.loads(Path(chosen_path).read_text()),
    )
    write_tsv(tables.metrics, out.metrics)
    write_tsv(tables.thresholds, out.thresholds)
    write_tsv(tables.roc, out.roc)
    write_tsv(tables.pr, out.pr)
    write_tsv(tables.calibration, out.calibration)
    if chosen_path is None:
        write_json(tables.chosen, out.chosen)
    final = original_rows(tables.metrics)
    final = final[final["cohort"] != NESTED_CV]
    figure_or_placeholder(plot_roc_curves, out.roc_figure, tables.roc, metrics=final)
    figure_or_placeholder(plot_pr_curves, out.pr_figure, tables.pr, metrics=final)
    write_tsv(tables.calibration_smooth, out.calibration_smooth)
    chosen = tables.chosen["model"]
    if chosen is None:
        placeholder_figure(out.calibration_figure, "no chosen model: no calibration figure")
    else:
        figure_or_placeholder(
            plot_smoothed_calibration,
            out.calibration_figure,
            tables.calibration_smooth,
            predictions[predictions["model"] == chosen],
            chosen,
        )
    return f"chosen model: {tables.chosen['model']} ({tables.chosen['reason']})"
