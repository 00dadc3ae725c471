# Imaging preprocessing (pipeline steps 2-4): N4 + 1 mm resampling per patient x sequence,
# then the pooled z-score statistics of the reference patients' tumours per sequence.


rule preprocess_case:
    input:
        image=get_image,
        mask=get_mask,
        mask_reader2=_crop_reader2_mask,
    output:
        image=PREPROCESSED_IMAGE,
        mask=PREPROCESSED_MASK,
        moments=TUMOUR_MOMENTS,
    log:
        "results/logs/preprocess_case/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/preprocess_case/{patient}/{sequence}.tsv"
    group:
        "preprocess_cases"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=case_resource(1000, 150),
        runtime=case_resource(10, 5),
    params:
        # The sequence's settings (preprocessing.per_sequence over the global ones).
        n4=sequence_setting("n4"),
        interpolator=sequence_setting("interpolator"),
        spacing_mm=config["preprocessing"]["resample"]["spacing_mm"],
        mask_label=config["qc"]["mask_label"],
        components=config["masks"]["components"],
        # The box of the tumour (and reader-2 mask) + this margin is resampled and kept.
        crop_margin_mm=lambda wc: CROP_MARGIN_MM[wc.sequence],
    script:
        "../scripts/preprocess_case.py"


# The reader-2 mask goes onto the grid of the preprocessed image: no second N4 run.
rule preprocess_mask_reader2:
    input:
        mask=lambda wc: get_mask_reader2(wc)[0],
        reference=PREPROCESSED_IMAGE,
    output:
        mask=PREPROCESSED_MASK_READER2,
    log:
        "results/logs/preprocess_mask_reader2/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/preprocess_mask_reader2/{patient}/{sequence}.tsv"
    group:
        "preprocess_cases"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=case_resource(600, 50),
        runtime=case_resource(5, 1),
    params:
        spacing_mm=config["preprocessing"]["resample"]["spacing_mm"],
        mask_label=config["qc"]["mask_label"],
        components=config["masks"]["components"],
    script:
        "../scripts/preprocess_mask_reader2.py"


rule zscore_params:
    input:
        # Every included patient's tumour moments (written by preprocess_case, so this
        # gather reads a few numbers per case, not the images); the script keeps the
        # reference patients (train or all) from the split table.
        moments=lambda wc: case_paths(TUMOUR_MOMENTS, included_cases()),
        split=SPLIT_TSV,
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
        # The (patient, sequence) of each moments file, in the same order.
        cases=lambda wc: included_cases(),
        sequences=SEQUENCES,
        reference=config["preprocessing"]["normalization"]["reference"],
    script:
        "../scripts/zscore_params.py"
