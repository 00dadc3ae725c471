"""Rule tune_model_part: one worker of a model's Optuna study on the whole training set.

Several parts of one model share the study's journal file; see npc_radiomics.modelling.studies.
"""

from npc_radiomics.base.io import write_json
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.folds import load_selection_cache
from npc_radiomics.modelling.rules import tune_part
from npc_radiomics.modelling.settings import TuningSettings

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
