"""Rule zscore_params: pooled tumour mean and SD per sequence over the reference patients."""

from pathlib import Path

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_image, write_tsv  # noqa: E402
from npc_radiomics.preprocess import zscore_table  # noqa: E402


def reference_cases(sequence):
    """(image, mask) pairs of one sequence, read one at a time (paths follow the contract
    results/preprocess/{patient}/{sequence}_image.nii.gz)."""
    for image, mask in zip(snakemake.input.images, snakemake.input.masks, strict=True):
        if Path(image).name == f"{sequence}_image.nii.gz":
            yield read_image(image), read_image(mask)


log.info(
    "%d reference images (reference: %s)", len(snakemake.input.images), snakemake.params.reference
)
table = zscore_table(
    {sequence: reference_cases(sequence) for sequence in snakemake.params.sequences},
    snakemake.params.reference,
)
write_tsv(table, snakemake.output[0])
log.info("z-score statistics (reference: %s):\n%s", snakemake.params.reference, table)
