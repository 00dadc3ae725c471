"""Rule baselines: volume, clinical and combined baselines -> results/baselines/."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.baselines import baselines_rule

log = rule_setup(snakemake)
log.info(baselines_rule(snakemake.input, snakemake.params, snakemake.output))
