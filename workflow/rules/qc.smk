# Input QC per patient x sequence, one job per batch of patients (npc_radiomics.imaging.batches);
# each batch's table says which of its patients are included, so the later stages read
# their own batch's table and the DAG needs no checkpoint. The QC table of the report
# gathers every batch. A mask given as a DICOM RTSTRUCT or SEG is first rasterised onto its
# series' grid by the same job (npc_radiomics.inputs.dicom_masks; results/masks/: the NIfTI
# label mask preprocessing reads and the report QC reads), so a DICOM cohort adds no job
# per case.


rule qc_batch:
    input:
        images=batch_files("image"),
        # The sheet's masks: label images, or DICOM RTSTRUCT / SEG files to rasterise.
        masks=batch_files("mask"),
        masks_reader2=batch_files("mask_reader2"),
    output:
        QC_BATCH,
    log:
        "results/logs/qc_batch/{centre}/{batch}.log",
    benchmark:
        "results/benchmarks/qc_batch/{centre}/{batch}.tsv"
    wildcard_constraints:
        centre=centre_constraint(CENTRES),
    conda:
        "../../envs/core.yaml"
    threads: THREADS_PER_JOB
    resources:
        mem_mb=batch_resource(300, 0, 20, "max", per_worker=300),
        runtime=batch_resource(5, 0.5, 1, "sum"),
    params:
        cases=qc_cases(),
        on_fail=config["qc"]["on_fail"],
        qc=config["qc"],
        masks=config["masks"],
        sequences=SEQUENCES,
    script:
        "../scripts/qc_batch.py"


rule qc:
    input:
        batch_paths(QC_BATCH, CENTRES),
    output:
        QC_TSV,
    log:
        "results/logs/qc/qc.log",
    benchmark:
        "results/benchmarks/qc/qc.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=fixed_resource(1000),
        runtime=fixed_resource(10),
    params:
        sequences=SEQUENCES,
    script:
        "../scripts/qc.py"
