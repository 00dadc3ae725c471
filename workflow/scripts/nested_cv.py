"""Rule nested_cv_fold: selection + tuning inside one outer fold, out-of-fold predictions."""

import json

import pandas as pd

from npc_radiomics.errors import ModelFitError
from npc_radiomics.io import write_tsv
from npc_radiomics.modelling import load_rule_design
from npc_radiomics.models import parse_search_spaces
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import TuningSettings, nested_cv_fold

log = rule_setup(snakemake)
p = snakemake.params
model = snakemake.wildcards.model
settings = TuningSettings(**p.settings)
space = parse_search_spaces(p.search_spaces, [model])[model]
design = load_rule_design(snakemake.input, p)
X, y = design.train()
fold = int(snakemake.wildcards.fold)
try:
    pred, info = nested_cv_fold(
        model, space, X, y, fold, settings, p.seed, n_jobs=snakemake.threads
    )
    log.info("%s outer fold %s: AUC %s", model, fold, info["outer_auc"])
except ModelFitError as err:
    # Recorded, not raised: the other models go on and the report shows the gap.
    log.error("%s outer fold %s failed: %s", model, fold, err)
    pred = pd.DataFrame(columns=["patient_id", "model", "outer_fold", "probability", "label"])
    info = {"model": model, "outer_fold": fold, "failed": True, "reason": str(err)}
write_tsv(pred, snakemake.output.predictions)
with open(snakemake.output.params, "w") as fh:
    json.dump(info, fh, indent=2, sort_keys=True)
