# npc-radiomics: multimodal MRI radiomics for short-term response prediction in NPC.
# Usage: snakemake --profile profiles/local   (or profiles/slurm on a cluster)
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

# The version the scheduler work-around (npc_radiomics/glue/snakemake_fixes.py) was checked on.
min_version("9.27.1")

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from npc_radiomics.base.config import with_defaults

# Configuration, lowest precedence first (the one place that decides it):
#   1. the repository's config/config.yaml: every default, whatever the working directory;
#   2. config/config.yaml in the working directory, when there is one;
#   3. each --configfile, in the order given;
#   4. --config key=value on the command line.
# Snakemake merges 2-4 into `config`; with_defaults puts them over 1, key by key.
if os.path.exists("config/config.yaml"):

    configfile: "config/config.yaml"


with_defaults(config, Path(workflow.basedir) / "config" / "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/bundle_common.smk"
include: "workflow/rules/evidence_common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/clinical.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/centres.smk"
include: "workflow/rules/bundle.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/permutation.smk"
include: "workflow/rules/evidence.smk"
include: "workflow/rules/stability.smk"
include: "workflow/rules/checklist.smk"
include: "workflow/rules/runcrate.smk"


# On a cluster, the light aggregation rules of config cluster.local_rules run in the main
# Snakemake process, not as SLURM jobs: each reads a few tables and writes one, in seconds,
# while a SLURM job costs seconds of submission, start-up and status polling on the run's
# critical path. Names are checked against every rule of the workflow's files (a rule this
# run's mode does not define is left out). Locally it
# changes nothing.
from npc_radiomics.glue.cluster import check_local_rules, workflow_rule_names

try:
    workflow.localrules(
        *check_local_rules(
            config["cluster"]["local_rules"],
            workflow.rules,
            workflow_rule_names(Path(workflow.basedir) / "workflow" / "rules"),
        )
    )
except InputError as err:
    _stop(err)


# Code changes rerun exactly the rules they affect: every script rule's params get a hash
# of its script and the package modules it imports (npc_radiomics/glue/codehash.py).
from npc_radiomics.glue.codehash import attach_code_versions

CODE_VERSIONS = attach_code_versions(
    workflow.rules, Path(workflow.basedir) / "workflow" / "scripts"
)
# Output, log and benchmark patterns of every rule, for the run crate (runcrate.smk).
RULE_OUTPUTS = {
    r.name: [
        str(o) for o in [*r.output, *r.log, *([r.benchmark] if r.benchmark else [])]
    ]
    for r in workflow.rules
}


report: "workflow/report/workflow.rst"


onsuccess:
    # Predict mode: one line on how many patients were scored and how many QC excluded.
    if PREDICT:
        from npc_radiomics.deploy.predict import exclusion_line

        _line = exclusion_line(f"{PREDICT_DIR}/predictions.tsv")
        if _line:
            print(_line)
    if os.path.exists("results/report/index.html"):
        print(f"Report: {os.path.abspath('results/report/index.html')}")


rule all:
    default_target: True
    input:
        get_final_output(),
