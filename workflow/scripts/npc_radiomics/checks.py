"""Every start-up check, run by ``common.smk`` before any job is built: the design
(centres, class counts against the split and every CV level, reader-2 patients for the
ICC), the centre and harmonisation config, the features-in table. It sits above the
stages because it checks each stage's settings; it imports only light modules (no
scikit-learn), since every Snakemake process, cluster jobs' too, runs it.

Bad input stops with one :class:`~npc_radiomics.base.errors.InputError` line naming the
key, centre, row or file.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs.sheets import clinical_warnings
from npc_radiomics.inputs.split import make_split

log = logging.getLogger(__name__)

#: Cohort names a centre may not take (the pool's cohorts and the pooled external one).
RESERVED_CENTRE_NAMES = ("train", "test", "external")


def check_centre_config(cfg: dict) -> None:
    """InputError (one line, naming the key and centre) for a centre listed in both
    cohorts, twice in one list, or under a reserved cohort name."""
    train = list(cfg["cohorts"]["train_centers"])
    external = list(cfg["cohorts"]["external_centers"])
    both = sorted(set(train) & set(external))
    if both:
        raise InputError(
            f"config key cohorts: centre {both[0]!r} is listed both in cohorts.train_centers "
            "and cohorts.external_centers (a centre is either training or external)"
        )
    if (cfg.get("validation") or {}).get("leave_one_centre_out") and len(train) < 2:
        raise InputError(
            "config key validation.leave_one_centre_out: true needs two or more training "
            f"centres, cohorts.train_centers has {len(train)} ({', '.join(train) or 'none'})"
        )
    for key, centres in (("train_centers", train), ("external_centers", external)):
        twice = sorted({c for c in centres if centres.count(c) > 1})
        if twice:
            raise InputError(f"config key cohorts.{key}: centre {twice[0]!r} is listed twice")
        reserved = [c for c in centres if str(c).lower() in RESERVED_CENTRE_NAMES]
        if reserved:
            raise InputError(
                f"config key cohorts.{key}: {reserved[0]!r} is a cohort name of the results "
                f"({', '.join(RESERVED_CENTRE_NAMES)}); rename the centre"
            )


def centre_class_warnings(cfg: dict, patients: pd.DataFrame) -> list[str]:
    """Warning lines (the run goes on) for a centre whose patients are all one class:
    no AUC can be computed for it, and the report shows that gap with this reason.

    ``patients``: patient_id, center, label (0/1). LOCO needs both classes in every
    training centre (its held-out AUC): there this is an InputError.
    """
    train = list(cfg["cohorts"]["train_centers"])
    external = list(cfg["cohorts"]["external_centers"])
    loco = bool((cfg.get("validation") or {}).get("leave_one_centre_out"))
    lines = []
    for centre in [*train, *external]:
        labels = patients.loc[patients["center"] == centre, "label"]
        if labels.empty or labels.nunique() > 1:
            continue
        value = int(labels.iloc[0])
        role = "training" if centre in train else "external"
        line = (
            f"{role} centre {centre}: all {len(labels)} patients have outcome {value}; "
            "no AUC can be computed for it (the report shows the gap)"
        )
        if loco and role == "training":
            raise InputError(
                f"validation.leave_one_centre_out: training centre {centre!r} has only "
                f"outcome {value} ({len(labels)} patients): no held-out AUC; drop the centre "
                "from LOCO by merging it or set validation.leave_one_centre_out: false"
            )
        lines.append(line)
    return lines


def check_harmonization_config(config: dict) -> None:
    """InputError for a harmonisation set-up that cannot work (checked at start-up):
    ComBat with fewer than two training centres, the outcome or an undeclared clinical
    variable as a covariate."""
    harm = config.get("harmonization", {}) or {}
    covariates = list(harm.get("covariates") or [])
    outcome = config["outcome"]["column"]
    if outcome in covariates:
        raise InputError(
            f"config key harmonization.covariates: the outcome {outcome!r} must not be a "
            "ComBat covariate (it would carry the label into a fitted step)"
        )
    if not harm.get("combat"):
        return
    train = list(config["cohorts"]["train_centers"])
    if len(train) < 2:
        raise InputError(
            f"config key harmonization.combat: true needs two or more training centres, "
            f"cohorts.train_centers has {len(train)} ({', '.join(train) or 'none'}); "
            "ComBat with one training centre removes nothing"
        )
    clinical = config.get("clinical_variables", {})
    declared = set(clinical.get("continuous", [])) | set(clinical.get("categorical", []))
    unknown = [c for c in covariates if c not in declared]
    if unknown:
        raise InputError(
            f"config key harmonization.covariates: {unknown} not declared in "
            "clinical_variables (continuous or categorical)"
        )


def check_subgroup_config(cfg: dict) -> None:
    """``evaluation.subgroups`` must name declared clinical variables (continuous ones are
    cut at the training median, categorical ones split by level)."""
    declared = {
        *cfg["clinical_variables"]["continuous"],
        *cfg["clinical_variables"]["categorical"],
    }
    unknown = [v for v in cfg["evaluation"].get("subgroups", []) if v not in declared]
    if unknown:
        raise InputError(
            f"config key evaluation.subgroups: {unknown} not declared in clinical_variables "
            "(continuous or categorical)"
        )


def startup_checks(cfg: dict, samples: pd.DataFrame, clinical: pd.DataFrame) -> list[str]:
    """Checks of the validated sheets that the later stages would otherwise hit hours into
    a run; raises :class:`InputError`, returns warning lines.

    :func:`design_checks` with the clinical table's outcomes, and declared clinical
    variables with no value or one level on the training pool (warnings).
    """
    outcome = cfg["outcome"]["column"]
    design_checks(cfg, samples, clinical.set_index("patient_id")[outcome].to_dict())
    train_centers = set(cfg["cohorts"]["train_centers"])
    pool = sorted(set(samples.loc[samples["center"].isin(train_centers), "patient_id"]))
    variables = [
        *cfg["clinical_variables"]["continuous"],
        *cfg["clinical_variables"]["categorical"],
    ]
    return clinical_warnings(clinical, variables, pool)


def design_checks(cfg: dict, samples: pd.DataFrame, labels: dict[str, int]) -> None:
    """Every configured centre has patients; class counts allow the split and every CV
    level (:func:`npc_radiomics.checks.check_design`); enough reader-2 patients for the
    ICC filter. ``labels``: patient_id -> outcome (0/1) of every patient of ``samples``.
    """
    from npc_radiomics.base.config import derived_seed
    from npc_radiomics.imaging.icc import MIN_READER2_PATIENTS
    from npc_radiomics.modelling.settings import TuningSettings

    centers = samples.drop_duplicates("patient_id").set_index("patient_id")["center"]
    patients = pd.DataFrame(
        {
            "patient_id": centers.index.to_numpy(),
            "center": centers.to_numpy(),
            "label": [int(labels[p]) for p in centers.index],
        }
    )
    split = check_design(
        patients,
        list(cfg["cohorts"]["train_centers"]),
        list(cfg["cohorts"]["external_centers"]),
        cfg["split"]["test_size"],
        derived_seed(cfg["seed"], "split"),
        cfg["split"]["stratify"],
        TuningSettings.from_config(cfg),
    )
    robustness = cfg.get("robustness", {})
    check_robustness_method(robustness)
    method = robustness.get("method", "readers")
    reader2 = set(samples.loc[samples["mask_reader2"] != "", "patient_id"])
    where = ""
    if robustness.get("reference", "train") == "train":
        # The ICC rests on the training patients only (robustness.reference: train).
        reader2 &= set(split.loc[split["cohort"] == "train", "patient_id"])
        where = " among the training patients"
    has_any = (samples["mask_reader2"] != "").any()
    enabled = robustness.get("enabled", True)
    if enabled and method == "both" and not has_any:
        raise InputError(
            "config key robustness.method: both needs reader-2 masks (mask_reader2 in the "
            "sample sheet); without a second reader use robustness.method: perturbation"
        )
    if enabled and method != "perturbation" and has_any and len(reader2) < MIN_READER2_PATIENTS:
        raise InputError(
            f"sample sheet: {len(reader2)} patient(s) have a mask_reader2{where}, the ICC "
            f"filter needs >= {MIN_READER2_PATIENTS} (add reader-2 masks, set "
            "robustness.method: perturbation, or robustness.enabled: false)"
        )
    n_train = int((split["cohort"] == "train").sum())
    if enabled and method != "readers" and n_train < MIN_READER2_PATIENTS:
        raise InputError(
            f"config key robustness.method: {method} needs >= {MIN_READER2_PATIENTS} "
            f"training patients to perturb, the split has {n_train}"
        )


def check_robustness_method(robustness: dict) -> None:
    """robustness.reference ``all`` names the readers' ICC patients; with
    ``method: perturbation`` (always the training patients) it would be accepted and
    ignored, so it stops the run."""
    if robustness.get("method", "readers") == "perturbation" and (
        robustness.get("reference", "train") == "all"
    ):
        raise InputError(
            "config key robustness.reference: all applies to the readers' ICC; "
            "robustness.method: perturbation perturbs the training patients only "
            "(set robustness.reference: train, or method: both)"
        )


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
    :class:`~npc_radiomics.modelling.settings.TuningSettings`. Run on every patient of the sheet (QC
    can still exclude some; the rules check again). Returns the split it would make.
    """
    from npc_radiomics.modelling.folds import check_fold_sizes

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
    returns warning lines. The table may be text, gzipped text, .xlsx (config
    ``sheets.features_table``) or Parquet (:func:`npc_radiomics.base.io.read_features_table`:
    repeated column names and a text cell in a numeric column stop the run, named)."""
    from pathlib import Path

    from npc_radiomics.base.config import derived_seed
    from npc_radiomics.base.io import read_features_table
    from npc_radiomics.modelling.settings import TuningSettings

    columns = cfg["features_table_columns"]
    train_centers = list(cfg["cohorts"]["train_centers"])
    path = cfg["features_table"]
    patients, warnings = check_features_table(
        read_features_table(path, columns, (cfg.get("sheets") or {}).get("features_table")),
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
