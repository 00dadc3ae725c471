"""Rule checklist: TRIPOD+AI / CLEAR / METRICS items filled from this run."""

from npc_radiomics.checklist import checklist_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
inputs = {key: snakemake.input[key] for key in snakemake.input.keys()}
log.info(checklist_rule(inputs, snakemake.output[0]))
