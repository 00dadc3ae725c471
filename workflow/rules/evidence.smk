# Is there anything to show? (pipeline step 22): events per candidate variable, Riley et
# al.'s minimum sample size, the headline (the procedure's nested-CV AUC, model chosen in
# each outer fold, with its 95% CI), the permutation p-value of the same statistic and its
# floor 1/(n+1), and a plain verdict for the report's first screen.
# Constants and input functions: evidence_common.smk.


rule evidence:
    input:
        unpack(evidence_inputs),
    output:
        EVIDENCE_JSON,
    log:
        "results/logs/evidence/evidence.log",
    benchmark:
        "results/benchmarks/evidence/evidence.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1500),
        runtime=fixed_resource(10),
    params:
        **MODELLING_PARAMS,
        anticipated_auc=config["evidence"]["anticipated_auc"],
        alpha=config["evidence"]["alpha"],
    script:
        "../scripts/evidence.py"
