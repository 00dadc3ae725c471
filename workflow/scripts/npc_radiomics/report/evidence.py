"""Report sections of the step-22 evidence: the first screen, baselines, the negative
control. Same conventions as :mod:`npc_radiomics.report.sections` (a missing file is a gap)."""

from __future__ import annotations

import pandas as pd

from npc_radiomics.report import html
from npc_radiomics.report.kit import (
    fmt,
    format_p_values,
    missing,
    read_json,
    read_tsv,
    result_figure,
)

SECTION_KEYS = ("evidence", "baselines", "permutation")


def evidence_section(inputs: dict, params: dict) -> html.Section:
    """First screen: is there anything to show?"""
    section = html.Section("evidence", "Is there anything to show?")
    record = read_json(inputs, "evidence")
    if record is None:
        section.add(missing(inputs, "evidence", "Evidence summary"))
        return section
    cls = "note" if record.get("evidence") else "gap"
    # the sample-size criteria count the candidate features: selection spent their degrees
    # of freedom, so the selected count is not a sample-size justification
    section.add(html.text(f"Verdict: {record['verdict']}", cls))
    rows = [
        ("training patients", record["n_train"]),
        ("events / non-events", f"{record['events']} / {record['non_events']}"),
        ("candidate features", record["n_candidate_features"]),
        ("events per candidate variable", fmt(record.get("events_per_candidate"), 2)),
        ("selected features (final fit)", record.get("n_selected_features") or "-"),
        ("events per selected feature", fmt(record.get("events_per_selected"), 2)),
        (
            "headline: the procedure's nested-CV AUC, model chosen in each outer fold (95% CI)",
            f"{fmt(record.get('headline_auc'))} ({fmt(record.get('headline_ci_low'))}-"
            f"{fmt(record.get('headline_ci_high'))})",
        ),
        (
            f"chosen model ({record.get('chosen_model') or '-'}) nested-CV AUC, "
            f"{record.get('chosen_model_note') or 'optimistic'}",
            fmt(record.get("chosen_model_nested_auc")),
        ),
        (
            "permutation p-value of the procedure's AUC",
            f"{fmt(record.get('permutation_p'))} ({record.get('permutation_n', 0)} permutations;"
            f" smallest possible {fmt(record.get('permutation_p_min'))})"
            if record.get("permutation_p") is not None
            else "not run",
        ),
    ]
    for key, label in (("candidates", "candidate"),):
        riley = record.get("riley", {}).get(key, {})
        if riley.get("n_required"):
            rows.append(
                (
                    f"Riley et al. minimum n ({label} features, AUC {record['anticipated_auc']})",
                    f"{riley['n_required']} ({riley['events_required']} events)",
                )
            )
    section.add(html.table(pd.DataFrame(rows, columns=["quantity", "value"]), "First screen"))
    if record.get("sample_size_note"):
        section.add(html.text(record["sample_size_note"], "note"))
    return section


def baselines_section(inputs: dict, params: dict) -> html.Section:
    """Baselines trained and tested like the radiomics models."""
    section = html.Section("baselines", "Baselines: volume, clinical, combined")
    metrics = read_tsv(inputs, "baselines_metrics")
    if metrics is None:
        section.add(missing(inputs, "baselines_metrics", "Baselines"))
        return section
    summary = read_json(inputs, "baselines_summary") or {}
    for name, why in sorted(summary.get("missing", {}).items()):
        section.add(html.gap(name, why))
    columns = [
        c
        for c in (
            "model",
            "cohort",
            "n",
            "auc",
            "auc_ci_low",
            "auc_ci_high",
            "sensitivity",
            "specificity",
            "threshold",
            "brier",
        )
        if c in metrics
    ]
    section.add(
        html.table(
            metrics[columns],
            "Baselines, Table 3 rows: same split, outer folds and threshold rule as the "
            "radiomics models (nested_cv: mean of outer-fold AUCs)",
        )
    )
    tests = read_tsv(inputs, "baselines_delong")
    if tests is not None and len(tests):
        section.add(
            html.table(
                format_p_values(tests.drop(columns=["predictions"], errors="ignore")),
                f"Paired DeLong tests: chosen model ({summary.get('chosen_model')}) versus each "
                "baseline (train: out-of-fold on both sides)",
            )
        )
    reclass = read_tsv(inputs, "baselines_reclassification")
    if reclass is not None and len(reclass):
        section.add(
            html.table(
                reclass.drop(columns=["predictions"], errors="ignore"),
                "Combined model versus the radiomics score alone: continuous NRI and IDI "
                "(95% bootstrap CI)",
            )
        )
    return section


def permutation_section(inputs: dict, params: dict) -> html.Section:
    """The negative control: the whole pipeline on permuted labels."""
    section = html.Section("permutation", "Negative control: permuted labels")
    summary = read_tsv(inputs, "permutation")
    if summary is None:
        section.add(missing(inputs, "permutation", "Label permutation"))
        return section
    section.add(
        html.text(
            "The whole procedure rerun on permuted training labels, as the real run on the "
            "real labels: selection, tuning and nested CV of every configured model, the "
            "model with the best inner-CV AUC chosen inside each outer fold; the statistic "
            "is the procedure's nested-CV AUC (row nested_cv_procedure, the headline), "
            "p = (1 + #null >= real) / (1 + n), never below 1 / (1 + n). Rows per model: "
            "each model's own nested-CV AUC on the same permuted runs (descriptive).",
            "note",
        )
    )
    section.add(
        html.table(format_p_values(summary), "Permutation test of the procedure's nested-CV AUC")
    )
    section.add(
        result_figure(inputs, "permutation_figure", "Null distribution of the nested-CV AUC")
    )
    return section


def stability_section(inputs: dict, params: dict) -> html.Section:
    """Selection stability over bootstrap refits of the selection."""
    section = html.Section("selection-stability", "Selection stability")
    jaccard = read_tsv(inputs, "stability_jaccard")
    if jaccard is None:
        section.add(missing(inputs, "stability_jaccard", "Selection stability"))
        return section
    section.add(
        html.table(
            jaccard,
            "Mean pairwise Jaccard index of the selected sets over bootstrap refits of the "
            "selection (stratified resamples of the training set; stability.n_bootstrap), "
            "and their mean Jaccard index with the final fit's set",
        )
    )
    freq = read_tsv(inputs, "stability_frequency")
    if freq is not None:
        section.add(
            html.table(
                freq.head(20), "The 20 features most often selected over the bootstrap refits"
            )
        )
    section.add(result_figure(inputs, "stability_figure", "Selection frequency, mRMR and LASSO"))
    return section


BUILDERS = (evidence_section, baselines_section, permutation_section, stability_section)
