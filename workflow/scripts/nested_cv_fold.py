"""Rule nested_cv_fold: selection + tuning inside one outer fold, out-of-fold predictions."""

from npc_radiomics.design import load_rule_design
from npc_radiomics.io import write_json, write_tsv
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, load_selection_cache, nested_cv_rule

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
