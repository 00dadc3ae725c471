"""Rule gather_predictions: one tidy table of every model's predictions (and nested CV)."""

import pandas as pd

from npc_radiomics.io import read_table, write_tsv
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)


def gather(paths, sort_by):
    frames = [read_table(path, dtype={"patient_id": str}) for path in paths]
    # A failed model leaves an empty table (see fit_final / nested_cv): skip it.
    frames = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(frames, ignore_index=True).sort_values(sort_by, kind="mergesort")


final = gather(snakemake.input.final, ["model", "patient_id"])
# Cohorts in the order train, test, external centres (sorted), as everywhere else.
final["_order"] = final["cohort"].map({"train": 0, "test": 1}).fillna(2)
final = final.sort_values(["model", "_order", "cohort", "patient_id"], kind="mergesort")
write_tsv(
    final[["patient_id", "cohort", "model", "probability", "label"]], snakemake.output.predictions
)
nested = gather(snakemake.input.nested, ["model", "outer_fold", "patient_id"])
write_tsv(nested, snakemake.output.nested)
log.info("%d final predictions, %d nested-CV predictions", len(final), len(nested))
