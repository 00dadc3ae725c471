# Clinical baseline (pipeline step 16): Table 1, Table 2, the stepwise multivariable model,
# biomarker and clinical-model AUCs, DeLong tests of the chosen radiomics model against
# each. Only with a clinical table (not when modelling starts from a ready feature table).
if CLINICAL_TSV is not None:

    rule clinical_analysis:
        input:
            clinical=CLINICAL_TSV,
            split=SPLIT_TSV,
            predictions=PREDICTIONS_TSV,
            nested=NESTED_CV_TSV,
            chosen=CHOSEN_MODEL_JSON,
        output:
            table1=report(
                f"{CLINICAL_DIR}/table1.tsv",
                caption="../report/table1.rst",
                category="1. Clinical baseline",
            ),
            table2=report(
                f"{CLINICAL_DIR}/table2.tsv",
                caption="../report/table2.rst",
                category="1. Clinical baseline",
            ),
            stepwise_steps=f"{CLINICAL_DIR}/stepwise_steps.tsv",
            multivariable=report(
                f"{CLINICAL_DIR}/multivariable_model.tsv",
                caption="../report/multivariable_model.rst",
                category="1. Clinical baseline",
            ),
            model=f"{CLINICAL_DIR}/clinical_model.json",
            predictions=f"{CLINICAL_DIR}/clinical_predictions.tsv",
            biomarker_aucs=report(
                f"{CLINICAL_DIR}/biomarker_aucs.tsv",
                caption="../report/biomarker_aucs.rst",
                category="1. Clinical baseline",
            ),
            delong_tests=report(
                f"{CLINICAL_DIR}/delong_tests.tsv",
                caption="../report/delong_tests.rst",
                category="1. Clinical baseline",
            ),
        log:
            "results/logs/clinical_analysis/clinical_analysis.log",
        benchmark:
            "results/benchmarks/clinical_analysis/clinical_analysis.tsv"
        conda:
            "../../envs/report.yaml"
        threads: 1
        resources:
            mem_mb=fixed_resource(1000),
            runtime=fixed_resource(15),
        params:
            **sheet_params(),
            outcome=OUTCOME,
            continuous=config["clinical_variables"]["continuous"],
            categorical=config["clinical_variables"]["categorical"],
            biomarkers=config["evaluation"]["biomarkers"],
            entry_p=config["clinical_analysis"]["entry_p"],
            stay_p=config["clinical_analysis"]["stay_p"],
            seed=rule_seed("clinical"),
            cv_folds=TUNING_SETTINGS["outer_folds"],
        script:
            "../scripts/clinical_analysis.py"
