"""Rule qc_case: QC one patient x sequence; stop or record the failure (config qc.on_fail)."""

import pandas as pd

from npc_radiomics.errors import InputError
from npc_radiomics.io import write_tsv
from npc_radiomics.qc import QC_COLUMNS, QCSettings, qc_case
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
row = qc_case(
    snakemake.wildcards.patient,
    snakemake.params.center,
    snakemake.wildcards.sequence,
    snakemake.input.image,
    snakemake.input.mask,
    snakemake.input.mask_reader2[0] if snakemake.input.mask_reader2 else "",
    settings=QCSettings.from_config(snakemake.params.qc),
)
log.info("%s %s: %s %s", row["patient_id"], row["sequence"], row["status"], row["reason"])
if row["status"] != "pass" and snakemake.params.on_fail == "stop":
    raise InputError(f"QC failed: {row['reason']} (set qc.on_fail: exclude to drop the patient)")
write_tsv(pd.DataFrame([row], columns=QC_COLUMNS), snakemake.output[0])
