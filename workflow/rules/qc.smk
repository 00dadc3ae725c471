# Input QC per patient x sequence, gathered per centre (a checkpoint: later rules only see
# the patients that passed) and into the report's QC table.


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


# One checkpoint per centre: a new centre's cases never change another centre's table, so
# the training pool's rules (which read only the training centres' tables) stay done.
checkpoint qc:
    input:
        centre_qc_cases,
    output:
        QC_CENTRE,
    log:
        "results/logs/qc/{centre}.log",
    benchmark:
        "results/benchmarks/qc/{centre}.tsv"
    wildcard_constraints:
        centre="|".join(re.escape(c) for c in CENTRES),
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


# The QC table of the report: every centre's rows (read by the report only).
rule qc_table:
    input:
        expand(QC_CENTRE, centre=CENTRES),
    output:
        QC_TSV,
    log:
        "results/logs/qc_table/qc_table.log",
    benchmark:
        "results/benchmarks/qc_table/qc_table.tsv"
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
