# The model bundle (pipeline step 20): the chosen model's fitted pipeline (skops), its
# preprocessing settings, frozen z-score statistics, pyradiomics params, threshold and a
# manifest with checksums, in one copyable directory; with bundle.models: all, one
# bundle per model too. `predict` (predict.smk) scores new patients with it.
BUNDLE_DIR = "results/bundle"
MODEL_BUNDLE_DIR = "results/bundles/{model}"


def bundle_inputs(wildcards):
    """Inputs of the bundle rules: every final pipeline (the chosen one is only known once
    evaluation ran), the evaluation tables, the split and, for images, the z-score
    statistics, the pyradiomics params and the extraction provenance."""
    inputs = {
        "chosen": CHOSEN_MODEL_JSON,
        "pipelines": expand(PIPELINE, model=config["models"]),
        "checksums": expand(f"{PIPELINE}.sha256", model=config["models"]),
        "thresholds": f"{EVALUATION_DIR}/thresholds.tsv",
        "metrics": f"{EVALUATION_DIR}/metrics.tsv",
        "split": SPLIT_TSV,
    }
    if not FEATURES_IN:
        inputs["zscore"] = ZSCORE_TSV
        inputs["params"] = resource_path(config["features"]["params"])
        inputs["feature_provenance"] = "results/features/provenance.tsv"
    return inputs


def bundle_targets():
    """The bundle directories a training run makes."""
    if config["bundle"]["models"] == "all":
        return [BUNDLE_DIR] + expand(MODEL_BUNDLE_DIR, model=config["models"])
    return [BUNDLE_DIR]


BUNDLE_PARAMS = {
    "models": config["models"],
    "config": config,
    "settings": {
        "input": "features_table" if FEATURES_IN else "images",
        "id_column": MODELLING_ID,
        "sequences": SEQUENCES,
        "outcome": config["outcome"],
        "preprocessing": config["preprocessing"],
        "mask_label": config["qc"]["mask_label"],
        "geometry_tolerance": config["qc"]["geometry_tolerance"],
        "crop_margin_mm": config["features"]["crop_margin_mm"],
    },
}


rule bundle:
    input:
        unpack(bundle_inputs),
    output:
        directory(BUNDLE_DIR),
    log:
        "results/logs/bundle/bundle.log",
    benchmark:
        "results/benchmarks/bundle/bundle.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **BUNDLE_PARAMS,
    script:
        "../scripts/bundle.py"


use rule bundle as bundle_model with:
    output:
        directory(MODEL_BUNDLE_DIR),
    log:
        "results/logs/bundle_model/{model}.log",
    benchmark:
        "results/benchmarks/bundle_model/{model}.tsv"
