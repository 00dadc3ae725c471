# The report (pipeline step 19): the provenance record, the selection figures, and the
# standalone HTML summary results/report/index.html. Every figure and table of the
# evaluation, clinical and SHAP rules is tagged with report() and a caption, so
# `snakemake --report results/report.html` works after a run.


rule provenance:
    input:
        provenance_inputs,
    output:
        f"{REPORT_DIR}/provenance.json",
    log:
        "results/logs/provenance/provenance.log",
    benchmark:
        "results/benchmarks/provenance/provenance.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(30),
    params:
        config=config,
        # How each categorical clinical variable is coded (text levels: reference, dummies).
        clinical_coding=lambda wildcards: clinical_coding(),
    script:
        "../scripts/provenance.py"


rule selection_figures:
    input:
        unpack(modelling_inputs),
        lasso_path=f"{SELECTION_DIR}/lasso_path.tsv",
        lasso_cv=f"{SELECTION_DIR}/lasso_cv.tsv",
        lambda_json=f"{SELECTION_DIR}/lasso_lambda.json",
        selected=f"{SELECTION_DIR}/selected_features.tsv",
    output:
        lasso_path=report(
            f"{FIGURES_DIR}/lasso_path.png",
            caption="../report/lasso_path.rst",
            category="2. Feature selection",
        ),
        lasso_cv=report(
            f"{FIGURES_DIR}/lasso_cv.png",
            caption="../report/lasso_cv.rst",
            category="2. Feature selection",
        ),
        correlation=report(
            f"{FIGURES_DIR}/selected_feature_correlation.png",
            caption="../report/selected_feature_correlation.rst",
            category="2. Feature selection",
        ),
    log:
        "results/logs/selection_figures/selection_figures.log",
    benchmark:
        "results/benchmarks/selection_figures/selection_figures.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(15),
    params:
        **sheet_params(),
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        lasso_folds=config["selection"]["lasso"]["cv_folds"],
    script:
        "../scripts/selection_figures.py"


rule standalone_report:
    input:
        unpack(report_inputs),
    output:
        f"{REPORT_DIR}/index.html",
    log:
        "results/logs/standalone_report/standalone_report.log",
    benchmark:
        "results/benchmarks/standalone_report/standalone_report.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(2000),
        runtime=fixed_resource(15),
    params:
        title="npc-radiomics: results",
        positive_label=config["outcome"]["positive_label"],
        negative_label=config["outcome"]["negative_label"],
        features_table=FEATURES_IN,
        entry_p=config["clinical_analysis"]["entry_p"],
        # what the cohort and LOCO texts may claim (npc_radiomics.report.sections.fitted_claims)
        fitted_outside_models={
            "zscore": (
                None
                if FEATURES_IN
                or not any(n["method"] == "zscore" for n in NORMALIZATION.values())
                else config["preprocessing"]["normalization"]["reference"]
            ),
            "icc": (
                None
                if FEATURES_IN or not config["robustness"]["enabled"]
                else config["robustness"]["reference"]
            ),
        },
    script:
        "../scripts/standalone_report.py"
