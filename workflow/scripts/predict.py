"""Rule predict: the new patients' features through the bundle's pipeline (no refitting)."""

from npc_radiomics.deploy.predict import predict_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
log.info(predict_rule(snakemake.input, snakemake.params, snakemake.output))
