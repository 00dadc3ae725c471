"""Rule fit_final: the model refitted on the whole training set; predictions for every cohort."""

import json
from pathlib import Path

from npc_radiomics.base.io import write_json, write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.folds import load_selection_cache
from npc_radiomics.modelling.persistence import save_pipeline
from npc_radiomics.modelling.rules import final_model
from npc_radiomics.modelling.settings import TuningSettings

log = rule_setup(snakemake)
p, out = snakemake.params, snakemake.output
pipe, pred, threshold = final_model(
    snakemake.wildcards.model,
    json.loads(Path(snakemake.input.best).read_text()),
    load_rule_design(snakemake.input, p),
    TuningSettings(**p.settings),
    p.seed,
    n_jobs=snakemake.threads,
    caches={
        path.split("/")[-1].removesuffix(".joblib"): load_selection_cache(path)
        for path in snakemake.input.selection
    },
)
write_tsv(pred, out.predictions)
write_json(threshold, out.threshold)
save_pipeline(pipe, out.pipeline, out.checksum)
