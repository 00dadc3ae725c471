"""Rule shap_analysis: SHAP of the chosen model on the test set, training background."""

import json
from pathlib import Path

from npc_radiomics.evaluation.shap_analysis import shap_rule
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.modelling.design import load_rule_design

log = rule_setup(snakemake)
p = snakemake.params
message = shap_rule(
    json.loads(Path(snakemake.input.chosen).read_text())["model"],
    dict(zip(p.models, snakemake.input.pipelines, strict=True)),
    load_rule_design(snakemake.input, p),
    p.seed,
    snakemake.output,
)
log.info(message)
