# Cluster resources of every rule (mem_mb, runtime in minutes; the SLURM executor reads
# both): a base from the measured benchmark files (results/benchmarks/: every job starts a
# Python with the imaging or modelling stack, 200-450 MB peak RSS and 0.3-4.3 s on the tiny
# demo) with a margin, plus a term that grows with the input where it matters: the raw
# image's size on disk for the per-case imaging rules, the input tables (patients x
# features) for the modelling rules. Both are multiplied by the attempt number, so with
# --retries (profiles/slurm) a job SLURM killed for memory or time comes back with 2x, 3x.
# The callables live in npc_radiomics.cluster (unit-tested).
from npc_radiomics.cluster import cap_group_components, fixed_resource, table_resource
from npc_radiomics.cluster import case_resource as _case_resource

# group-components means at most n cases per SLURM group job (see npc_radiomics.cluster).
cap_group_components()


def _raw_image(wildcards):
    """The case's raw image: from the predict sheet in predict mode (every per-case job is
    then a predict job), else from the sample sheet."""
    if PREDICT:
        return _predict_case(wildcards)["image"]
    return get_image(wildcards)


def case_resource(base, per_image_mb):
    return _case_resource(base, per_image_mb, _raw_image)
