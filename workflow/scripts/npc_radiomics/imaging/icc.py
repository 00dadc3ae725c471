"""Inter-reader robustness of radiomics features: ICC(2,1) vectorised over features.

pipeline step 7. ICC(2,1) (Shrout & Fleiss) = ICC(A,1) (McGraw & Wong): two-way random
effects, absolute agreement, single rater. The 95% CI is McGraw & Wong's, computed
exactly as ``pingouin.intraclass_corr`` does for its ``ICC(A,1)`` / ``ICC2`` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "icc2_1",
    "feature_icc",
    "icc_report",
    "reader_icc_table",
    "write_icc_outputs",
    "reference_patients",
]

# Fewer patients with two readers than this make ICC(2,1) and its CI meaningless.
MIN_READER2_PATIENTS = 3


def icc2_1(ratings: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICC(2,1) and its (1 - alpha) CI for many features at once.

    Args:
        ratings: array (n_subjects, n_raters, n_features), complete (no NaN). Needs at
            least 2 subjects and 2 raters.
        alpha: 1 - confidence level of the interval.

    Returns:
        (icc, ci_low, ci_high), each shape (n_features,). A feature with no variance at
        all (every subject and rater equal) gets NaN.
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    n, k, _ = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs >= 2 subjects and >= 2 raters, got {n} x {k}")
    grand = x.mean(axis=(0, 1))
    subject_means = x.mean(axis=1)
    rater_means = x.mean(axis=0)
    ss_subjects = k * np.sum((subject_means - grand) ** 2, axis=0)
    ss_raters = n * np.sum((rater_means - grand) ** 2, axis=0)
    residual = x - subject_means[:, None, :] - rater_means[None, :, :] + grand
    ss_error = np.sum(residual**2, axis=(0, 1))
    df_subjects, df_raters, df_error = n - 1, k - 1, (n - 1) * (k - 1)
    ms_subjects = ss_subjects / df_subjects  # pingouin's msb
    ms_raters = ss_raters / df_raters  # msj
    ms_error = ss_error / df_error  # mse

    with np.errstate(divide="ignore", invalid="ignore"):
        icc = (ms_subjects - ms_error) / (
            ms_subjects + (k - 1) * ms_error + k * (ms_raters - ms_error) / n
        )
        # McGraw & Wong (1996) CI for ICC(A,1): Satterthwaite df for the denominator.
        f_raters = ms_raters / ms_error
        base = n * (1 + (k - 1) * icc) - k * icc
        v_num = df_error * (k * icc * f_raters + base) ** 2
        v_den = df_subjects * k**2 * icc**2 * f_raters**2 + base**2
        v = v_num / v_den
        f_upper = stats.f.ppf(1 - alpha / 2, df_subjects, v)
        f_lower = stats.f.ppf(1 - alpha / 2, v, df_subjects)
        spread = k * ms_raters + (k * n - k - n) * ms_error
        ci_low = n * (ms_subjects - f_upper * ms_error) / (f_upper * spread + n * ms_subjects)
        ci_high = n * (f_lower * ms_subjects - ms_error) / (spread + n * f_lower * ms_subjects)
    return icc, ci_low, ci_high


def feature_icc(
    reader1: pd.DataFrame,
    reader2: pd.DataFrame,
    *,
    threshold: float = 0.85,
    id_column: str = "patient_id",
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """ICC(2,1) of every feature between two readers' segmentations.

    Args:
        reader1: wide table (``id_column`` + features) from reader-1 masks.
        reader2: same layout from reader-2 masks, for the patients a second reader did.
        threshold: a feature is robust when its ICC is strictly above it.
        id_column: patient identifier column.
        features: features to rate (default: all feature columns of ``reader1``). A
            feature missing from ``reader2`` gets NaN and is not robust.

    Returns:
        DataFrame ``feature, icc, ci_low, ci_high, robust, n_patients`` in feature order.
        Each feature uses the patients having both readings of it (complete cases), so a
        sequence without reader-2 masks for some patients does not shrink the others.
    """
    r1 = reader1.set_index(id_column)
    r2 = reader2.set_index(id_column)
    names = list(features) if features is not None else [c for c in r1.columns]
    common = r1.index.intersection(r2.index).sort_values()
    a = r1.reindex(index=common, columns=names).to_numpy(dtype=np.float64)
    b = r2.reindex(index=common, columns=names).to_numpy(dtype=np.float64)
    complete = np.isfinite(a) & np.isfinite(b)

    out = {
        "icc": np.full(len(names), np.nan),
        "ci_low": np.full(len(names), np.nan),
        "ci_high": np.full(len(names), np.nan),
    }
    n_patients = complete.sum(axis=0)
    # Features share a pattern of available patients (typically one per sequence): one
    # vectorised ICC per pattern.
    patterns, group = np.unique(complete.T, axis=0, return_inverse=True)
    for g, rows in enumerate(patterns):
        cols = np.flatnonzero(group.ravel() == g)
        if rows.sum() < 2:
            continue
        stacked = np.stack([a[rows][:, cols], b[rows][:, cols]], axis=1)
        icc, low, high = icc2_1(stacked)
        out["icc"][cols], out["ci_low"][cols], out["ci_high"][cols] = icc, low, high
    table = pd.DataFrame({"feature": names, **out})
    table["robust"] = table["icc"] > threshold  # NaN compares False: not robust
    table["n_patients"] = n_patients
    return table


def reference_patients(split: pd.DataFrame | None, reference: str) -> list[str] | None:
    """Patients the ICC may use: the training cohort (``train``) or every one (``all``).

    ``split``: results/split/split.tsv (patient_id, cohort). None with ``all``.
    """
    if reference == "all":
        return None
    if reference != "train":
        raise ValueError(f"config key robustness.reference: {reference!r} is not train or all")
    if split is None:
        raise ValueError("robustness.reference train needs the split table")
    return sorted(split.loc[split["cohort"] == "train", "patient_id"].astype(str))


def reader_icc_table(
    reader1: pd.DataFrame,
    reader2: pd.DataFrame,
    *,
    threshold: float,
    enabled: bool,
    split: pd.DataFrame | None = None,
    reference: str = "train",
) -> pd.DataFrame:
    """The readers' ICC table of :func:`icc_report` (``robust`` all true when the filter
    is off), without writing it.

    Raises:
        ValueError: filter on but fewer than :data:`MIN_READER2_PATIENTS` reference
            patients have reader-2 features.
    """
    keep = reference_patients(split, reference)
    if keep is not None:
        reader1 = reader1[reader1["patient_id"].astype(str).isin(keep)]
        reader2 = reader2[reader2["patient_id"].astype(str).isin(keep)]
    n_reader2 = int(reader1["patient_id"].isin(reader2["patient_id"]).sum())
    if enabled and n_reader2 < MIN_READER2_PATIENTS:
        raise ValueError(
            f"robustness filter: {n_reader2} {reference}-reference patient(s) have reader-2 "
            f"masks, need >= {MIN_READER2_PATIENTS} (add mask_reader2 to the sample sheet, "
            "set robustness.reference: all, or robustness.enabled: false)"
        )
    table = feature_icc(reader1, reader2, threshold=threshold)
    table["reference"] = reference
    if not enabled:
        table["robust"] = True
    return table


def write_icc_outputs(
    table: pd.DataFrame,
    threshold: float,
    *,
    icc_path: str | Path,
    robust_path: str | Path,
    histogram_path: str | Path,
) -> None:
    """``icc.tsv``, ``robust_features.txt`` (the features whose ``robust`` is true) and
    the histogram of ``icc``."""
    table.to_csv(icc_path, sep="\t", index=False, lineterminator="\n")
    robust = table.loc[table["robust"].astype(bool), "feature"]
    Path(robust_path).write_text("".join(f"{name}\n" for name in robust))
    from npc_radiomics.figures import plot_icc_histogram  # matplotlib only where a figure is drawn

    plot_icc_histogram(table, threshold, histogram_path)


def icc_report(
    reader1: pd.DataFrame,
    reader2: pd.DataFrame,
    *,
    threshold: float,
    enabled: bool,
    icc_path: str | Path,
    robust_path: str | Path,
    histogram_path: str | Path,
    split: pd.DataFrame | None = None,
    reference: str = "train",
) -> pd.DataFrame:
    """The ICC rule's outputs: ``icc.tsv``, ``robust_features.txt`` and the histogram.

    ``robust`` marks the features kept by the robustness filter: ICC > ``threshold``, or
    every feature when the filter is off (``enabled`` false; ICCs still reported where
    there are reader-2 patients). ``reference`` ``train`` (with ``split``) rates the
    training-cohort patients only, so test and external patients' second readings never
    decide which features the models see; ``all`` is the paper's whole-cohort variant.
    icc.tsv carries ``n_patients`` (per feature) and ``reference``.

    Raises:
        ValueError: filter on but fewer than :data:`MIN_READER2_PATIENTS` reference
            patients have reader-2 features.
    """
    table = reader_icc_table(
        reader1, reader2, threshold=threshold, enabled=enabled, split=split, reference=reference
    )
    write_icc_outputs(
        table,
        threshold,
        icc_path=icc_path,
        robust_path=robust_path,
        histogram_path=histogram_path,
    )
    return table
