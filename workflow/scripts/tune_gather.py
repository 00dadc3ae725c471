"""Rule tune_model: best parameters and the trials table of a model's finished study."""

import json

import pandas as pd

from npc_radiomics.errors import ModelFitError
from npc_radiomics.io import write_tsv
from npc_radiomics.runtime import rule_setup
from npc_radiomics.tuning import best_params, finished_slots, open_study, trials_table

log = rule_setup(snakemake)
model = snakemake.wildcards.model
parts = [json.load(open(path)) for path in snakemake.input]
names = {part["study_name"] for part in parts}
if len(names) != 1:
    raise RuntimeError(f"{model}: tuning parts disagree on the study: {sorted(names)}")
study = open_study(parts[0]["journal"], names.pop())
try:
    best = best_params(study, model, snakemake.params.n_trials)
except ModelFitError as err:
    # Recorded, not raised: the other models go on and the report shows the gap.
    log.error("%s failed: %s", model, err)
    best = {"model": model, "failed": True, "reason": str(err)}
    with open(snakemake.output.best, "w") as fh:
        json.dump(best, fh, indent=2, sort_keys=True)
    write_tsv(pd.DataFrame(columns=["model", "slot", "value"]), snakemake.output.trials)
    raise SystemExit(0) from None
log.info(
    "%s: best inner-CV AUC %.4f at slot %d: %s",
    model,
    best["inner_cv_auc"],
    best["slot"],
    best["params"],
)
with open(snakemake.output.best, "w") as fh:
    json.dump(best, fh, indent=2, sort_keys=True)
done = {s: t for s, t in finished_slots(study).items() if s < snakemake.params.n_trials}
write_tsv(trials_table(done, model), snakemake.output.trials)
