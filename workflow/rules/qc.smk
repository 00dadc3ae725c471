# Input QC per patient x sequence, gathered into the QC table (a checkpoint: later rules
# only see the patients that passed).


rule qc_case:
    input:
        image=get_image,
        mask=get_mask,
        mask_reader2=get_mask_reader2,
        # Reports of masks rasterised from DICOM RTSTRUCT / SEG (rule dicom_mask), if any.
        mask_report=get_mask_report,
        mask_reader2_report=get_mask_reader2_report,
    output:
        QC_CASE,
    log:
        "results/logs/qc_case/{patient}/{sequence}.log",
    benchmark:
        "results/benchmarks/qc_case/{patient}/{sequence}.tsv"
    group:
        "qc_cases"
    conda:
        "../../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=case_resource(500, 20),
        runtime=case_resource(5, 1),
    params:
        center=get_center,
        on_fail=config["qc"]["on_fail"],
        qc=config["qc"],
        masks=config["masks"],
    script:
        "../scripts/qc_case.py"


checkpoint qc:
    input:
        all_qc_cases(),
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
