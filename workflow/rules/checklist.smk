# Reporting checklist (pipeline step 22): TRIPOD+AI, CLEAR and METRICS items filled from
# this run's result files, each linked to its report section; the rest marked for the user.
# Constants and input functions: evidence_common.smk.


rule checklist:
    input:
        unpack(checklist_inputs),
    output:
        CHECKLIST_TSV,
    log:
        "results/logs/checklist/checklist.log",
    benchmark:
        "results/benchmarks/checklist/checklist.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    script:
        "../scripts/checklist.py"
