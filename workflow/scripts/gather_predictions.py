"""Rule gather_predictions: one tidy table of every model's predictions (and nested CV)."""

from npc_radiomics.base.io import write_tsv
from npc_radiomics.evaluation.performance import gather_predictions
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
final, nested = gather_predictions(
    snakemake.input.final, snakemake.input.nested, list(snakemake.input.external)
)
write_tsv(final, snakemake.output.predictions)
write_tsv(nested, snakemake.output.nested)
log.info("%d final predictions, %d nested-CV predictions", len(final), len(nested))
