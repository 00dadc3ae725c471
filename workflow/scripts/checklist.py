"""Rule checklist: TRIPOD+AI / CLEAR / METRICS items filled from this run."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.report.checklist import checklist_rule

log = rule_setup(snakemake)
inputs = {key: snakemake.input[key] for key in snakemake.input.keys()}
log.info(checklist_rule(inputs, snakemake.output[0]))
