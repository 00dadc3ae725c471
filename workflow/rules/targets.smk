# What the report reads and what `snakemake` builds by default: after every *_common.smk,
# whose functions they call.


def report_inputs(wildcards):
    """Named inputs of the standalone report; parts that this run does not make are left
    out, and the report shows them as gaps."""
    inputs = {
        "split": SPLIT_TSV,
        "metrics": f"{EVALUATION_DIR}/metrics.tsv",
        "chosen": CHOSEN_MODEL_JSON,
        "roc": f"{FIGURES_DIR}/roc_curves.png",
        "pr": f"{FIGURES_DIR}/pr_curves.png",
        "calibration": f"{FIGURES_DIR}/calibration_curves.png",
        "dca": f"{FIGURES_DIR}/decision_curves.png",
        "dca_ranges": f"{EVALUATION_DIR}/dca_ranges.tsv",
        "net_benefit_ci": f"{EVALUATION_DIR}/net_benefit_ci.tsv",
        "net_benefit_difference": f"{EVALUATION_DIR}/net_benefit_difference.tsv",
        "subgroups": f"{EVALUATION_DIR}/subgroups.tsv",
        "shap_summary": f"{SHAP_DIR}/shap.json",
        "shap_importance": f"{SHAP_DIR}/shap_importance.tsv",
        "shap_beeswarm": f"{FIGURES_DIR}/shap_beeswarm.png",
        "shap_bar": f"{FIGURES_DIR}/shap_bar.png",
        "selected_features": f"{SELECTION_DIR}/selected_features.tsv",
        "lasso_lambda": f"{SELECTION_DIR}/lasso_lambda.json",
        "lasso_path": f"{FIGURES_DIR}/lasso_path.png",
        "lasso_cv": f"{FIGURES_DIR}/lasso_cv.png",
        "correlation": f"{FIGURES_DIR}/selected_feature_correlation.png",
        "provenance": f"{REPORT_DIR}/provenance.json",
        "best_params": expand(BEST_PARAMS, model=config["models"]),
        "non_finite": NON_FINITE_TSV,
    }
    if not FEATURES_IN:
        inputs["qc"] = QC_TSV
    inputs.update(evidence_report_inputs())  # evidence.smk
    if modelling_robust():
        inputs["icc_histogram"] = ICC_HISTOGRAM
        inputs["icc"] = ICC_TSV
    inputs["centres"] = CENTRES_TSV
    inputs["centre_diagnostics"] = CENTRE_DIAGNOSTICS_TSV
    inputs["centre_pca"] = CENTRE_PCA
    if LOCO:
        inputs["loco"] = LOCO_TSV
        inputs["loco_forest"] = LOCO_FOREST
    if CLINICAL_TSV is not None:
        for key, name in (
            ("table1", "table1.tsv"),
            ("table2", "table2.tsv"),
            ("multivariable", "multivariable_model.tsv"),
            ("clinical_model", "clinical_model.json"),
            ("biomarker_aucs", "biomarker_aucs.tsv"),
            ("delong_tests", "delong_tests.tsv"),
        ):
            inputs[key] = f"{CLINICAL_DIR}/{name}"
    return inputs


def checklist_inputs(wildcards):
    """The report's own inputs (the checklist rests on exactly what the report shows)."""
    return {k: v for k, v in report_inputs(wildcards).items() if k != "checklist"}


# ---- targets -------------------------------------------------------------------------
def get_final_output():
    """Everything `snakemake` builds by default (in predict mode: the predictions)."""
    if PREDICT:
        return predict_targets()
    targets = [SPLIT_TSV]
    if not FEATURES_IN:
        targets += [QC_TSV, FEATURES_PARQUET]
        targets += modelling_robust()
    targets += modelling_targets()
    targets += [
        f"{EVALUATION_DIR}/metrics.tsv",
        f"{EVALUATION_DIR}/dca_ranges.tsv",
        f"{EVALUATION_DIR}/subgroups.tsv",
        f"{SHAP_DIR}/shap_importance.tsv",
        f"{REPORT_DIR}/provenance.json",
        f"{REPORT_DIR}/index.html",
    ]
    targets += bundle_targets()
    targets += baselines_targets()  # baselines.smk
    targets += permutation_outputs()  # permutation.smk
    targets += [EVIDENCE_JSON]  # evidence.smk
    targets += [f"{STABILITY_DIR}/jaccard.tsv"]  # stability.smk
    targets += [RUN_CRATE]  # runcrate.smk
    targets += [CENTRES_TSV]
    if LOCO:
        targets += [LOCO_TSV]
    if CLINICAL_TSV is not None:
        targets += [
            f"{CLINICAL_DIR}/table1.tsv",
            f"{CLINICAL_DIR}/table2.tsv",
            f"{CLINICAL_DIR}/delong_tests.tsv",
        ]
    return targets


def run_crate_inputs(wildcards):
    """Every other final target: the crate describes the finished run."""
    return [t for t in get_final_output() if t != RUN_CRATE]
