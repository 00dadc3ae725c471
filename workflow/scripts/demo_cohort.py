"""Rule demo_cohort: write the synthetic multi-centre demo cohort (images, masks, sheets)."""

from npc_radiomics.demo import generate_cohort, load_settings
from npc_radiomics.runtime import limit_threads, setup_logging

limit_threads(snakemake.threads)
setup_logging(snakemake.log[0] if len(snakemake.log) else None)
p = snakemake.params
settings = load_settings(p.settings) if isinstance(p.settings, str) else p.settings
generate_cohort(settings, p.preset, int(p.seed), p.outdir)
