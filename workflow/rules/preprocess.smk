# Imaging preprocessing (pipeline steps 2-4): N4 + 1 mm resampling per patient x sequence,
# then the pooled z-score statistics of the reference patients' tumours per sequence.

from types import SimpleNamespace

from npc_radiomics.features import load_params as _load_radiomics_params
from npc_radiomics.preprocess import crop_margin_setting as _crop_margin_setting


def _crop_margins():
    """preprocessing.crop_margin_mm in mm (None: no crop) per sequence (its params file),
    at start-up, so a margin below features.crop_margin_mm stops the run before any job.
    """
    if PREDICT or FEATURES_IN:
        # predict_preprocess_case inherits these params; its extraction follows the bundle's
        # settings, not this run's, so predict mode keeps the whole field of view.
        return {sequence: None for sequence in SEQUENCES}
    try:
        return {
            sequence: _crop_margin_setting(
                config["preprocessing"].get("crop_margin_mm"),
                _load_radiomics_params(
                    features_params(SimpleNamespace(sequence=sequence))
                ),
                config["preprocessing"]["resample"]["spacing_mm"],
                config["features"]["crop_margin_mm"],
            )
            for sequence in SEQUENCES
        }
    except InputError as err:
        _stop(err)


CROP_MARGIN_MM = _crop_margins()


def _crop_reader2_mask(wildcards):
    """With a crop, the reader-2 mask (if any) must lie inside the box too."""
    if CROP_MARGIN_MM[wildcards.sequence] is None:
        return []
    return get_mask_reader2(wildcards)


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
        # The reference patients' tumour moments (written by preprocess_case, so this
        # gather reads a few numbers per case, not the images): the training pool's
        # (reference train: an external centre never reaches it) or every centre's (all).
        moments=lambda wc: case_paths(TUMOUR_MOMENTS, zscore_cases()),
        split=ZSCORE_SPLIT,
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
        cases=lambda wc: zscore_cases(),
        sequences=SEQUENCES,
        reference=config["preprocessing"]["normalization"]["reference"],
    script:
        "../scripts/zscore_params.py"
