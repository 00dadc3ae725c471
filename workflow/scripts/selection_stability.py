"""Rule selection_stability: selection on bootstrap resamples + final fit, frequencies, Jaccard."""

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.validation.stability import stability_rule

log = rule_setup(snakemake)
p = snakemake.params
design = load_rule_design(snakemake.input, p)
log.info(
    stability_rule(
        design, TuningSettings(**p.settings), p.seed, snakemake.output, int(p.n_bootstrap)
    )
)
