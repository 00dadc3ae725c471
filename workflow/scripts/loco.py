"""Rule loco: the leave-one-centre-out table, gathered predictions and forest plot."""

import json
from pathlib import Path

from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.validation.loco import gather_loco

log = rule_setup(snakemake)
inp = snakemake.input
chosen = json.loads(Path(inp.chosen).read_text()).get("model")
log.info(gather_loco(inp.predictions, inp.infos, snakemake.output, chosen_model=chosen))
