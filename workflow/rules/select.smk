# Feature selection fitted on the whole training set (impute, variance filter, scaler,
# mRMR, LASSO-CV): the tables behind the report's selection figures. The same selection
# is refitted inside every CV fold by the model rules, so it never sees held-out rows.


rule select_features:
    input:
        unpack(modelling_inputs),
    output:
        mrmr_ranking="results/selection/mrmr_ranking.tsv",
        lasso_cv="results/selection/lasso_cv.tsv",
        lasso_path="results/selection/lasso_path.tsv",
        selected="results/selection/selected_features.tsv",
        lambda_json="results/selection/lasso_lambda.json",
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
        settings=TUNING_SETTINGS,
        seed=config["seed"],
        id_column=MODELLING_ID,
        outcome=OUTCOME,
        exclude=[c for c in config["features_table_columns"].values() if c],
    script:
        "../scripts/select_features.py"
