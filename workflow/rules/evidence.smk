# Is there anything to show? (pipeline step 22): events per candidate variable, Riley et
# al.'s minimum sample size, the nested-CV AUC's CI and the permutation p-value, and a
# plain verdict for the report's first screen.
EVIDENCE_JSON = "results/evidence/evidence.json"


def evidence_inputs(wildcards):
    inputs = modelling_inputs(wildcards)
    inputs.update(
        nested=NESTED_CV_TSV,
        chosen=CHOSEN_MODEL_JSON,
        selected=f"{SELECTION_DIR}/selected_features.tsv",
    )
    inputs.update(
        {"permutation": permutation_outputs()[0]} if permutation_outputs() else {}
    )
    return inputs


rule evidence:
    input:
        unpack(evidence_inputs),
    output:
        EVIDENCE_JSON,
    log:
        "results/logs/evidence/evidence.log",
    benchmark:
        "results/benchmarks/evidence/evidence.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1500),
        runtime=fixed_resource(10),
    params:
        **MODELLING_PARAMS,
        anticipated_auc=config["evidence"]["anticipated_auc"],
        alpha=config["evidence"]["alpha"],
    script:
        "../scripts/evidence.py"


def evidence_report_inputs():
    """The standalone report's inputs of the step-22 sections (evidence_report.py)."""
    inputs = {
        "evidence": EVIDENCE_JSON,
        "stability_frequency": f"{STABILITY_DIR}/selection_frequency.tsv",
        "stability_jaccard": f"{STABILITY_DIR}/jaccard.tsv",
        "stability_figure": f"{FIGURES_DIR}/selection_frequency.png",
        "checklist": f"{REPORT_DIR}/checklist.tsv",
    }
    if config["baselines"]["enabled"]:
        inputs.update(
            baselines_metrics=f"{BASELINES_DIR}/metrics.tsv",
            baselines_summary=f"{BASELINES_DIR}/baselines.json",
            baselines_delong=f"{BASELINES_DIR}/delong_tests.tsv",
            baselines_reclassification=f"{BASELINES_DIR}/reclassification.tsv",
        )
    if permutation_outputs():
        inputs.update(
            permutation=f"{PERMUTATION_DIR}/permutation.tsv",
            permutation_figure=f"{FIGURES_DIR}/permutation_null.png",
        )
    return inputs
