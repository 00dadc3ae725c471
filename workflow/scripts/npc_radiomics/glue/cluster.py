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


def batch_resource(
    base: float,
    per_case: float,
    per_image_mb: float,
    combine: str,
    images_of: Callable,
    per_worker: float = 0.0,
) -> Callable:
    """Resource callable of a batch job, whose cases run in W worker processes (W = the
    job's threads, at most its number of cases; npc_radiomics.imaging.batches.run_cases):

    - ``combine="max"`` (memory): (base + W x (per_worker + per_image_mb x the largest
      image's MB)) x attempt: the job's own process, then W workers each at the peak
      of the batch's largest case;
    - ``combine="sum"`` (runtime): (base + S / W + (1 - 1/W) x M) x attempt, with S the
      sum and M the largest over cases of (per_case + per_image_mb x image MB): a bound
      on the wall time of any order the workers take the cases in (Graham's list
      scheduling bound); with one worker, base + S; with a worker per case, base + M.

    ``images_of(wildcards)`` gives the raw image of each case of the batch; sizes are read
    once per batch (a stat per image, no image read) and cached once every file exists.
    """
    if combine not in ("max", "sum"):
        raise ValueError(f"combine must be max or sum, got {combine!r}")
    sizes: dict = {}

    def resource(wildcards, attempt, threads=1):
        key = tuple(wildcards)
        if key not in sizes or not all(sizes[key]):
            sizes[key] = [path_mb(path) for path in images_of(wildcards)]
        mb = sizes[key]
        workers = max(1, min(int(threads), len(mb)))
        if combine == "max":
            value = base + workers * (per_worker + per_image_mb * max(mb, default=0.0))
        else:
            cases = [per_case + per_image_mb * m for m in mb]
            longest = max(cases, default=0.0)
            if workers >= len(cases):  # one case each
                value = base + longest
            else:
                value = base + sum(cases) / workers + (1 - 1 / workers) * longest
        return grown(value, attempt)

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


def workflow_rule_names(rules_dir) -> set[str]:
    """Every rule name in the workflow's rule files, whatever the run's mode (some rules
    exist only in predict mode, only with a clinical table, only with LOCO ...)."""
    import re
    from pathlib import Path

    text = "".join(p.read_text() for p in sorted(Path(rules_dir).glob("*.smk")))
    names = set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, flags=re.M))
    return names | set(re.findall(r"^\s*use rule \w+ as (\w+)", text, flags=re.M))


def check_local_rules(names, rules, known: set[str] | None = None) -> list[str]:
    """The rules of config ``cluster.local_rules`` that this run defines, sorted.

    Each name must be a rule of the workflow (``known``: every rule name of its files, any
    mode; default: the run's rules); raises InputError naming the first bad one. A known
    rule that this run's mode does not define is left out.
    """
    from npc_radiomics.base.errors import InputError

    by_name = {rule.name: rule for rule in rules}
    known = set(by_name) | set(known or ())
    for name in names:
        if name not in known:
            raise InputError(
                f"config cluster.local_rules: {name!r} is not a rule of this workflow "
                f"(known: {', '.join(sorted(known))})"
            )
    return sorted(name for name in names if name in by_name)
