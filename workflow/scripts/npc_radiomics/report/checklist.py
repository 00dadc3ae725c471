"""Reporting checklist (rule ``checklist``, step 22): the TRIPOD+AI, CLEAR and METRICS
items this run can fill itself, each linked to the report section that supports it, and
the items that need the user's own text.

Status per item: ``filled`` (every result file the item rests on was made by this run
AND holds what the item asks for, :data:`CONTENT_CHECKS`: e.g. TRIPOD+AI 26a needs a 95%
CI of the nested-CV headline and of the test set, not an SD; ``section`` names the report
section), ``user`` (needs the authors' text: ethics, funding, blinding, ...), ``not
produced`` (the run could fill it but the files are missing or lack that content, e.g.
no external centre, no second reader; the note says which).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["guideline", "item", "topic", "status", "section", "link", "evidence", "note"]

# (guideline, item, topic, section or None for the user's text, input keys it rests on)
ITEMS: tuple[tuple[str, str, str, str | None, tuple[str, ...]], ...] = (
    ("TRIPOD+AI", "1", "Title: development / validation, population, outcome", None, ()),
    ("TRIPOD+AI", "2", "Abstract", None, ()),
    ("TRIPOD+AI", "3", "Background: healthcare context, rationale", None, ()),
    ("TRIPOD+AI", "4", "Objectives", None, ()),
    ("TRIPOD+AI", "5a", "Data sources: centres and cohorts", "cohort", ("split",)),
    ("TRIPOD+AI", "5b", "Dates of data collection", None, ()),
    ("TRIPOD+AI", "6a", "Setting: centres", "cohort", ("split",)),
    ("TRIPOD+AI", "6b", "Eligibility: input quality control", "cohort", ("qc",)),
    ("TRIPOD+AI", "6c", "Treatments received", None, ()),
    (
        "TRIPOD+AI",
        "7",
        "Data preparation: preprocessing, harmonisation",
        "provenance",
        ("provenance",),
    ),
    ("TRIPOD+AI", "8a", "Outcome definition and assessment", None, ()),
    ("TRIPOD+AI", "8c", "Blinding of outcome assessment", None, ()),
    (
        "TRIPOD+AI",
        "9a",
        "Predictors: definition (radiomics features, clinical variables)",
        "features",
        ("selected_features",),
    ),
    ("TRIPOD+AI", "9c", "Blinding of predictor assessment", None, ()),
    (
        "TRIPOD+AI",
        "10",
        "Sample size: events per variable, minimum sample size",
        "evidence",
        ("evidence",),
    ),
    (
        "TRIPOD+AI",
        "11",
        "Missing data: non-finite features and their handling",
        "features",
        ("non_finite",),
    ),
    ("TRIPOD+AI", "12a", "Data use: train / test / external split", "cohort", ("split",)),
    (
        "TRIPOD+AI",
        "12b",
        "Predictor handling: robustness filter, mRMR, LASSO",
        "features",
        ("selected_features", "lasso_lambda"),
    ),
    (
        "TRIPOD+AI",
        "12c",
        "Model type, building and hyper-parameter tuning",
        "chosen-model",
        ("chosen", "best_params"),
    ),
    ("TRIPOD+AI", "12d", "Heterogeneity across centres", None, ()),
    ("TRIPOD+AI", "12e", "Performance measures", "table3", ("metrics",)),
    ("TRIPOD+AI", "12f", "Model updating / recalibration", None, ()),
    ("TRIPOD+AI", "12g", "Fairness across groups", None, ()),
    ("TRIPOD+AI", "13", "Class imbalance handling", None, ()),
    ("TRIPOD+AI", "15", "Model output and decision threshold", "table3", ("metrics",)),
    ("TRIPOD+AI", "17", "Ethical approval and consent", None, ()),
    ("TRIPOD+AI", "18", "Funding", None, ()),
    ("TRIPOD+AI", "19", "Conflicts of interest", None, ()),
    ("TRIPOD+AI", "20", "Protocol and registration", None, ()),
    ("TRIPOD+AI", "21", "Data availability", None, ()),
    ("TRIPOD+AI", "22", "Code availability and software versions", "provenance", ("provenance",)),
    ("TRIPOD+AI", "23", "Patient and public involvement", None, ()),
    ("TRIPOD+AI", "24", "Participants: flow through QC and the split", "cohort", ("qc", "split")),
    ("TRIPOD+AI", "25", "Participant characteristics per cohort (Table 1)", "table1", ("table1",)),
    (
        "TRIPOD+AI",
        "26a",
        "Performance with 95% CIs: internal validation (nested CV, test)",
        "table3",
        ("metrics",),
    ),
    (
        "TRIPOD+AI",
        "26b",
        "Performance with 95% CIs: external validation",
        "table3",
        ("metrics", "external"),
    ),
    ("TRIPOD+AI", "26c", "Calibration", "curves", ("calibration",)),
    ("TRIPOD+AI", "26d", "Clinical utility: decision curves", "decision-curves", ("dca",)),
    (
        "TRIPOD+AI",
        "26e",
        "Comparison with simpler models (volume, clinical)",
        "baselines",
        ("baselines_metrics",),
    ),
    ("TRIPOD+AI", "27", "Interpretation, limitations, usability", None, ()),
    ("CLEAR", "imaging-protocol", "Image acquisition protocol per centre", None, ()),
    ("CLEAR", "segmentation", "Segmentation method and readers", None, ()),
    (
        "CLEAR",
        "reader-robustness",
        "Inter-reader feature robustness (ICC)",
        "features",
        ("icc_readers",),
    ),
    (
        "CLEAR",
        "preprocessing",
        "Image preprocessing: N4, resampling, normalisation",
        "provenance",
        ("provenance",),
    ),
    (
        "CLEAR",
        "extraction",
        "Feature extraction software, version and parameters",
        "provenance",
        ("provenance",),
    ),
    ("CLEAR", "selection", "Feature selection method", "features", ("selected_features",)),
    (
        "CLEAR",
        "selection-stability",
        "Stability of the selected features",
        "selection-stability",
        ("stability_jaccard",),
    ),
    (
        "CLEAR",
        "baselines",
        "Comparison with clinical and volume baselines",
        "baselines",
        ("baselines_metrics",),
    ),
    (
        "CLEAR",
        "negative-control",
        "Negative control (label permutation)",
        "permutation",
        ("permutation",),
    ),
    ("CLEAR", "explainability", "Model explanation (SHAP)", "shap", ("shap_importance",)),
    (
        "CLEAR",
        "open-science",
        "Code, configuration and software versions",
        "provenance",
        ("provenance",),
    ),
    ("METRICS", "study-design", "Study design: cohorts and split", "cohort", ("split",)),
    ("METRICS", "segmentation", "Segmentation: second reader and robustness", "features", ("icc",)),
    (
        "METRICS",
        "image-processing",
        "Image processing and feature extraction",
        "provenance",
        ("provenance",),
    ),
    (
        "METRICS",
        "feature-processing",
        "Feature processing and selection",
        "features",
        ("selected_features",),
    ),
    (
        "METRICS",
        "modelling",
        "Preparation for modelling: tuning and nested CV",
        "chosen-model",
        ("best_params",),
    ),
    (
        "METRICS",
        "metrics-comparison",
        "Performance metrics and comparisons",
        "table3",
        ("metrics",),
    ),
    (
        "METRICS",
        "testing",
        "Testing on held-out and external data",
        "table3",
        ("metrics", "external"),
    ),
    ("METRICS", "open-science", "Open science: code and data", "provenance", ("provenance",)),
)


def _present(inputs: dict, key: str) -> bool:
    value = inputs.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return bool(value) and Path(value).exists() and Path(value).stat().st_size > 0


def _has_external(inputs: dict) -> bool:
    if not _present(inputs, "metrics"):
        return False
    cohorts = set(pd.read_csv(inputs["metrics"], sep="\t")["cohort"].astype(str))
    return bool(cohorts - {"train", "test", "nested_cv"})


def _has_reader_icc(inputs: dict) -> bool:
    """An ICC between readers (robustness.method readers or both), not perturbations only."""
    if not _present(inputs, "icc"):
        return False
    icc = pd.read_csv(inputs["icc"], sep="\t", nrows=1)
    return "method" not in icc or str(icc["method"].iloc[0]) != "perturbation"


#: Keys checked by a function of the inputs rather than by a file of their own.
_DERIVED = {"external": (_has_external, None), "icc_readers": (_has_reader_icc, "icc")}


def _table(inputs: dict, key: str) -> pd.DataFrame | None:
    value = inputs.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return pd.read_csv(value, sep="\t")
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def _json(inputs: dict, key: str) -> dict:
    import json

    value = inputs.get(key)
    try:
        return json.loads(Path(value).read_text()) or {}
    except (OSError, TypeError, ValueError):
        return {}


def _with_ci(rows: pd.DataFrame) -> pd.DataFrame:
    cols = ["auc", "auc_ci_low", "auc_ci_high"]
    if not set(cols) <= set(rows.columns):
        return rows.iloc[:0]
    values = rows[cols].apply(pd.to_numeric, errors="coerce")
    return rows[values.notna().all(axis=1)]


def _internal_ci(inputs: dict) -> str | None:
    from npc_radiomics.evaluation.procedure import PROCEDURE

    m = _table(inputs, "metrics")
    if m is None:
        return "metrics.tsv unreadable"
    head = _with_ci(m[(m["model"] == PROCEDURE) & (m["cohort"] == "nested_cv")])
    if head.empty:
        return "the nested-CV headline has no 95% CI (an SD over folds is not a CI)"
    if _with_ci(m[m["cohort"] == "test"]).empty:
        return "no test-set AUC with a 95% CI"
    return None


def _external_ci(inputs: dict) -> str | None:
    m = _table(inputs, "metrics")
    rows = m[~m["cohort"].astype(str).isin(["train", "test", "nested_cv"])]
    return None if len(_with_ci(rows)) else "no external AUC with a 95% CI"


def _testing(inputs: dict) -> str | None:
    return _internal_ci(inputs) or _external_ci(inputs)


def _threshold(inputs: dict) -> str | None:
    m = _table(inputs, "metrics")
    ok = "threshold" in m and pd.to_numeric(m["threshold"], errors="coerce").notna().any()
    return None if ok else "no decision threshold in metrics.tsv"


def _sample_size(inputs: dict) -> str | None:
    e = _json(inputs, "evidence")
    if e.get("events_per_candidate") is None:
        return "no events per candidate variable"
    if not (e.get("riley") or {}).get("candidates", {}).get("n_required"):
        return "no minimum sample size (Riley et al.) for the candidate features"
    return None


def _chosen(inputs: dict) -> str | None:
    return None if _json(inputs, "chosen").get("model") else "no model was chosen"


def _permutation(inputs: dict) -> str | None:
    from npc_radiomics.evaluation.procedure import PROCEDURE

    t = _table(inputs, "permutation")
    if t is None or "p_value" not in t:
        return "no permutation p-value"
    row = t[t["model"] == PROCEDURE]
    if row.empty or pd.isna(row["p_value"].iloc[0]):
        return "no permutation p-value of the procedure's statistic"
    return None


#: Bootstrap refits the stability item asks for.
MIN_STABILITY_REFITS = 100


def _stability(inputs: dict) -> str | None:
    t = _table(inputs, "stability_jaccard")
    if t is None or "scope" not in t:
        return "no Jaccard table"
    boot = t[(t["scope"] == "bootstrap") & t["mean_jaccard"].notna()]
    if boot.empty:
        return "no bootstrap refits of the selection"
    n = int(boot["n_fits"].min())
    if n < MIN_STABILITY_REFITS:
        return (
            f"only {n} bootstrap refits of the selection (stability.n_bootstrap; at least "
            f"{MIN_STABILITY_REFITS} for this item)"
        )
    return None


def _baselines(inputs: dict) -> str | None:
    t = _table(inputs, "baselines_metrics")
    return None if t is not None and len(_with_ci(t)) else "no baseline AUC with a 95% CI"


#: (guideline, item) -> the check of its content: None when present, else the reason.
CONTENT_CHECKS = {
    ("TRIPOD+AI", "10"): _sample_size,
    ("TRIPOD+AI", "12c"): _chosen,
    ("TRIPOD+AI", "15"): _threshold,
    ("TRIPOD+AI", "26a"): _internal_ci,
    ("TRIPOD+AI", "26b"): _external_ci,
    ("TRIPOD+AI", "26e"): _baselines,
    ("CLEAR", "baselines"): _baselines,
    ("CLEAR", "negative-control"): _permutation,
    ("CLEAR", "selection-stability"): _stability,
    ("METRICS", "testing"): _testing,
}


def checklist_table(inputs: dict, section_ids, report_name: str = "index.html") -> pd.DataFrame:
    """One row per item of :data:`ITEMS` with its status and link (``report_name#section``).

    ``inputs``: the standalone report's inputs (key -> path); ``section_ids``: the
    report's sections, so that a filled row can only name one that exists."""
    sections = set(section_ids)
    rows = []
    for guideline, item, topic, section, keys in ITEMS:
        if section is None:
            rows.append((guideline, item, topic, "user", "", "", "", "needs the authors' text"))
            continue
        assert section in sections, f"checklist item {guideline} {item}: unknown section {section}"
        missing = [
            k
            for k in keys
            if not (_DERIVED[k][0](inputs) if k in _DERIVED else _present(inputs, k))
        ]
        if missing:
            note = (
                "no external centre in this run"
                if missing == ["external"]
                else ("not produced by this run: " + ", ".join(missing))
            )
            rows.append((guideline, item, topic, "not produced", section, "", "", note))
            continue
        check = CONTENT_CHECKS.get((guideline, item))
        lacking = check(inputs) if check else None
        if lacking:
            rows.append((guideline, item, topic, "not produced", section, "", "", lacking))
            continue
        files = [_DERIVED[k][1] if k in _DERIVED else k for k in keys]
        evidence = ", ".join(
            Path(str(inputs[k] if not isinstance(inputs[k], (list, tuple)) else inputs[k][0])).name
            for k in files
            if k is not None
        )
        rows.append(
            (guideline, item, topic, "filled", section, f"{report_name}#{section}", evidence, "")
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def checklist_rule(inputs: dict, out_path) -> str:
    """Rule ``checklist``: the TSV from the report's inputs."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.report.kit import SECTION_IDS

    table = checklist_table(inputs, SECTION_IDS)
    write_tsv(table, out_path)
    counts = table["status"].value_counts().to_dict()
    return f"checklist: {counts}"


def checklist_section(inputs: dict, params: dict):
    """Report section: the checklist table, filled items linked to their sections."""
    from npc_radiomics.report import html
    from npc_radiomics.report.kit import missing, read_tsv

    section = html.Section("checklist", "Reporting checklist (TRIPOD+AI, CLEAR, METRICS)")
    table = read_tsv(inputs, "checklist")
    if table is None:
        section.add(missing(inputs, "checklist", "Reporting checklist"))
        return section
    counts = table["status"].value_counts()
    section.add(
        html.text(
            f"{counts.get('filled', 0)} items filled from this run, {counts.get('user', 0)} need "
            f"the authors' text, {counts.get('not produced', 0)} not produced by this run.",
            "note",
        )
    )
    shown = table.drop(columns=["link"]).fillna("")
    shown["section"] = [
        f"#{s}" if status == "filled" else ""
        for s, status in zip(table["section"], table["status"], strict=True)
    ]
    section.add(html.table(shown, "Checklist items (section: where the report supports it)"))
    return section
