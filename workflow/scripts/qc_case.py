"""Rule qc_case: QC one patient x sequence; stop or record the failure (config qc.on_fail)."""

from npc_radiomics.io import write_tsv
from npc_radiomics.qc import qc_rule
from npc_radiomics.runtime import rule_setup

log = rule_setup(snakemake)
inp, wc, p = snakemake.input, snakemake.wildcards, snakemake.params
row = qc_rule(
    wc.patient,
    p.center,
    wc.sequence,
    inp.image,
    inp.mask,
    inp.mask_reader2[0] if inp.mask_reader2 else "",
    p.qc,
    p.on_fail,
)
write_tsv(row, snakemake.output[0])
