# npc-radiomics: multimodal MRI radiomics for short-term response prediction in NPC.
# Usage: snakemake --profile profiles/local   (or profiles/slurm on a cluster)
import os

from snakemake.utils import min_version

min_version("9.0")


# The repository's config/config.yaml always supplies the defaults (common.smk merges it);
# a config/config.yaml in the working directory, then --configfile, override it.
if os.path.exists("config/config.yaml"):

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
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


report: "workflow/report/workflow.rst"


onsuccess:
    if os.path.exists("results/report/index.html"):
        print(f"Report: {os.path.abspath('results/report/index.html')}")


rule all:
    default_target: True
    input:
        get_final_output(),
