"""Rule inner_scores: the chosen model's inner out-of-fold scores per outer fold."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.baselines import inner_scores_rule

log = rule_setup(snakemake)
log.info(inner_scores_rule(snakemake.input, snakemake.params, snakemake.output))
