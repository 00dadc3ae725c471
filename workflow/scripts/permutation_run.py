"""Rule permutation_run: the whole procedure (every model, the choice) on permuted labels."""

from npc_radiomics.base.io import write_json
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.permutation import permutation_run_rule

log = rule_setup(snakemake)
record = permutation_run_rule(
    snakemake.input,
    snakemake.params,
    int(snakemake.wildcards.perm),
    n_jobs=snakemake.threads,
)
write_json(record, snakemake.output[0])
