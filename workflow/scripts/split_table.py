"""Rule split_table: the pool's split and the external cohorts -> results/split/split.tsv."""

from npc_radiomics.base.io import write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.inputs.split import gather_split

log = rule_setup(snakemake)
write_tsv(gather_split([snakemake.input.pool, *snakemake.input.external]), snakemake.output[0])
