# A Workflow Run RO-Crate of the run (pipeline step 22): results/ro-crate-metadata.json,
# every result file with its checksum linked to the rule that made it, the inputs with
# checksums, the config, the code version and the software versions.
# Constants and input functions: evidence_common.smk.


rule run_crate:
    input:
        run_crate_inputs,
        provenance=f"{REPORT_DIR}/provenance.json",
    output:
        RUN_CRATE,
    log:
        "results/logs/run_crate/run_crate.log",
    benchmark:
        "results/benchmarks/run_crate/run_crate.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(30),
    params:
        # Filled in by the Snakefile once every rule is defined (RULE_OUTPUTS, CODE_VERSIONS).
        rule_outputs=lambda wildcards: RULE_OUTPUTS,
        code_versions=lambda wildcards: CODE_VERSIONS,
        git_commit=GIT_COMMIT,
        snakefile=str(BASEDIR / "Snakefile"),
    script:
        "../scripts/run_crate.py"
