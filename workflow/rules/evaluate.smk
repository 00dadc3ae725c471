# Evaluation (pipeline steps 15, 17, 18): Table 3 with thresholds fixed on the training
# set on each final model's scale, ROC / PR / calibration curves, decision curves, the chosen
# model (best nested-CV AUC) and its SHAP explanation.


# The chosen model (best nested-CV AUC) from training data only: it stays put when an
# external centre is added, and so does everything that reads it (SHAP, permutation runs,
# LOCO...).
rule choose_model:
    input:
        nested=expand(
            NESTED_FOLD,
            model=config["models"],
            fold=range(TUNING_SETTINGS["outer_folds"]),
        ),
        final=expand(MODEL_PREDICTIONS, model=config["models"]),
        fold_params=expand(
            NESTED_FOLD_PARAMS,
            model=config["models"],
            fold=range(TUNING_SETTINGS["outer_folds"]),
        ),
    output:
        CHOSEN_MODEL_JSON,
    log:
        "results/logs/choose_model/choose_model.log",
    benchmark:
        "results/benchmarks/choose_model/choose_model.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        models=config["models"],
        outer_folds=TUNING_SETTINGS["outer_folds"],
    script:
        "../scripts/choose_model.py"


rule evaluate:
    input:
        predictions=PREDICTIONS_TSV,
        nested=NESTED_CV_TSV,
        chosen=CHOSEN_MODEL_JSON,
        thresholds=expand(MODEL_THRESHOLD, model=config["models"]),
        fold_params=expand(
            NESTED_FOLD_PARAMS,
            model=config["models"],
            fold=range(TUNING_SETTINGS["outer_folds"]),
        ),
    output:
        metrics=report(
            f"{EVALUATION_DIR}/metrics.tsv",
            caption="../report/metrics.rst",
            category="3. Model performance",
        ),
        thresholds=f"{EVALUATION_DIR}/thresholds.tsv",
        roc=f"{EVALUATION_DIR}/roc_curves.tsv",
        pr=f"{EVALUATION_DIR}/pr_curves.tsv",
        calibration=f"{EVALUATION_DIR}/calibration_curves.tsv",
        calibration_smooth=f"{EVALUATION_DIR}/calibration_smooth.tsv",
        roc_figure=report(
            f"{FIGURES_DIR}/roc_curves.png",
            caption="../report/roc_curves.rst",
            category="3. Model performance",
        ),
        pr_figure=report(
            f"{FIGURES_DIR}/pr_curves.png",
            caption="../report/pr_curves.rst",
            category="3. Model performance",
        ),
        calibration_figure=report(
            f"{FIGURES_DIR}/calibration_curves.png",
            caption="../report/calibration_curves.rst",
            category="3. Model performance",
        ),
    log:
        "results/logs/evaluate/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate/evaluate.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 5),
        runtime=fixed_resource(30),
    params:
        models=config["models"],
        ci_method=config["evaluation"]["ci_method"],
        n_bootstrap=config["evaluation"]["n_bootstrap"],
        calibration_bins=config["evaluation"]["calibration_bins"],
        seed=rule_seed("evaluation"),
        threshold_method=config["evaluation"]["threshold"],
        outer_folds=TUNING_SETTINGS["outer_folds"],
    script:
        "../scripts/evaluate.py"


rule decision_curves:
    input:
        unpack(decision_curve_inputs),
    output:
        curves=f"{EVALUATION_DIR}/dca_curves.tsv",
        ci=f"{EVALUATION_DIR}/net_benefit_ci.tsv",
        difference=f"{EVALUATION_DIR}/net_benefit_difference.tsv",
        ranges=report(
            f"{EVALUATION_DIR}/dca_ranges.tsv",
            caption="../report/dca_ranges.rst",
            category="4. Decision curves",
        ),
        figure=report(
            f"{FIGURES_DIR}/decision_curves.png",
            caption="../report/decision_curves.rst",
            category="4. Decision curves",
        ),
    log:
        "results/logs/decision_curves/decision_curves.log",
    benchmark:
        "results/benchmarks/decision_curves/decision_curves.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(15),
    params:
        thresholds=config["evaluation"]["dca_thresholds"],
        ci_thresholds=config["evaluation"]["net_benefit_ci_thresholds"],
        n_bootstrap=config["evaluation"]["n_bootstrap"],
        seed=rule_seed("evaluation"),
    script:
        "../scripts/decision_curves.py"


rule shap_analysis:
    input:
        unpack(modelling_inputs),
        chosen=CHOSEN_MODEL_JSON,
        # Every final pipeline: all exist once predictions.tsv does, and depending on
        # them all avoids a checkpoint just to learn which one was chosen.
        pipelines=expand(PIPELINE, model=config["models"]),
        checksums=expand(f"{PIPELINE}.sha256", model=config["models"]),
    output:
        summary=f"{SHAP_DIR}/shap.json",
        values=f"{SHAP_DIR}/shap_values.tsv",
        importance=report(
            f"{SHAP_DIR}/shap_importance.tsv",
            caption="../report/shap_importance.rst",
            category="5. SHAP",
        ),
        beeswarm=report(
            f"{FIGURES_DIR}/shap_beeswarm.png",
            caption="../report/shap_beeswarm.rst",
            category="5. SHAP",
        ),
        bar=report(
            f"{FIGURES_DIR}/shap_bar.png",
            caption="../report/shap_bar.rst",
            category="5. SHAP",
        ),
    log:
        "results/logs/shap_analysis/shap_analysis.log",
    benchmark:
        "results/benchmarks/shap_analysis/shap_analysis.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1500, 10),
        runtime=fixed_resource(60),
    params:
        **COMBAT_DESIGN_PARAMS,
        **sheet_params(),
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        # The model of each pipeline in input.pipelines, in the same order.
        models=config["models"],
        seed=rule_seed("shap"),
    script:
        "../scripts/shap_analysis.py"


# Subgroups (pipeline step 15): the chosen model's AUC and calibration-in-the-large per
# level of evaluation.subgroups (continuous variables cut at the training median) and per
# centre, per cohort; descriptive, never used to choose.
rule subgroups:
    input:
        unpack(subgroup_inputs),
    output:
        report(
            f"{EVALUATION_DIR}/subgroups.tsv",
            caption="../report/subgroups.rst",
            category="3. Model performance",
        ),
    log:
        "results/logs/subgroups/subgroups.log",
    benchmark:
        "results/benchmarks/subgroups/subgroups.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(15),
    params:
        **sheet_params(),
        variables=config["evaluation"]["subgroups"],
        outcome=OUTCOME,
        continuous=config["clinical_variables"]["continuous"],
        categorical=config["clinical_variables"]["categorical"],
        ci_method=config["evaluation"]["ci_method"],
        n_bootstrap=config["evaluation"]["n_bootstrap"],
        seed=rule_seed("evaluation"),
    script:
        "../scripts/subgroups.py"
