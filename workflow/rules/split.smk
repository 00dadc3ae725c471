# Stratified, seeded train/test split of the training pool (pool.tsv: what every fitted
# step reads); each external centre's cohort by name; split.tsv gathers both. The imaging
# stage fits normalisation on the training patients only (zscore_params). Labels and
# centres are params (common.smk, centre_labels), so a centre's rows reach only its own
# tables: adding an external centre leaves the pool's split, and all it feeds, untouched.


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
        outcome=OUTCOME,
        train_centers=TRAIN_CENTERS,
        # Images: the labels hold the training centres only, so no external centre is
        # named here (adding one changes no param of this rule).
        external_centers=lambda wc: EXTERNAL_CENTERS if FEATURES_IN else [],
        test_size=config["split"]["test_size"],
        stratify=config["split"]["stratify"],
        seed=rule_seed("split"),
        labels=lambda wc: {} if FEATURES_IN else centre_labels(TRAIN_CENTERS),
        table_columns=config.get("features_table_columns", {"id": "patient_id"}),
        cohorts=["train", "test"],
    script:
        "../scripts/split.py"


rule external_cohort:
    input:
        unpack(external_cohort_inputs),
    output:
        EXTERNAL_COHORT,
    log:
        "results/logs/external_cohort/{centre}.log",
    benchmark:
        "results/benchmarks/external_cohort/{centre}.tsv"
    wildcard_constraints:
        centre="|".join(re.escape(c) for c in EXTERNAL_CENTERS) or "(?!)",
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        outcome=OUTCOME,
        train_centers=TRAIN_CENTERS,
        external_centers=lambda wc: EXTERNAL_CENTERS if FEATURES_IN else [wc.centre],
        test_size=config["split"]["test_size"],
        stratify=config["split"]["stratify"],
        seed=rule_seed("split"),
        labels=lambda wc: {} if FEATURES_IN else centre_labels([wc.centre]),
        table_columns=config.get("features_table_columns", {"id": "patient_id"}),
        cohorts=lambda wc: [wc.centre],
    script:
        "../scripts/split.py"


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
