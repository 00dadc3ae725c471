"""Rule demo_cohort: write the synthetic multi-centre demo cohort (images, masks, sheets)."""

from npc_radiomics.demo import generate_cohort
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
generate_cohort(p.settings, p.preset, int(p.seed), p.outdir)
