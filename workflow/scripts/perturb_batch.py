"""Rule perturb_batch: features of seeded image and contour perturbations of one batch's
training patients (robustness.method perturbation or both), as one long table."""

import logging

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

import radiomics  # noqa: E402, F401  (its import adds a stderr handler, replaced below)

from npc_radiomics.base.io import read_table  # noqa: E402
from npc_radiomics.imaging.perturbation import perturb_batch_rule  # noqa: E402

# pyradiomics' warnings belong in the rule log, not on the console.
logging.getLogger("radiomics").handlers[:] = log.handlers

p, inp, out = snakemake.params, snakemake.input, snakemake.output
perturb_batch_rule(
    p.cases,
    inp.folder,
    inp.zscore or None,  # a path, or an empty list when no sequence is z-scored
    read_table(inp.split),
    params_files=p.params_files,
    normalization=p.normalization,
    crop_margin_mm=p.crop_margin_mm,
    settings=p.settings,
    seed=p.seed,
    features_path=out.features,
    params_path=out.params,
)
