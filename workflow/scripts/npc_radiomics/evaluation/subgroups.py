"""Subgroup performance of the chosen model (rule ``subgroups``, pipeline step 15).

Per cohort and per level of each configured clinical variable (``evaluation.subgroups``)
and per centre: counts, AUC with its 95% CI (the configured method), calibration-in-the-
large (calibration intercept with slope fixed at 1, and observed / expected events, with
CIs). A continuous variable is cut at its median over the TRAINING cohort (one cut for
every cohort, so a level means the same patients' range everywhere); a missing value is
its own level. A level with one class, or too few patients for a CI, has NaN and a note.
Descriptive: nothing here is used to choose a model or as a headline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.layout import cohort_order, in_sample
from npc_radiomics.metrics import (
    auc_ci,
    check_predictions,
    logistic_recalibration,
    observed_expected,
)

#: The centre "variable" of the subgroup table (from results/split/split.tsv).
CENTRE = "center"
#: Level of patients without a value.
MISSING_LEVEL = "missing"
#: Columns of results/evaluation/subgroups.tsv.
SUBGROUP_COLUMNS = [
    "model",
    "cohort",
    "in_sample",
    "variable",
    "level",
    "cut",
    "n",
    "n_positive",
    "n_negative",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "ci_method",
    "calibration_intercept",
    "calibration_intercept_ci_low",
    "calibration_intercept_ci_high",
    "oe_ratio",
    "oe_ci_low",
    "oe_ci_high",
    "note",
]


def _number(value: float) -> str:
    return f"{float(value):g}"


def subgroup_levels(
    patients: pd.DataFrame, variable: str, continuous: bool, train_ids
) -> tuple[pd.Series, str]:
    """Each patient's level of ``variable`` (a string; ``missing`` without a value) and
    the cut used ("" for a categorical variable or the centre).

    ``patients``: one row per patient (patient_id and the variable). A continuous
    variable is split at its median over ``train_ids`` (the training cohort): "< m" and
    ">= m". Raises InputError when no training patient has a value to cut at.
    """
    values = patients[variable]
    if not continuous:
        text = values.map(lambda v: MISSING_LEVEL if pd.isna(v) else _level_text(v))
        return text, ""
    numeric = pd.to_numeric(values, errors="coerce")
    train = numeric[patients["patient_id"].isin(set(train_ids))].dropna()
    if train.empty:
        raise InputError(
            f"config key evaluation.subgroups: {variable!r} has no value in the training "
            "cohort to cut at"
        )
    median = float(np.median(train))
    levels = np.where(
        numeric.isna(),
        MISSING_LEVEL,
        np.where(numeric < median, f"< {_number(median)}", f">= {_number(median)}"),
    )
    return pd.Series(levels, index=values.index), f"training median {_number(median)}"


def _level_text(value) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _number(value)
    return str(value)


def _level_order(levels) -> list[str]:
    """Levels in a readable order: numbers numerically, "< m" before ">= m", text sorted,
    ``missing`` last."""

    def key(level: str):
        if level == MISSING_LEVEL:
            return (3, 0.0, level)
        if level.startswith("< "):
            return (0, 0.0, level)
        if level.startswith(">= "):
            return (0, 1.0, level)
        try:
            return (1, float(level), level)
        except ValueError:
            return (2, 0.0, level)

    return sorted(set(levels), key=key)


def subgroup_row(y, p, ci_method: str, n_bootstrap: int, seed: int, level: float = 0.95):
    """Counts, AUC with CI, calibration intercept and O/E of one subgroup, with a note
    for whatever is NaN (one class, constant predictions, too few patients)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    n_pos = int(y.sum())
    row = {"n": int(y.size), "n_positive": n_pos, "n_negative": int(y.size) - n_pos}
    notes = []
    if y.size == 0:
        notes.append("no patients")
        row["note"] = "; ".join(notes)
        return row
    res = auc_ci(y, p, ci_method, level, n_bootstrap, seed)
    row.update(auc=res.auc, auc_ci_low=res.ci_low, auc_ci_high=res.ci_high, ci_method=ci_method)
    if res.note:
        notes.append(res.note)
    recal = logistic_recalibration(y, p, level)
    row.update(
        calibration_intercept=recal.intercept,
        calibration_intercept_ci_low=recal.intercept_ci[0],
        calibration_intercept_ci_high=recal.intercept_ci[1],
    )
    if not np.isfinite(recal.intercept) and recal.note and recal.note not in notes:
        notes.append(recal.note)
    row["oe_ratio"], row["oe_ci_low"], row["oe_ci_high"] = observed_expected(y, p, level)
    row["note"] = "; ".join(dict.fromkeys(notes))
    return row


def subgroup_table(
    predictions: pd.DataFrame,
    model: str | None,
    patients: pd.DataFrame,
    variables: list[str],
    continuous: list[str],
    ci_method: str = "delong",
    n_bootstrap: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Subgroup rows of the chosen ``model`` on every cohort of ``predictions``.

    ``patients``: one row per patient with patient_id, center and the ``variables``
    (clinical variables; ``continuous`` ones are cut at the training median, see
    :func:`subgroup_levels`). The centre is always a subgroup variable (from
    ``patients['center']``). Returns :data:`SUBGROUP_COLUMNS`, in cohort order, then
    variable (as configured, centre last), then level.
    """
    if model is None:
        return pd.DataFrame(columns=SUBGROUP_COLUMNS)
    df = check_predictions(predictions)
    df = df[(df["model"] == model) & df["probability"].notna()]
    patients = patients.assign(patient_id=patients["patient_id"].astype(str))
    if patients["patient_id"].duplicated().any():
        pid = patients.loc[patients["patient_id"].duplicated(), "patient_id"].iloc[0]
        raise InputError(f"subgroups: patient {pid} appears twice in the patient table")
    missing = [v for v in [*variables, CENTRE] if v not in patients.columns]
    if missing:
        raise InputError(f"subgroups: no column(s) {missing} in the clinical / split tables")
    train_ids = df.loc[df["cohort"] == "train", "patient_id"].astype(str)
    levels, cuts = {}, {}
    for variable in [*variables, CENTRE]:
        levels[variable], cuts[variable] = subgroup_levels(
            patients, variable, variable in continuous and variable != CENTRE, train_ids
        )
        levels[variable].index = patients["patient_id"]
    rows = []
    for cohort in cohort_order(df["cohort"]):
        c = df[df["cohort"] == cohort]
        ids = c["patient_id"].astype(str)
        for variable in [*variables, CENTRE]:
            per_patient = levels[variable].reindex(ids).fillna(MISSING_LEVEL).to_numpy()
            for value in _level_order(per_patient):
                keep = per_patient == value
                row = {
                    "model": model,
                    "cohort": cohort,
                    "in_sample": in_sample(cohort),
                    "variable": variable,
                    "level": value,
                    "cut": cuts[variable],
                }
                row.update(
                    subgroup_row(
                        c["label"].to_numpy()[keep],
                        c["probability"].to_numpy()[keep],
                        ci_method,
                        n_bootstrap,
                        seed,
                        level,
                    )
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)


def subgroups_rule(
    predictions_path,
    chosen_path,
    split_path,
    out_path,
    clinical_path=None,
    *,
    variables,
    outcome: str,
    continuous,
    categorical,
    ci_method: str,
    n_bootstrap: int,
    seed: int,
    clinical_sheet: str | None = None,
) -> str:
    """Rule ``subgroups``: :func:`subgroup_table` for the chosen model from the gathered
    predictions, the split (centres) and, when the run has one, the clinical table (its
    worksheet ``clinical_sheet`` for an .xlsx, config ``sheets.clinical``); written to
    ``out_path``. Without a clinical table only the centres are subgroups."""
    import json
    from pathlib import Path

    from npc_radiomics.base.io import read_table, write_tsv

    predictions = read_table(predictions_path, dtype={"patient_id": str})
    model = json.loads(Path(chosen_path).read_text())["model"]
    patients = read_table(split_path, dtype={"patient_id": str, "center": str})
    patients = patients[["patient_id", CENTRE]].drop_duplicates("patient_id")
    variables = list(variables)
    if clinical_path is not None:
        from npc_radiomics.inputs.sheets import read_clinical

        clinical = read_clinical(
            clinical_path, outcome, list(continuous), list(categorical), sheet=clinical_sheet
        )
        patients = patients.merge(clinical[["patient_id", *variables]], on="patient_id", how="left")
    else:
        variables = []
    table = subgroup_table(
        predictions,
        model,
        patients,
        variables,
        [v for v in variables if v in set(continuous)],
        ci_method,
        n_bootstrap,
        seed,
    )
    write_tsv(table, out_path)
    return f"subgroups of {model}: {len(table)} rows"
