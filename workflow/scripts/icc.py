"""Rule icc: ICC(2,1) per feature between readers and / or across seeded perturbations
(robustness.method), robust feature list, histogram."""

from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)

from npc_radiomics.base.io import read_table  # noqa: E402
from npc_radiomics.imaging.robustness import robustness_report  # noqa: E402

inp, p = snakemake.input, snakemake.params
perturbed = None
if "perturbed" in inp.keys():
    import pandas as pd

    perturbed = pd.concat([pd.read_parquet(path) for path in inp.perturbed], ignore_index=True)
table = robustness_report(
    p.method,
    features=read_table(inp.features),
    features_reader2=read_table(inp.features_reader2) if "features_reader2" in inp.keys() else None,
    perturbed=perturbed,
    split=read_table(inp.split),
    reference=p.reference,
    threshold=p.threshold,
    enabled=p.enabled,
    icc_path=snakemake.output.icc,
    robust_path=snakemake.output.robust,
    histogram_path=snakemake.output.histogram,
)
log.info(
    "ICC(2,1) (%s) on up to %d patients: %d of %d features robust (ICC > %s)",
    p.method,
    int(table["n_patients"].max()) if len(table) else 0,
    int(table["robust"].sum()),
    len(table),
    p.threshold,
)
