"""The standalone report (rule ``standalone_report``): a paper-style results section
assembled from the result files.

Every piece is optional: a missing file, a model that failed, a cohort with one class or
no clinical variable passing the entry p shows as a gap with its reason, and the rest of
the report is still made. HTML building blocks live in :mod:`npc_radiomics.html`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from . import html
from .evaluation import NESTED_CV
from .layout import cohort_order
from .metrics import METRICS_COLUMNS

log = logging.getLogger(__name__)

#: Section ids of the standalone report, in order (the browser test checks them all).
SECTION_IDS = (
    "evidence",
    "cohort",
    "table1",
    "table2",
    "features",
    "selection-stability",
    "table3",
    "chosen-model",
    "curves",
    "clinical-comparison",
    "baselines",
    "permutation",
    "decision-curves",
    "shap",
    "centres",
    "checklist",
    "provenance",
)


def _path(inputs: dict, key: str) -> Path | None:
    """The input file of ``key``, or None when not given or absent on disk."""
    value = inputs.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if not value:
        return None
    path = Path(value)
    return path if path.exists() and path.stat().st_size > 0 else None


def _read_tsv(inputs: dict, key: str, dtype: dict | None = None) -> pd.DataFrame | None:
    path = _path(inputs, key)
    if path is None:
        return None
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str, **(dtype or {})})


def _read_json(inputs: dict, key: str) -> dict | None:
    path = _path(inputs, key)
    return json.loads(path.read_text()) if path is not None else None


#: Inputs that exist only with a clinical table (not when starting from a feature table).
CLINICAL_KEYS = {"table1", "table2", "multivariable", "clinical_model", "biomarker_aucs"}


def _missing(inputs: dict, key: str, what: str, params: dict | None = None) -> str:
    """A gap for a missing input, naming the file the report looked for."""
    if key in CLINICAL_KEYS and not inputs.get(key) and (params or {}).get("features_table"):
        return html.gap(what, "no clinical table: modelling started from a ready feature table")
    value = inputs.get(key)
    where = f" ({value})" if value else ""
    return html.gap(what, f"not produced by this run{where}")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _png_width(path: Path) -> int | None:
    """Pixel width from a PNG's IHDR chunk (None if the file is not a PNG)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big")


def _figure(inputs: dict, key: str, caption: str) -> str:
    """An embedded figure, or a gap naming the missing file."""
    path = _path(inputs, key)
    if path is None:
        return _missing(inputs, key, caption)
    block = html.figure(path, caption)
    width = _png_width(path)
    if width:
        # 300-dpi figures at half their pixel width: about print size on screen, so a
        # one-panel figure does not fill the page and a four-panel one still fits it
        style = f'<img style="width:{(width + 1) // 2}px;max-width:100%" '
        block = block.replace("<img ", style, 1)
    return block


def _p_values(df: pd.DataFrame) -> pd.DataFrame:
    """p-value columns (``p_value``, ``*_p``, ``hl_p``) as text, "<0.001" for the smallest."""
    out = df.copy()
    for col in out.columns:
        if col in ("p_value", "p_holm", "p") or str(col).endswith("_p"):
            values = pd.to_numeric(out[col], errors="coerce")
            out[col] = [
                "" if not np.isfinite(v) else "<0.001" if v < 0.001 else f"{v:.3f}" for v in values
            ]
    return out


# ---------------------------------------------------------------------------- sections


def cohort_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("cohort", "Cohort and quality control")
    split = _read_tsv(inputs, "split")
    if split is None:
        section.add(_missing(inputs, "split", "Train / test / external split"))
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
                f"{len(split)} patients after quality control. The training cohort is the only "
                "one any fitted step (normalisation, selection, tuning, thresholds) has seen."
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
    qc = _read_tsv(inputs, "qc")
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
    t1 = _read_tsv(inputs, "table1", dtype={"level": str})
    if t1 is None:
        section.add(_missing(inputs, "table1", "Table 1", params))
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
        section.add(html.table(_p_values(part), f"Table 1: {cohort} cohort"))
    return section


def table2_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("table2", "Table 2. Univariate and multivariable logistic regression")
    cols = ["variable", "n", "log_or", "or_ci", "p_value", "note"]
    t2 = _read_tsv(inputs, "table2")
    if t2 is None:
        section.add(_missing(inputs, "table2", "Table 2", params))
    else:
        section.add(
            html.text(
                "Training cohort. Odds ratio per unit of each variable (per year, per stage, "
                "...) with Wald 95% CI.",
                "note",
            )
        )
        shown = _p_values(t2[[c for c in cols if c in t2]])
        section.add(html.table(shown, "Univariate logistic regression"))
    model = _read_json(inputs, "clinical_model") or {}
    coef = _read_tsv(inputs, "multivariable")
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
            shown = _p_values(coef[[c for c in cols if c in coef]])
            section.add(html.table(shown, "Multivariable logistic regression"))
    elif model:
        reason = model.get("note") or f"no clinical variable had univariate p < {entry}"
        section.add(html.gap("Multivariable clinical model", reason))
    else:
        section.add(_missing(inputs, "clinical_model", "Multivariable clinical model", params))
    return section


def icc_basis(icc: pd.DataFrame | None) -> str:
    """One sentence: how many patients (and which reference) the ICC filter rests on."""
    if icc is None or icc.empty:
        return "ICC table not available."
    n = int(icc["n_patients"].max())
    reference = icc["reference"].iloc[0] if "reference" in icc else "all"
    who = "training-cohort patients" if reference == "train" else "patients of every cohort"
    return (
        f"ICC(2,1) rests on {n} {who} with a second reader's mask "
        f"(robustness.reference: {reference}); {int(icc['robust'].sum())} of {len(icc)} "
        "features are robust."
    )


def features_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("features", "Feature robustness and selection")
    lam = _read_json(inputs, "lasso_lambda")
    selected = _read_tsv(inputs, "selected_features")
    if lam:
        section.add(
            html.text(
                f"{lam.get('n_input', '?')} features entered selection on the training set; "
                f"mRMR kept {lam.get('n_mrmr', '?')}, LASSO logistic regression "
                f"({lam.get('rule', 'min')} rule, lambda = {_fmt(lam.get('lambda'), 4)}) kept "
                f"{lam.get('n_selected', '?')}."
                + (
                    " LASSO kept nothing at the CV lambda: a fallback lambda was used."
                    if lam.get("fallback")
                    else ""
                )
            )
        )
    for key, caption in (
        ("icc_histogram", "ICC(2,1) of every feature between two readers, with the cut-off"),
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
            section.add(html.text(icc_basis(_read_tsv(inputs, "icc")), "note"))
        section.add(_figure(inputs, key, caption))
    non_finite = _read_tsv(inputs, "non_finite")
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
        section.add(_missing(inputs, "selected_features", "Selected features"))
    else:
        section.add(html.table(selected, "Selected features (LASSO coefficient, standardised)", 4))
    return section


def table3_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("table3", "Table 3. Performance of the models")
    metrics = _read_tsv(inputs, "metrics")
    if metrics is None:
        section.add(_missing(inputs, "metrics", "Table 3"))
        return section
    section.add(
        html.text(
            "AUC with 95% CI (DeLong unless configured otherwise); accuracy, sensitivity and "
            "specificity at each model's Youden threshold, fixed on the training set on the "
            "final model's own probability scale (cross-validated predictions of its final "
            "configuration; results/evaluation/thresholds.tsv names the source); Brier "
            "score; Hosmer-Lemeshow p. Train rows are in-sample (the final model scoring the "
            "patients it was fitted on): optimistic. Row nested_cv: mean ± SD of the AUC over "
            "outer folds of nested cross-validation on the training set, the unbiased "
            "estimate, its other metrics at the nested-CV out-of-fold threshold.",
            "note",
        )
    )
    shown = metrics.copy()
    shown["AUC (95% CI)"] = [
        (
            f"{r.auc:.3f} ± {r.auc_sd:.3f} (SD)"
            if r.cohort == NESTED_CV
            and np.isfinite(r.auc)
            and np.isfinite(getattr(r, "auc_sd", np.nan))
            else f"{r.auc:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})"
            if np.isfinite(r.auc) and np.isfinite(r.auc_ci_low)
            else _fmt(r.auc)
        )
        for r in shown.itertuples(index=False)
    ]
    # The results layout's metrics columns, with the AUC and its CI merged into one readable column.
    cols = [c for c in METRICS_COLUMNS if c not in ("auc_ci_low", "auc_ci_high")]
    cols[cols.index("auc")] = "AUC (95% CI)"
    section.add(html.table(_p_values(shown[cols]), "Table 3"))
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
    chosen = _read_json(inputs, "chosen") or {}
    for model in chosen.get("missing_models", []):
        section.add(html.gap(f"Model {model}", "no predictions: the model failed to fit"))
    return section


def _with_ci(df: pd.DataFrame, name: str, digits: int = 2) -> list[str]:
    low, high = f"{name}_ci_low", f"{name}_ci_high"
    if low not in df:
        return [_fmt(v, digits) for v in df[name]]
    return [
        f"{v:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"
        if np.isfinite(v) and np.isfinite(lo) and np.isfinite(hi)
        else _fmt(v, digits)
        for v, lo, hi in zip(df[name], df[low], df[high], strict=True)
    ]


def calibration_table(metrics: pd.DataFrame) -> pd.DataFrame | None:
    """The CI and calibration columns of metrics.tsv, one readable column per metric."""
    if "calibration_slope" not in metrics:
        return None
    out = metrics[["model", "cohort"]].copy()
    for name in ("sensitivity", "specificity", "ppv", "npv", "auprc", "brier"):
        out[name] = _with_ci(metrics, name)
    out["intercept"] = _with_ci(metrics, "calibration_intercept")
    out["slope"] = _with_ci(metrics, "calibration_slope")
    out["ICI"] = [_fmt(v) for v in metrics["ici"]]
    out["HL df"] = metrics["hl_df"]
    return out


def chosen_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("chosen-model", "The chosen model and why")
    chosen = _read_json(inputs, "chosen")
    if chosen is None:
        section.add(_missing(inputs, "chosen", "Chosen model"))
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
            sd = f" ± {honest['auc_sd']:.3f} (SD)" if honest.get("auc_sd") is not None else ""
            section.add(
                html.text(
                    "Whole-procedure estimate (model choice nested in each outer fold): "
                    f"AUC {honest['auc_mean']:.3f}{sd}."
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
    section.add(_figure(inputs, "roc", "ROC curves of all models per cohort; legend: AUC (95% CI)"))
    section.add(_figure(inputs, "pr", "Precision-recall curves; dashed: prevalence of CR"))
    section.add(
        _figure(
            inputs,
            "calibration",
            "Calibration of the chosen model: LOWESS with 95% bootstrap band, deciles of "
            "predicted risk, rug of predictions (train panel in-sample)",
        )
    )
    return section


def clinical_comparison_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("clinical-comparison", "Radiomics versus clinical predictors")
    aucs = _read_tsv(inputs, "biomarker_aucs")
    tests = _read_tsv(inputs, "delong_tests")
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
    model = _read_json(inputs, "clinical_model") or {}
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
                _p_values(tests),
                "Paired DeLong tests: chosen radiomics model versus each (p_value "
                "unadjusted, p_holm Holm-adjusted over every test of the table; on the "
                "training cohort both sides are out-of-fold predictions)",
            )
        )
    return section


def decision_curves_section(inputs: dict, params: dict) -> html.Section:
    from .dca import format_ranges

    section = html.Section("decision-curves", "Decision-curve analysis")
    section.add(_figure(inputs, "dca", "Net benefit against threshold probability per cohort"))
    ranges = _read_tsv(inputs, "dca_ranges")
    if ranges is None:
        section.add(_missing(inputs, "dca_ranges", "Decision-curve ranges"))
        return section
    rows = [
        {
            "cohort": c,
            "model": m,
            "threshold ranges where the model beats treat-all and treat-none": format_ranges(
                ranges, c, m
            ),
        }
        for c in cohort_order(ranges["cohort"])
        for m in sorted(ranges.loc[ranges["cohort"] == c, "model"].unique())
    ]
    section.add(html.table(pd.DataFrame(rows), "Useful threshold ranges"))
    ci = _read_tsv(inputs, "net_benefit_ci")
    chosen = (_read_json(inputs, "chosen") or {}).get("model")
    if ci is not None and len(ci):
        from .dca import TREAT_ALL

        shown = ci[ci["strategy"].isin([chosen, TREAT_ALL])].copy()
        shown["net benefit (95% CI)"] = [
            f"{r.net_benefit:.3f} ({r.ci_low:.3f} to {r.ci_high:.3f})"
            for r in shown.itertuples(index=False)
        ]
        section.add(
            html.table(
                shown[["cohort", "strategy", "threshold", "n", "net benefit (95% CI)"]],
                "Net benefit of the chosen model and treat-all at a few thresholds "
                "(bootstrap 95% CI)",
            )
        )
    return section


def shap_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("shap", "SHAP explanation of the chosen model")
    info = _read_json(inputs, "shap_summary")
    if info is None:
        section.add(_missing(inputs, "shap_summary", "SHAP"))
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
        _figure(
            inputs, "shap_beeswarm", "SHAP summary: one dot per patient, coloured by feature value"
        )
    )
    section.add(_figure(inputs, "shap_bar", "Mean |SHAP value| per feature"))
    table = _read_tsv(inputs, "shap_importance")
    if table is not None:
        section.add(html.table(table, "Mean |SHAP| per feature", digits=4))
    return section


def provenance_section(inputs: dict, params: dict) -> html.Section:
    section = html.Section("provenance", "Provenance")
    record = _read_json(inputs, "provenance")
    if record is None:
        section.add(_missing(inputs, "provenance", "Provenance record"))
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


def _evidence_builder(name: str, module: str = "evidence_report"):
    """A section of npc_radiomics.evidence_report or .checklist (imported late: they
    import this module)."""

    def build(inputs: dict, params: dict) -> html.Section:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(inputs, params)

    return build


from .centres import centres_section  # noqa: E402 - the section lives with the centres

SECTION_BUILDERS = (
    _evidence_builder("evidence_section"),
    cohort_section,
    table1_section,
    table2_section,
    features_section,
    _evidence_builder("stability_section"),
    table3_section,
    chosen_section,
    curves_section,
    clinical_comparison_section,
    _evidence_builder("baselines_section"),
    _evidence_builder("permutation_section"),
    decision_curves_section,
    shap_section,
    centres_section,
    _evidence_builder("checklist_section", "checklist"),
    provenance_section,
)


def report_sections(inputs: dict, params: dict) -> list[html.Section]:
    """All sections of the standalone report, in :data:`SECTION_IDS` order.

    inputs: key -> path (or a 0/1-element list) of each result file; missing keys or
    files become gaps. params: positive_label, negative_label, features_table, entry_p.
    A section whose files cannot be read becomes one gap with the error, so one broken
    file never costs the whole report.
    """
    sections = []
    for builder, key in zip(SECTION_BUILDERS, SECTION_IDS, strict=True):
        try:
            section = builder(inputs, params)
        except Exception as err:  # noqa: BLE001 - a broken section must not sink the report
            log.exception("report section %s failed", key)
            title = key.replace("-", " ").capitalize()
            section = html.Section(key, title, [html.gap(title, f"{type(err).__name__}: {err}")])
        assert section.key == key
        sections.append(section)
    return sections


def write_standalone_report(path: str | Path, inputs: dict, params: dict) -> Path:
    """Write results/report/index.html: no timestamp, so the bytes depend on inputs only."""
    chosen = _read_json(inputs, "chosen") or {}
    subtitle = (
        "Multimodal MRI radiomics for short-term response (CR vs non-CR) in nasopharyngeal "
        "carcinoma. "
        + (f"Chosen model: {chosen['model']}." if chosen.get("model") else "No chosen model.")
    )
    return html.write_report(
        path,
        params.get("title", "npc-radiomics results"),
        subtitle,
        report_sections(inputs, params),
    )
