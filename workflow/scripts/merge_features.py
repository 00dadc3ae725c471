"""Rules merge_features, merge_pool_features, merge_external_features: the batches' long
feature tables -> wide tables (patient_id + <sequence>__<feature>), reader 1 and reader 2,
and the extraction provenance."""

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.base.io import write_tsv  # noqa: E402
from npc_radiomics.imaging.features import (  # noqa: E402
    merge_batch_features,
    merge_provenance,
    read_batch_features,
)

inp, out = snakemake.input, snakemake.output
table = read_batch_features(inp.features)  # read once for both readers
reader1 = merge_batch_features(table, "reader1")
reader1.to_parquet(out.features, index=False)
message = f"features: {len(reader1)} patients x {reader1.shape[1] - 1} features"
if "features_reader2" in out.keys():
    # Same columns in the reader-2 table, so ICC pairs columns by name.
    reader2 = merge_batch_features(table, "reader2").reindex(columns=reader1.columns)
    reader2.to_parquet(out.features_reader2, index=False)
    message += f"; reader 2: {len(reader2)} patients"
if "provenance" in out.keys():
    write_tsv(merge_provenance(inp.provenance), out.provenance)
log.info(message)
