# Predict mode (pipeline step 20; config predict.samples and predict.bundle): new patients
# scored with a frozen model bundle. QC, N4 + resampling and pyradiomics run in batches of
# patients as in training, with the bundle's settings, its frozen z-score statistics and
# its params file; the bundle's pipeline only predicts. The bundle and the sheet were
# checked at start-up (common.smk), before any job. Every setting training accepts is
# reproduced from the bundle: DICOM series, RTSTRUCT / SEG masks with the bundle's ROI rules,
# each sequence's preprocessing (preprocessing.per_sequence) and params file
# (features.params_per_sequence), masks.components, the mask label. DICOM masks are
# rasterised inside the QC batch jobs (PREDICT_MASK_PATTERNS), as in training.


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
        # The bundle's mask label and geometry tolerance, and its masks.components.
        qc=lambda wc: {
            **config["qc"],
            "mask_label": predict_setting("mask_label"),
            "geometry_tolerance": predict_setting("geometry_tolerance"),
        },
        masks=lambda wc: {
            **config["masks"],
            "structures": predict_masks_setting("structures"),
            "components": predict_masks_setting("components"),
        },
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
                "n4": predict_sequence_setting("n4")[s],
                "interpolator": predict_sequence_setting("interpolator")[s],
                "crop_margin_mm": predict_sequence_setting("crop_margin_mm")[s],
            }
            for s in SEQUENCES
        },
        spacing_mm=lambda wc: predict_setting("spacing_mm"),
        mask_label=lambda wc: predict_setting("mask_label"),
        components=lambda wc: predict_masks_setting("components"),


use rule extract_batch as predict_extract_batch with:
    input:
        folder=PREDICT_PREPROCESSED_BATCH,
        # The training run's statistics, frozen in the bundle: never refitted here.
        zscore=lambda wc: predict_bundle_file("zscore.tsv"),
        params=lambda wc: sorted(set(predict_params_files().values())),
    output:
        features=PREDICT_BATCH_FEATURES,
        provenance=PREDICT_BATCH_PROVENANCE,
    log:
        "results/logs/predict_extract_batch/{batch}.log",
    benchmark:
        "results/benchmarks/predict_extract_batch/{batch}.tsv"
    params:
        cases=extract_cases(predict_batch_cases),
        params_files=lambda wc: predict_params_files(),
        normalization=lambda wc: predict_sequence_setting("normalization"),
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
