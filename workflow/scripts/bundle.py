"""Rules bundle / bundle_model: the model bundle directory (manifest, skops pipeline, params)."""

from npc_radiomics.deploy.bundle import bundle_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
log.info(
    bundle_rule(
        snakemake.input,
        snakemake.params,
        snakemake.output[0],
        model=snakemake.wildcards.get("model"),
    )
)
