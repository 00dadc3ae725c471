"""Rule zscore_params: pooled tumour mean and SD per sequence over the reference patients."""

from pathlib import Path

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.io import read_table, write_tsv  # noqa: E402
from npc_radiomics.preprocess import (  # noqa: E402
    read_moments,
    reference_patient_ids,
    zscore_table,
)

reference = snakemake.params.reference
patients = set(reference_patient_ids(read_table(snakemake.input.split, dtype=str), reference))
log.info("%d reference patients (reference: %s)", len(patients), reference)


def reference_moments(sequence):
    """Tumour moments of one sequence's reference cases, in input (sorted patient) order
    (paths follow the contract results/preprocess/{patient}/{sequence}_moments.json)."""
    for path in map(Path, snakemake.input.moments):
        if path.parent.name in patients and path.name == f"{sequence}_moments.json":
            yield read_moments(path)


table = zscore_table(
    {sequence: reference_moments(sequence) for sequence in snakemake.params.sequences}, reference
)
write_tsv(table, snakemake.output[0])
log.info("z-score statistics:\n%s", table)
