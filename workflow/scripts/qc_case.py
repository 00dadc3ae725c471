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
    getattr(p, "masks", None),
    # Reports of the masks converted from DICOM contours (rule dicom_mask), when any.
    {
        key: paths[0]
        for key, paths in (
            ("mask", getattr(inp, "mask_report", [])),
            ("mask_reader2", getattr(inp, "mask_reader2_report", [])),
        )
        if paths
    },
)
write_tsv(row, snakemake.output[0])
