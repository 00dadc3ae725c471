"""Rule demo_cohort: write the synthetic multi-centre demo cohort (images, masks, sheets)."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.inputs.demo import generate_cohort

log = rule_setup(snakemake)
p = snakemake.params
generate_cohort(p.settings, p.preset, int(p.seed), p.outdir)
