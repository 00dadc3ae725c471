"""Rule select_features: selection fitted on the whole training set -> results/selection/."""

import json

from npc_radiomics.io import write_tsv
from npc_radiomics.modelling import load_rule_design
from npc_radiomics.runtime import rule_setup
from npc_radiomics.selection import selection_summary
from npc_radiomics.tuning import TuningSettings, check_fold_sizes

log = rule_setup(snakemake)
p = snakemake.params
settings = TuningSettings(**p.settings)
design = load_rule_design(snakemake.input, p)
X, y = design.train()
check_fold_sizes(y, settings, nested=True)
selection = settings.selection(p.seed).fit(X, y.to_numpy())
summary = selection_summary(selection, list(X.columns))
log.info(
    "selected %d features at lambda %.4g", len(summary["selected"]), summary["lambda"]["lambda"]
)
out = snakemake.output
write_tsv(summary["mrmr_ranking"], out.mrmr_ranking)
write_tsv(summary["lasso_cv"], out.lasso_cv)
write_tsv(summary["lasso_path"], out.lasso_path)
write_tsv(summary["selected"], out.selected)
with open(out.lambda_json, "w") as fh:
    json.dump(summary["lambda"], fh, indent=2, sort_keys=True)
