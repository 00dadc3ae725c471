"""Cluster resources of the rules: mem_mb / runtime callables that scale and grow on retry.

Each value is a base (measured peak RSS or wall time with a margin) plus a term that grows
with the input, multiplied by Snakemake's ``attempt`` (1 on the first try, 2 on the first
retry, ...), so a job that SLURM killed for memory or time is resubmitted with more.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable


def path_mb(path: str) -> float:
    """Size in MB of a file, or of the files directly inside a folder (a DICOM series).

    0.0 for a path that does not exist yet (the demo cohort before it is written).
    """
    try:
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                return sum(e.stat().st_size for e in entries if e.is_file()) / 1e6
        return os.stat(path).st_size / 1e6
    except OSError:
        return 0.0


def grown(value: float, attempt: int) -> int:
    """``value`` scaled by the attempt number, rounded up to an integer."""
    return int(math.ceil(value * max(int(attempt), 1)))


def case_resource(base: float, per_image_mb: float, image_of: Callable) -> Callable:
    """Resource callable: (base + per_image_mb x image MB) x attempt.

    ``image_of(wildcards)`` gives the case's raw image path; its size is read once per
    case (a stat, no image read) and cached once the file exists.
    """
    sizes: dict = {}

    def resource(wildcards, attempt):
        key = tuple(wildcards)
        if not sizes.get(key):
            sizes[key] = path_mb(image_of(wildcards))
        return grown(base + per_image_mb * sizes[key], attempt)

    return resource


def table_resource(base: float, per_input_mb: float) -> Callable:
    """Resource callable: (base + per_input_mb x the job's input MB) x attempt."""

    def resource(wildcards, input, attempt):
        return grown(base + per_input_mb * input.size_mb, attempt)

    return resource


def fixed_resource(base: float) -> Callable:
    """Resource callable: base x attempt."""

    def resource(wildcards, attempt):
        return grown(base, attempt)

    return resource
