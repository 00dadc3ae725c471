# Leave-one-centre-out over the training centres (pipeline step 21, config
# validation.leave_one_centre_out): one job per held-out centre x model, then one gather.


rule loco_fold:
    input:
        unpack(modelling_inputs),
    output:
        predictions=LOCO_FOLD,
        info=LOCO_FOLD_INFO,
    log:
        "results/logs/loco_fold/{centre}_{model}.log",
    benchmark:
        "results/benchmarks/loco_fold/{centre}_{model}.tsv"
    wildcard_constraints:
        centre="|".join(TRAIN_CENTERS),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(720),
    params:
        **MODELLING_PARAMS,
        search_spaces=lambda wc: {wc.model: config["search_spaces"][wc.model]},
    script:
        "../scripts/loco_fold.py"


rule loco:
    input:
        predictions=expand(LOCO_FOLD, centre=TRAIN_CENTERS, model=config["models"]),
        infos=expand(LOCO_FOLD_INFO, centre=TRAIN_CENTERS, model=config["models"]),
        chosen=CHOSEN_MODEL_JSON,
    output:
        table=LOCO_TSV,
        predictions=f"{LOCO_DIR}/predictions.tsv",
        forest=report(
            LOCO_FOREST,
            caption="../report/loco_forest.rst",
            category="6. Centres",
        ),
    log:
        "results/logs/loco/loco.log",
    benchmark:
        "results/benchmarks/loco/loco.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(15),
    script:
        "../scripts/loco.py"
