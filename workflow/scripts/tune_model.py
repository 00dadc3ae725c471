"""Rule tune_model_part: one worker of a model's Optuna study on the whole training set.

Several parts of one model share the study's journal file; see npc_radiomics.tuning.
"""

import json

from npc_radiomics.modelling import load_rule_design
from npc_radiomics.models import parse_search_spaces
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, check_fold_sizes, tune

log = rule_setup(snakemake)
p = snakemake.params
model = snakemake.wildcards.model
settings = TuningSettings(**p.settings)
space = parse_search_spaces(p.search_spaces, [model])[model]
design = load_rule_design(snakemake.input, p)
X, y = design.train()
check_fold_sizes(y, settings, nested=True)
study, name = tune(
    model,
    space,
    X,
    y,
    settings,
    p.seed,
    "full",
    storage_path=p.journal,
    worker=snakemake.wildcards.part,
    n_jobs=snakemake.threads,
)
with open(snakemake.output[0], "w") as fh:
    json.dump({"study_name": name, "journal": p.journal, "part": snakemake.wildcards.part}, fh)
