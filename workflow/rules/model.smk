# Tuning (one Optuna study per model, optionally split over several worker jobs),
# nested CV (one job per model x outer fold), final fit per model on the training pool,
# each external centre scored by the final pipelines, gathered predictions.

from npc_radiomics.modelling.settings import model_threads

OUTER_CONTEXTS = [f"outer{k}" for k in range(TUNING_SETTINGS["outer_folds"])]


rule cv_selection:
    input:
        unpack(modelling_inputs),
    output:
        CV_SELECTION,
    log:
        "results/logs/cv_selection/{context}.log",
    benchmark:
        "results/benchmarks/cv_selection/{context}.tsv"
    wildcard_constraints:
        context=r"full|outer\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(60),
    params:
        **MODELLING_PARAMS,
    script:
        "../scripts/cv_selection.py"


rule tune_model_part:
    input:
        unpack(modelling_inputs),
        selection=CV_SELECTION.format(context="full"),
    output:
        TUNING_PART,
    log:
        "results/logs/tune_model_part/{model}_{part}.log",
    benchmark:
        "results/benchmarks/tune_model_part/{model}_{part}.tsv"
    wildcard_constraints:
        part=r"\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: lambda wc: model_threads(config, wc.model)
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(720),
    params:
        **MODELLING_PARAMS,
        search_spaces=lambda wc: {wc.model: config["search_spaces"][wc.model]},
        # Shared by the parts of one model; not an output (several jobs write it).
        journal=lambda wc: f"{MODEL_DIR.format(model=wc.model)}/tuning/study.journal",
    script:
        "../scripts/tune_model_part.py"


rule tune_model:
    input:
        expand(TUNING_PART, model="{model}", part=range(N_TUNING_JOBS)),
    output:
        best=BEST_PARAMS,
        trials=f"{MODEL_DIR}/trials.tsv",
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
        "../scripts/tune_model.py"


rule nested_cv_fold:
    input:
        unpack(modelling_inputs),
        selection=lambda wc: CV_SELECTION.format(context=f"outer{wc.fold}"),
    output:
        predictions=NESTED_FOLD,
        params=NESTED_FOLD_PARAMS,
    log:
        "results/logs/nested_cv_fold/{model}_{fold}.log",
    benchmark:
        "results/benchmarks/nested_cv_fold/{model}_{fold}.tsv"
    wildcard_constraints:
        fold=r"\d+",
    conda:
        "../../envs/modelling.yaml"
    threads: lambda wc: model_threads(config, wc.model)
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(720),
    params:
        **MODELLING_PARAMS,
        search_spaces=lambda wc: {wc.model: config["search_spaces"][wc.model]},
    script:
        "../scripts/nested_cv_fold.py"


rule fit_final:
    input:
        unpack(modelling_inputs),
        best=BEST_PARAMS,
        selection=expand(CV_SELECTION, context=["full", *OUTER_CONTEXTS]),
    output:
        pipeline=PIPELINE,
        checksum=f"{PIPELINE}.sha256",
        predictions=MODEL_PREDICTIONS,
        threshold=MODEL_THRESHOLD,
    log:
        "results/logs/fit_final/{model}.log",
    benchmark:
        "results/benchmarks/fit_final/{model}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: lambda wc: model_threads(config, wc.model)
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(60),
    params:
        **MODELLING_PARAMS,
    script:
        "../scripts/fit_final.py"


# Every final pipeline scores one external centre: its own job, so a new centre adds jobs
# and changes no file of the training pool.
rule predict_external:
    input:
        unpack(predict_external_inputs),
    output:
        EXTERNAL_PREDICTIONS,
    log:
        "results/logs/predict_external/{centre}.log",
    benchmark:
        "results/benchmarks/predict_external/{centre}.tsv"
    wildcard_constraints:
        centre=centre_constraint(EXTERNAL_CENTERS),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(30),
    params:
        **MODELLING_PARAMS,
        # The model of each pipeline in input.pipelines, in the same order.
        models=config["models"],
    script:
        "../scripts/predict_external.py"


rule gather_predictions:
    input:
        final=expand(MODEL_PREDICTIONS, model=config["models"]),
        external=expand(EXTERNAL_PREDICTIONS, centre=EXTERNAL_CENTERS),
        nested=expand(
            NESTED_FOLD,
            model=config["models"],
            fold=range(TUNING_SETTINGS["outer_folds"]),
        ),
    output:
        predictions=PREDICTIONS_TSV,
        nested=NESTED_CV_TSV,
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
