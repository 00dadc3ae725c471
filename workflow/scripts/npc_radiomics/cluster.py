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


def _case_count(group) -> int:
    """Cases (distinct wildcard values) in a group job."""
    return len({tuple(sorted(job.wildcards_dict.items())) for job in group.jobs})


def _group_order(group) -> str:
    return min(str(sorted(job.wildcards_dict.items())) for job in group.jobs)


def cap_group_components() -> None:
    """Keep ``--group-components NAME=n`` at n cases per group job (Snakemake 9.27).

    Snakemake merges n connected components into one group job every time it updates the
    DAG (after each checkpoint or job that changes it), and its group-job cache hands back
    the already merged groups, so n components become n x n, then all of them: the tiny
    demo's 96 QC cases ended up in one serial SLURM job. Here the merge packs groups in a
    stable order and never lets a group grow past n cases.
    """
    from collections import defaultdict

    from snakemake.dag import DAG

    if getattr(DAG, "_npc_capped_groups", False):
        return

    def _update_group_components(self):
        by_id = defaultdict(set)
        for group in self._group.values():
            by_id[group.groupid].add(group)
        for groupid, groups in by_id.items():
            lookup = self.workflow.parent_groupids.get(groupid, groupid)
            n = self.workflow.group_settings.group_components.get(lookup, 1)
            if n <= 1:
                continue
            primary, filled = None, 0
            for group in sorted(groups, key=_group_order):
                size = _case_count(group)
                if primary is not None and filled + size <= n:
                    primary.merge(group)
                    filled += size
                    # a merged group is sorted and sized anew by finalize()
                    primary._toposorted = primary._resources = None
                    for job in primary:
                        self._group[job] = primary
                else:
                    primary, filled = group, size
        for group in self._group.values():
            group.finalize()

    DAG._update_group_components = _update_group_components
    DAG._npc_capped_groups = True


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
    mode; default: the run's rules) and must not be a grouped per-case rule (Snakemake
    never runs a group job's rule locally); raises InputError naming the first bad one. A
    known rule that this run's mode does not define is left out.
    """
    from .errors import InputError

    by_name = {rule.name: rule for rule in rules}
    known = set(by_name) | set(known or ())
    for name in names:
        if name not in known:
            raise InputError(
                f"config cluster.local_rules: {name!r} is not a rule of this workflow "
                f"(known: {', '.join(sorted(known))})"
            )
        if name not in by_name:
            continue
        # the declared group (Rule.group reads None in a local run, set or not)
        group = getattr(by_name[name], "_group", None) or by_name[name].group
        if group is not None:
            raise InputError(
                f"config cluster.local_rules: {name!r} runs in SLURM group jobs "
                f"(group {group!r}), it cannot also run locally"
            )
    return sorted(name for name in names if name in by_name)
