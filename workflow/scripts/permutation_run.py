"""Rule permutation_run: the whole modelling pipeline on permuted training labels."""

from npc_radiomics.base.io import write_json
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.permutation import permutation_run_rule

log = rule_setup(snakemake)
record = permutation_run_rule(
    snakemake.input,
    snakemake.params,
    snakemake.wildcards.target,
    int(snakemake.wildcards.perm),
    n_jobs=snakemake.threads,
)
write_json(record, snakemake.output[0])
