"""Rule preprocess_batch: N4 + 1 mm resampling of every included case of one batch.

Raw image + mask -> N4-corrected 1 mm image (float32) + mask (uint8) per case in the
batch's folder, the reader-2 mask on the same grid, and the tumour intensity moments
(n, mean, M2) that the z-score gather pools. With a crop margin (config
``preprocessing.crop_margin_mm``) only the tumour's box plus the margin is kept.
"""

from npc_radiomics.glue.runtime import rule_setup

# The job's threads are its worker processes, each case on one thread (run_cases).
log = rule_setup(snakemake)

from npc_radiomics.imaging.preprocess import preprocess_batch_rule  # noqa: E402

p, out = snakemake.params, snakemake.output
preprocess_batch_rule(
    p.cases,
    snakemake.input.qc,
    out.folder,
    out.moments,
    settings=p.settings,
    spacing_mm=p.spacing_mm,
    mask_label=p.mask_label,
    components=p.components,
    workers=snakemake.threads,
)
