"""Snakemake's scheduler wakes once per finished job and second, not once per both."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, SNAKEMAKE, require_snakemake_marker

N_JOBS = 40

_SNAKEFILE = """
import sys
sys.path.insert(0, {scripts!r})
if {patched}:
    from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups
    assert limit_scheduler_wakeups()

rule all:
    input:
        expand("out/{{i}}.txt", i=range({n}))

rule sleep:
    output:
        "out/{{i}}.txt"
    shell:
        "sleep 0.3 && touch {{output}}"
"""


def _scheduler_passes(folder, patched: bool, *args: str, n: int = N_JOBS) -> tuple[int, float]:
    """Run ``n`` short jobs on 2 cores; the scheduler's passes and the wall time."""
    require_snakemake_marker()
    folder.mkdir()
    snakefile = folder / "Snakefile"
    scripts = str(ROOT / "workflow" / "scripts")
    snakefile.write_text(_SNAKEFILE.format(scripts=scripts, patched=patched, n=n))
    cmd = [SNAKEMAKE, "--cores", "2", "--scheduler", "greedy", "--verbose", *args]
    cmd += ["-s", str(snakefile), "-d", str(folder)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((folder / "out").glob("*.txt"))) == n
    # Each pass of JobScheduler.schedule logs "Ready jobs: n" at debug level.
    return proc.stderr.count("Ready jobs"), wall


@pytest.mark.snakemake
def test_scheduler_passes_stay_linear(tmp_path):
    passes, wall = _scheduler_passes(tmp_path / "patched", patched=True)
    # One pass per finished job plus about one a second from the single pending timer.
    assert passes <= N_JOBS + wall + 10, (passes, wall)
    # Control: the pinned Snakemake without the fix piles up timer chains. If this fails,
    # upstream fixed the bug and npc_radiomics.glue.snakemake_fixes can go.
    unpatched, wall_unpatched = _scheduler_passes(tmp_path / "unpatched", patched=False)
    assert unpatched > 2 * passes, (unpatched, passes, wall_unpatched)


@pytest.mark.snakemake
def test_a_binding_rate_limit_still_releases_every_job(tmp_path):
    # 12 jobs at most 4 per 2 s: the limiter holds jobs back twice, and only the pending
    # re-evaluation timer can wake the scheduler for them once the running jobs are done.
    passes, wall = _scheduler_passes(
        tmp_path / "limited", True, "--max-jobs-per-timespan", "4/2s", n=12
    )
    assert wall >= 4.0, wall  # the limit held: 3 batches, 2 s apart
    assert passes <= 12 + wall + 10, (passes, wall)


def test_the_workflow_applies_the_fix():
    from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups

    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "limit_scheduler_wakeups(verbose=True)" in common
    # Idempotent: the workflow's include and any later call leave one patch in place.
    assert limit_scheduler_wakeups() and limit_scheduler_wakeups()


def test_one_wakeup_chain_that_never_breaks():
    """The wake-up a timer causes re-arms the next one; extra requests add no chain."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups

    assert limit_scheduler_wakeups()

    class Scheduler:  # the two members the patched method uses
        _open_jobs = threading.Semaphore(0)
        _schedule_reevalutation = JobScheduler._schedule_reevalutation

    scheduler = Scheduler()
    for _ in range(5):  # a scheduler pass, woken by the previous timer, re-arms at once
        for _ in range(3):  # e.g. two finished jobs woke passes too: still one timer
            scheduler._schedule_reevalutation(0.05)
        assert scheduler._open_jobs.acquire(timeout=2), "the wake-up chain broke"
    time.sleep(0.2)
    assert not scheduler._open_jobs.acquire(blocking=False), "more than one chain"


class _FakeScheduler:
    """The two members the patched method uses."""

    def __init__(self):
        from snakemake.scheduling.job_scheduler import JobScheduler

        self._open_jobs = threading.Semaphore(0)
        self._reevaluate = JobScheduler._schedule_reevalutation.__get__(self)


def test_an_earlier_deadline_replaces_a_later_pending_one():
    from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups

    assert limit_scheduler_wakeups()
    scheduler = _FakeScheduler()
    scheduler._reevaluate(30.0)  # e.g. a long --max-jobs-per-timespan window
    start = time.perf_counter()
    scheduler._reevaluate(0.05)  # a shorter one asked for later must not wait 30 s
    assert scheduler._open_jobs.acquire(timeout=2), "the earlier deadline was dropped"
    assert time.perf_counter() - start < 1.0
    scheduler._reevaluate(0.05)  # and the chain goes on after it
    assert scheduler._open_jobs.acquire(timeout=2)


def test_a_timer_that_fails_to_start_leaves_no_pending_flag(monkeypatch):
    from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups

    assert limit_scheduler_wakeups()
    scheduler = _FakeScheduler()

    def refuse(self):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as m:
        m.setattr(threading.Timer, "start", refuse)
        try:
            scheduler._reevaluate(0.01)
        except RuntimeError:
            pass
    scheduler._reevaluate(0.01)  # must arm a timer, not think one is pending
    assert scheduler._open_jobs.acquire(timeout=2), "a failed start blocked every later one"


def test_opt_out_and_version_check_leave_snakemake_alone(tmp_path):
    # In a fresh interpreter: the variable turns the patch off, and a version the fix was
    # not checked on is left alone; each says so in one line.
    code = (
        "import sys; sys.path.insert(0, {scripts!r})\n"
        "import snakemake\n"
        "from snakemake.scheduling.job_scheduler import JobScheduler\n"
        "before = JobScheduler._schedule_reevalutation\n"
        "{setup}\n"
        "from npc_radiomics.glue.snakemake_fixes import limit_scheduler_wakeups\n"
        "assert not limit_scheduler_wakeups(verbose=True)\n"
        "assert JobScheduler._schedule_reevalutation is before\n"
    )
    scripts = str(ROOT / "workflow" / "scripts")
    cases = {
        "opt-out": ("import os; os.environ['NPC_RADIOMICS_NO_SCHEDULER_FIX'] = '1'", "off"),
        "version": ("snakemake.__version__ = '99.0.0'", "99.0.0"),
    }
    for name, (setup, words) in cases.items():
        proc = subprocess.run(
            [sys.executable, "-c", code.format(scripts=scripts, setup=setup)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if "npc-radiomics:" in line]
        assert len(lines) == 1 and words in lines[0], (name, proc.stderr)


def test_slurm_jobs_run_in_process_only_inside_a_slurm_job():
    # The patched Workflow.is_local: True for every rule in a job process whose executor is
    # slurm-jobstep; Snakemake's own answer everywhere else (the main process, local runs).
    from types import SimpleNamespace

    from npc_radiomics.glue.snakemake_fixes import (
        in_slurm_job_process,
        run_slurm_jobs_in_process,
    )

    assert run_slurm_jobs_in_process() and run_slurm_jobs_in_process()  # idempotent
    from snakemake.workflow import Workflow

    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "run_slurm_jobs_in_process(verbose=MAIN_PROCESS)" in common

    def workflow(main: bool, executor: str | None):
        plugin = None if executor is None else SimpleNamespace(name=executor)
        return SimpleNamespace(
            is_main_process=main,
            executor_plugin=plugin,
            local_exec=False,
            _localrules={"merge_features"},
        )

    tuning = SimpleNamespace(name="tune_model_part", group=None)
    merge = SimpleNamespace(name="merge_features", group=None)
    for rule in (tuning, merge):
        rule.norun = rule.is_template_engine = False
    inside = workflow(False, "slurm-jobstep")
    assert in_slurm_job_process(inside)
    assert Workflow.is_local(inside, tuning) and Workflow.is_local(inside, merge)
    for other in (workflow(True, "slurm"), workflow(False, "slurm"), workflow(True, None)):
        assert not in_slurm_job_process(other)
        assert not Workflow.is_local(other, tuning)
    assert Workflow.is_local(workflow(True, "slurm"), merge)  # Snakemake's own answer
