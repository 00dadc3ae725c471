"""Rule predict_external: every final pipeline's predictions for one external centre."""

from npc_radiomics.base.io import write_tsv
from npc_radiomics.evaluation.performance import external_predictions
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design

log = rule_setup(snakemake)
centre = snakemake.wildcards.centre
pred = external_predictions(
    load_rule_design(snakemake.input, snakemake.params),
    list(snakemake.input.pipelines),
    list(snakemake.params.models),
    centre,
)
write_tsv(pred, snakemake.output[0])
log.info("%s: %d predictions (%d models)", centre, len(pred), pred["model"].nunique())
