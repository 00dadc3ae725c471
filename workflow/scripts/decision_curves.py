"""Rule decision_curves: net benefit per model and cohort, useful threshold ranges, figure."""

from npc_radiomics.dca import beneficial_ranges, decision_curves, threshold_grid
from npc_radiomics.io import read_table, write_tsv
from npc_radiomics.plots import plot_decision_curves
from npc_radiomics.results import figure_or_placeholder
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
out = snakemake.output
predictions = read_table(snakemake.input.predictions, dtype={"patient_id": str})
curves = decision_curves(predictions, threshold_grid(*snakemake.params.thresholds))
ranges = beneficial_ranges(curves)
write_tsv(curves, out.curves)
write_tsv(ranges, out.ranges)
figure_or_placeholder(plot_decision_curves, out.figure, curves)
log.info("decision curves: %d cohorts, %d range rows", curves["cohort"].nunique(), len(ranges))
