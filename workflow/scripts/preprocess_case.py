"""Rules preprocess_case and preprocess_mask_reader2: N4 + 1 mm resampling of one case.

preprocess_case: raw image + mask -> N4-corrected 1 mm image (float32) + mask (uint8), and
the tumour's intensity moments (n, mean, M2) that the z-score gather pools.
preprocess_mask_reader2: a reader-2 mask -> uint8 mask on the preprocessed image's grid.
"""

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_image, write_image  # noqa: E402
from npc_radiomics.preprocess import (  # noqa: E402
    preprocess_case,
    preprocess_mask,
    tumour_moments,
    write_moments,
)

spacing_mm = snakemake.params.spacing_mm
label = snakemake.params.mask_label
if hasattr(snakemake.input, "reference"):
    mask = preprocess_mask(
        # get_mask_reader2 gives a one-element list: take the file itself.
        read_image(snakemake.input.mask[0]),
        read_image(snakemake.input.reference),
        spacing_mm=spacing_mm,
        label=label,
    )
    write_image(mask, snakemake.output.mask)
    log.info("reader-2 mask resampled onto %s", snakemake.input.reference)
else:
    image, mask = preprocess_case(
        read_image(snakemake.input.image),
        read_image(snakemake.input.mask),
        n4=snakemake.params.n4,
        spacing_mm=spacing_mm,
        mask_label=label,
    )
    write_image(image, snakemake.output.image)
    write_image(mask, snakemake.output.mask)
    write_moments(tumour_moments(image, mask), snakemake.output.moments)
    log.info(
        "%s: N4 %s, resampled to %s mm, size %s",
        snakemake.input.image,
        "on" if snakemake.params.n4.get("enabled", True) else "off",
        spacing_mm,
        image.GetSize(),
    )
