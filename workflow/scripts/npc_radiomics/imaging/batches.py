"""Per-case imaging stages in batches: one job runs K patients of one centre.

Snakemake spends about 4 ms of its own per job building the DAG and, at run time, each job
costs a Python start-up (about 1 s here) and on a cluster seconds of submission and status
polling. One job per patient x sequence and stage made a 10,000-patient DAG take minutes
and the demo's imaging stage mostly start-ups. So QC, preprocessing and extraction each run
per batch: the patients of one centre, sorted, cut into runs of
``imaging.patients_per_job`` (every sequence of a patient in the same batch, so QC can
decide a patient's inclusion inside its batch and the DAG needs no checkpoint).

A batch's patients depend only on its centre's patients, so adding a centre adds batches
and leaves every other batch's jobs (and files) as they are. Inside a batch each case is
computed exactly as a job of its own would compute it: results do not depend on the
batch size.

A batch job uses the cores it declares (``imaging.threads_per_job``): its cases run in that
many worker processes, each on one thread (:func:`run_cases`), and the batch's tables
list the cases in their sorted order whatever order they finished in, so the results do
not depend on the worker count either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One batch: its centre, its number within the centre (``000``, ``001``, ...) and
    its patients, sorted."""

    centre: str
    batch: str
    patients: tuple[str, ...]


def batch_name(k: int) -> str:
    return f"{k:03d}"


def plan_batches(
    centre_of: Mapping[str, str], patients_per_job: int
) -> dict[tuple[str, str], Batch]:
    """The batches of a cohort, keyed by (centre, batch).

    ``centre_of`` maps every patient to its centre. Each centre's patients are sorted and
    cut into consecutive runs of ``patients_per_job`` (the last may be shorter), so a
    new centre only adds batches, and new patients whose ids sort after the others only
    change their centre's last batch.
    """
    if int(patients_per_job) < 1:
        raise ValueError(f"patients_per_job must be at least 1, got {patients_per_job}")
    by_centre: dict[str, list[str]] = {}
    for patient, centre in centre_of.items():
        by_centre.setdefault(str(centre), []).append(str(patient))
    plan = {}
    for centre in sorted(by_centre):
        patients = sorted(by_centre[centre])
        for k, start in enumerate(range(0, len(patients), int(patients_per_job))):
            chunk = tuple(patients[start : start + int(patients_per_job)])
            plan[(centre, batch_name(k))] = Batch(centre, batch_name(k), chunk)
    return plan


class CaseError(RuntimeError):
    """A case of a batch failed: the message names the stage, patient and sequence."""


def case_error(stage: str, case: Mapping, err: BaseException) -> CaseError:
    return CaseError(
        f"{stage}: patient {case['patient_id']}, sequence {case['sequence']}: "
        f"{type(err).__name__}: {err}"
    )


# The batch a pool's forked workers run: set before the pool starts, so each worker
# inherits the work function (a closure, which could not be pickled) and the cases, and
# only a case's index and its result cross between the processes.
_BATCH: tuple[Callable[[Mapping], object], Sequence[Mapping]] | None = None


def _start_worker() -> None:
    """Cases are computed on one thread (SimpleITK, BLAS / OpenMP pools)."""
    from npc_radiomics.glue.runtime import limit_threads

    limit_threads(1)


def _run_one(index: int) -> tuple[object, float]:
    work, cases = _BATCH  # type: ignore[misc]
    start = time.perf_counter()
    return work(cases[index]), time.perf_counter() - start


def run_cases(
    cases: Sequence[Mapping],
    work: Callable[[Mapping], object],
    stage: str,
    passthrough: tuple[type[BaseException], ...] = (),
    workers: int = 1,
) -> list:
    """``work(case)`` for each case, timed in the log; the results in case order.

    Every case is computed on one thread (SimpleITK, BLAS / OpenMP pools: N4's result
    depends on ITK's thread count): with ``workers`` > 1 in that many worker processes
    forked from this one, else in this process. The results are the same, in the same
    order, whatever the count: each case is computed alone from its own inputs. The log counts
    the cases done out of the batch's. A case that raises stops the batch with one line
    naming the stage, patient and sequence (exceptions of ``passthrough`` types, e.g. an
    InputError that already names them, are raised as they are); with several workers,
    cases not started yet are cancelled and, of the cases that failed, the first in case
    order is reported.
    """
    workers = max(1, min(int(workers), len(cases)))
    if workers > 1:
        return _run_parallel(cases, work, stage, passthrough, workers)
    # One thread here too: N4's result depends on ITK's thread count.
    _start_worker()
    results = []
    for k, case in enumerate(cases, start=1):
        start = time.perf_counter()
        try:
            results.append(work(case))
        except passthrough:
            raise
        except Exception as err:
            raise case_error(stage, case, err) from err
        _log_done(stage, k, len(cases), case, time.perf_counter() - start)
    return results


def _log_done(stage: str, k: int, n: int, case: Mapping, seconds: float) -> None:
    log.info(
        "%s %d/%d: %s %s in %.2f s",
        stage,
        k,
        n,
        case["patient_id"],
        case["sequence"],
        seconds,
    )


def _run_parallel(cases, work, stage, passthrough, workers) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _BATCH
    # fork: the workers inherit the work function and the imported stack; a spawned
    # worker would re-run the rule's script, which Snakemake runs as __main__.
    context = multiprocessing.get_context("fork")
    results: list = [None] * len(cases)
    failed: dict[int, BaseException] = {}
    _BATCH = (work, cases)
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker) as pool:
            futures = {pool.submit(_run_one, i): i for i in range(len(cases))}
            log.info("%s: %d cases in %d worker processes", stage, len(cases), workers)
            done = 0
            for future in as_completed(futures):
                i = futures[future]
                if future.cancelled():
                    continue
                err = future.exception()
                if err is not None:
                    failed[i] = err
                    for other in futures:
                        other.cancel()  # the cases not started yet
                    continue
                results[i], seconds = future.result()
                done += 1
                _log_done(stage, done, len(cases), cases[i], seconds)
    finally:
        _BATCH = None
    if failed:
        first = min(failed)
        err = failed[first]
        if isinstance(err, passthrough):
            raise err
        raise case_error(stage, cases[first], err) from err
    return results


def included(cases: Iterable[Mapping], qc_rows) -> list[Mapping]:
    """The cases of patients that QC included (``qc_rows``: the batch's QC table)."""
    keep = set(qc_rows.loc[qc_rows["patient_status"] == "included", "patient_id"].astype(str))
    return [case for case in cases if str(case["patient_id"]) in keep]


def preprocessed_paths(folder: str, patient: str, sequence: str) -> dict[str, str]:
    """Where a batch's preprocessing job writes one case inside its folder: the image,
    the mask and the reader-2 mask (when the case has one)."""
    stem = f"{folder}/{patient}/{sequence}"
    return {
        "image": f"{stem}_image.nii.gz",
        "mask": f"{stem}_mask.nii.gz",
        "mask_reader2": f"{stem}_mask_reader2.nii.gz",
    }
