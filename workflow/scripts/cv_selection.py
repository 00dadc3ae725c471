"""Rule cv_selection: the selection of one CV context, fitted once for every model."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.folds import fit_context_selection, save_selection_cache
from npc_radiomics.modelling.settings import TuningSettings

log = rule_setup(snakemake)
p = snakemake.params
X, y = load_rule_design(snakemake.input, p).train()
cache = fit_context_selection(
    X, y, TuningSettings(**p.settings), p.seed, snakemake.wildcards.context
)
save_selection_cache(cache, snakemake.output[0])
