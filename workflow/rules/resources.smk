# Cluster resources of every rule (mem_mb, runtime in minutes; the SLURM executor reads
# both): a base from the measured benchmark files (results/benchmarks/: every job starts a
# Python with the imaging or modelling stack, 200-450 MB peak RSS and 0.3-4.3 s on the tiny
# demo) with a margin, plus a term that grows with the input where it matters: the raw
# images' size on disk for the batched imaging rules (memory: the job's process plus, per
# worker process (imaging.threads_per_job), the largest case of the batch; runtime: the sum
# over its cases shared by the workers), the input
# tables (patients x features) for the modelling rules. Both are multiplied by the attempt
# number, so with --retries (profiles/slurm) a job SLURM killed for memory or time comes
# back with 2x, 3x. The callables live in npc_radiomics.glue.cluster (unit-tested).
from npc_radiomics.glue.cluster import batch_resource as _batch_resource
from npc_radiomics.glue.cluster import fixed_resource, table_resource


def _batch_images(wildcards):
    """The raw images of a batch's cases: from the predict sheet in predict mode (every
    batch job is then a predict job), else from the sample sheet."""
    if PREDICT:
        return [case["image"] for case in predict_batch_cases(wildcards)]
    return [case["image"] for case in batch_cases(wildcards)]


def batch_resource(base, per_case, per_image_mb, combine, per_worker=0):
    return _batch_resource(
        base, per_case, per_image_mb, combine, _batch_images, per_worker
    )
