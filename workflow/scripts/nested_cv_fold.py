"""Rule nested_cv_fold: selection + tuning inside one outer fold, out-of-fold predictions."""

from npc_radiomics.base.io import write_json, write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.folds import load_selection_cache
from npc_radiomics.modelling.rules import nested_cv_rule
from npc_radiomics.modelling.settings import TuningSettings

log = rule_setup(snakemake)
p = snakemake.params
pred, info = nested_cv_rule(
    snakemake.wildcards.model,
    p.search_spaces,
    load_rule_design(snakemake.input, p),
    int(snakemake.wildcards.fold),
    TuningSettings(**p.settings),
    p.seed,
    n_jobs=snakemake.threads,
    cache=load_selection_cache(snakemake.input.selection),
)
write_tsv(pred, snakemake.output.predictions)
write_json(info, snakemake.output.params)
