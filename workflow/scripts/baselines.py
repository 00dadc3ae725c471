"""Rule baselines: volume, clinical and combined baselines -> results/baselines/."""

from npc_radiomics.baselines import baselines_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
log.info(baselines_rule(snakemake.input, snakemake.params, snakemake.output))
