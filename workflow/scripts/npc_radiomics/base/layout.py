"""The documented results layout, in one place: shared table columns and cohort order.

Every module that writes or reads a predictions table, or lists cohorts, takes its
columns and its order from here (``docs/pipeline.md``, "Results layout").
"""

from __future__ import annotations

from collections.abc import Iterable

#: Columns of results/predictions/predictions.tsv (and each model's predictions.tsv).
PREDICTION_COLUMNS = ["patient_id", "cohort", "model", "probability", "label"]
#: Columns of results/predictions/nested_cv.tsv (and each outer fold's table).
NESTED_PREDICTION_COLUMNS = ["patient_id", "model", "outer_fold", "probability", "label"]
#: The cohorts of the training pool; every other cohort is an external centre.
POOL_COHORTS = ("train", "test")


#: The pooled cohort of every external centre (when there are two or more).
POOLED_EXTERNAL = "external"
#: Cohorts the final models were fitted on: their results are in-sample (optimistic).
IN_SAMPLE_COHORTS = ("train",)


def in_sample(cohort: str) -> bool:
    """True for a cohort the final models were fitted on (:data:`IN_SAMPLE_COHORTS`)."""
    return cohort in IN_SAMPLE_COHORTS


def cohort_label(cohort: str) -> str:
    """The cohort's name for titles and tables: ``train (in-sample)`` for the cohort the
    final models were fitted on, the name itself otherwise."""
    return f"{cohort} (in-sample)" if in_sample(cohort) else cohort


def cohort_order(cohorts: Iterable[str]) -> list[str]:
    """train, test, then the other cohorts (external centres) sorted by name, then the
    pooled ``external`` cohort."""
    cohorts = list(dict.fromkeys(cohorts))
    first = [c for c in POOL_COHORTS if c in cohorts]
    last = [POOLED_EXTERNAL] if POOLED_EXTERNAL in cohorts else []
    return first + sorted(c for c in cohorts if c not in first + last) + last


def cohort_rank(cohorts) -> list[int]:
    """Each cohort's position in :func:`cohort_order` (a sort key for pandas)."""
    cohorts = list(cohorts)
    rank = {c: k for k, c in enumerate(cohort_order(cohorts))}
    return [rank[c] for c in cohorts]


TREAT_ALL = "treat_all"


TREAT_NONE = "treat_none"
