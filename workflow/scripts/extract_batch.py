"""Rule extract_batch: pyradiomics features of every preprocessed case of one batch (both
readers' masks), as one long table per batch."""

import logging

from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
# pyradiomics' warnings (e.g. a LoG sigma skipped on a small ROI) belong in the rule log.
logging.getLogger("radiomics").handlers[:] = log.handlers

from npc_radiomics.features import extract_batch_rule  # noqa: E402

p, inp, out = snakemake.params, snakemake.input, snakemake.output
extract_batch_rule(
    p.cases,
    inp.folder,
    inp.zscore or None,  # a path, or an empty list when no sequence is z-scored
    params_files=p.params_files,
    normalization=p.normalization,
    crop_margin_mm=p.crop_margin_mm,
    features_path=out.features,
    provenance_path=out.provenance,
)
