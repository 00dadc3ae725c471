# Imaging preprocessing (pipeline steps 2-4): N4 + 1 mm resampling of every included case of
# a batch, then the pooled z-score statistics of the reference patients' tumours per
# sequence.


rule preprocess_batch:
    input:
        # The batch's QC table: which of its patients are included.
        qc=QC_BATCH,
        # The sheet's files (a DICOM mask: QC wrote the label mask this job reads).
        images=batch_files("image"),
        masks=batch_files("mask"),
        masks_reader2=batch_files("mask_reader2"),
    output:
        folder=directory(PREPROCESSED_BATCH),
        moments=BATCH_MOMENTS,
    log:
        "results/logs/preprocess_batch/{centre}/{batch}.log",
    benchmark:
        "results/benchmarks/preprocess_batch/{centre}/{batch}.tsv"
    wildcard_constraints:
        centre=centre_constraint(CENTRES),
    conda:
        "../../envs/imaging.yaml"
    threads: THREADS_PER_JOB
    resources:
        mem_mb=batch_resource(500, 0, 150, "max", per_worker=500),
        runtime=batch_resource(10, 1, 5, "sum"),
    params:
        cases=preprocess_cases(),
        # Each sequence's settings (preprocessing.per_sequence over the global ones) and
        # ROI box margin.
        settings=PREPROCESS_SETTINGS,
        spacing_mm=config["preprocessing"]["resample"]["spacing_mm"],
        mask_label=config["qc"]["mask_label"],
        components=config["masks"]["components"],
    script:
        "../scripts/preprocess_batch.py"


rule zscore_params:
    input:
        # The reference patients' batches' tumour moments (a few numbers per case, not the
        # images): the training pool's (reference train: an external centre never reaches
        # it) or every centre's (all, the paper's variant).
        moments=batch_paths(
            BATCH_MOMENTS, CENTRES if zscore_reference_all() else TRAIN_CENTERS
        ),
        split=SPLIT_TSV if zscore_reference_all() else POOL_SPLIT_TSV,
    output:
        ZSCORE_TSV,
    log:
        "results/logs/zscore_params/zscore_params.log",
    benchmark:
        "results/benchmarks/zscore_params/zscore_params.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        sequences=SEQUENCES,
        reference=config["preprocessing"]["normalization"]["reference"],
    script:
        "../scripts/zscore_params.py"
