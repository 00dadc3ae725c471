"""Rule evidence: events per variable, minimum sample size, the verdict."""

from npc_radiomics.evidence import evidence_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
log.info(evidence_rule(snakemake.input, snakemake.params, snakemake.output))
