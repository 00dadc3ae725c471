"""Rule selection_figures: LASSO path, LASSO CV curve, correlation of the selected features."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.selection import selection_figures_rule

log = rule_setup(snakemake)
inp = snakemake.input
design = load_rule_design(inp, snakemake.params)
log.info(selection_figures_rule(inp, design, snakemake.output, snakemake.params.lasso_folds))
