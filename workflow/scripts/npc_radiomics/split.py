"""Train / test split of the training pool; external centres keep their own name."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError


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
    clinical: str, qc, samples: dict[str, str], outcome: str, continuous=(), categorical=()
) -> pd.DataFrame:
    """patient_id, center, label of the ``samples`` patients (patient -> centre) that QC
    included (``qc``: the batches' QC tables of these patients), labels from these
    patients' rows of the clinical table."""
    from . import sheets
    from .io import as_paths, read_table

    # Only these patients' rows: the rule reruns when they change (a hash of them is its
    # param), so it must not depend on any other row.
    table = sheets.read_sheet(clinical, "clinical table")
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
) -> pd.DataFrame:
    """Rules ``split`` (``cohorts`` train and test: the training pool's split) and
    ``external_cohort`` (``cohorts``: one external centre): the rows of these cohorts.

    From a ready feature table (``table`` with its ``table_columns``), or from the
    clinical table, the QC tables of these patients' batches and their patient -> centre
    map (``samples``: the pool's patients, or one centre's). The pool's split is
    :func:`make_split` of the pool alone, which equals the pool's rows of a split of every
    cohort (external patients never change it). ``clinical_rows`` (a hash of these
    patients' clinical rows, so the rule reruns when they change) is not used here."""
    if table is not None:
        from .io import read_features_table

        cols = table_columns or {"id": "patient_id"}
        split = split_from_table(
            read_features_table(table, cols),
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
    patients = included_patients(clinical, qc, samples or {}, outcome, continuous, categorical)
    if list(cohorts) == ["train", "test"]:
        return make_split(patients, train_centers, [], test_size, seed, stratify)
    (centre,) = cohorts
    df = patients.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    df["cohort"] = centre
    return df[["patient_id", "center", "cohort", "label"]]


def gather_split(paths) -> pd.DataFrame:
    """Rule ``split_table``: the pool's split and every external cohort in one table
    (results/split/split.tsv), sorted by patient_id."""
    from .io import as_paths, read_table

    frames = [read_table(path, dtype={"patient_id": str}) for path in as_paths(paths)]
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    return table[["patient_id", "center", "cohort", "label"]]


# ---------------------------------------------------------------------------------
# Start-up checks (common.smk): everything the split and the CV levels will need
# ---------------------------------------------------------------------------------
def check_design(
    patients: pd.DataFrame,
    train_centers: list[str],
    external_centers: list[str],
    test_size: float,
    seed: int,
    stratify: bool,
    settings,
    source: str = "sample sheet",
) -> pd.DataFrame:
    """Before any job: every configured centre has patients, and the class counts allow
    the split, the LASSO CV and the inner and outer folds of tuning.

    ``patients``: patient_id, center, label (0/1)[, cohort]; ``settings``: a
    :class:`~npc_radiomics.tuning.TuningSettings`. Run on every patient of the sheet (QC
    can still exclude some; the rules check again). Returns the split it would make.
    """
    from .tuning import check_fold_sizes

    present = set(patients["center"]) | set(patients.get("cohort", []))
    for key, centers in (
        ("cohorts.train_centers", train_centers),
        ("cohorts.external_centers", external_centers),
    ):
        if "cohort" in patients and key == "cohorts.train_centers":
            continue  # cohorts given: the training pool is the rows marked train / test
        empty = [c for c in centers if c not in present]
        if empty:
            raise InputError(
                f"config key {key}: centre {empty[0]!r} has no patient in the {source} "
                f"(centres there: {sorted(present)})"
            )
    if "cohort" in patients:
        split = patients[["patient_id", "center", "cohort", "label"]]
    else:
        split = make_split(patients, train_centers, external_centers, test_size, seed, stratify)
    train = split.loc[split["cohort"] == "train", "label"].to_numpy()
    if not len(train):
        raise InputError(f"{source}: no patient in the train cohort")
    check_fold_sizes(train, settings, nested=True)
    return split


def check_features_table(
    table: pd.DataFrame, columns: dict, outcome: str, name: str, default_center: str
) -> tuple[pd.DataFrame, list[str]]:
    """Start-up checks of a ready feature table (config ``features_table``).

    The configured ID, outcome, centre and cohort columns exist; IDs are present and
    unique; outcomes are 0/1; no feature holds inf. Returns (patients: patient_id,
    center, label[, cohort]; warning lines, e.g. the non-numeric columns that are left
    out of the features). Without a centre column every row is ``default_center`` (the
    first training centre), as :func:`split_from_table` does.
    """
    id_col, center_col, cohort_col = (columns.get(k) for k in ("id", "center", "cohort"))
    shown = [str(c) for c in table.columns[:12]]
    for key, col in (
        ("features_table_columns.id", id_col),
        ("outcome.column", outcome),
        ("features_table_columns.center", center_col),
        ("features_table_columns.cohort", cohort_col),
    ):
        if col and col not in table.columns:
            hint = (
                ""
                if key in ("features_table_columns.id", "outcome.column")
                else ("; set it to null if the table has none")
            )
            raise InputError(
                f"config key {key}: features table {name} has no column {col!r} "
                f"(columns: {shown}...){hint}"
            )
    ids = table[id_col].astype(str).str.strip()
    empty = table[id_col].isna().to_numpy() | (ids == "").to_numpy()
    if empty.any():
        raise InputError(f"features table {name}: data row {int(empty.argmax()) + 1} has no ID")
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise InputError(
            f"features table {name}: duplicated ID(s) in {id_col!r}: {dup[:5]}"
            + (f" ({len(dup) - 5} more)" if len(dup) > 5 else "")
        )
    labels = pd.to_numeric(table[outcome], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        raise InputError(
            f"features table {name}: outcome {outcome!r} of {ids[bad].iloc[0]} is "
            f"{table[outcome][bad].iloc[0]!r}, not 0 or 1"
        )
    special = {id_col, outcome, center_col, cohort_col, "patient_id", "label", "center", "cohort"}
    candidates = [c for c in table.columns if c not in special]
    text = [
        c
        for c in candidates
        if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
    ]
    numeric = [c for c in candidates if c not in set(text)]
    warnings = []
    if text:
        warnings.append(
            f"features table {name}: {len(text)} non-numeric column(s) are not features and "
            f"are left out: {text[:5]}" + (" ..." if len(text) > 5 else "")
        )
    if not numeric:
        raise InputError(f"features table {name}: no numeric feature column")
    values = table[numeric].to_numpy(dtype=float)
    inf = np.isinf(values)
    if inf.any():
        rows, cols = np.nonzero(inf)
        raise InputError(
            f"features table {name}: feature {numeric[cols[0]]!r} is infinite for "
            f"{ids.iloc[rows[0]]} ({int(inf.sum())} infinite cell(s) in "
            f"{len(set(cols.tolist()))} column(s)); replace them or leave the cells empty"
        )
    patients = pd.DataFrame(
        {
            "patient_id": ids.to_numpy(),
            "center": table[center_col].astype(str).str.strip().to_numpy()
            if center_col
            else default_center,
            "label": labels.astype(int).to_numpy(),
        }
    )
    if cohort_col:
        patients["cohort"] = table[cohort_col].astype(str).str.strip().to_numpy()
    return patients, warnings


def check_features_input(cfg: dict) -> list[str]:
    """Start-up checks of the features-in entry: read the configured table, check it
    (:func:`check_features_table`) and its split and CV levels (:func:`check_design`);
    returns warning lines."""
    import csv
    from pathlib import Path

    from .config import derived_seed
    from .io import read_features_table
    from .tuning import TuningSettings

    columns = cfg["features_table_columns"]
    train_centers = list(cfg["cohorts"]["train_centers"])
    path = cfg["features_table"]
    if Path(path).suffix.lower() in (".csv", ".tsv", ".txt") and Path(path).exists():
        # pandas renames a repeated header (f1, f1.1): look at the header as written
        with open(path, encoding="utf-8-sig", newline="") as fh:
            sep = "," if Path(path).suffix.lower() == ".csv" else "\t"
            header = [c.strip() for c in next(csv.reader(fh, delimiter=sep), [])]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise InputError(
                f"features table {Path(path).name}: duplicated column name(s) {repeated[:5]}"
            )
    patients, warnings = check_features_table(
        read_features_table(path, columns),
        columns,
        cfg["outcome"]["column"],
        Path(path).name,
        train_centers[0],
    )
    external = list(cfg["cohorts"]["external_centers"])
    if "cohort" in patients:
        odd = sorted(set(patients["cohort"]) - {"train", "test", *external})
        if odd:
            raise InputError(
                f"features table {Path(path).name}: unknown cohort value(s) {odd[:5]} in "
                f"{columns['cohort']!r} (train, test or an external centre)"
            )
    else:
        unknown = sorted(set(patients["center"]) - set(train_centers) - set(external))
        if unknown:
            raise InputError(
                f"features table {Path(path).name}: centre(s) {unknown[:5]} in "
                f"{columns['center']!r} are neither training nor external in config"
            )
    check_design(
        patients,
        train_centers,
        external,
        cfg["split"]["test_size"],
        derived_seed(cfg["seed"], "split"),
        cfg["split"]["stratify"],
        TuningSettings.from_config(cfg),
        source=f"features table {Path(path).name}",
    )
    return warnings
