# Radiomics features (pipeline steps 5-7): pyradiomics per patient x sequence (and per
# reader-2 mask), the merged wide table, and the ICC(2,1) robustness filter.


rule extract_features:
    input:
        image=PREPROCESSED_IMAGE,
        mask=PREPROCESSED_MASK,
        # Only for z-scored sequences (a CT in HU needs no statistics, nor the split).
        zscore=zscore_input,
        params=features_params,
    output:
        features=CASE_FEATURES,
        provenance=CASE_PROVENANCE,
    log:
        "results/logs/extract_features/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/extract_features/{patient}/{sequence}.tsv"
    group:
        "feature_cases"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=case_resource(1000, 150),
        runtime=case_resource(10, 5),
    params:
        reader="reader1",
        crop_margin_mm=config["features"]["crop_margin_mm"],
        normalization=sequence_setting("normalization"),
    script:
        "../scripts/extract_features.py"


use rule extract_features as extract_features_reader2 with:
    input:
        image=PREPROCESSED_IMAGE,
        mask=PREPROCESSED_MASK_READER2,
        # Only for z-scored sequences (a CT in HU needs no statistics, nor the split).
        zscore=zscore_input,
        params=features_params,
    output:
        features=CASE_FEATURES_READER2,
        provenance=CASE_PROVENANCE_READER2,
    log:
        "results/logs/extract_features_reader2/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/extract_features_reader2/{patient}/{sequence}.tsv"
    params:
        reader="reader2",
        crop_margin_mm=config["features"]["crop_margin_mm"],
        normalization=sequence_setting("normalization"),


rule merge_features:
    input:
        reader1=lambda wc: case_paths(CASE_FEATURES, included_cases()),
        reader2=lambda wc: case_paths(CASE_FEATURES_READER2, reader2_cases()),
        provenance=lambda wc: case_paths(CASE_PROVENANCE, included_cases())
        + case_paths(CASE_PROVENANCE_READER2, reader2_cases()),
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
    params:
        patients=lambda wc: included_patients(),
    script:
        "../scripts/merge_features.py"


rule icc:
    input:
        features=FEATURES_PARQUET,
        features_reader2=FEATURES_READER2_PARQUET,
        split=SPLIT_TSV,
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
    script:
        "../scripts/icc.py"
