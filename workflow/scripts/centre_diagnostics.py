"""Rule centre_diagnostics: per-centre counts, centre predictability, PCA by centre."""

import pandas as pd

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design
from npc_radiomics.validation.centres import centres_rule

log = rule_setup(snakemake)
p = snakemake.params
split = pd.read_csv(snakemake.input.split, sep="\t", dtype={"patient_id": str, "center": str})
features = pd.read_csv(snakemake.input.selected, sep="\t")["feature"].astype(str).tolist()
log.info(
    centres_rule(
        load_rule_design(snakemake.input, p), split, features, p.centres, p.seed, snakemake.output
    )
)
