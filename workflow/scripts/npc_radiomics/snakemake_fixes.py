"""Work-arounds for Snakemake bugs that cost this workflow measurable time.

Loaded by ``workflow/rules/common.smk`` in Snakemake's own process, before any job runs.

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

The fix keeps one pending re-evaluation at most. The rate limit still works: if it holds
jobs back, the single pending timer wakes the scheduler when the timespan has passed. The
timer is a daemon, so Snakemake no longer waits up to one timespan after the last job.
"""

from __future__ import annotations

import threading

_PATCHED = "_npc_single_reevaluation"


def limit_scheduler_wakeups() -> bool:
    """Patch ``JobScheduler`` to keep at most one pending re-evaluation timer.

    Returns True if the patch is in place (now or from an earlier call), False if this
    Snakemake has no such method (a version that changed the scheduler: nothing to fix).
    """
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:  # pragma: no cover - a Snakemake without this module
        return False
    original = getattr(JobScheduler, "_schedule_reevalutation", None)
    if original is None:
        return False
    if getattr(original, _PATCHED, False):
        return True

    lock = threading.Lock()

    def _schedule_reevalutation(self, delay) -> None:
        with lock:
            if getattr(self, "_npc_reevaluation_pending", False):
                return  # that timer wakes the scheduler within the timespan anyway
            self._npc_reevaluation_pending = True

        def wake() -> None:
            # Cleared before the release, so the pass this wakes can arm the next timer.
            with lock:
                self._npc_reevaluation_pending = False
            self._open_jobs.release()

        timer = threading.Timer(delay, wake)
        timer.daemon = True
        timer.start()

    setattr(_schedule_reevalutation, _PATCHED, True)
    JobScheduler._schedule_reevalutation = _schedule_reevalutation
    return True
