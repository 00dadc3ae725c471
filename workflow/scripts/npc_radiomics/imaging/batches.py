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


def run_cases(
    cases: Sequence[Mapping],
    work: Callable[[Mapping], object],
    stage: str,
    passthrough: tuple[type[BaseException], ...] = (),
) -> list:
    """``work(case)`` for each case in order, timed in the log; the results in order.

    A case that raises stops the batch with one line naming the stage, patient and
    sequence (exceptions of ``passthrough`` types, e.g. an InputError that already names
    them, are raised as they are).
    """
    results = []
    for k, case in enumerate(cases, start=1):
        start = time.perf_counter()
        try:
            results.append(work(case))
        except passthrough:
            raise
        except Exception as err:
            raise CaseError(
                f"{stage}: patient {case['patient_id']}, sequence {case['sequence']}: "
                f"{type(err).__name__}: {err}"
            ) from err
        log.info(
            "%s %d/%d: %s %s in %.2f s",
            stage,
            k,
            len(cases),
            case["patient_id"],
            case["sequence"],
            time.perf_counter() - start,
        )
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
