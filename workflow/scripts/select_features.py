"""Rule select_features: selection fitted on the whole training set -> results/selection/."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.rules import selection_rule
from npc_radiomics.modelling.settings import TuningSettings

log = rule_setup(snakemake)
p = snakemake.params
design = load_rule_design(snakemake.input, p)
log.info(selection_rule(design, TuningSettings(**p.settings), p.seed, snakemake.output))
