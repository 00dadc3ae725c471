"""Rule evaluate: Table 3 (metrics.tsv), thresholds, curve data and figures, the chosen model."""

from npc_radiomics.io import read_table, write_tsv
from npc_radiomics.plots import plot_calibration_curves, plot_pr_curves, plot_roc_curves
from npc_radiomics.results import evaluation_tables, figure_or_placeholder, write_json
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
p, out = snakemake.params, snakemake.output
tables = evaluation_tables(
    read_table(snakemake.input.predictions, dtype={"patient_id": str}),
    read_table(snakemake.input.nested, dtype={"patient_id": str}),
    models=list(p.models),
    ci_method=p.ci_method,
    n_bootstrap=p.n_bootstrap,
    calibration_bins=p.calibration_bins,
    seed=p.seed,
)
write_tsv(tables.metrics, out.metrics)
write_tsv(tables.thresholds, out.thresholds)
write_tsv(tables.roc, out.roc)
write_tsv(tables.pr, out.pr)
write_tsv(tables.calibration, out.calibration)
write_json(tables.chosen, out.chosen)
# Legends carry the final models' AUCs; the nested-CV rows have no curve.
final = tables.metrics[tables.metrics["cohort"] != "nested_cv"]
figure_or_placeholder(plot_roc_curves, out.roc_figure, tables.roc, metrics=final)
figure_or_placeholder(plot_pr_curves, out.pr_figure, tables.pr, metrics=final)
figure_or_placeholder(plot_calibration_curves, out.calibration_figure, tables.calibration)
log.info("chosen model: %s (%s)", tables.chosen["model"], tables.chosen["reason"])
