"""Rule loco_fold: the modelling procedure fitted without one training centre, predicting it."""

from npc_radiomics.base.io import write_json, write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.validation.loco import loco_rule

log = rule_setup(snakemake)
p = snakemake.params
pred, info = loco_rule(
    snakemake.wildcards.model,
    p.search_spaces,
    load_rule_design(snakemake.input, p),
    snakemake.wildcards.centre,
    TuningSettings(**p.settings),
    p.seed,
    n_jobs=snakemake.threads,
)
write_tsv(pred, snakemake.output.predictions)
write_json(info, snakemake.output.info)
