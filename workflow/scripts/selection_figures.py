"""Rule selection_figures: LASSO path, LASSO CV curve, correlation of the selected features."""

import json
from pathlib import Path

from npc_radiomics.io import read_table
from npc_radiomics.modelling import load_rule_design
from npc_radiomics.plots import plot_correlation_heatmap, plot_lasso_cv, plot_lasso_path
from npc_radiomics.results import figure_or_placeholder
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
inp, out = snakemake.input, snakemake.output
lam = json.loads(Path(inp.lambda_json).read_text())
path = read_table(inp.lasso_path).pivot(index="lambda", columns="feature", values="coefficient")
cv = read_table(inp.lasso_cv)
figure_or_placeholder(
    plot_lasso_path, out.lasso_path, path.index.to_numpy(), path.to_numpy(), lam["lambda"]
)
figure_or_placeholder(
    plot_lasso_cv,
    out.lasso_cv,
    cv["lambda"],
    cv["mean_deviance"],
    cv["se_deviance"],
    lam["lambda"],
    lambda_1se=lam.get("lambda_1se"),
    folds=snakemake.params.lasso_folds,
)
# Correlation on the training patients only, in the raw features the selection kept.
design = load_rule_design(inp, snakemake.params)
selected = [f for f in read_table(inp.selected)["feature"] if f in design.X.columns]
X_train, _ = design.train()
figure_or_placeholder(plot_correlation_heatmap, out.correlation, X_train[selected])
log.info("selection figures: %d selected features", len(selected))
