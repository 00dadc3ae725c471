# Predict mode (pipeline step 20; config predict.samples and predict.bundle): new patients
# scored with a frozen model bundle. QC, N4 + resampling and pyradiomics run in batches of
# patients as in training, with the bundle's settings, its frozen z-score statistics and
# its params file; the bundle's pipeline only predicts. The bundle and the sheet were
# checked at start-up (common.smk), before any job.


use rule qc_batch as predict_qc_batch with:
    input:
        images=batch_files("image", cases_of=predict_batch_cases),
        masks=batch_files("mask", cases_of=predict_batch_cases),
    output:
        PREDICT_QC_BATCH,
    log:
        "results/logs/predict_qc_batch/{batch}.log",
    benchmark:
        "results/benchmarks/predict_qc_batch/{batch}.tsv"
    params:
        cases=qc_cases(predict_batch_cases, PREDICT_MASK_PATTERNS),
        on_fail=config["qc"]["on_fail"],
        qc=config["qc"],
        masks=config["masks"],
        sequences=SEQUENCES,


rule predict_qc:
    input:
        [PREDICT_QC_BATCH.format(batch=b) for _, b in PREDICT_BATCHES],
    output:
        PREDICT_QC_TSV,
    log:
        "results/logs/predict_qc/predict_qc.log",
    benchmark:
        "results/benchmarks/predict_qc/predict_qc.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        sequences=SEQUENCES,
    script:
        "../scripts/qc.py"


use rule preprocess_batch as predict_preprocess_batch with:
    input:
        qc=PREDICT_QC_BATCH,
        images=batch_files("image", cases_of=predict_batch_cases),
        masks=batch_files("mask", cases_of=predict_batch_cases),
    output:
        folder=directory(PREDICT_PREPROCESSED_BATCH),
        moments=PREDICT_BATCH_MOMENTS,
    log:
        "results/logs/predict_preprocess_batch/{batch}.log",
    benchmark:
        "results/benchmarks/predict_preprocess_batch/{batch}.tsv"
    params:
        cases=preprocess_cases(predict_batch_cases, PREDICT_MASK_PATTERNS),
        settings=lambda wc: {
            s: {
                "n4": predict_setting("n4"),
                "interpolator": "bspline",
                # The bundle's extraction settings: the whole field of view.
                "crop_margin_mm": None,
            }
            for s in SEQUENCES
        },
        spacing_mm=lambda wc: predict_setting("spacing_mm"),
        mask_label=config["qc"]["mask_label"],
        # Not in the bundle: the predict run's config (keep the training run's value).
        components=config["masks"]["components"],


use rule extract_batch as predict_extract_batch with:
    input:
        folder=PREDICT_PREPROCESSED_BATCH,
        # The training run's statistics, frozen in the bundle: never refitted here.
        zscore=lambda wc: predict_bundle_file("zscore.tsv"),
        params=lambda wc: predict_bundle_file("pyradiomics_params.yaml"),
    output:
        features=PREDICT_BATCH_FEATURES,
        provenance=PREDICT_BATCH_PROVENANCE,
    log:
        "results/logs/predict_extract_batch/{batch}.log",
    benchmark:
        "results/benchmarks/predict_extract_batch/{batch}.tsv"
    params:
        cases=extract_cases(predict_batch_cases),
        params_files=lambda wc: {
            s: predict_bundle_file("pyradiomics_params.yaml") for s in SEQUENCES
        },
        normalization=lambda wc: {s: {"method": "zscore"} for s in SEQUENCES},
        crop_margin_mm=lambda wc: predict_setting("crop_margin_mm"),


rule predict:
    input:
        features=[PREDICT_BATCH_FEATURES.format(batch=b) for _, b in PREDICT_BATCHES],
        provenance=[
            PREDICT_BATCH_PROVENANCE.format(batch=b) for _, b in PREDICT_BATCHES
        ],
        qc=PREDICT_QC_TSV,
        bundle=lambda wc: predict_bundle_file("manifest.json"),
        pipeline=lambda wc: predict_bundle_file("pipeline.skops"),
    output:
        **predict_outputs(),
    log:
        "results/logs/predict/predict.log",
    benchmark:
        "results/benchmarks/predict/predict.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        outcomes=lambda wc: PREDICT_SETUP.outcomes if PREDICT else None,
        allow_extractor_mismatch=config["predict"]["allow_extractor_mismatch"],
        ci_method=config["evaluation"]["ci_method"],
        n_bootstrap=config["evaluation"]["n_bootstrap"],
        calibration_bins=config["evaluation"]["calibration_bins"],
        dca_thresholds=config["evaluation"]["dca_thresholds"],
        seed=rule_seed("evaluation"),
    script:
        "../scripts/predict.py"
