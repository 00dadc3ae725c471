"""Rule provenance: software versions, platform, config, seeds and input checksums."""

from npc_radiomics.glue.provenance import provenance_record, write_provenance
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
record = provenance_record(
    dict(snakemake.params.config),
    list(snakemake.input),
    clinical_coding=dict(snakemake.params.clinical_coding),
)
write_provenance(record, snakemake.output[0])
log.info("provenance: %d input checksums", len(record["inputs"]))
