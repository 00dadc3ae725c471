# Baselines on the same footing as the radiomics models (pipeline step 22): volume only,
# the stepwise clinical model and radiomics score + clinical, with the same split, outer
# folds, threshold rule, Table 3 rows and DeLong tests against the chosen model.
BASELINES_DIR = "results/baselines"

# Start-up: the volume's sequence must be a configured one (images runs); a ready feature
# table without the volume column gets a warning and the report shows the gap.
if config["baselines"]["enabled"] and not PREDICT:
    _volume = f"{config['baselines']['volume_sequence']}__{config['baselines']['volume_feature']}"
    if not FEATURES_IN and config["baselines"]["volume_sequence"] not in SEQUENCES:
        _stop(
            InputError(
                f"config key baselines.volume_sequence: "
                f"{config['baselines']['volume_sequence']!r} is not one of the sequences "
                f"{SEQUENCES}"
            )
        )
    if FEATURES_IN:
        from npc_radiomics.baselines import table_has_column

        if not table_has_column(config["features_table"], _volume):
            _warn(
                [
                    f"baselines: no column {_volume} in the feature table: no volume-only "
                    "baseline (the report shows the gap)"
                ]
            )


def baselines_inputs(wildcards):
    """Features (no robust filter: the volume may fail the ICC), split, the chosen model's
    predictions and, when the run has one, the clinical table."""
    inputs = {
        "features": modelling_features(),
        "split": SPLIT_TSV,
        "predictions": PREDICTIONS_TSV,
        "nested": NESTED_CV_TSV,
        "chosen": CHOSEN_MODEL_JSON,
    }
    if CLINICAL_TSV is not None:
        inputs["clinical"] = CLINICAL_TSV
    return inputs


def baselines_targets():
    if not config["baselines"]["enabled"]:
        return []
    return [f"{BASELINES_DIR}/metrics.tsv"]


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
        volume_sequence=config["baselines"]["volume_sequence"],
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
