# The training pool's stratified, seeded train/test split (pool.tsv: what every fitted
# step reads), each external centre's cohort by name, and split.tsv gathering both. The
# pool's split reads only the training centres' QC tables and clinical rows (ancient
# clinical table + a hash of those rows as a param), so adding an external centre leaves
# it, and all it feeds, untouched. The imaging stage fits normalisation on the training
# patients only (zscore_params).


rule split:
    input:
        unpack(split_inputs),
    output:
        POOL_SPLIT_TSV,
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
        **sheet_params(),
        outcome=OUTCOME,
        train_centers=TRAIN_CENTERS,
        # A ready feature table's external rows must be told apart from the pool's;
        # with images the pool's patients alone are read.
        external_centers=EXTERNAL_CENTERS if FEATURES_IN else [],
        test_size=config["split"]["test_size"],
        stratify=config["split"]["stratify"],
        seed=rule_seed("split"),
        samples={p: CENTRE_OF[p] for p in centre_patients(TRAIN_CENTERS)},
        clinical_rows=clinical_rows_hash(centre_patients(TRAIN_CENTERS)),
        table_columns=config.get("features_table_columns", {"id": "patient_id"}),
        cohorts=["train", "test"],
    script:
        "../scripts/split.py"


use rule split as external_cohort with:
    input:
        unpack(external_cohort_inputs),
    output:
        EXTERNAL_COHORT,
    log:
        "results/logs/external_cohort/{centre}.log",
    benchmark:
        "results/benchmarks/external_cohort/{centre}.tsv"
    wildcard_constraints:
        centre=centre_constraint(EXTERNAL_CENTERS),
    params:
        **sheet_params(),
        outcome=OUTCOME,
        train_centers=TRAIN_CENTERS,
        external_centers=EXTERNAL_CENTERS if FEATURES_IN else [],
        test_size=config["split"]["test_size"],
        stratify=config["split"]["stratify"],
        seed=rule_seed("split"),
        samples=lambda wc: {p: CENTRE_OF[p] for p in centre_patients([wc.centre])},
        clinical_rows=lambda wc: clinical_rows_hash(centre_patients([wc.centre])),
        table_columns=config.get("features_table_columns", {"id": "patient_id"}),
        cohorts=lambda wc: [wc.centre],


rule split_table:
    input:
        pool=POOL_SPLIT_TSV,
        external=expand(EXTERNAL_COHORT, centre=EXTERNAL_CENTERS),
    output:
        SPLIT_TSV,
    log:
        "results/logs/split_table/split_table.log",
    benchmark:
        "results/benchmarks/split_table/split_table.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    script:
        "../scripts/split_table.py"
