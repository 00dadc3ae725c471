"""Rule tune_model: best parameters and the trials table of a model's finished study."""

import json
from pathlib import Path

from npc_radiomics.base.io import write_json, write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.rules import gather_tuning

log = rule_setup(snakemake)
parts = [json.loads(Path(path).read_text()) for path in snakemake.input]
best, trials = gather_tuning(parts, snakemake.wildcards.model, snakemake.params.n_trials)
write_json(best, snakemake.output.best)
write_tsv(trials, snakemake.output.trials)
