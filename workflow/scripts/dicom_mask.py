"""Rules dicom_mask(_reader2): a DICOM RTSTRUCT / SEG rasterised onto its series' grid."""

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.base.io import write_image, write_json  # noqa: E402
from npc_radiomics.inputs.dicom_masks import convert_mask  # noqa: E402

p = snakemake.params
mask, report = convert_mask(
    p.kind,
    snakemake.input.contours,
    snakemake.input.image,
    p.roi,
    p.structures,
    p.frame_of_reference,
)
write_image(mask, snakemake.output.mask)
write_json(report, snakemake.output.report)
