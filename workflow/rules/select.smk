# Feature selection fitted on the whole training set (impute, variance filter, scaler,
# mRMR, LASSO-CV): the tables behind the report's selection figures. The same selection
# is refitted inside every CV fold by the model rules, so it never sees held-out rows.


rule select_features:
    input:
        unpack(modelling_inputs),
    output:
        mrmr_ranking=f"{SELECTION_DIR}/mrmr_ranking.tsv",
        lasso_cv=f"{SELECTION_DIR}/lasso_cv.tsv",
        lasso_path=f"{SELECTION_DIR}/lasso_path.tsv",
        selected=f"{SELECTION_DIR}/selected_features.tsv",
        lambda_json=f"{SELECTION_DIR}/lasso_lambda.json",
        non_finite=NON_FINITE_TSV,
        non_finite_patients=f"{SELECTION_DIR}/non_finite_patients.tsv",
    log:
        "results/logs/select_features/select_features.log",
    benchmark:
        "results/benchmarks/select_features/select_features.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=table_resource(1000, 10),
        runtime=fixed_resource(30),
    params:
        **MODELLING_PARAMS,
    script:
        "../scripts/select_features.py"
