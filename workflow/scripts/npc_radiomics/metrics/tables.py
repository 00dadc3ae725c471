"""The metrics tables: one row per model x cohort (``results/evaluation/metrics.tsv``
columns), bootstrap CIs of threshold metrics, updated-model rows of external cohorts,
curve tables, mean |SHAP|."""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.layout import cohort_order
from npc_radiomics.metrics.calibration import (
    brier_score,
    calibration_curve,
    hosmer_lemeshow,
    integrated_calibration_index,
    logistic_recalibration,
    observed_expected,
    recalibrate,
)
from npc_radiomics.metrics.discrimination import (
    auc_ci,
    average_precision,
    pr_curve_points,
    roc_curve_points,
)
from npc_radiomics.metrics.inputs import (
    FEW_PER_CLASS,
    ROW_TYPES,
    both_classes,
    check_predictions,
    check_probabilities,
)
from npc_radiomics.metrics.thresholds import threshold_metrics, wilson_ci

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


def stratified_resamples(y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
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
    if y.size < 2 or not both_classes(y) or n_bootstrap < 1:
        return float("nan"), float("nan")
    values = np.array([metric(y[i], p[i]) for i in stratified_resamples(y, n_bootstrap, seed)])
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


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
    elif not both_classes(y):
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
    if recal.note and both_classes(y) and y.size >= 3:  # class counts noted above
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
