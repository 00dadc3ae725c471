"""Rule icc: ICC(2,1) per feature between readers, robust feature list, histogram."""

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.base.io import read_table  # noqa: E402
from npc_radiomics.imaging.icc import icc_report  # noqa: E402

table = icc_report(
    read_table(snakemake.input.features),
    read_table(snakemake.input.features_reader2),
    split=read_table(snakemake.input.split),
    reference=snakemake.params.reference,
    threshold=snakemake.params.threshold,
    enabled=snakemake.params.enabled,
    icc_path=snakemake.output.icc,
    robust_path=snakemake.output.robust,
    histogram_path=snakemake.output.histogram,
)
log.info(
    "ICC(2,1) on up to %d %s-reference patients: %d of %d features robust (ICC > %s)",
    int(table["n_patients"].max()) if len(table) else 0,
    snakemake.params.reference,
    int(table["robust"].sum()),
    len(table),
    snakemake.params.threshold,
)
