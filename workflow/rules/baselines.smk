# Baselines on the same footing as the radiomics models (pipeline step 22): volume only,
# the stepwise clinical model and radiomics score + clinical, with the same split, outer
# folds, threshold rule, Table 3 rows and DeLong tests against the chosen model.
# Constants and input functions: evidence_common.smk.


rule inner_scores:
    input:
        unpack(inner_scores_inputs),
    output:
        INNER_SCORES_TSV,
    log:
        "results/logs/inner_scores/inner_scores.log",
    benchmark:
        "results/benchmarks/inner_scores/inner_scores.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(60),
    params:
        **MODELLING_PARAMS,
    script:
        "../scripts/inner_scores.py"


rule baselines:
    input:
        unpack(baselines_inputs),
    output:
        predictions=f"{BASELINES_DIR}/predictions.tsv",
        nested=f"{BASELINES_DIR}/nested_cv.tsv",
        metrics=f"{BASELINES_DIR}/metrics.tsv",
        thresholds=f"{BASELINES_DIR}/thresholds.tsv",
        delong_tests=f"{BASELINES_DIR}/delong_tests.tsv",
        reclassification=f"{BASELINES_DIR}/reclassification.tsv",
        summary=f"{BASELINES_DIR}/baselines.json",
    log:
        "results/logs/baselines/baselines.log",
    benchmark:
        "results/benchmarks/baselines/baselines.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 5),
        runtime=fixed_resource(30),
    params:
        **MODELLING_PARAMS,
        volume_sequence=VOLUME_SEQUENCE,
        volume_feature=config["baselines"]["volume_feature"],
        continuous=config["clinical_variables"]["continuous"],
        categorical=config["clinical_variables"]["categorical"],
        entry_p=config["clinical_analysis"]["entry_p"],
        stay_p=config["clinical_analysis"]["stay_p"],
        ci_method=config["evaluation"]["ci_method"],
        n_bootstrap=config["evaluation"]["n_bootstrap"],
        calibration_bins=config["evaluation"]["calibration_bins"],
        evaluation_seed=rule_seed("evaluation"),
    script:
        "../scripts/baselines.py"
