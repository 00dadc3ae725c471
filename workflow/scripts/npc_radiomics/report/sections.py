"""The standalone report's sections on the paper's results: cohort and QC, Tables 1-3,
features, the chosen model, curves, clinical comparison, decision curves, SHAP, centres
and provenance. Each section is built from result files only; a missing file is a gap
with its reason (:mod:`npc_radiomics.report.kit`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.layout import cohort_order
from npc_radiomics.evaluation.performance import NESTED_CV
from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.metrics import METRICS_COLUMNS, original_rows
from npc_radiomics.report import html
from npc_radiomics.report.kit import (
    fmt,
    format_p_values,
    missing,
    read_json,
    read_tsv,
    result_figure,
)

log = logging.getLogger(__name__)


#: The steps fitted before the modelling pipeline, outside its CV folds and LOCO loop:
#: name in the text, the config key of their reference cohort.
_OUTSIDE_STEPS = {
    "zscore": ("the z-score normalisation statistics", "preprocessing.normalization.reference"),
    "icc": ("the ICC robustness filter", "robustness.reference"),
}


def fitted_claims(params: dict) -> dict[str, str]:
    """What the report may claim about which patients the fitted steps saw, from the
    configuration (params ``fitted_outside_models``: step -> reference ``train`` / ``all``,
    None when the step does not run). Keys: ``cohort`` (the cohort section's sentence) and
    ``loco`` (the leave-one-centre-out caveat, empty when no step runs outside the loop)."""
    outside = {k: v for k, v in (params.get("fitted_outside_models") or {}).items() if v}
    on_all = [k for k, v in outside.items() if v == "all"]
    if on_all:
        named = " and ".join(
            f"{_OUTSIDE_STEPS[k][0]} ({_OUTSIDE_STEPS[k][1]}: all)" for k in on_all
        )
        cohort = (
            f"Not every fitted step saw the training cohort only: {named} used the patients "
            "of every cohort, test and external included (the paper's variant), so those "
            "cohorts are not untouched; selection, tuning, the models and their thresholds "
            "saw the training cohort only."
        )
    else:
        cohort = (
            "The training cohort is the only one any fitted step (normalisation, robustness "
            "filter, selection, tuning, thresholds) has seen."
        )
    loco = ""
    if outside:
        named = " and ".join(_OUTSIDE_STEPS[k][0] for k in outside)
        who = (
            "on the patients of every cohort"
            if on_all
            else "on the training patients of every training centre"
        )
        loco = (
            f" Caveat: {named} {'are' if len(outside) > 1 else 'is'} computed once, {who}, "
            "outside the leave-one-centre-out loop: the held-out centre's patients did reach "
            "that step, so the held-out centre is not wholly unseen."
        )
    return {"cohort": cohort, "loco": loco}


def centres_section(inputs: dict, params: dict):
    """Report section ``centres``: patients and events per centre (small centres flagged),
    the pooled external cohort, leave-one-centre-out, centre-effect diagnostics."""

    section = html.Section("centres", "Centres")
    table = read_tsv(inputs, "centres", dtype={"center": str})
    if table is None:
        section.add(missing(inputs, "centres", "Patients and events per centre"))
    else:
        section.add(
            html.table(
                table,
                f"Patients and events (label 1 = {params.get('positive_label', 'CR')}) per centre",
            )
        )
        table["note"] = table["note"].fillna("").astype(str)
        for row in table.itertuples():
            if row.note:
                section.add(html.gap(f"Centre {row.center}", str(row.note)))
        external = table[table["role"] == "external"]
        if len(external) >= 2:
            section.add(
                html.text(
                    f"Table 3, the curves and the decision curves show each external centre "
                    f"and their pool (cohort 'external', {int(external['n'].sum())} patients, "
                    f"{int(external['events'].sum())} events)."
                )
            )
    loco = read_tsv(inputs, "loco", dtype={"held_out_center": str})
    if loco is not None:
        section.add(
            html.text(
                "Leave-one-centre-out: for each training centre the whole modelling procedure "
                "(selection, tuning, refit, threshold; ComBat when on) was fitted on the "
                "training patients of the other training centres and evaluated on that "
                "centre's patients (its train and test patients)." + fitted_claims(params)["loco"]
            )
        )
        section.add(html.table(loco, "Leave-one-centre-out (AUC with 95% DeLong CI)"))
        section.add(result_figure(inputs, "loco_forest", "Leave-one-centre-out forest plot"))
    elif inputs.get("loco"):
        section.add(missing(inputs, "loco", "Leave-one-centre-out"))
    else:
        section.add(
            html.text("Leave-one-centre-out: off (validation.leave_one_centre_out).", "note")
        )
    diagnostics = read_tsv(inputs, "centre_diagnostics")
    if diagnostics is None or diagnostics.empty:
        section.add(missing(inputs, "centre_diagnostics", "Centre-effect diagnostics"))
    else:
        section.add(
            html.text(
                "Centre effect: how well the selected features predict the centre "
                "(cross-validated logistic regression; AUC one-vs-rest with three or more "
                "centres; 0.5 = no centre effect left), before and after ComBat (refitted "
                "in each fold)."
            )
        )
        section.add(html.table(diagnostics, "Centre predictability from the selected features"))
    section.add(
        result_figure(inputs, "centre_pca", "Patients by centre (PCA of the selected features)")
    )
    return section


def cohort_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("cohort", "Cohort and quality control")
    split = read_tsv(inputs, "split")
    if split is None:
        section.add(missing(inputs, "split", "Train / test / external split"))
    else:
        positive = params.get("positive_label", "CR")
        negative = params.get("negative_label", "non-CR")
        label = split["label"] if "label" in split else pd.Series(np.nan, index=split.index)
        counts = []
        for cohort in cohort_order(split["cohort"]):
            rows = split["cohort"] == cohort
            n, n_pos = int(rows.sum()), int((label[rows] == 1).sum())
            centres = split.loc[rows, "center"] if "center" in split else pd.Series(dtype=str)
            counts.append(
                {
                    "cohort": cohort,
                    "centres": ", ".join(sorted(centres.astype(str).unique())),
                    "patients": n,
                    positive: n_pos,
                    negative: n - n_pos,
                    f"{positive} rate (%)": 100 * n_pos / n if n else np.nan,
                }
            )
        section.add(
            html.text(
                f"{len(split)} patients after quality control. " + fitted_claims(params)["cohort"]
            )
        )
        section.add(html.table(pd.DataFrame(counts), "Patients per cohort", digits=1))
        for c in counts:
            if min(c[positive], c[negative]) < 5:
                section.add(
                    html.gap(
                        f"Cohort {c['cohort']}",
                        "fewer than 5 patients in an outcome class: its AUC CI and calibration "
                        "test are unreliable (and undefined with one class)",
                    )
                )
    qc = read_tsv(inputs, "qc")
    if qc is None:
        section.add(
            html.text(
                "No image QC: the modelling stage started from a ready feature table."
                if params.get("features_table")
                else "QC table not available.",
                "note",
            )
        )
        return section
    failed = qc[qc["status"] != "pass"]
    n_patients = qc["patient_id"].nunique()
    excluded = (
        sorted(qc.loc[qc["patient_status"] == "excluded", "patient_id"].unique())
        if "patient_status" in qc
        else sorted(failed["patient_id"].unique())
    )
    section.add(
        html.text(
            f"Input QC checked {len(qc)} images ({n_patients} patients x "
            f"{qc['sequence'].nunique()} sequences): {len(failed)} failed, "
            f"{len(excluded)} patient(s) excluded."
        )
    )
    if len(failed):
        cols = [c for c in ("patient_id", "center", "sequence", "status", "reason") if c in qc]
        section.add(html.table(failed[cols], "Failed QC checks"))
    return section


def table1_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("table1", "Table 1. Baseline clinical characteristics")
    t1 = read_tsv(inputs, "table1", dtype={"level": str})
    if t1 is None:
        section.add(missing(inputs, "table1", "Table 1", params))
        return section
    section.add(
        html.text(
            "Mean ± SD (t-test or Mann-Whitney U, chosen by a Shapiro-Wilk normality test) or "
            "count (%) (chi-square, or Fisher's exact test when an expected count is below 5), "
            "per outcome group; one table per cohort.",
            "note",
        )
    )
    positive = params.get("positive_label", "CR")
    negative = params.get("negative_label", "non-CR")
    names = {"all": "all", "non_cr": negative, "cr": positive, "p": "p", "test": "test"}
    # one table per cohort: side by side, 4+ cohorts make a table too wide to read
    for cohort in [c[: -len("_p")] for c in t1.columns if c.endswith("_p")]:
        prefix = f"{cohort}_"
        cols = [c for c in t1.columns if c.startswith(prefix) and c[len(prefix) :] in names]
        part = t1[["variable", "level", *cols]].rename(
            columns={c: names[c[len(prefix) :]] for c in cols}
        )
        section.add(html.table(format_p_values(part), f"Table 1: {cohort} cohort"))
    return section


def table2_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("table2", "Table 2. Univariate and multivariable logistic regression")
    cols = ["variable", "n", "log_or", "or_ci", "p_value", "note"]
    t2 = read_tsv(inputs, "table2")
    if t2 is None:
        section.add(missing(inputs, "table2", "Table 2", params))
    else:
        section.add(
            html.text(
                "Training cohort. Odds ratio per unit of each variable (per year, per stage, "
                "...) with Wald 95% CI.",
                "note",
            )
        )
        shown = format_p_values(t2[[c for c in cols if c in t2]])
        section.add(html.table(shown, "Univariate logistic regression"))
    model = read_json(inputs, "clinical_model") or {}
    coef = read_tsv(inputs, "multivariable")
    entry = model.get("entry_p", params.get("entry_p", 0.1))
    if model.get("selected"):
        section.add(
            html.text(
                f"Stepwise multivariable model (entry and stay by likelihood-ratio p; "
                f"candidates: univariate p < {entry}): {', '.join(model['selected'])} "
                f"({model.get('n', '?')} patients)."
            )
        )
        if coef is not None:
            shown = format_p_values(coef[[c for c in cols if c in coef]])
            section.add(html.table(shown, "Multivariable logistic regression"))
    elif model:
        reason = model.get("note") or f"no clinical variable had univariate p < {entry}"
        section.add(html.gap("Multivariable clinical model", reason))
    else:
        section.add(missing(inputs, "clinical_model", "Multivariable clinical model", params))
    return section


def icc_basis(icc: pd.DataFrame | None) -> str:
    """One sentence: how many patients (and which reference) the ICC filter rests on."""
    if icc is None or icc.empty:
        return "ICC table not available."
    n = int(icc["n_patients"].max())
    reference = icc["reference"].iloc[0] if "reference" in icc else "all"
    who = "training-cohort patients" if reference == "train" else "patients of every cohort"
    method = icc["method"].iloc[0] if "method" in icc else "readers"
    robust = f"{int(icc['robust'].sum())} of {len(icc)} features are robust."
    if method == "perturbation":
        k = int(icc["n_perturbations"].iloc[0])
        return (
            f"ICC(2,1) across {k} seeded image and contour perturbations of each of {n} "
            f"training-cohort patients (robustness.method: perturbation); {robust}"
        )
    text = (
        f"ICC(2,1) rests on {n} {who} with a second reader's mask "
        f"(robustness.reference: {reference}); "
    )
    if method == "both":
        k = int(icc["n_perturbations"].iloc[0])
        n_pert = int(icc["n_patients_perturbation"].max())
        text += (
            f"a second ICC(2,1) across {k} seeded perturbations of each of {n_pert} "
            "training-cohort patients; a feature must pass both (robustness.method: both); "
        )
    return text + robust


def features_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("features", "Feature robustness and selection")
    lam = read_json(inputs, "lasso_lambda")
    selected = read_tsv(inputs, "selected_features")
    if lam:
        section.add(
            html.text(
                f"{lam.get('n_input', '?')} features entered selection on the training set; "
                f"mRMR kept {lam.get('n_mrmr', '?')}, LASSO logistic regression "
                f"({lam.get('rule', 'min')} rule, lambda = {fmt(lam.get('lambda'), 4)}) kept "
                f"{lam.get('n_selected', '?')}."
                + (
                    " LASSO kept nothing at the CV lambda: a fallback lambda was used."
                    if lam.get("fallback")
                    else ""
                )
            )
        )
    for key, caption in (
        ("icc_histogram", "ICC(2,1) of every feature (see above), with the cut-off"),
        ("lasso_path", "LASSO coefficient path; dashed line: the chosen lambda"),
        ("lasso_cv", "Cross-validated binomial deviance of LASSO (mean ± SE over folds)"),
        ("correlation", "Pearson correlation of the selected features (training set)"),
    ):
        if key == "icc_histogram" and not inputs.get(key):
            section.add(
                html.text(
                    "No ICC filter: no second-reader masks, or robustness filtering is off.",
                    "note",
                )
            )
            continue
        if key == "icc_histogram":
            section.add(html.text(icc_basis(read_tsv(inputs, "icc")), "note"))
        section.add(result_figure(inputs, key, caption))
    non_finite = read_tsv(inputs, "non_finite")
    if non_finite is not None:
        if non_finite.empty:
            section.add(html.text("No feature has a NaN or infinite value.", "note"))
        else:
            counts = non_finite["action"].value_counts().to_dict()
            section.add(
                html.text(
                    f"{len(non_finite)} feature(s) have NaN or infinite values: "
                    + ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
                    + " (dropped: non-finite in more than the configured share of training "
                    "patients; the rest median-imputed inside the pipeline).",
                    "note",
                )
            )
            section.add(html.table(non_finite.head(50), "Non-finite feature values (first 50)"))
    if selected is None:
        section.add(missing(inputs, "selected_features", "Selected features"))
    else:
        section.add(html.table(selected, "Selected features (LASSO coefficient, standardised)", 4))
    return section


def table3_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("table3", "Table 3. Performance of the models")
    metrics = read_tsv(inputs, "metrics")
    if metrics is None:
        section.add(missing(inputs, "metrics", "Table 3"))
        return section
    updated = metrics.drop(original_rows(metrics).index)
    metrics = original_rows(metrics)
    section.add(
        html.text(
            "AUC with 95% CI (DeLong unless configured otherwise); accuracy, sensitivity and "
            "specificity at each model's Youden threshold, fixed on the training set on the "
            "final model's own probability scale (cross-validated predictions of its final "
            "configuration; results/evaluation/thresholds.tsv names the source); Brier "
            "score; Hosmer-Lemeshow p. Train rows are in-sample (the final model scoring the "
            "patients it was fitted on): optimistic. First row, nested_cv_procedure: the "
            "headline, the procedure as run with the model choice included (in each outer "
            "fold of nested cross-validation the model with the best inner-CV AUC, scored on "
            "the fold's held-out patients), AUC = mean over outer folds with a 95% CI from "
            "the folds' DeLong variances on the logit scale (coverage measured by "
            "benchmarks/bench_null.py: about 88%, below the nominal 95%, as the fold AUCs "
            "are correlated; the verdict also needs the permutation test). Other nested_cv "
            "rows: each model's mean ± SD of the AUC over outer folds, other metrics at its "
            "nested-CV out-of-fold threshold; the chosen model's row is the best of the "
            "models' estimates, hence optimistic.",
            "note",
        )
    )
    shown = metrics.copy()
    shown["AUC (95% CI)"] = [
        (
            f"{r.auc:.3f} ± {r.auc_sd:.3f} (SD)"
            if r.cohort == NESTED_CV
            and r.model != PROCEDURE
            and np.isfinite(r.auc)
            and np.isfinite(getattr(r, "auc_sd", np.nan))
            else f"{r.auc:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})"
            if np.isfinite(r.auc) and np.isfinite(r.auc_ci_low)
            else fmt(r.auc)
        )
        for r in shown.itertuples(index=False)
    ]
    # The results layout's metrics columns, with the AUC and its CI merged into one readable column.
    cols = [c for c in METRICS_COLUMNS if c not in ("auc_ci_low", "auc_ci_high")]
    cols[cols.index("auc")] = "AUC (95% CI)"
    section.add(html.table(format_p_values(shown[cols]), "Table 3"))
    notes = metrics[
        metrics["note"].notna() & (metrics["note"] != "") & (metrics["cohort"] != NESTED_CV)
    ]
    # one gap per cohort and reason, naming the models it concerns (or "all models")
    all_models = set(metrics["model"])
    for cohort in cohort_order(notes["cohort"]):
        for note, g in notes[notes["cohort"] == cohort].groupby("note", sort=True):
            models = sorted(g["model"])
            who = "all models" if set(models) == all_models else ", ".join(models)
            section.add(html.gap(f"{cohort} cohort, {who}", note))
    uncertainty = calibration_table(metrics)
    if uncertainty is not None:
        section.add(
            html.text(
                "95% CIs: Wilson for sensitivity, specificity, PPV and NPV; stratified "
                "bootstrap for AUPRC and Brier. Calibration intercept (calibration-in-the-"
                "large, ideal 0) and slope (ideal 1) by logistic recalibration with Wald CIs; "
                "ICI: integrated calibration index (mean |LOWESS - predicted|). "
                "Hosmer-Lemeshow df = g - 2 on the training (development) rows, g on the "
                "other cohorts. Train rows are in-sample: the final model scoring the "
                "patients it was fitted on.",
                "note",
            )
        )
        section.add(html.table(uncertainty, "Uncertainty and calibration per model and cohort"))
    if len(updated):
        section.add(
            html.text(
                "External cohorts: calibration-in-the-large (calibration intercept, ideal 0; "
                "O/E, observed over expected events, ideal 1, with a 95% CI) and two updated "
                "models (TRIPOD+AI 12f): logistic recalibration of each model's predictions "
                "with an intercept only, then with intercept and slope, FITTED ON THAT "
                "COHORT'S OWN PATIENTS, so their calibration is in-sample for the cohort. "
                "They show how far recalibration alone would go; they are never used to "
                "choose a model or in the headline. The AUC and the classification at the "
                "training threshold (mapped through the same recalibration) do not change.",
                "note",
            )
        )
        section.add(html.table(updated_models_table(metrics, updated), "Updated models"))
    chosen = read_json(inputs, "chosen") or {}
    for model in chosen.get("missing_models", []):
        section.add(html.gap(f"Model {model}", "no predictions: the model failed to fit"))
    for block in subgroup_blocks(inputs, params):
        section.add(block)
    return section


def subgroup_blocks(inputs: dict, params: dict) -> list[str]:
    """The subgroup subsection of Table 3 (results/evaluation/subgroups.tsv): the chosen
    model's AUC (95% CI), calibration intercept and O/E per cohort and subgroup level."""
    if not inputs.get("subgroups"):
        return []
    table = read_tsv(inputs, "subgroups", dtype={"level": str})
    if table is None:
        return [missing(inputs, "subgroups", "Subgroups")]
    blocks = ["<h3>Subgroups</h3>"]
    if table.empty:
        return [*blocks, html.gap("Subgroups", "no chosen model: no subgroup analysis")]
    from npc_radiomics.base.layout import cohort_label

    cuts = table.loc[table["cut"].fillna("") != "", ["variable", "cut"]].drop_duplicates()
    cut_text = "; ".join(f"{r.variable}: {r.cut}" for r in cuts.itertuples(index=False))
    blocks.append(
        html.text(
            f"The chosen model ({table['model'].iloc[0]}) per level of each configured "
            "clinical variable (evaluation.subgroups; a continuous one cut at its "
            f"training-cohort median{': ' + cut_text if cut_text else ''}) and per centre: "
            "AUC with 95% CI, calibration intercept (calibration-in-the-large, ideal 0) and "
            "observed / expected events (ideal 1). Small subgroups give wide intervals; a "
            "level with one outcome class has none. Descriptive only.",
            "note",
        )
    )
    shown = table.assign(cohort=table["cohort"].map(cohort_label))
    counts = f"n ({params.get('positive_label', 'CR')} / {params.get('negative_label', 'non-CR')})"
    shown[counts] = [
        f"{int(r.n)} ({int(r.n_positive)} / {int(r.n_negative)})"
        for r in shown.itertuples(index=False)
    ]
    shown["AUC (95% CI)"] = _with_ci(shown, "auc", 3)
    shown["intercept"] = _with_ci(shown, "calibration_intercept", sep=" to ")
    shown["O/E"] = _with_ci(shown.rename(columns={"oe_ratio": "oe"}), "oe")
    shown["note"] = shown["note"].fillna("")
    columns = ["cohort", "variable", "level", counts, "AUC (95% CI)"]
    blocks.append(
        html.table(
            shown[[*columns, "intercept", "O/E", "note"]],
            "Subgroups: the chosen model per cohort, subgroup variable and level",
            max_rows=200,
        )
    )
    return blocks


def _with_ci(df: pd.DataFrame, name: str, digits: int = 2, sep: str = "-") -> list[str]:
    """Per row: value (low-high); ``sep`` " to " where values can be negative."""
    low, high = f"{name}_ci_low", f"{name}_ci_high"
    if low not in df:
        return [fmt(v, digits) for v in df[name]]
    return [
        f"{v:.{digits}f} ({lo:.{digits}f}{sep}{hi:.{digits}f})"
        if np.isfinite(v) and np.isfinite(lo) and np.isfinite(hi)
        else fmt(v, digits)
        for v, lo, hi in zip(df[name], df[low], df[high], strict=True)
    ]


def updated_models_table(original: pd.DataFrame, updated: pd.DataFrame) -> pd.DataFrame:
    """Per external cohort and model: the original row's calibration next to the updated
    models' (row_type recalibrated_intercept / recalibrated_logistic) Brier, calibration
    and the note that says how each was fitted (or why it could not be)."""
    rows = pd.concat([original[original["cohort"].isin(set(updated["cohort"]))], updated])
    rows = rows.assign(row_type=rows["row_type"].fillna("original"))
    kinds = {"original": 0, "recalibrated_intercept": 1, "recalibrated_logistic": 2}
    order = {c: k for k, c in enumerate(cohort_order(rows["cohort"]))}
    rows = rows.sort_values(
        ["cohort", "model", "row_type"],
        key=lambda s: (
            s.map(order) if s.name == "cohort" else s.map(kinds) if s.name == "row_type" else s
        ),
        kind="mergesort",
    )
    out = rows[["cohort", "model", "row_type", "n"]].copy()
    out["brier"] = _with_ci(rows, "brier", 3)
    out["intercept"] = _with_ci(rows, "calibration_intercept", sep=" to ")
    out["slope"] = _with_ci(rows, "calibration_slope", sep=" to ")
    out["O/E"] = (
        _with_ci(rows.rename(columns={"oe_ratio": "oe"}), "oe") if "oe_ratio" in rows else ""
    )
    out["ICI"] = [fmt(v) for v in rows["ici"]]
    out["note"] = [
        "" if kind == "original" else str(note)
        for kind, note in zip(rows["row_type"], rows["note"].fillna(""), strict=True)
    ]
    return out


def calibration_table(metrics: pd.DataFrame) -> pd.DataFrame | None:
    """The CI and calibration columns of metrics.tsv, one readable column per metric."""
    if "calibration_slope" not in metrics:
        return None
    out = metrics[["model", "cohort"]].copy()
    for name in ("sensitivity", "specificity", "ppv", "npv", "auprc", "brier"):
        out[name] = _with_ci(metrics, name)
    out["intercept"] = _with_ci(metrics, "calibration_intercept", sep=" to ")
    out["slope"] = _with_ci(metrics, "calibration_slope", sep=" to ")
    out["ICI"] = [fmt(v) for v in metrics["ici"]]
    if "oe_ratio" in metrics:
        out["O/E"] = _with_ci(metrics.rename(columns={"oe_ratio": "oe"}), "oe")
    out["HL df"] = metrics["hl_df"]
    return out


def chosen_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("chosen-model", "The chosen model and why")
    chosen = read_json(inputs, "chosen")
    if chosen is None:
        section.add(missing(inputs, "chosen", "Chosen model"))
        return section
    if chosen.get("model") is None:
        section.add(html.gap("Chosen model", chosen.get("reason", "none")))
    else:
        section.add(
            html.text(f"Chosen model: {chosen['model']}, because it has the {chosen['reason']}.")
        )
    if chosen.get("optimism_note"):
        section.add(html.text(f"Note: {chosen['optimism_note']}.", "note"))
    honest = chosen.get("nested_choice")
    if honest:
        if honest.get("auc_mean") is not None:
            ci = (
                f" (95% CI {honest['auc_ci_low']:.3f}-{honest['auc_ci_high']:.3f})"
                if honest.get("auc_ci_low") is not None
                else f" (no CI: {honest.get('ci_note') or 'undefined'})"
            )
            section.add(
                html.text(
                    "Headline, the procedure as run (model choice nested in each outer fold): "
                    f"AUC {honest['auc_mean']:.3f}{ci}."
                )
            )
        else:
            section.add(html.gap("Whole-procedure estimate", "an outer fold has no candidate"))
        section.add(
            html.table(
                pd.DataFrame(honest["folds"]),
                "Model chosen inside each outer fold by inner-CV AUC, and its held-out AUC",
            )
        )
    columns = ["rank", "model", "auc_mean", "auc_sd", "n_folds"]
    ranking = pd.DataFrame(chosen.get("ranking", []), columns=columns)
    if len(ranking):
        section.add(html.table(ranking, "Nested cross-validation AUC per model (training set)"))
    incomplete = set(chosen.get("models_missing_outer_folds", []))
    for model in chosen.get("models_without_nested_cv", []):
        why = (
            "an outer fold of nested CV failed: not a candidate"
            if model in incomplete
            else "no nested-CV AUC: not a candidate"
        )
        section.add(html.gap(f"Model {model}", why))
    failures = tuning_failures(inputs.get("best_params") or [])
    if failures is not None:
        section.add(html.table(failures, "Tuning on the whole training set: failed trials"))
    return section


def tuning_failures(paths) -> pd.DataFrame | None:
    """model, trials, failed, reasons (count x reason) from each best_params.json."""
    rows = []
    for path in paths if isinstance(paths, (list, tuple)) else [paths]:
        if not Path(path).exists():
            continue
        best = json.loads(Path(path).read_text())
        reasons = best.get("failure_reasons") or {}
        rows.append(
            {
                "model": best.get("model"),
                "trials": best.get("n_trials_finished", ""),
                "failed": best.get("n_failed", ""),
                "reasons": "; ".join(f"{n} x {r}" for r, n in reasons.items())
                or ("" if not best.get("failed") else best.get("reason", "")),
            }
        )
    if not rows:
        return None
    return pd.DataFrame(rows).sort_values("model", kind="mergesort")


def curves_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("curves", "ROC, precision-recall and calibration curves")
    section.add(
        result_figure(inputs, "roc", "ROC curves of all models per cohort; legend: AUC (95% CI)")
    )
    section.add(result_figure(inputs, "pr", "Precision-recall curves; dashed: prevalence of CR"))
    section.add(
        result_figure(
            inputs,
            "calibration",
            "Calibration of the chosen model: LOWESS with 95% bootstrap band, deciles of "
            "predicted risk, rug of predictions (train panel in-sample)",
        )
    )
    return section


def clinical_comparison_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("clinical-comparison", "Radiomics versus clinical predictors")
    aucs = read_tsv(inputs, "biomarker_aucs")
    tests = read_tsv(inputs, "delong_tests")
    if aucs is None and tests is None:
        section.add(
            html.gap(
                "Clinical comparison",
                "no clinical table in this run (modelling from a ready feature table)"
                if params.get("features_table")
                else "clinical results not produced by this run",
            )
        )
        return section
    model = read_json(inputs, "clinical_model") or {}
    if not model.get("selected"):
        section.add(
            html.gap(
                "Clinical model",
                model.get("note") or "no multivariable clinical model: no AUC to compare",
            )
        )
    if aucs is not None:
        section.add(
            html.text(
                "Each biomarker's direction (higher or lower means CR) was fixed on the training "
                "cohort and kept unchanged elsewhere.",
                "note",
            )
        )
        section.add(
            html.table(aucs, "AUC (95% CI, DeLong) of the clinical model and single biomarkers")
        )
    if tests is None or tests.empty:
        section.add(html.gap("DeLong tests", "no chosen radiomics model to compare"))
    else:
        section.add(
            html.table(
                format_p_values(auc_difference_column(tests)),
                "Paired DeLong tests: chosen radiomics model versus each (AUC difference "
                "model - comparator with its 95% CI; p_value "
                "unadjusted, p_holm Holm-adjusted over every test of the table; on the "
                "training cohort both sides are out-of-fold predictions)",
            )
        )
    return section


def auc_difference_column(tests: pd.DataFrame) -> pd.DataFrame:
    """A DeLong table with its difference and CI columns merged into one readable column
    ("AUC difference (95% CI)"), in the place of ``difference``."""
    if "difference_ci_low" not in tests:
        return tests
    shown = tests.copy()
    shown["difference"] = _with_ci(shown, "difference", 3, " to ")
    shown = shown.drop(columns=["difference_ci_low", "difference_ci_high"])
    return shown.rename(columns={"difference": "AUC difference (95% CI)"})


def decision_curves_section(inputs: dict, params: dict) -> html.Section:
    from npc_radiomics.base.layout import TREAT_ALL, cohort_label
    from npc_radiomics.evaluation.dca import format_ranges

    section = html.Section("decision-curves", "Decision-curve analysis")
    section.add(
        result_figure(
            inputs,
            "dca",
            "Net benefit against threshold probability per cohort (the train panel is "
            "in-sample: the final models scoring the patients they were fitted on)",
        )
    )
    ranges = read_tsv(inputs, "dca_ranges")
    if ranges is None:
        section.add(missing(inputs, "dca_ranges", "Decision-curve ranges"))
        return section
    rows = [
        {
            "cohort": cohort_label(c),
            "model": m,
            "threshold ranges where the model beats treat-all and treat-none": format_ranges(
                ranges, c, m
            ),
        }
        for c in cohort_order(ranges["cohort"])
        for m in sorted(ranges.loc[ranges["cohort"] == c, "model"].unique())
    ]
    section.add(html.table(pd.DataFrame(rows), "Useful threshold ranges"))
    ci = read_tsv(inputs, "net_benefit_ci")
    chosen = (read_json(inputs, "chosen") or {}).get("model")
    if ci is not None and len(ci):
        shown = ci[ci["strategy"].isin([chosen, TREAT_ALL, "clinical"])].copy()
        shown["cohort"] = shown["cohort"].map(cohort_label)
        shown["net benefit (95% CI)"] = [
            f"{r.net_benefit:.3f} ({r.ci_low:.3f} to {r.ci_high:.3f})"
            for r in shown.itertuples(index=False)
        ]
        section.add(
            html.table(
                shown[["cohort", "strategy", "threshold", "n", "net benefit (95% CI)"]],
                "Net benefit of the chosen model and treat-all (and the clinical model, where "
                "it exists) at a few thresholds (bootstrap 95% CI)",
            )
        )
    difference = read_tsv(inputs, "net_benefit_difference")
    if difference is not None and len(difference):
        shown = difference[difference["model"] == chosen].copy()
        shown["cohort"] = shown["cohort"].map(cohort_label)
        shown["note"] = shown["note"].fillna("")
        shown["difference (95% CI)"] = [
            f"{r.difference:+.3f} ({r.ci_low:+.3f} to {r.ci_high:+.3f})"
            if np.isfinite(r.difference)
            else "n/a"
            for r in shown.itertuples(index=False)
        ]
        section.add(
            html.text(
                "Differences in net benefit, chosen model minus treat-all and minus the "
                "clinical model, with percentile bootstrap 95% CIs: every strategy of a "
                "cohort is scored on the same resamples of its patients (seeded by the "
                "cohort's name), so the differences are paired.",
                "note",
            )
        )
        section.add(
            html.table(
                shown[["cohort", "comparator", "threshold", "n", "difference (95% CI)", "note"]],
                "Net-benefit difference of the chosen model (bootstrap 95% CI)",
            )
        )
    elif inputs.get("net_benefit_difference"):
        section.add(missing(inputs, "net_benefit_difference", "Net-benefit differences"))
    return section


def shap_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("shap", "SHAP explanation of the chosen model")
    info = read_json(inputs, "shap_summary")
    if info is None:
        section.add(missing(inputs, "shap_summary", "SHAP"))
        return section
    if info.get("status") != "ok":
        section.add(html.gap("SHAP", info.get("note") or "not computed"))
        return section
    section.add(
        html.text(
            f"{info['model']}: {info['explainer']} on the {info['explained_cohort']} cohort "
            f"({info['n_explained']} patients) with a background of {info['n_background']} "
            f"training patients, in the {info['n_features']} features that reach the classifier "
            f"(standardised). SHAP values are in units of the {info['output']}; base value "
            f"{info['base_value']:.3f}; base + sum of SHAP values reproduces the model output "
            f"to {info['max_additivity_error']:.1e}."
        )
    )
    if info.get("note"):
        section.add(html.gap("SHAP", info["note"]))
    section.add(
        result_figure(
            inputs, "shap_beeswarm", "SHAP summary: one dot per patient, coloured by feature value"
        )
    )
    section.add(result_figure(inputs, "shap_bar", "Mean |SHAP value| per feature"))
    table = read_tsv(inputs, "shap_importance")
    if table is not None:
        section.add(html.table(table, "Mean |SHAP| per feature", digits=4))
    return section


def provenance_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("provenance", "Provenance")
    record = read_json(inputs, "provenance")
    if record is None:
        section.add(missing(inputs, "provenance", "Provenance record"))
        return section
    software = pd.DataFrame(
        sorted(record.get("software", {}).items()), columns=["software", "version"]
    )
    section.add(html.table(software, "Software versions"))
    platform = record.get("platform", {})
    section.add(
        html.text(
            f"Platform: {platform.get('system', '?')} ({platform.get('machine', '?')})", "note"
        )
    )
    seeds = pd.DataFrame(sorted(record.get("seeds", {}).items()), columns=["step", "seed"])
    section.add(html.table(seeds, "Seeds"))
    # sheets and parameter files first, then the (possibly thousands of) images
    images = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".dcm")
    inputs = sorted(
        record.get("inputs", {}).items(),
        key=lambda kv: (kv[1].startswith("dir:") or kv[0].lower().endswith(images), kv[0]),
    )
    checksums = pd.DataFrame(inputs, columns=["input", "sha256"])
    caption = f"Input checksums (SHA-256) of {len(checksums)} files; all in provenance.json"
    section.add(html.table(checksums, caption, max_rows=40))
    section.add("<h3>Configuration</h3>")
    import yaml

    # YAML, the config's own format, with short lists on one line
    config = yaml.safe_dump(record.get("config", {}), sort_keys=True, default_flow_style=None)
    section.add(html.preformatted(config))
    return section
