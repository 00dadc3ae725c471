# The synthetic multi-centre demo cohort (images, masks, sheets), made by the workflow.
if DEMO:

    rule demo_cohort:
        output:
            samples=f"{DEMO_DIR}/samples.tsv",
            clinical=f"{DEMO_DIR}/clinical.tsv",
            images=sorted(
                set(SAMPLES["image"])
                | set(SAMPLES["mask"])
                | set(p for p in SAMPLES["mask_reader2"] if p)
            ),
        log:
            "results/logs/demo_cohort/demo_cohort.log",
        benchmark:
            "results/benchmarks/demo_cohort/demo_cohort.tsv"
        conda:
            "../../envs/core.yaml"
        threads: 1
        resources:
            mem_mb=fixed_resource(2000),
            runtime=fixed_resource(30),
        params:
            settings=DEMO_SETTINGS,
            preset=config["demo"]["preset"],
            seed=rule_seed("demo"),
            outdir=lambda wc, output: os.path.dirname(output.samples),
        script:
            "../scripts/demo_cohort.py"
