"""Rule run_crate: the Workflow Run RO-Crate of the run (results/ro-crate-metadata.json)."""

from pathlib import Path

from npc_radiomics.glue.runcrate import write_run_crate
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
path = write_run_crate(
    Path(snakemake.output[0]).parent,
    snakemake.input.provenance,
    dict(p.rule_outputs),
    dict(p.code_versions),
    p.git_commit,
    p.snakefile,
)
log.info("run crate: %s", path)
