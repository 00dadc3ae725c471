"""Rule choose_model: the chosen model (best nested-CV AUC, training data only)."""

from npc_radiomics.base.io import write_json
from npc_radiomics.evaluation.performance import chosen_model_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
chosen = chosen_model_rule(
    list(snakemake.input.nested),
    list(snakemake.input.final),
    list(snakemake.input.fold_params),
    models=list(snakemake.params.models),
    outer_folds=snakemake.params.outer_folds,
)
write_json(chosen, snakemake.output[0])
log.info("chosen model: %s (%s)", chosen["model"], chosen["reason"])
