# The model bundle (pipeline step 20): the chosen model's fitted pipeline (skops), its
# preprocessing settings, frozen z-score statistics, pyradiomics params, threshold and a
# manifest with checksums, in one copyable directory; with bundle.models: all, one
# bundle per model too. `predict` (predict.smk) scores new patients with it.


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
