"""Rules extract_features(_reader2): pyradiomics features of one patient x sequence mask."""

import logging

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
# pyradiomics' warnings (e.g. a LoG sigma skipped on a small ROI) belong in the rule log.
logging.getLogger("radiomics").handlers[:] = log.handlers

from npc_radiomics.features import extract_rule  # noqa: E402
from npc_radiomics.io import write_tsv  # noqa: E402

inp, wc = snakemake.input, snakemake.wildcards
features, provenance = extract_rule(
    inp.image,
    inp.mask,
    inp.zscore or None,  # a path, or an empty list when the sequence is not z-scored
    inp.params,
    patient=wc.patient,
    sequence=wc.sequence,
    **dict(snakemake.params.items()),
)
write_tsv(features, snakemake.output.features)
write_tsv(provenance, snakemake.output.provenance)
