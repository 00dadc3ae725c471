# Masks given as DICOM RTSTRUCT or SEG (pipeline step 1, inputs): rasterised once per case
# onto the referenced DICOM series' grid as a NIfTI label mask, with a report QC reads
# (npc_radiomics.inputs.dicom_masks). case_mask / case_mask_reader2 (common.smk) hand the NIfTI to
# QC and preprocessing, so everything downstream reads a label mask as before.


rule dicom_mask:
    input:
        image=get_image,
        contours=lambda wc: get_contour_file(wc)["contours"],
    output:
        mask=DICOM_MASK,
        report=DICOM_MASK_REPORT,
    log:
        "results/logs/dicom_mask/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/dicom_mask/{patient}/{sequence}.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=case_resource(600, 20),
        runtime=case_resource(5, 1),
    params:
        kind=lambda wc: get_contour_file(wc)["kind"],
        roi=lambda wc: get_contour_file(wc)["roi"],
        structures=config["masks"]["structures"],
        frame_of_reference=config["masks"]["frame_of_reference"],
    script:
        "../scripts/dicom_mask.py"


use rule dicom_mask as dicom_mask_reader2 with:
    input:
        image=get_image,
        contours=lambda wc: get_contour_file(wc, "mask_reader2")["contours"],
    output:
        mask=DICOM_MASK_READER2,
        report=DICOM_MASK_READER2_REPORT,
    log:
        "results/logs/dicom_mask_reader2/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/dicom_mask_reader2/{patient}/{sequence}.tsv"
    params:
        kind=lambda wc: get_contour_file(wc, "mask_reader2")["kind"],
        roi=lambda wc: get_contour_file(wc, "mask_reader2")["roi"],
        structures=config["masks"]["structures"],
        frame_of_reference=config["masks"]["frame_of_reference"],
