"""Rule zscore_params: pooled tumour mean and SD per sequence over the reference patients."""

from pathlib import Path

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_image, read_table, write_tsv  # noqa: E402
from npc_radiomics.preprocess import reference_patient_ids, zscore_table  # noqa: E402

reference = snakemake.params.reference
patients = set(reference_patient_ids(read_table(snakemake.input.split, dtype=str), reference))
log.info("%d reference patients (reference: %s)", len(patients), reference)


def reference_cases(sequence):
    """(image, mask) pairs of one sequence, read one at a time (paths follow the contract
    results/preprocess/{patient}/{sequence}_image.nii.gz)."""
    for image, mask in zip(snakemake.input.images, snakemake.input.masks, strict=True):
        path = Path(image)
        if path.parent.name in patients and path.name == f"{sequence}_image.nii.gz":
            yield read_image(image), read_image(mask)


table = zscore_table(
    {sequence: reference_cases(sequence) for sequence in snakemake.params.sequences}, reference
)
write_tsv(table, snakemake.output[0])
log.info("z-score statistics:\n%s", table)
