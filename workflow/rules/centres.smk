# Centres (pipeline step 21): per-centre counts and centre-effect diagnostics (every run),
# leave-one-centre-out over the training centres (config validation.leave_one_centre_out:
# one job per held-out centre x model, then one gather).


rule centre_diagnostics:
    input:
        # Training and external patients (the embedding shows both): reruns when a centre
        # is added, as the report does; nothing fitted reads its outputs.
        unpack(all_cohort_inputs),
        selected=f"{SELECTION_DIR}/selected_features.tsv",
    output:
        table=CENTRES_TSV,
        diagnostics=CENTRE_DIAGNOSTICS_TSV,
        pca=report(
            CENTRE_PCA,
            caption="../report/centre_pca.rst",
            category="6. Centres",
        ),
    log:
        "results/logs/centre_diagnostics/centre_diagnostics.log",
    benchmark:
        "results/benchmarks/centre_diagnostics/centre_diagnostics.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(30),
    params:
        **MODELLING_PARAMS,
        centres={
            "combat": config["harmonization"]["combat"],
            "unseen_centre": config["harmonization"]["unseen_centre"],
            "train_centers": TRAIN_CENTERS,
        },
    script:
        "../scripts/centre_diagnostics.py"


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
        centre=centre_constraint(TRAIN_CENTERS),
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
