"""Rules qc and predict_qc: gather the batches' QC tables into one QC table."""

import pandas as pd

from npc_radiomics.base.io import write_tsv
from npc_radiomics.glue.runtime import rule_setup
from npc_radiomics.imaging.qc import gather_qc

log = rule_setup(snakemake)
rows = [pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False) for path in snakemake.input]
# Each batch already decided its patients' inclusion (all of a patient's sequences are in
# one batch); gather_qc sorts the rows and decides it again, identically.
qc = gather_qc([r.drop(columns="patient_status") for r in rows], snakemake.params.sequences)
excluded = sorted(qc.loc[qc["patient_status"] == "excluded", "patient_id"].unique())
log.info("QC: %d cases, %d patients excluded: %s", len(qc), len(excluded), excluded)
write_tsv(qc, snakemake.output[0])
