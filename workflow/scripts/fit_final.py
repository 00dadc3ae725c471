"""Rule fit_final: the model refitted on the whole training set; predictions for every cohort."""

import json

import joblib
import pandas as pd

from npc_radiomics.config import file_sha256
from npc_radiomics.io import write_tsv
from npc_radiomics.modelling import load_rule_design
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, fit_final

log = rule_setup(snakemake)
p = snakemake.params
model = snakemake.wildcards.model
settings = TuningSettings(**p.settings)
best = json.load(open(snakemake.input.best))
if best.get("failed"):
    # Tuning failed: no pipeline; empty predictions keep the gather going.
    log.error("%s: not fitted, tuning failed: %s", model, best["reason"])
    pipe = None
    pred = pd.DataFrame(columns=["patient_id", "cohort", "model", "probability", "label"])
else:
    design = load_rule_design(snakemake.input, p)
    pipe, pred = fit_final(
        model, best["params"], design, settings, p.seed, n_jobs=snakemake.threads
    )
    log.info(
        "%s: %d selected features; predictions for %s",
        model,
        len(pipe[:-1].get_feature_names_out(design.features)),
        design.cohorts(),
    )
write_tsv(pred, snakemake.output.predictions)
# joblib (pickle) is for this workflow's own use; the shareable bundle is the report stage's.
joblib.dump(pipe, snakemake.output.pipeline)
with open(snakemake.output.checksum, "w") as fh:
    fh.write(f"{file_sha256(snakemake.output.pipeline)}  pipeline.joblib\n")
