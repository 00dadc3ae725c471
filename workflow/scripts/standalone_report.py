"""Rule standalone_report: results/report/index.html, one self-contained file."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.report.assemble import write_standalone_report

log = rule_setup(snakemake)
inputs = {key: snakemake.input[key] for key in snakemake.input.keys()}
path = write_standalone_report(snakemake.output[0], inputs, dict(snakemake.params.items()))
log.info("standalone report written to %s", path)
