"""Rule zscore_params: pooled tumour mean and SD per sequence over the reference patients."""

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.base.io import read_table, write_tsv  # noqa: E402
from npc_radiomics.imaging.preprocess import zscore_batch_rule  # noqa: E402

p = snakemake.params
table = zscore_batch_rule(
    list(snakemake.input.moments),
    read_table(snakemake.input.split, dtype=str),
    p.reference,
    p.sequences,
)
write_tsv(table, snakemake.output[0])
log.info("z-score statistics:\n%s", table)
