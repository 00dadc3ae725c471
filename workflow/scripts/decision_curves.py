"""Rule decision_curves: net benefit per model and cohort, useful threshold ranges, figure."""

from npc_radiomics.dca import dca_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
log.info(dca_rule(snakemake.input.predictions, snakemake.output, snakemake.params.thresholds))
