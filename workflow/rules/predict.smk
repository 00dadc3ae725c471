# Predict mode (pipeline step 20; config predict.samples and predict.bundle): new patients
# scored with a frozen model bundle. Per patient x sequence QC, N4 + resampling and
# pyradiomics fan out as in training, with the bundle's settings, its frozen z-score
# statistics and its params file; the bundle's pipeline only predicts. The bundle and the
# sheet were checked at start-up (common.smk), before any job.


use rule qc_case as predict_qc_case with:
    input:
        image=lambda wc: _predict_case(wc)["image"],
        mask=lambda wc: _predict_case(wc)["mask"],
        mask_reader2=[],
    output:
        PREDICT_QC_CASE,
    log:
        "results/logs/predict_qc_case/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/predict_qc_case/{patient}/{sequence}.tsv"
    params:
        center=lambda wc: _predict_case(wc)["center"],
        on_fail=config["qc"]["on_fail"],
        qc=config["qc"],
        masks=config["masks"],


checkpoint predict_qc:
    input:
        lambda wc: [
            PREDICT_QC_CASE.format(patient=p, sequence=s)
            for p, s in zip(
                PREDICT_SETUP.samples["patient_id"], PREDICT_SETUP.samples["sequence"]
            )
        ],
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


use rule preprocess_case as predict_preprocess_case with:
    input:
        image=lambda wc: _predict_case(wc)["image"],
        mask=lambda wc: _predict_case(wc)["mask"],
    output:
        image=PREDICT_IMAGE,
        mask=PREDICT_MASK,
        moments=f"{PREDICT_DIR}/preprocess/{{patient}}/{{sequence}}_moments.json",
    log:
        "results/logs/predict_preprocess_case/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/predict_preprocess_case/{patient}/{sequence}.tsv"
    params:
        n4=lambda wc: predict_setting("n4"),
        spacing_mm=lambda wc: predict_setting("spacing_mm"),
        mask_label=config["qc"]["mask_label"],
        # Not in the bundle: the predict run's config (keep the training run's value).
        components=config["masks"]["components"],


use rule extract_features as predict_extract_features with:
    input:
        image=PREDICT_IMAGE,
        mask=PREDICT_MASK,
        # The training run's statistics, frozen in the bundle: never refitted here.
        zscore=lambda wc: predict_bundle_file("zscore.tsv"),
        params=lambda wc: predict_bundle_file("pyradiomics_params.yaml"),
    output:
        features=PREDICT_CASE_FEATURES,
        provenance=PREDICT_CASE_PROVENANCE,
    log:
        "results/logs/predict_extract_features/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/predict_extract_features/{patient}/{sequence}.tsv"
    params:
        reader="reader1",
        crop_margin_mm=lambda wc: predict_setting("crop_margin_mm"),


rule predict:
    input:
        features=lambda wc: case_paths(PREDICT_CASE_FEATURES, predict_included_cases()),
        provenance=lambda wc: case_paths(
            PREDICT_CASE_PROVENANCE, predict_included_cases()
        ),
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
