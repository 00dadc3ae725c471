"""Rules split and external_cohort: the training pool's stratified seeded split
(results/split/pool.tsv) or one external centre's cohort table."""

from npc_radiomics.base.io import write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.inputs.split import split_rule

log = rule_setup(snakemake)
inputs = {key: snakemake.input[key] for key in snakemake.input.keys()}
split = split_rule(**inputs, **dict(snakemake.params.items()))
log.info("cohorts: %s", split.groupby("cohort")["label"].agg(["size", "sum"]).to_dict())
write_tsv(split, snakemake.output[0])
