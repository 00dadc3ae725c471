"""Rule permutation_test: null distribution of the nested-CV AUC, permutation p-value."""

from npc_radiomics.permutation import permutation_test_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
log.info(permutation_test_rule(snakemake.input, snakemake.params, snakemake.output))
