"""Rule preprocess_mask_reader2: a reader-2 mask onto the preprocessed image's 1 mm grid."""

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_image, write_image  # noqa: E402
from npc_radiomics.preprocess import reader2_mask  # noqa: E402

mask = reader2_mask(
    read_image(snakemake.input.mask),
    read_image(snakemake.input.reference),
    spacing_mm=snakemake.params.spacing_mm,
    label=snakemake.params.mask_label,
    components=getattr(snakemake.params, "components", "merge"),
)
write_image(mask, snakemake.output.mask)
log.info("reader-2 mask resampled onto %s", snakemake.input.reference)
