"""Rule merge_features: per-case rows -> wide tables (patient_id + <sequence>__<feature>)."""

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.features import merge_case_files, merge_provenance  # noqa: E402
from npc_radiomics.io import write_tsv  # noqa: E402

reader1 = merge_case_files(snakemake.input.reader1, patients=snakemake.params.patients)
# Same columns in the reader-2 table, so ICC pairs columns by name.
reader2 = merge_case_files(snakemake.input.reader2).reindex(columns=reader1.columns)
reader1.to_parquet(snakemake.output.features, index=False)
reader2.to_parquet(snakemake.output.features_reader2, index=False)
write_tsv(merge_provenance(snakemake.input.provenance), snakemake.output.provenance)
log.info(
    "features: %d patients x %d features; reader 2: %d patients",
    len(reader1),
    reader1.shape[1] - 1,
    len(reader2),
)
