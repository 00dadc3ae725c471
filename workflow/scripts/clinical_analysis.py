"""Rule clinical_analysis: Tables 1-2, stepwise clinical model, biomarker AUCs, DeLong tests."""

from npc_radiomics.evaluation.clinical import clinical_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
inp = snakemake.input
message = clinical_rule(
    inp.clinical,
    inp.split,
    inp.predictions,
    inp.chosen,
    snakemake.output,
    nested_path=inp.nested,
    **dict(snakemake.params.items()),
)
log.info(message)
