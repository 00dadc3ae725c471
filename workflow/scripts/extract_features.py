"""Rules extract_features(_reader2): pyradiomics features of one patient x sequence mask.

The preprocessed image is z-scored with its sequence's pooled statistics, cropped to the
ROI + margin, and passed to pyradiomics; diagnostics go to the provenance file.
"""

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from npc_radiomics.features import case_tables, extract_case, load_params  # noqa: E402
from npc_radiomics.io import read_image, write_tsv  # noqa: E402

# pyradiomics' warnings (e.g. a LoG sigma skipped on a small ROI) belong in the rule log.
logging.getLogger("radiomics").handlers[:] = log.handlers

patient, sequence = snakemake.wildcards.patient, snakemake.wildcards.sequence
stats = pd.read_csv(snakemake.input.zscore, sep="\t").set_index("sequence").loc[sequence]
case = extract_case(
    read_image(snakemake.input.image),
    read_image(snakemake.input.mask),
    load_params(snakemake.input.params),
    crop_margin_mm=snakemake.params.crop_margin_mm,
    zscore=(float(stats["mean"]), float(stats["sd"])),
)
features, provenance = case_tables(patient, sequence, case, snakemake.params.reader)
write_tsv(features, snakemake.output.features)
write_tsv(provenance, snakemake.output.provenance)
log.info("%s %s (%s): %d features", patient, sequence, snakemake.params.reader, len(case.features))
