"""Work-arounds for Snakemake costs that this workflow measured.

Loaded by ``workflow/rules/common.smk`` in Snakemake's own process, before any job runs.
Two patches, each applied only to the checked Snakemake version, each with an opt-out:
the scheduler's wake-ups (below) and a SLURM job's rule run in the job's own process
(:func:`run_slurm_jobs_in_process`).

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
# A SLURM job's rule runs in the job's own Snakemake process, not in one more srun step
# --------------------------------------------------------------------------------------
_INPROCESS_PATCHED = "_npc_jobs_in_process"
#: Snakemake versions whose ``Workflow.is_local`` this was checked on.
INPROCESS_VERSIONS = ("9.27.1",)
#: Set to 1 to run each SLURM job's rule as its own ``srun`` step, as the plugin does.
INPROCESS_OPT_OUT_ENV = "NPC_RADIOMICS_NO_INPROCESS_JOBS"
#: The executor plugin that runs a SLURM job's Snakemake (the job process).
JOBSTEP_EXECUTOR = "slurm-jobstep"


def run_slurm_jobs_in_process(verbose: bool = False) -> bool:
    """Patch ``Workflow.is_local`` so that, inside a SLURM job, the job's rule runs with
    Snakemake's local executor in the job's own Snakemake process.

    The SLURM executor plugin (2.8.0) submits every job as ``sbatch`` -> Snakemake (the
    ``slurm-jobstep`` executor) -> ``srun`` -> another Snakemake, which parses the whole
    workflow again before the rule's script starts: two Python and Snakemake start-ups
    (about 2.3 s each here) and an ``srun`` step per job, 6-9 s of every SLURM job. With
    the patch the first Snakemake runs the rule itself, inside the allocation (``--cores``
    and the resources the plugin gave it, so no wider than the job asked for); SLURM
    still enforces the job's CPUs, memory and time. Measured on the test SLURM: the tiny
    test config's 29 SLURM jobs ran 5.6 s on average (about 8 s with a step each), the
    whole run 160 s instead of 194 s (README, "On a SLURM cluster").

    Only in a job process whose executor is :data:`JOBSTEP_EXECUTOR` (never the main
    process, never a local run). Returns True if the patch is in place; same
    version/opt-out rules as :func:`limit_scheduler_wakeups` (:data:`INPROCESS_VERSIONS`,
    :data:`INPROCESS_OPT_OUT_ENV`).
    """
    say = _say if verbose else log.debug
    if os.environ.get(INPROCESS_OPT_OUT_ENV, "") not in ("", "0"):
        say(f"in-process SLURM jobs off ({INPROCESS_OPT_OUT_ENV} is set)")
        return False
    import snakemake
    import snakemake.api  # noqa: F401  (snakemake.workflow alone is a circular import)
    from snakemake.workflow import Workflow

    version = getattr(snakemake, "__version__", "unknown")
    if getattr(Workflow.is_local, _INPROCESS_PATCHED, False):
        return True
    if version not in INPROCESS_VERSIONS:
        say(
            f"in-process SLURM jobs not applied: Snakemake {version} is not among the "
            f"checked versions {list(INPROCESS_VERSIONS)}"
        )
        return False
    original = Workflow.is_local
    if list(inspect.signature(original).parameters) != ["self", "rule"]:
        say("in-process SLURM jobs not applied: Workflow.is_local changed")
        return False

    def is_local(self, rule):
        return original(self, rule) or in_slurm_job_process(self)

    setattr(is_local, _INPROCESS_PATCHED, True)
    Workflow.is_local = is_local
    say(f"in-process SLURM jobs applied (Snakemake {version})")
    return True


def in_slurm_job_process(workflow) -> bool:
    """True in the Snakemake process of a SLURM job (the slurm-jobstep executor)."""
    plugin = workflow.executor_plugin
    return (
        not workflow.is_main_process
        and plugin is not None
        and str(getattr(plugin, "name", "")).endswith(JOBSTEP_EXECUTOR)
    )
