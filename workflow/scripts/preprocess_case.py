"""Rule preprocess_case: N4 + 1 mm resampling of one patient x sequence.

Raw image + mask -> N4-corrected 1 mm image (float32) + mask (uint8), and the tumour's
intensity moments (n, mean, M2) that the z-score gather pools. With a crop margin
(config ``preprocessing.crop_margin_mm``) only the box of the tumour (and of the reader-2
mask, an optional input) plus the margin is resampled and written.
"""

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_image, write_image  # noqa: E402
from npc_radiomics.preprocess import preprocess_case, tumour_moments, write_moments  # noqa: E402

p = snakemake.params
crop_margin_mm = getattr(p, "crop_margin_mm", None)
# The reader-2 mask (a path, or an empty list when the case has none) widens the box.
extra = getattr(snakemake.input, "mask_reader2", None) or []
extra = [extra] if isinstance(extra, str) else list(extra)
image, mask = preprocess_case(
    read_image(snakemake.input.image),
    read_image(snakemake.input.mask),
    n4=p.n4,
    spacing_mm=p.spacing_mm,
    mask_label=p.mask_label,
    components=getattr(p, "components", "merge"),
    interpolator=getattr(p, "interpolator", "bspline"),
    crop_margin_mm=crop_margin_mm,
    extra_masks=[read_image(path) for path in extra] if crop_margin_mm is not None else [],
)
write_image(image, snakemake.output.image)
write_image(mask, snakemake.output.mask)
write_moments(tumour_moments(image, mask), snakemake.output.moments)
log.info(
    "%s: N4 %s, crop margin %s mm, size %s",
    snakemake.input.image,
    p.n4.get("enabled", True),
    crop_margin_mm,
    image.GetSize(),
)
