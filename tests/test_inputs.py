"""Bad input stops with one clear line naming the row, patient or file, before any job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import qc_batch_file, run_workflow, write_config

pytestmark = pytest.mark.snakemake


def _error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "npc-radiomics input error" in line]


def _dry_run_fails(tmp_path, cohort, expected: list[str]):
    cfg = write_config(tmp_path / "config.yaml", cohort["config"])
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode != 0, proc.stdout
    lines = _error_lines(proc)
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not (tmp_path / "results").exists()
    return lines[0]


def _edit(path, fn):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(path, sep="\t", index=False)


def test_valid_cohort_dry_run_shows_fan_out(tmp_path, user_cohort):
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode == 0, proc.stderr
    # 24 training + 4 external patients: QC jobs of 10 patients of one centre (3 + 1).
    assert any(line.split()[:2] == ["qc_batch", "4"] for line in proc.stdout.splitlines())
    assert "qc_case" not in proc.stdout


def test_missing_image_file(tmp_path, user_cohort):
    _edit(
        user_cohort["samples"],
        lambda d: d.assign(image=d["image"].where(d.index != 4, "nope.nii.gz")),
    )
    _dry_run_fails(tmp_path, user_cohort, ["line 6", "image file not found", "A001", "nope.nii.gz"])


def test_missing_mask_file(tmp_path, user_cohort):
    _edit(
        user_cohort["samples"], lambda d: d.assign(mask=d["mask"].where(d.index != 0, "gone.nii"))
    )
    _dry_run_fails(tmp_path, user_cohort, ["line 2", "mask file not found", "A000", "T1"])


def test_duplicated_patient_sequence(tmp_path, user_cohort):
    _edit(user_cohort["samples"], lambda d: pd.concat([d, d.iloc[[3]]], ignore_index=True))
    _dry_run_fails(tmp_path, user_cohort, ["duplicated patient A001 sequence T1"])


def test_unknown_sequence(tmp_path, user_cohort):
    _edit(
        user_cohort["samples"],
        lambda d: d.assign(sequence=d["sequence"].where(d.index != 2, "DWI")),
    )
    _dry_run_fails(tmp_path, user_cohort, ["line 4", "unknown sequence 'DWI'", "A000"])


def test_missing_sequence_for_a_patient(tmp_path, user_cohort):
    _edit(user_cohort["samples"], lambda d: d.drop(index=5))
    _dry_run_fails(tmp_path, user_cohort, ["patient A001", "CET1"])


def test_patient_without_clinical_row(tmp_path, user_cohort):
    _edit(user_cohort["clinical"], lambda d: d[d["patient_id"] != "A003"])
    _dry_run_fails(tmp_path, user_cohort, ["patient A003 has images but no clinical row"])


def test_clinical_row_without_images(tmp_path, user_cohort):
    _edit(user_cohort["samples"], lambda d: d[d["patient_id"] != "B001"])
    _dry_run_fails(tmp_path, user_cohort, ["patient B001 has a clinical row but no images"])


@pytest.mark.parametrize("value, text", [("2", "'2'"), ("", "no outcome"), ("CR", "'CR'")])
def test_bad_outcome(tmp_path, user_cohort, value, text):
    _edit(
        user_cohort["clinical"],
        lambda d: d.assign(response=d["response"].where(d.index != 7, value)),
    )
    _dry_run_fails(tmp_path, user_cohort, ["line 9", "A007", text])


@pytest.mark.parametrize(
    "override, key",
    [
        ({"tuning": {"n_trials": "ten"}}, "tuning.n_trials"),
        ({"split": {"test_size": 1.5}}, "split.test_size"),
        ({"qc": {"on_fail": "ignore"}}, "qc.on_fail"),
        ({"models": ["svm", "deep_forest"]}, "models.1"),
        ({"sequences": "T1"}, "sequences"),
    ],
)
def test_config_value_of_wrong_type(tmp_path, user_cohort, override, key):
    user_cohort["config"].update(override)
    _dry_run_fails(tmp_path, user_cohort, [f"config key {key}"])


def _corrupt_mask(cohort, patient, sequence, fn):
    samples = pd.read_csv(cohort["samples"], sep="\t")
    path = samples.query("patient_id == @patient and sequence == @sequence")["mask"].iloc[0]
    mask = sitk.ReadImage(path)
    sitk.WriteImage(fn(mask), path)
    return path


def _qc_fails(tmp_path, cohort, case, expected):
    cfg = write_config(tmp_path / "config.yaml", cohort["config"])
    target = qc_batch_file(cohort["samples"], case.split("/")[0])
    proc = run_workflow(tmp_path, cfg, target)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "InputError: QC failed" in line]
    assert lines, proc.stderr[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]
    # No half-written output: the failing case's batch table and the QC table are absent.
    assert not (tmp_path / target).exists()
    assert not (tmp_path / "results/qc/qc.tsv").exists()
    return cfg


def test_mask_geometry_differs(tmp_path, user_cohort):
    def shift(mask):
        mask.SetSpacing((1.0, 1.0, 2.0))
        return mask

    path = _corrupt_mask(user_cohort, "A002", "T2", shift)
    _qc_fails(
        tmp_path, user_cohort, "A002/T2", ["patient A002 sequence T2", "geometry", "spacing", path]
    )


def test_empty_mask(tmp_path, user_cohort):
    def empty(mask):
        out = sitk.Image(mask.GetSize(), mask.GetPixelID())
        out.CopyInformation(mask)
        return out

    path = _corrupt_mask(user_cohort, "B002", "CET1", empty)
    _qc_fails(tmp_path, user_cohort, "B002/CET1", ["patient B002 sequence CET1", "empty", path])


def test_non_binary_mask_without_label(tmp_path, user_cohort):
    def relabel(mask):
        return sitk.Cast(mask, sitk.sitkUInt8) * 3

    _corrupt_mask(user_cohort, "A004", "T1", relabel)
    _qc_fails(tmp_path, user_cohort, "A004/T1", ["patient A004 sequence T1", "neither binary nor"])


def test_exclude_mode_drops_patient_and_lists_it(tmp_path, user_cohort):
    def empty(mask):
        out = sitk.Image(mask.GetSize(), mask.GetPixelID())
        out.CopyInformation(mask)
        return out

    _corrupt_mask(user_cohort, "A005", "T1", empty)
    user_cohort["config"]["qc"] = {"on_fail": "exclude"}
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    proc = run_workflow(
        tmp_path, cfg, "results/split/split.tsv", "results/qc/qc.tsv", "--cores", "2"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    qc = pd.read_csv(tmp_path / "results/qc/qc.tsv", sep="\t")
    bad = qc[qc["patient_id"] == "A005"]
    assert set(bad["patient_status"]) == {"excluded"}
    assert bad.loc[bad["sequence"] == "T1", "reason"].str.contains("empty").all()
    split = pd.read_csv(tmp_path / "results/split/split.tsv", sep="\t")
    assert "A005" not in set(split["patient_id"])
    assert len(split) == 27


def test_unreadable_image_file(tmp_path, user_cohort):
    samples = pd.read_csv(user_cohort["samples"], sep="\t")
    path = samples["image"].iloc[1]
    with open(path, "wb") as fh:
        fh.write(np.arange(100, dtype=np.uint8).tobytes())
    _qc_fails(
        tmp_path, user_cohort, "A000/T2", ["patient A000 sequence T2", "image unreadable", path]
    )
