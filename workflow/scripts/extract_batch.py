"""Rule extract_batch: pyradiomics features of every preprocessed case of one batch (both
readers' masks), as one long table per batch."""

import logging

from npc_radiomics.glue.runtime import rule_setup

# The job's threads are its worker processes, each case on one thread (run_cases).
log = rule_setup(snakemake)

import radiomics  # noqa: E402, F401  (its import adds a stderr handler, replaced below)

from npc_radiomics.imaging.features import extract_batch_rule  # noqa: E402

# pyradiomics' warnings (e.g. a LoG sigma skipped on a small ROI) belong in the rule log,
# not on the console (one line per case and image type).
logging.getLogger("radiomics").handlers[:] = log.handlers

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
    workers=snakemake.threads,
)
