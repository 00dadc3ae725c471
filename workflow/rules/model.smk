# Tuning (one Optuna study per model, optionally split over several worker jobs),
# nested CV (one job per model x outer fold), final fit per model, gathered predictions.


rule tune_model_part:
    input:
        unpack(modelling_inputs),
    output:
        "results/models/{model}/tuning/part{part}.json",
    log:
        "results/logs/tune_model_part/{model}_{part}.log",
    benchmark:
        "results/benchmarks/tune_model_part/{model}_{part}.tsv"
    wildcard_constraints:
        part=r"\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(720),
    params:
        settings=TUNING_SETTINGS,
        search_spaces=lambda wc: {wc.model: config["search_spaces"][wc.model]},
        seed=config["seed"],
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        exclude=[c for c in config["features_table_columns"].values() if c],
        # Shared by the parts of one model; not an output (several jobs write it).
        journal=lambda wc: f"results/models/{wc.model}/tuning/study.journal",
    script:
        "../scripts/tune_model.py"


rule tune_model:
    input:
        expand(
            "results/models/{{model}}/tuning/part{part}.json",
            part=range(N_TUNING_JOBS),
        ),
    output:
        best="results/models/{model}/best_params.json",
        trials="results/models/{model}/trials.tsv",
    log:
        "results/logs/tune_model/{model}.log",
    benchmark:
        "results/benchmarks/tune_model/{model}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        n_trials=TUNING_SETTINGS["n_trials"],
    script:
        "../scripts/tune_gather.py"


rule nested_cv_fold:
    input:
        unpack(modelling_inputs),
    output:
        predictions="results/models/{model}/nested_cv/fold{fold}.tsv",
        params="results/models/{model}/nested_cv/fold{fold}.json",
    log:
        "results/logs/nested_cv_fold/{model}_{fold}.log",
    benchmark:
        "results/benchmarks/nested_cv_fold/{model}_{fold}.tsv"
    wildcard_constraints:
        fold=r"\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(720),
    params:
        settings=TUNING_SETTINGS,
        search_spaces=lambda wc: {wc.model: config["search_spaces"][wc.model]},
        seed=config["seed"],
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        exclude=[c for c in config["features_table_columns"].values() if c],
    script:
        "../scripts/nested_cv.py"


rule fit_final:
    input:
        unpack(modelling_inputs),
        best="results/models/{model}/best_params.json",
    output:
        pipeline="results/models/{model}/pipeline.joblib",
        checksum="results/models/{model}/pipeline.joblib.sha256",
        predictions="results/models/{model}/predictions.tsv",
    log:
        "results/logs/fit_final/{model}.log",
    benchmark:
        "results/benchmarks/fit_final/{model}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(60),
    params:
        settings=TUNING_SETTINGS,
        seed=config["seed"],
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        exclude=[c for c in config["features_table_columns"].values() if c],
    script:
        "../scripts/fit_final.py"


rule gather_predictions:
    input:
        final=expand("results/models/{model}/predictions.tsv", model=config["models"]),
        nested=expand(
            "results/models/{model}/nested_cv/fold{fold}.tsv",
            model=config["models"],
            fold=range(TUNING_SETTINGS["outer_folds"]),
        ),
    output:
        predictions="results/predictions/predictions.tsv",
        nested="results/predictions/nested_cv.tsv",
    log:
        "results/logs/gather_predictions/gather_predictions.log",
    benchmark:
        "results/benchmarks/gather_predictions/gather_predictions.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    script:
        "../scripts/gather_predictions.py"
