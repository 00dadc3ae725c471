"""Train / test split of the training pool; external centres keep their own name."""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError


def make_split(
    patients: pd.DataFrame,
    train_centers: list[str],
    external_centers: list[str],
    test_size: float,
    seed: int,
    stratify: bool = True,
) -> pd.DataFrame:
    """Stratified, seeded split of the training pool.

    ``patients``: columns patient_id, center, label (0/1). Returns patient_id, center,
    cohort (``train``, ``test`` or the external centre's name), label; sorted by
    patient_id. The result depends only on the sorted patient list and the seed.
    """
    from sklearn.model_selection import train_test_split

    df = patients[["patient_id", "center", "label"]].copy()
    df = df.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    unknown = sorted(set(df["center"]) - set(train_centers) - set(external_centers))
    if unknown:
        raise InputError(f"split: centre(s) {unknown} are neither training nor external in config")
    pool = df[df["center"].isin(train_centers)]
    if pool.empty:
        raise InputError(f"split: no patient from the training centres {train_centers}")
    counts = pool["label"].value_counts()
    if len(counts) < 2:
        raise InputError(f"split: the training pool has one class only ({counts.to_dict()})")
    n_test = int(np.ceil(test_size * len(pool)))
    if stratify and (counts.min() < 2 or n_test < 2 or len(pool) - n_test < 2):
        raise InputError(
            f"split: too few patients to stratify (class counts {counts.to_dict()}, "
            f"test size {n_test})"
        )
    train_ids, test_ids = train_test_split(
        pool["patient_id"].to_numpy(),
        test_size=test_size,
        random_state=seed,
        stratify=pool["label"].to_numpy() if stratify else None,
    )
    cohort = pd.Series(
        df["center"].to_numpy(copy=True), index=df["patient_id"].to_numpy(), dtype=object
    )
    cohort[np.sort(train_ids)] = "train"
    cohort[np.sort(test_ids)] = "test"
    df["cohort"] = cohort.loc[df["patient_id"]].to_numpy()
    return df[["patient_id", "center", "cohort", "label"]]


def patients_from_clinical(
    clinical: pd.DataFrame, qc: pd.DataFrame, centers: dict[str, str], outcome: str
) -> pd.DataFrame:
    """Patients that passed QC, with centre (from the sample sheet) and label (clinical).

    ``centers`` maps patient_id to centre; ``qc`` is the gathered QC table.
    """
    included = set(qc.loc[qc["patient_status"] == "included", "patient_id"].astype(str))
    df = clinical[clinical["patient_id"].isin(included)]
    return pd.DataFrame(
        {
            "patient_id": df["patient_id"].to_numpy(),
            "center": df["patient_id"].map(centers).to_numpy(),
            "label": df[outcome].astype(int).to_numpy(),
        }
    )


def split_from_table(
    table: pd.DataFrame,
    id_col: str,
    outcome: str,
    center_col: str | None,
    cohort_col: str | None,
    train_centers: list[str],
    external_centers: list[str],
    test_size: float,
    seed: int,
    stratify: bool = True,
) -> pd.DataFrame:
    """The split for a ready feature table (features-in entry).

    With a cohort column, its values (``train``, ``test`` or an external centre) are used
    as given; otherwise the training pool (rows whose centre is a training centre, or
    every row when the table has no centre column) is split as :func:`make_split` does.
    """
    for col, what in ((id_col, "ID"), (outcome, "outcome")):
        if col not in table.columns:
            raise InputError(f"features table: no {what} column {col!r}")
    if table[id_col].isna().any() or table[id_col].astype(str).duplicated().any():
        raise InputError(f"features table: ID column {id_col!r} has missing or duplicated IDs")
    labels = pd.to_numeric(table[outcome], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        pid = table[id_col].astype(str)[bad].iloc[0]
        raise InputError(f"features table: outcome {outcome!r} of {pid} is not 0 or 1")
    for key, col in (("center", center_col), ("cohort", cohort_col)):
        if col and col not in table.columns:
            raise InputError(
                f"config key features_table_columns.{key}: features table has no column "
                f"{col!r}; set it to null if the table has none"
            )
    has_center = bool(center_col)
    centers = (
        table[center_col].astype(str) if has_center else pd.Series(train_centers[0], table.index)
    )
    patients = pd.DataFrame(
        {
            "patient_id": table[id_col].astype(str).to_numpy(),
            "center": centers.to_numpy(),
            "label": labels.astype(int).to_numpy(),
        }
    )
    if cohort_col:
        patients["cohort"] = table[cohort_col].astype(str).to_numpy()
        known = {"train", "test", *external_centers}
        odd = sorted(set(patients["cohort"]) - known)
        if odd:
            raise InputError(f"features table: unknown cohort value(s) {odd} in {cohort_col!r}")
        patients = patients.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
        return patients[["patient_id", "center", "cohort", "label"]]
    return make_split(patients, train_centers, external_centers, test_size, seed, stratify)


def included_patients(
    clinical: str,
    qc,
    samples: dict[str, str],
    outcome: str,
    continuous=(),
    categorical=(),
    sheet: str | None = None,
) -> pd.DataFrame:
    """patient_id, center, label of the ``samples`` patients (patient -> centre) that QC
    included (``qc``: the batches' QC tables of these patients), labels from these
    patients' rows of the clinical table."""
    from npc_radiomics.base.io import as_paths, read_table
    from npc_radiomics.inputs import sheets

    # Only these patients' rows: the rule reruns when they change (a hash of them is its
    # param), so it must not depend on any other row.
    table = sheets.read_sheet(clinical, "clinical table", sheet)
    table = table[table["patient_id"].isin(set(samples))]
    clinical_df = sheets.validate_clinical(table, outcome, list(continuous), list(categorical))
    sheets.cross_check(pd.DataFrame({"patient_id": sorted(samples)}), clinical_df)
    frames = [read_table(path, dtype=str) for path in as_paths(qc)]
    qc_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["patient_id"])
    return patients_from_clinical(clinical_df, qc_df, samples, outcome)


def split_rule(
    *,
    outcome: str,
    train_centers: list[str],
    external_centers: list[str],
    test_size: float,
    seed: int,
    stratify: bool,
    cohorts: list[str],
    table: str | None = None,
    table_columns: dict | None = None,
    clinical: str | None = None,
    qc=None,
    samples: dict[str, str] | None = None,
    continuous: list[str] = (),
    categorical: list[str] = (),
    clinical_rows: str | None = None,
    clinical_sheet: str | None = None,
    features_sheet: str | None = None,
) -> pd.DataFrame:
    """Rules ``split`` (``cohorts`` train and test: the training pool's split) and
    ``external_cohort`` (``cohorts``: one external centre): the rows of these cohorts.

    From a ready feature table (``table`` with its ``table_columns``), or from the
    clinical table, the QC tables of these patients' batches and their patient -> centre
    map (``samples``: the pool's patients, or one centre's). The pool's split is
    :func:`make_split` of the pool alone, which equals the pool's rows of a split of every
    cohort (external patients never change it). ``clinical_rows`` (a hash of these
    patients' clinical rows, so the rule reruns when they change) is not used here;
    ``clinical_sheet`` / ``features_sheet``: the worksheet of an .xlsx clinical / feature
    table (None: its first sheet)."""
    if table is not None:
        from npc_radiomics.base.io import read_features_table

        cols = table_columns or {"id": "patient_id"}
        split = split_from_table(
            read_features_table(table, cols, features_sheet),
            cols["id"],
            outcome,
            cols.get("center"),
            cols.get("cohort"),
            train_centers,
            external_centers,
            test_size,
            seed,
            stratify,
        )
        return split[split["cohort"].isin(cohorts)].reset_index(drop=True)
    patients = included_patients(
        clinical, qc, samples or {}, outcome, continuous, categorical, clinical_sheet
    )
    if list(cohorts) == ["train", "test"]:
        return make_split(patients, train_centers, [], test_size, seed, stratify)
    (centre,) = cohorts
    df = patients.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    df["cohort"] = centre
    return df[["patient_id", "center", "cohort", "label"]]


def gather_split(paths) -> pd.DataFrame:
    """Rule ``split_table``: the pool's split and every external cohort in one table
    (results/split/split.tsv), sorted by patient_id."""
    from npc_radiomics.base.io import as_paths, read_table

    frames = [read_table(path, dtype={"patient_id": str}) for path in as_paths(paths)]
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    return table[["patient_id", "center", "cohort", "label"]]
