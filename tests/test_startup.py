"""What the later stages need is checked at start-up (common.smk), before any job: the
clinical table as the clinical stage reads it, class counts against the split and every CV
level, configured centres with patients, reader-2 patients for the ICC filter, and a ready
feature table's columns, IDs and values."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow, write_config

from npc_radiomics.base.errors import InputError
from npc_radiomics.checks import check_design, check_features_table
from npc_radiomics.modelling.settings import TuningSettings

SETTINGS = TuningSettings.defaults(n_trials=2, inner_folds=2, outer_folds=2, lasso_folds=2)


def _patients(n_a=24, n_b=4):
    ids = [f"A{i:03d}" for i in range(n_a)] + [f"B{i:03d}" for i in range(n_b)]
    return pd.DataFrame(
        {
            "patient_id": ids,
            "center": ["A"] * n_a + ["B"] * n_b,
            "label": [i % 2 for i in range(n_a)] + [i % 2 for i in range(n_b)],
        }
    )


def _design(patients, settings=SETTINGS, train=("A",), external=("B",)):
    return check_design(patients, list(train), list(external), 0.3, 7, True, settings)


def test_design_ok_returns_the_split():
    split = _design(_patients())
    assert set(split["cohort"]) == {"train", "test", "B"}


@pytest.mark.parametrize(
    "settings, key",
    [
        (
            TuningSettings.defaults(inner_folds=2, outer_folds=9, lasso_folds=2),
            "tuning.outer_folds: 9",
        ),
        (
            TuningSettings.defaults(inner_folds=5, outer_folds=2, lasso_folds=2),
            "tuning.inner_folds: 5",
        ),
    ],
)
def test_class_counts_against_fold_counts(settings, key):
    with pytest.raises(InputError, match=f"config key {key} folds but only"):
        _design(_patients(), settings)


def test_too_few_to_stratify():
    with pytest.raises(InputError, match="too few patients to stratify"):
        _design(_patients(n_a=3))


def test_centre_without_patients():
    with pytest.raises(InputError, match=r"cohorts.external_centers: centre 'C' has no patient"):
        _design(_patients(), external=("B", "C"))
    with pytest.raises(InputError, match=r"cohorts.train_centers: centre 'Z' has no patient"):
        _design(_patients(), train=("A", "Z"))


def _table(n=40):
    rng = np.random.default_rng(0)
    t = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f1", "f2", "f3"])
    t.insert(0, "response", np.arange(n) % 2)
    t.insert(0, "site", ["A"] * (n - 8) + ["B"] * 8)
    t.insert(0, "case", [f"P{k:03d}" for k in range(n)])
    return t


COLS = {"id": "case", "center": "site", "cohort": None}


def test_features_table_ok_and_text_columns_warned():
    t = _table()
    t["scanner"] = "GE"
    patients, warnings = check_features_table(t, COLS, "response", "t.csv", "A")
    assert len(patients) == 40 and set(patients["center"]) == {"A", "B"}
    assert len(warnings) == 1 and "'scanner'" in warnings[0] and "left out" in warnings[0]


@pytest.mark.parametrize(
    "columns, key",
    [
        ({**COLS, "id": "ID"}, "features_table_columns.id"),
        ({**COLS, "center": "centre"}, "features_table_columns.center"),
        ({**COLS, "cohort": "set"}, "features_table_columns.cohort"),
    ],
)
def test_features_table_configured_column_missing(columns, key):
    with pytest.raises(InputError, match=rf"config key {key}: features table t.csv has no column"):
        check_features_table(_table(), columns, "response", "t.csv", "A")


def test_features_table_bad_outcome_column_named():
    with pytest.raises(InputError, match=r"config key outcome.column: .* no column 'CR'"):
        check_features_table(_table(), COLS, "CR", "t.csv", "A")


def test_features_table_duplicated_ids_named():
    t = _table()
    t.loc[5, "case"] = "P001"
    t.loc[9, "case"] = "P002"
    with pytest.raises(InputError, match=r"duplicated ID\(s\) in 'case': \['P001', 'P002'\]"):
        check_features_table(t, COLS, "response", "t.csv", "A")


def test_features_table_inf_refused():
    t = _table()
    t.loc[3, "f2"] = np.inf
    with pytest.raises(InputError, match=r"feature 'f2' is infinite for P003"):
        check_features_table(t, COLS, "response", "t.csv", "A")


# ------------------------------------------------------------------ through the workflow
def _startup_fails(tmp_path, config, words):
    cfg = write_config(tmp_path / "config.yaml", config)
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [x for x in proc.stderr.splitlines() if "npc-radiomics input error" in x]
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "results").exists()
    assert "qc_batch" not in proc.stdout  # no job was even planned


def _edit(path, fn):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    fn(df).to_csv(path, sep="\t", index=False)


@pytest.mark.snakemake
def test_external_centre_without_patients_stops(tmp_path, user_cohort):
    user_cohort["config"]["cohorts"]["external_centers"] = ["B", "C"]
    _startup_fails(tmp_path, user_cohort["config"], ["cohorts.external_centers", "'C'"])


@pytest.mark.snakemake
def test_folds_against_class_counts_stop(tmp_path, user_cohort):
    user_cohort["config"]["tuning"]["outer_folds"] = 10
    _startup_fails(tmp_path, user_cohort["config"], ["config key tuning.outer_folds: 10 folds"])


@pytest.mark.snakemake
def test_text_coded_categorical_passes_startup_but_not_as_a_biomarker(tmp_path, user_cohort):
    _edit(user_cohort["clinical"], lambda d: d.assign(gender=np.where(d.index % 2, "M", "F")))
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    user_cohort["config"].setdefault("evaluation", {})["biomarkers"] = ["gender"]
    _startup_fails(
        tmp_path,
        user_cohort["config"],
        [f"clinical table {user_cohort['clinical']} line 2", "'gender'", "'F'", "biomarker"],
    )


@pytest.mark.snakemake
def test_unknown_biomarker_stops(tmp_path, user_cohort):
    user_cohort["config"]["evaluation"] = {"biomarkers": ["ebv_dna", "crp"]}
    _startup_fails(tmp_path, user_cohort["config"], ["evaluation.biomarkers", "'crp'"])


@pytest.mark.snakemake
def test_too_few_reader2_patients_stops(tmp_path, user_cohort):
    _edit(
        user_cohort["samples"],
        lambda d: d.assign(mask_reader2=np.where(d.index < 3, d["mask"], "")),  # A000 only
    )
    _startup_fails(tmp_path, user_cohort["config"], ["1 patient(s) have a mask_reader2", ">= 3"])


@pytest.mark.snakemake
def test_reader2_masks_on_external_patients_only_do_not_count(tmp_path, user_cohort):
    # The ICC rests on training patients (robustness.reference: train): reader-2 masks of
    # the external centre B alone cannot feed it, and start-up says so.
    _edit(
        user_cohort["samples"],
        lambda d: d.assign(mask_reader2=np.where(d["center"] == "B", d["mask"], "")),
    )
    _startup_fails(
        tmp_path,
        user_cohort["config"],
        ["0 patient(s) have a mask_reader2 among the training patients", ">= 3"],
    )


@pytest.mark.snakemake
def test_whitespace_and_na_ids_read_alike_everywhere(tmp_path, user_cohort):
    """Ids 'NA' and ' A001 ' (spaces) and a padded header: the run starts, the clinical
    variable with one level is a warning, not an error."""
    rename = {"A000": "NA", "A002": "null"}
    _edit(user_cohort["samples"], lambda d: d.replace({"patient_id": rename}))
    _edit(
        user_cohort["clinical"],
        lambda d: (
            d.replace({"patient_id": rename}).assign(gender="1").rename(columns={"age": " age "})
        ),
    )
    text = user_cohort["clinical"].read_text().replace("\nA001\t", "\n A001 \t")
    user_cohort["clinical"].write_text(text)
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [x for x in proc.stderr.splitlines() if "npc-radiomics warning" in x]
    assert len(warnings) == 1 and "'gender' has a single level" in warnings[0], warnings


@pytest.mark.snakemake
def test_features_table_centre_typo_stops(tmp_path):
    path = tmp_path / "table.csv"
    _table().to_csv(path, index=False)
    config = {
        "features_table": str(path),
        "features_table_columns": {"id": "case", "center": "centre", "cohort": None},
        "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
        "selection": {"mrmr_k": 3, "lasso": {"cv_folds": 2}},
        "tuning": {"n_trials": 2, "inner_folds": 2, "outer_folds": 2},
    }
    _startup_fails(
        tmp_path, config, ["config key features_table_columns.center", "'centre'", "null"]
    )


@pytest.mark.snakemake
def test_features_table_duplicated_column_stops(tmp_path):
    path = tmp_path / "table.csv"
    _table().rename(columns={"f3": "f1"}).to_csv(path, index=False)
    config = {
        "features_table": str(path),
        "features_table_columns": {"id": "case", "center": "site", "cohort": None},
        "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
    }
    _startup_fails(tmp_path, config, ["features table table.csv", "duplicated column", "'f1'"])


def test_clinical_variables_empty_or_single_level_warn():
    from npc_radiomics.inputs.sheets import clinical_warnings, validate_clinical

    clinical = validate_clinical(
        pd.DataFrame(
            {
                "patient_id": ["A1", "A2", "A3", "B1"],
                "response": ["1", "0", "1", "0"],
                "ki67": ["NA", "", "nan", "12"],  # only the external patient has a value
                "gender": ["1", "1", "1", "0"],
                "age": ["50", "61", "", "70"],
            }
        ),
        "response",
        ["ki67", "age"],
        ["gender"],
    )
    lines = clinical_warnings(clinical, ["ki67", "age", "gender"], ["A1", "A2", "A3"])
    assert len(lines) == 2
    assert "'ki67' has no value among the training-pool patients" in lines[0]
    assert "'gender' has a single level (1)" in lines[1]
    whole = clinical_warnings(clinical, ["ki67", "age", "gender"])  # every row
    assert len(whole) == 1 and "'ki67' has a single level (12)" in whole[0]


def test_demo_clinical_columns_checked_before_the_demo_job():
    from conftest import ROOT

    from npc_radiomics.base.config import load_yaml
    from npc_radiomics.inputs.demo import CLINICAL_COLUMNS
    from npc_radiomics.inputs.sheets import check_clinical_columns

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    check_clinical_columns(CLINICAL_COLUMNS, cfg, "the demo clinical table")  # defaults fit
    cfg["evaluation"]["biomarkers"] = ["ldh", "crp"]
    with pytest.raises(InputError, match=r"evaluation.biomarkers: 'crp' is not a column of the"):
        check_clinical_columns(CLINICAL_COLUMNS, cfg, "the demo clinical table")
    cfg["clinical_variables"]["categorical"] = ["sex"]
    with pytest.raises(InputError, match=r"clinical_variables.categorical: 'sex'"):
        check_clinical_columns(CLINICAL_COLUMNS, cfg, "the demo clinical table")


_IMPORTS_PROBE = """
import sys
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print("SKLEARN_IMPORTED=" + str("sklearn" in sys.modules), "EXIT=" + str(code))
"""


@pytest.mark.snakemake
@pytest.mark.parametrize("mode, sklearn_imported", [("default", True), ("remote", False)])
def test_job_processes_skip_the_start_up_checks(tmp_path, mode, sklearn_imported):
    """Every cluster job evaluates the Snakefile again in
    Snakemake's remote mode; the start-up checks (scikit-learn's search-space check among
    them) run in the main process only, which saves seconds per job."""
    from conftest import ROOT, require_snakemake_marker

    require_snakemake_marker()
    cmd = [
        sys.executable,
        "-c",
        _IMPORTS_PROBE,
        "--mode",
        mode,
        "-n",
        "--cores",
        "1",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(ROOT / "tests" / "configs" / "tiny.yaml"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert f"SKLEARN_IMPORTED={sklearn_imported} EXIT=0" in proc.stdout, proc.stdout + proc.stderr
