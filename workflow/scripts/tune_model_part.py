"""Rule tune_model_part: one worker of a model's Optuna study on the whole training set.

Several parts of one model share the study's journal file; see npc_radiomics.tuning.
"""

from npc_radiomics.design import load_rule_design
from npc_radiomics.io import write_json
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, load_selection_cache, tune_part

log = rule_setup(snakemake)
p = snakemake.params
part = tune_part(
    snakemake.wildcards.model,
    p.search_spaces,
    load_rule_design(snakemake.input, p),
    TuningSettings(**p.settings),
    p.seed,
    journal=p.journal,
    worker=snakemake.wildcards.part,
    n_jobs=snakemake.threads,
    cache=load_selection_cache(snakemake.input.selection),
)
write_json(part, snakemake.output[0])
