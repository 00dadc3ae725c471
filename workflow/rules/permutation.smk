# Negative control (pipeline step 22): the whole procedure (selection, tuning and nested CV
# of every configured model, the model chosen inside each outer fold) rerun on permuted
# training labels, one job per permutation; the null distribution of the procedure's
# nested-CV AUC (the headline) and the permutation p-value of the real one.
# Constants and input functions: evidence_common.smk.


rule permutation_run:
    input:
        unpack(modelling_inputs),
    output:
        PERMUTATION_RUN,
    log:
        "results/logs/permutation_run/{perm}.log",
    benchmark:
        "results/benchmarks/permutation_run/{perm}.tsv"
    wildcard_constraints:
        perm=r"\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: max(model_threads(config, m) for m in config["models"])
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(1440),  # every model: ~0.8 CPU h estimated at the paper preset
    params:
        **MODELLING_PARAMS,
        models=config["models"],
        search_spaces={m: config["search_spaces"][m] for m in config["models"]},
    script:
        "../scripts/permutation_run.py"


rule permutation_test:
    input:
        runs=expand(
            PERMUTATION_RUN,
            perm=range(config["permutation"]["n"]),
        ),
        metrics=f"{EVALUATION_DIR}/metrics.tsv",
    output:
        null=f"{PERMUTATION_DIR}/null.tsv",
        summary=f"{PERMUTATION_DIR}/permutation.tsv",
        figure=f"{FIGURES_DIR}/permutation_null.png",
    log:
        "results/logs/permutation_test/permutation_test.log",
    benchmark:
        "results/benchmarks/permutation_test/permutation_test.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    script:
        "../scripts/permutation_test.py"
