"""Rule clinical_analysis: Tables 1-2, stepwise clinical model, biomarker AUCs, DeLong tests."""

import json
from pathlib import Path

from npc_radiomics.clinical import clinical_analysis, merge_split
from npc_radiomics.io import read_table, write_tsv
from npc_radiomics.results import write_json
from npc_radiomics.runtime import rule_setup
from npc_radiomics.sheets import read_clinical

log = rule_setup(snakemake)
p, out = snakemake.params, snakemake.output
data = merge_split(
    # The same reader as the start-up validation (common.smk): one reading of the table.
    read_clinical(snakemake.input.clinical, p.outcome, p.continuous, p.categorical, p.biomarkers),
    read_table(snakemake.input.split),
)
chosen = json.loads(Path(snakemake.input.chosen).read_text())["model"]
predictions = read_table(snakemake.input.predictions, dtype={"patient_id": str})
radiomics = predictions[predictions["model"] == chosen] if chosen else None
result = clinical_analysis(
    data,
    p.outcome,
    list(p.continuous),
    list(p.categorical),
    list(p.biomarkers),
    entry_p=p.entry_p,
    stay_p=p.stay_p,
    radiomics=radiomics,
    radiomics_name=chosen or "radiomics",
    seed=p.seed,
)
step = result.stepwise
write_tsv(result.table1, out.table1)
write_tsv(result.table2, out.table2)
write_tsv(step.steps, out.stepwise_steps)
write_tsv(step.coefficients, out.multivariable)
write_json(
    {
        "candidates": step.candidates,
        "selected": step.selected,
        "n": step.n,
        "entry_p": step.entry_p,
        "stay_p": step.stay_p,
        "note": step.note,
        "biomarker_direction": result.biomarker_direction,
        "radiomics_model": chosen,
    },
    out.model,
)
write_tsv(result.clinical_predictions, out.predictions)
write_tsv(result.comparator_aucs, out.biomarker_aucs)
write_tsv(result.delong_tests, out.delong_tests)
log.info("clinical model: %s %s", step.selected or "none", step.note)
