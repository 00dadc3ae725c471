"""Rule qc_batch: QC every patient x sequence of one batch; stop on the first failure or
record it (config qc.on_fail). One table per batch, with each patient's inclusion."""

from npc_radiomics.glue.runtime import rule_setup

# The job's threads are its worker processes, each case on one thread (run_cases).
log = rule_setup(snakemake)

from npc_radiomics.imaging.qc import qc_batch_rule  # noqa: E402

p = snakemake.params
qc_batch_rule(
    p.cases,
    p.qc,
    p.on_fail,
    p.masks,
    p.sequences,
    snakemake.output[0],
    workers=snakemake.threads,
)
