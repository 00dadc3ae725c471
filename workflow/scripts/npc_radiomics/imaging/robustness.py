"""The robustness filter of rule ``icc`` (pipeline step 7) for each ``robustness.method``.

- ``readers`` (default): ICC(2,1) between two readers' masks
  (:func:`npc_radiomics.imaging.icc.reader_icc_table`); icc.tsv exactly as before.
- ``perturbation``: ICC(2,1) across seeded image and contour perturbations of the
  training patients (:mod:`npc_radiomics.imaging.perturbation`); icc.tsv has the same
  columns plus ``method`` and ``n_perturbations``.
- ``both``: a feature is robust only when it passes both; icc.tsv keeps the readers'
  ``icc, ci_low, ci_high, n_patients`` and adds ``icc_perturbation``,
  ``ci_low_perturbation``, ``ci_high_perturbation``, ``n_patients_perturbation``,
  ``robust_readers``, ``robust_perturbation``.

The same threshold applies to every ICC; ``robust_features.txt`` lists the robust ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from npc_radiomics.imaging.icc import reader_icc_table, write_icc_outputs
from npc_radiomics.imaging.perturbation import perturbation_icc

__all__ = ["METHODS", "robustness_table", "robustness_report"]

METHODS = ("readers", "perturbation", "both")


def _feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c != "patient_id"]


def robustness_table(
    method: str,
    *,
    features: pd.DataFrame,
    threshold: float,
    enabled: bool,
    split: pd.DataFrame,
    features_reader2: pd.DataFrame | None = None,
    perturbed: pd.DataFrame | None = None,
    reference: str = "train",
) -> pd.DataFrame:
    """The ICC table of ``method`` (module docstring), one row per feature of
    ``features`` (the wide table: its columns set the features and their order).

    ``split`` decides the training patients (the perturbation ICC uses only its training
    cohort, whatever ``reference`` says for the readers'). With ``enabled`` false every
    feature is robust (the ICCs are still reported).
    """
    if method not in METHODS:
        raise ValueError(f"config key robustness.method: {method!r} is not one of {METHODS}")
    if method == "readers":
        return reader_icc_table(
            features,
            features_reader2,
            threshold=threshold,
            enabled=enabled,
            split=split,
            reference=reference,
        )
    pert = perturbation_icc(
        perturbed, split, threshold=threshold, features=_feature_columns(features)
    )
    if method == "perturbation":
        pert["reference"] = "train"
        pert["method"] = "perturbation"
        if not enabled:
            pert["robust"] = True
        return pert[
            [
                "feature",
                "icc",
                "ci_low",
                "ci_high",
                "robust",
                "n_patients",
                "reference",
                "method",
                "n_perturbations",
            ]
        ]
    readers = reader_icc_table(
        features,
        features_reader2,
        threshold=threshold,
        enabled=True,
        split=split,
        reference=reference,
    )
    table = readers.rename(columns={"robust": "robust_readers"})
    renamed = pert.set_index("feature")[["icc", "ci_low", "ci_high", "n_patients", "robust"]]
    renamed.columns = [f"{c}_perturbation" for c in renamed.columns]
    table = table.join(renamed, on="feature")
    table["robust_perturbation"] = table["robust_perturbation"].fillna(False).astype(bool)
    table["robust"] = table["robust_readers"] & table["robust_perturbation"]
    if not enabled:
        table["robust"] = True
    table["method"] = "both"
    table["n_perturbations"] = int(pert["n_perturbations"].iloc[0]) if len(pert) else 0
    first = ["feature", "icc", "ci_low", "ci_high", "robust", "n_patients", "reference"]
    return table[first + [c for c in table.columns if c not in first]]


def robustness_report(
    method: str,
    *,
    features: pd.DataFrame,
    threshold: float,
    enabled: bool,
    split: pd.DataFrame,
    icc_path: str | Path,
    robust_path: str | Path,
    histogram_path: str | Path,
    features_reader2: pd.DataFrame | None = None,
    perturbed: pd.DataFrame | None = None,
    reference: str = "train",
) -> pd.DataFrame:
    """Rule ``icc``: :func:`robustness_table` written as icc.tsv, robust_features.txt and
    the histogram (of the readers' ICC with ``both``)."""
    table = robustness_table(
        method,
        features=features,
        threshold=threshold,
        enabled=enabled,
        split=split,
        features_reader2=features_reader2,
        perturbed=perturbed,
        reference=reference,
    )
    write_icc_outputs(
        table,
        threshold,
        icc_path=icc_path,
        robust_path=robust_path,
        histogram_path=histogram_path,
    )
    return table
