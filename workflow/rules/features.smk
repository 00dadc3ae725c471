# Radiomics features (SPEC steps 5-7): pyradiomics per patient x sequence (and per
# reader-2 mask), the merged wide table, and the ICC(2,1) robustness filter.


rule extract_features:
    input:
        image="results/preprocess/{patient}/{sequence}_image.nii.gz",
        mask="results/preprocess/{patient}/{sequence}_mask.nii.gz",
        zscore="results/normalization/zscore.tsv",
        params=resource_path(config["features"]["params"]),
    output:
        features="results/features/cases/{patient}/{sequence}.tsv",
        provenance="results/features/provenance/{patient}/{sequence}.tsv",
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
    script:
        "../scripts/extract_features.py"


use rule extract_features as extract_features_reader2 with:
    input:
        image="results/preprocess/{patient}/{sequence}_image.nii.gz",
        mask="results/preprocess/{patient}/{sequence}_mask_reader2.nii.gz",
        zscore="results/normalization/zscore.tsv",
        params=resource_path(config["features"]["params"]),
    output:
        features="results/features/cases/{patient}/{sequence}_reader2.tsv",
        provenance="results/features/provenance/{patient}/{sequence}_reader2.tsv",
    log:
        "results/logs/extract_features_reader2/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/extract_features_reader2/{patient}/{sequence}.tsv"
    params:
        reader="reader2",
        crop_margin_mm=config["features"]["crop_margin_mm"],


rule merge_features:
    input:
        reader1=lambda wc: expand(
            "results/features/cases/{patient}/{sequence}.tsv",
            patient=included_patients(),
            sequence=SEQUENCES,
        ),
        reader2=lambda wc: [
            f"results/features/cases/{p}/{s}_reader2.tsv" for p, s in reader2_cases()
        ],
        provenance=lambda wc: expand(
            "results/features/provenance/{patient}/{sequence}.tsv",
            patient=included_patients(),
            sequence=SEQUENCES,
        )
        + [
            f"results/features/provenance/{p}/{s}_reader2.tsv"
            for p, s in reader2_cases()
        ],
    output:
        features="results/features/features.parquet",
        features_reader2="results/features/features_reader2.parquet",
        provenance="results/features/provenance.tsv",
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
        features="results/features/features.parquet",
        features_reader2="results/features/features_reader2.parquet",
    output:
        icc="results/features/icc.tsv",
        robust="results/features/robust_features.txt",
        histogram=report(
            "results/features/icc_hist.png",
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
    script:
        "../scripts/icc.py"
