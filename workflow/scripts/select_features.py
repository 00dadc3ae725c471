"""Rule select_features: selection fitted on the whole training set -> results/selection/."""

from npc_radiomics.design import load_rule_design
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, selection_rule

log = rule_setup(snakemake)
p = snakemake.params
design = load_rule_design(snakemake.input, p)
log.info(selection_rule(design, TuningSettings(**p.settings), p.seed, snakemake.output))
