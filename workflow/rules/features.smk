# Radiomics features (pipeline steps 5-7): pyradiomics on every preprocessed case of a batch
# (and on its reader-2 masks), the wide tables (the training pool's, each external
# centre's and every cohort's), and the ICC(2,1) robustness filter.


rule extract_batch:
    input:
        folder=PREPROCESSED_BATCH,
        # Only when a sequence is z-scored (a CT in HU needs no statistics, nor the split).
        zscore=zscore_input,
        params=sorted(set(PARAMS_FILES.values())),
    output:
        features=BATCH_FEATURES,
        provenance=BATCH_PROVENANCE,
    log:
        "results/logs/extract_batch/{centre}/{batch}.log",
    benchmark:
        "results/benchmarks/extract_batch/{centre}/{batch}.tsv"
    wildcard_constraints:
        centre=centre_constraint(CENTRES),
    conda:
        "../../envs/imaging.yaml"
    threads: THREADS_PER_JOB
    resources:
        mem_mb=batch_resource(500, 0, 150, "max", per_worker=500),
        runtime=batch_resource(10, 2, 5, "sum"),
    params:
        cases=extract_cases(),
        params_files=PARAMS_FILES,
        normalization=NORMALIZATION,
        crop_margin_mm=config["features"]["crop_margin_mm"],
    script:
        "../scripts/extract_batch.py"


# Every cohort's table (the documented results/features/features.parquet), the reader-2
# table and the extraction provenance.
rule merge_features:
    input:
        features=batch_paths(BATCH_FEATURES, CENTRES),
        provenance=batch_paths(BATCH_PROVENANCE, CENTRES),
    output:
        features=FEATURES_PARQUET,
        features_reader2=FEATURES_READER2_PARQUET,
        provenance=FEATURE_PROVENANCE_TSV,
    log:
        "results/logs/merge_features/merge_features.log",
    benchmark:
        "results/benchmarks/merge_features/merge_features.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 5),
        runtime=fixed_resource(20),
    script:
        "../scripts/merge_features.py"


# The training pool's tables: what every fitted step reads, so an external centre never
# changes them.
use rule merge_features as merge_pool_features with:
    input:
        features=batch_paths(BATCH_FEATURES, TRAIN_CENTERS),
    output:
        features=POOL_FEATURES,
        features_reader2=POOL_FEATURES_READER2,
    log:
        "results/logs/merge_pool_features/merge_pool_features.log",
    benchmark:
        "results/benchmarks/merge_pool_features/merge_pool_features.tsv"


# One external centre's table: what its predictions read.
use rule merge_features as merge_external_features with:
    input:
        features=lambda wc: batch_paths(BATCH_FEATURES, [wc.centre]),
    output:
        features=EXTERNAL_FEATURES,
    log:
        "results/logs/merge_external_features/{centre}.log",
    benchmark:
        "results/benchmarks/merge_external_features/{centre}.tsv"
    wildcard_constraints:
        centre=centre_constraint(EXTERNAL_CENTERS),


# Seeded image and contour perturbations of the training patients of a training-pool batch
# (robustness.method perturbation or both; npc_radiomics.imaging.perturbation): their
# features, extracted as extract_batch extracts the case, for the ICC across perturbations.
rule perturb_batch:
    input:
        folder=PREPROCESSED_BATCH,
        zscore=zscore_input,
        params=sorted(set(PARAMS_FILES.values())),
        # Which of the batch's patients are training patients (test ones never perturbed).
        split=POOL_SPLIT_TSV,
    output:
        features=PERTURBED_BATCH,
        params=PERTURBED_BATCH_PARAMS,
    log:
        "results/logs/perturb_batch/{centre}/{batch}.log",
    benchmark:
        "results/benchmarks/perturb_batch/{centre}/{batch}.tsv"
    wildcard_constraints:
        centre=centre_constraint(TRAIN_CENTERS),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=batch_resource(1000, 0, 150, "max"),
        runtime=batch_resource(10, 2 * PERTURBATION["n"], 5 * PERTURBATION["n"], "sum"),
    params:
        cases=extract_cases(),
        params_files=PARAMS_FILES,
        normalization=NORMALIZATION,
        crop_margin_mm=config["features"]["crop_margin_mm"],
        settings=PERTURBATION,
        seed=rule_seed("perturbation"),
    script:
        "../scripts/perturb_batch.py"


rule icc:
    input:
        unpack(icc_inputs),
    output:
        icc=ICC_TSV,
        robust=ROBUST_FEATURES,
        histogram=report(
            ICC_HISTOGRAM,
            caption="../report/icc_histogram.rst",
            category="2. Feature selection",
        ),
    log:
        "results/logs/icc/icc.log",
    benchmark:
        "results/benchmarks/icc/icc.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 5),
        runtime=fixed_resource(20),
    params:
        threshold=config["robustness"]["icc_threshold"],
        enabled=config["robustness"]["enabled"],
        reference=config["robustness"].get("reference", "train"),
        method=robustness_method(),
    script:
        "../scripts/icc.py"
