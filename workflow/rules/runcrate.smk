# A Workflow Run RO-Crate of the run (pipeline step 22): results/ro-crate-metadata.json,
# every result file with its checksum linked to the rule that made it, the inputs with
# checksums, the config, the code version and the software versions.
import subprocess

RUN_CRATE = "results/ro-crate-metadata.json"


def _git_commit():
    """The repository's commit (``-dirty`` with uncommitted changes), or None."""
    try:
        git = ["git", "-C", str(BASEDIR)]
        commit = subprocess.run(
            git + ["rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            git + ["status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


GIT_COMMIT = _git_commit()


def run_crate_inputs(wildcards):
    """Every other final target: the crate describes the finished run."""
    return [t for t in get_final_output() if t != RUN_CRATE]


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
