"""Rule permutation_test: null distribution of the nested-CV AUC, permutation p-value."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.permutation import permutation_test_rule

log = rule_setup(snakemake)
log.info(permutation_test_rule(snakemake.input, snakemake.params, snakemake.output))
