"""Rule evidence: events per variable, minimum sample size, the verdict."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.evidence import evidence_rule

log = rule_setup(snakemake)
log.info(evidence_rule(snakemake.input, snakemake.params, snakemake.output))
