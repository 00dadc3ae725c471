"""Checkpoint split: stratified seeded split of the training pool -> results/split/split.tsv."""

import pandas as pd

from npc_radiomics import sheets
from npc_radiomics.io import read_features_table, read_table, write_tsv
from npc_radiomics.runtime import rule_setup
from npc_radiomics.split import make_split, patients_from_clinical, split_from_table

log = rule_setup(snakemake)
p = snakemake.params
if "table" in snakemake.input.keys():
    cols = p.table_columns
    split = split_from_table(
        read_features_table(snakemake.input.table, p.table_columns),
        cols["id"],
        p.outcome,
        cols.get("center"),
        cols.get("cohort"),
        p.train_centers,
        p.external_centers,
        p.test_size,
        p.seed,
        p.stratify,
    )
else:
    clinical = sheets.read_clinical(
        snakemake.input.clinical, p.outcome, p.continuous, p.categorical
    )
    sheets.cross_check(pd.DataFrame({"patient_id": sorted(p.samples)}), clinical)
    qc = read_table(snakemake.input.qc)
    patients = patients_from_clinical(clinical, qc, p.samples, p.outcome)
    split = make_split(
        patients, p.train_centers, p.external_centers, p.test_size, p.seed, p.stratify
    )
log.info("split: %s", split.groupby("cohort")["label"].agg(["size", "sum"]).to_dict())
write_tsv(split, snakemake.output[0])
