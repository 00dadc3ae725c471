# Stratified, seeded train/test split of the training pool; external centres by name.
# The imaging stage fits normalisation on the training patients only (zscore_params).


rule split:
    input:
        unpack(split_inputs),
    output:
        SPLIT_TSV,
    log:
        "results/logs/split/split.log",
    benchmark:
        "results/benchmarks/split/split.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        outcome=OUTCOME,
        continuous=config["clinical_variables"]["continuous"],
        categorical=config["clinical_variables"]["categorical"],
        train_centers=TRAIN_CENTERS,
        external_centers=EXTERNAL_CENTERS,
        test_size=config["split"]["test_size"],
        stratify=config["split"]["stratify"],
        seed=rule_seed("split"),
        samples=dict(zip(SAMPLES["patient_id"], SAMPLES["center"])),
        table_columns=config.get("features_table_columns", {"id": "patient_id"}),
    script:
        "../scripts/split.py"
