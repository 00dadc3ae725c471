# Selection stability (pipeline step 22): the selection refitted on stability.n_bootstrap
# bootstrap resamples of the training set and on the whole training set; how often each
# feature survived mRMR and LASSO, and the mean pairwise Jaccard index of the selected sets.
# Constants and input functions: evidence_common.smk.


rule selection_stability:
    input:
        unpack(modelling_inputs),
    output:
        sets=f"{STABILITY_DIR}/selected_sets.tsv",
        frequency=f"{STABILITY_DIR}/selection_frequency.tsv",
        jaccard=f"{STABILITY_DIR}/jaccard.tsv",
        figure=f"{FIGURES_DIR}/selection_frequency.png",
    log:
        "results/logs/selection_stability/selection_stability.log",
    benchmark:
        "results/benchmarks/selection_stability/selection_stability.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(120 + 5 * config["stability"]["n_bootstrap"]),
    params:
        **MODELLING_PARAMS,
        n_bootstrap=config["stability"]["n_bootstrap"],
    script:
        "../scripts/selection_stability.py"
