"""Work-arounds for Snakemake bugs that cost this workflow measurable time.

Loaded by ``workflow/rules/common.smk`` in Snakemake's own process, before any job runs.
Three patches, each applied only to the checked Snakemake version, each with an opt-out:
the scheduler's wake-ups (below), the group checks (:func:`screen_group_checks`) and a
SLURM group job's steps (:func:`run_group_steps_in_process`).

Scheduler wake-ups that grow with every finished job
-----------------------------------------------------
``JobScheduler.schedule`` (seen in 9.27.1, the pinned version) ends every pass by starting a
``threading.Timer`` that wakes the scheduler again after the ``--max-jobs-per-timespan``
timespan (default ``100/1s``). The pass that timer wakes starts another timer, so each
wake-up is a chain that never ends, and every finished job (which also wakes the scheduler)
starts one more chain. After ``k`` finished jobs the scheduler runs ``k`` passes a second,
each one re-checking the existence and size of the inputs of every ready job. On the demo
cohort's imaging stage (387 jobs) this took 145 s of Snakemake's own CPU in a 430 s run
with ``--cores 2``, CPU the two jobs then lacked. Upstream: snakemake/snakemake#3804 (the
same threads "forkbombing" a 10,000-job run).

The fix keeps one pending re-evaluation at most (the earliest deadline asked for wins).
The rate limit still works: if it holds jobs back, the single pending timer wakes the
scheduler when the timespan has passed. The timer is a daemon, so Snakemake no longer
waits up to one timespan after the last job.

The patch is applied only to the Snakemake versions it was checked against
(:data:`CHECKED_VERSIONS`) and only when the method still has the signature
``(self, delay)``; ``NPC_RADIOMICS_NO_SCHEDULER_FIX=1`` in the environment turns it off.
One line on stderr says whether it applied and why.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
import time

_PATCHED = "_npc_single_reevaluation"
#: Snakemake versions whose ``JobScheduler._schedule_reevalutation`` this was checked on.
CHECKED_VERSIONS = ("9.27.1",)
#: Set to 1 to leave Snakemake's scheduler as it is.
OPT_OUT_ENV = "NPC_RADIOMICS_NO_SCHEDULER_FIX"

log = logging.getLogger(__name__)


def _say(message: str) -> None:
    print(f"npc-radiomics: {message}", file=sys.stderr)


def limit_scheduler_wakeups(verbose: bool = False) -> bool:
    """Patch ``JobScheduler`` to keep at most one pending re-evaluation timer.

    Returns True if the patch is in place (now or from an earlier call), False if it was
    not applied: opted out (:data:`OPT_OUT_ENV`), a Snakemake version other than
    :data:`CHECKED_VERSIONS`, or a method that is gone or has another signature. With
    ``verbose``, one line on stderr says which.
    """
    say = _say if verbose else log.debug
    if os.environ.get(OPT_OUT_ENV, "") not in ("", "0"):
        say(f"scheduler work-around off ({OPT_OUT_ENV} is set)")
        return False
    try:
        import snakemake
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:  # pragma: no cover - a Snakemake without this module
        say("scheduler work-around not applied: no snakemake.scheduling.job_scheduler")
        return False
    version = getattr(snakemake, "__version__", "unknown")
    original = getattr(JobScheduler, "_schedule_reevalutation", None)
    if original is not None and getattr(original, _PATCHED, False):
        return True
    if version not in CHECKED_VERSIONS:
        say(
            f"scheduler work-around not applied: Snakemake {version} is not among the "
            f"checked versions {list(CHECKED_VERSIONS)}"
        )
        return False
    if original is None or list(inspect.signature(original).parameters) != ["self", "delay"]:
        say("scheduler work-around not applied: JobScheduler._schedule_reevalutation changed")
        return False

    lock = threading.Lock()

    def _schedule_reevalutation(self, delay) -> None:
        deadline = time.monotonic() + float(delay)
        with lock:
            pending = getattr(self, "_npc_reevaluation_timer", None)
            if pending is not None:
                if deadline >= self._npc_reevaluation_deadline:
                    return  # the pending timer wakes the scheduler before that anyway
                pending.cancel()  # an earlier deadline replaces the later one

            def wake() -> None:
                # Cleared before the release, so the pass this wakes can arm the next timer.
                with lock:
                    if self._npc_reevaluation_timer is timer:
                        self._npc_reevaluation_timer = None
                self._open_jobs.release()

            timer = threading.Timer(delay, wake)
            timer.daemon = True
            self._npc_reevaluation_timer = timer
            self._npc_reevaluation_deadline = deadline
            try:
                timer.start()
            except BaseException:
                self._npc_reevaluation_timer = None  # no timer runs: let the next call arm one
                raise

    setattr(_schedule_reevalutation, _PATCHED, True)
    JobScheduler._schedule_reevalutation = _schedule_reevalutation
    say(f"scheduler work-around applied (Snakemake {version}, snakemake#3804)")
    return True


# --------------------------------------------------------------------------------------
# Group checks that grow with the square of the cohort
# --------------------------------------------------------------------------------------
#: Snakemake versions whose ``DAG.update_groups`` / ``validate_group`` / ``_check_groups``
#: this was checked on.
GROUP_CHECK_VERSIONS = ("9.27.1",)
#: Set to 1 to leave Snakemake's group checks as they are.
GROUP_OPT_OUT_ENV = "NPC_RADIOMICS_NO_GROUP_CHECK_FIX"
_GROUP_PATCHED = "_npc_screened_group_checks"


def _ancestor_groups(dag, cache: dict, job) -> frozenset:
    """Group ids of ``job``'s strict ancestors (its dependencies, theirs, ...), memoised
    in ``cache``; iterative, so deep DAGs do not hit the recursion limit."""
    deps = dag._dependencies
    stack = [job]
    while stack:
        node = stack[-1]
        if node in cache:
            stack.pop()
            continue
        missing = [d for d in deps[node] if d not in cache]
        if missing:
            stack.extend(missing)
            continue
        ids = set()
        for d in deps[node]:
            ids |= cache[d]
            if d.group is not None:
                ids.add(d.group)
        cache[node] = frozenset(ids)
        stack.pop()
    return cache[job]


def _may_leave_and_return(dag, cache: dict, group) -> bool:
    """False if no path can leave ``group`` and enter it again: no dependency outside the
    group has an ancestor of the group's id. (True means: ask Snakemake's exact check.)"""
    members = group.jobs
    for job in members:
        for dep in dag._dependencies[job]:
            if dep not in members and group.groupid in _ancestor_groups(dag, cache, dep):
                return True
    return False


def screen_group_checks(verbose: bool = False) -> bool:
    """Patch ``DAG`` so that its two group checks run only where they can find something.

    Snakemake (9.27.1) checks every group job for a path that leaves the group and enters
    it again: ``validate_group`` walks, for every member, the whole DAG upstream of each
    dependency outside the group, and ``_check_groups`` does a depth-first walk upstream
    of every member of every group. For a per-case rule downstream of a rule that gathers
    every case (``extract_features`` needs the z-score statistics of all preprocessed
    images) both walks cover the whole per-case DAG once per case: quadratic in the
    cohort. For 1,000 patients the two took 307 of a 420 s profiled ``snakemake -n``.

    Such a path exists only if a dependency outside the group has, among its ancestors, a
    job with the group's id. The patch computes each job's set of ancestor group ids once
    (memoised, linear in the DAG) and runs Snakemake's own check only for a group where
    that screen finds a candidate, so an invalid group still gets Snakemake's own error.

    Returns True if the patch is in place; same version/opt-out rules as
    :func:`limit_scheduler_wakeups` (:data:`GROUP_CHECK_VERSIONS`,
    :data:`GROUP_OPT_OUT_ENV`).
    """
    say = _say if verbose else log.debug
    if os.environ.get(GROUP_OPT_OUT_ENV, "") not in ("", "0"):
        say(f"group-check work-around off ({GROUP_OPT_OUT_ENV} is set)")
        return False
    import snakemake
    from snakemake.dag import DAG

    version = getattr(snakemake, "__version__", "unknown")
    if getattr(DAG.update_groups, _GROUP_PATCHED, False):
        return True
    if version not in GROUP_CHECK_VERSIONS:
        say(
            f"group-check work-around not applied: Snakemake {version} is not among the "
            f"checked versions {list(GROUP_CHECK_VERSIONS)}"
        )
        return False
    signatures = {
        "update_groups": ["self"],
        "validate_group": ["self", "group"],
        "_check_groups": ["self"],
    }
    for name, params in signatures.items():
        method = getattr(DAG, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            say(f"group-check work-around not applied: DAG.{name} changed")
            return False
    original_update = DAG.update_groups
    original_validate = DAG.validate_group
    original_check = DAG._check_groups

    def update_groups(self):
        self._npc_ancestor_groups = {}  # the DAG does not change during one update
        try:
            return original_update(self)
        finally:
            del self._npc_ancestor_groups

    def validate_group(self, group):
        cache = getattr(self, "_npc_ancestor_groups", None)
        if cache is None or _may_leave_and_return(self, cache, group):
            return original_validate(self, group)
        return None

    def _check_groups(self):
        cache = getattr(self, "_npc_ancestor_groups", None)
        if cache is None or any(
            _may_leave_and_return(self, cache, group) for group in set(self._group.values())
        ):
            return original_check(self)
        return None

    setattr(update_groups, _GROUP_PATCHED, True)
    DAG.update_groups = update_groups
    DAG.validate_group = validate_group
    DAG._check_groups = _check_groups
    say(f"group-check work-around applied (Snakemake {version})")
    return True


# ---------------------------------------------------------------------------------
# A SLURM group job's cases run in its own process, not one srun + Snakemake each
# ---------------------------------------------------------------------------------
_INPROCESS_PATCHED = "_npc_group_steps_in_process"
#: Snakemake versions whose ``Workflow.is_local`` this was checked on.
INPROCESS_VERSIONS = ("9.27.1",)
#: Set to 1 to run every case of a group job as its own ``srun`` step, as the plugin does.
INPROCESS_OPT_OUT_ENV = "NPC_RADIOMICS_NO_INPROCESS_GROUPS"
#: The executor plugin that runs a SLURM job's Snakemake (the job process of a group job).
JOBSTEP_EXECUTOR = "slurm-jobstep"


def run_group_steps_in_process(verbose: bool = False) -> bool:
    """Patch ``Workflow.is_local`` so that, inside a SLURM job, the steps of a group job run
    with Snakemake's local executor.

    The SLURM executor plugin submits a group job (``group-components`` cases of one
    per-case stage) as one SLURM job, whose Snakemake process then runs each case through
    the ``slurm-jobstep`` executor: one ``srun`` step that starts another Snakemake, which
    parses the whole workflow again (2-3 s) before the case's script runs. Measured on the
    test SLURM: 8 cases of a 0.5 s script took 85 s as one group job, 37 s with this patch
    (the cases run one after another in the job's own Snakemake process, no ``srun``
    step). The job's Snakemake gets ``--cores`` from the profile and the group's summed
    resources, so its local executor runs the cases within the allocation exactly as wide
    as the profile says (``cores: 1`` in profiles/slurm: one at a time).

    Only rules that declare a ``group:`` are affected, and only in a job process whose
    executor is :data:`JOBSTEP_EXECUTOR` (never the main process, never a local run).
    Returns True if the patch is in place; same version/opt-out rules as
    :func:`limit_scheduler_wakeups` (:data:`INPROCESS_VERSIONS`,
    :data:`INPROCESS_OPT_OUT_ENV`).
    """
    say = _say if verbose else log.debug
    if os.environ.get(INPROCESS_OPT_OUT_ENV, "") not in ("", "0"):
        say(f"in-process group steps off ({INPROCESS_OPT_OUT_ENV} is set)")
        return False
    import snakemake
    import snakemake.api  # noqa: F401  (snakemake.workflow alone is a circular import)
    from snakemake.workflow import Workflow

    version = getattr(snakemake, "__version__", "unknown")
    if getattr(Workflow.is_local, _INPROCESS_PATCHED, False):
        return True
    if version not in INPROCESS_VERSIONS:
        say(
            f"in-process group steps not applied: Snakemake {version} is not among the "
            f"checked versions {list(INPROCESS_VERSIONS)}"
        )
        return False
    original = Workflow.is_local
    if list(inspect.signature(original).parameters) != ["self", "rule"]:
        say("in-process group steps not applied: Workflow.is_local changed")
        return False

    def is_local(self, rule):
        if original(self, rule):
            return True
        return in_group_job_process(self) and getattr(rule, "_group", None) is not None

    setattr(is_local, _INPROCESS_PATCHED, True)
    Workflow.is_local = is_local
    say(f"in-process group steps applied (Snakemake {version})")
    return True


def in_group_job_process(workflow) -> bool:
    """True in the Snakemake process of a SLURM job (the slurm-jobstep executor)."""
    plugin = workflow.executor_plugin
    return (
        not workflow.is_main_process
        and plugin is not None
        and str(getattr(plugin, "name", "")).endswith(JOBSTEP_EXECUTOR)
    )
