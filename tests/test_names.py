"""Sequence and centre names with _ and - (as DICOM series descriptions have): accepted by
the schemas and sheets, refused where they would make results paths or feature columns
ambiguous, and carried through the workflow's paths (a dry run)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from conftest import ROOT, run_workflow, write_config

from npc_radiomics.base.config import load_yaml, validate_config
from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs.sheets import check_sequence_names, validate_samples

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT = load_yaml(ROOT / "config" / "config.yaml")


def _config(sequences=None, train=None, external=None):
    cfg = copy.deepcopy(DEFAULT)
    if sequences is not None:
        cfg["sequences"] = sequences
    if train is not None:
        cfg["cohorts"]["train_centers"] = train
    if external is not None:
        cfg["cohorts"]["external_centers"] = external
    return cfg


def test_names_with_underscore_and_dash_are_valid():
    validate_config(_config(["MR_T1", "T2-FS", "CT"], ["Centre_A", "SYSU-1"], ["ext-2_b"]), SCHEMA)
    check_sequence_names(["MR_T1", "T2-FS", "CT", "mask1", "T1_maskx"])


@pytest.mark.parametrize("name", ["MR T1", "MR__T1", "_T1", "T1-", "T1.w", "T1/x", ""])
def test_bad_sequence_names_name_the_key(name):
    with pytest.raises(InputError, match="sequences"):
        validate_config(_config([name]), SCHEMA)


@pytest.mark.parametrize("name", ["Centre A", "QZ__1", "-QZ"])
def test_bad_centre_names_name_the_key(name):
    with pytest.raises(InputError, match="cohorts"):
        validate_config(_config(train=[name]), SCHEMA)


@pytest.mark.parametrize("name", ["T1_mask", "T1_reader2", "T2_image", "CT_moments", "T1_MASK"])
def test_sequence_names_ending_in_a_path_suffix_are_refused(name):
    # T1_mask's image would be {T1}_mask.nii.gz in the demo's layout, T1_reader2's
    # features the reader-2 features of T1.
    with pytest.raises(InputError, match=rf"config key sequences: '{name}' ends in"):
        check_sequence_names(["T1", name])


def _sheet(**change):
    row = {"patient_id": "P1", "center": "Centre_A", "sequence": "MR_T1", "image": "a"}
    row.update(mask="b", **change)
    return pd.DataFrame([row])


def test_sheet_accepts_and_refuses_names_like_config():
    out = validate_samples(_sheet(), ["MR_T1"], ["Centre_A"], check_files=False)
    assert out.loc[0, "sequence"] == "MR_T1" and out.loc[0, "center"] == "Centre_A"
    with pytest.raises(InputError, match=r"sample sheet line 2: column center"):
        validate_samples(_sheet(center="Centre A"), ["MR_T1"], ["Centre A"], check_files=False)


@pytest.mark.snakemake
def test_dry_run_with_underscore_and_dash_names(tmp_path, user_cohort):
    """Sequences MR_T1 / T2-FS / CET1 (MR_T1 and a sequence MR would share a prefix) and
    centres Centre_A / ext-B plan the batch jobs under their own paths."""
    rename = {"T1": "MR_T1", "T2": "T2-FS"}
    centres = {"A": "Centre_A", "B": "ext-B"}
    path = user_cohort["samples"]
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df["sequence"] = df["sequence"].replace(rename)
    df["center"] = df["center"].replace(centres)
    df.to_csv(path, sep="\t", index=False)
    config = user_cohort["config"]
    config["sequences"] = ["MR_T1", "T2-FS", "CET1"]
    config["cohorts"] = {"train_centers": ["Centre_A"], "external_centers": ["ext-B"]}
    proc = run_workflow(tmp_path, write_config(tmp_path / "c.yaml", config), "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for centre, batches in (("Centre_A", 3), ("ext-B", 1)):
        for k in range(batches):
            assert f"results/qc/batches/{centre}/{k:03d}.tsv" in proc.stdout
    assert "results/features/external/ext-B.parquet" in proc.stdout
    assert "results/qc/batches/A/" not in proc.stdout
