"""Rule evaluate: Table 3 (metrics.tsv), thresholds, curve data and figures."""

from npc_radiomics.evaluation.performance import evaluation_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
message = evaluation_rule(
    snakemake.input.predictions,
    snakemake.input.nested,
    snakemake.output,
    threshold_paths=list(snakemake.input.thresholds),
    fold_param_paths=list(snakemake.input.fold_params),
    chosen_path=snakemake.input.chosen,
    **dict(snakemake.params.items()),
)
log.info(message)
