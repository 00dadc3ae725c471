"""Rule provenance: software versions, platform, config, seeds, input checksums and the
DICOM inputs' Study / Series / Frame-of-reference UIDs."""

from npc_radiomics.glue.provenance import provenance_record, write_provenance
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.inputs.dicom_uids import dicom_provenance

log = rule_setup(snakemake)
record = provenance_record(
    dict(snakemake.params.config),
    list(snakemake.input),
    clinical_coding=dict(snakemake.params.clinical_coding),
)
# Study / Series / Frame-of-reference UIDs of every DICOM image series and RTSTRUCT / SEG.
record["dicom"] = dicom_provenance(list(snakemake.input))
write_provenance(record, snakemake.output[0])
log.info("provenance: %d input checksums", len(record["inputs"]))
