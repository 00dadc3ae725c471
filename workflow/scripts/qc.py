"""Checkpoint qc: gather the per-case QC rows into results/qc/qc.tsv."""

import pandas as pd

from npc_radiomics.io import write_tsv
from npc_radiomics.qc import gather_qc
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
rows = [pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False) for path in snakemake.input]
qc = gather_qc(rows, snakemake.params.sequences)
excluded = sorted(qc.loc[qc["patient_status"] == "excluded", "patient_id"].unique())
log.info("QC: %d cases, %d patients excluded: %s", len(qc), len(excluded), excluded)
write_tsv(qc, snakemake.output[0])
