"""QC catches readable-but-wrong inputs: each bad file fails at the QC stage (rule qc_batch),
with one line naming patient, sequence, file and what is wrong, and leaves no half-written
QC table; ``qc.on_fail: exclude`` drops the patient instead."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import qc_batch_file, run_workflow, write_config

from npc_radiomics.imaging.preprocess import binarise_mask
from npc_radiomics.imaging.qc import QCSettings, qc_case, tumour_label

RNG = np.random.default_rng(3)


def _ball(shape=(8, 20, 20), radius=5.0) -> np.ndarray:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    c = np.array(shape) / 2
    return ((x - c[2]) ** 2 + (y - c[1]) ** 2 + ((z - c[0]) * 2) ** 2) < radius**2


def _intensity(shape=(8, 20, 20)) -> np.ndarray:
    return (RNG.normal(100, 10, shape) + 50 * _ball(shape)).astype(np.float32)


def _write(path, arr, is_vector=False, like=None):
    image = sitk.GetImageFromArray(arr, isVector=is_vector)
    if like is not None:
        image.CopyInformation(like)
    else:
        image.SetSpacing((1.0,) * image.GetDimension())
    sitk.WriteImage(image, str(path))
    return str(path)


def _qc(tmp_path, image=None, mask=None, reader2=None, settings=None):
    img_path = image if isinstance(image, str) else _write(tmp_path / "img.nii.gz", _intensity())
    if mask is None or not isinstance(mask, str):
        arr = _ball().astype(np.uint8) if mask is None else mask
        mask = _write(tmp_path / "mask.nii.gz", arr)
    return qc_case("P01", "A", "T2", img_path, mask, reader2 or "", settings), img_path, mask


def _assert_fails(row, check, words, path):
    assert row["status"] == "fail"
    assert row[check] is False, row
    reason = row["reason"]
    assert reason.startswith("patient P01 sequence T2: "), reason
    assert path in reason, reason
    for word in words:
        assert word in reason, reason
    assert "\n" not in reason


def test_good_case_passes(tmp_path):
    row, _, _ = _qc(tmp_path)
    assert row["status"] == "pass", row["reason"]
    assert row["tumour_voxels"] == int(_ball().sum())
    assert all(row[c] is True for c in ("image_valid", "roi_valid", "mask_labels_ok"))


def test_image_and_mask_swapped(tmp_path):
    img = _write(tmp_path / "img.nii.gz", _intensity())
    mask = _write(tmp_path / "mask.nii.gz", _ball().astype(np.uint8))
    row = qc_case("P01", "A", "T2", mask, img)
    _assert_fails(row, "image_valid", ["only 0 and 1", "swapped"], mask)
    assert row["image_readable"] is True


def test_intensity_image_as_mask(tmp_path):
    # An integer-valued MR volume in the mask column: hundreds of values, non-zero everywhere.
    mr = np.round(_intensity() * 10).astype(np.int16)
    row, _, mask = _qc(tmp_path, mask=mr)
    _assert_fails(row, "mask_labels_ok", ["distinct values", "swapped"], mask)
    few = np.where(_intensity() > 90, 1, 2).astype(np.uint8)  # two labels, non-zero everywhere
    row, _, mask = _qc(tmp_path, mask=few)
    _assert_fails(row, "mask_labels_ok", ["non-zero in 100%", "qc.max_mask_fraction"], mask)


def test_truncated_gzip(tmp_path):
    path = _write(tmp_path / "img.nii.gz", _intensity())
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    assert sitk.ReadImage(path).GetSize() == (20, 20, 8)  # ITK reads it, zero-filled
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_readable", ["image unreadable", "truncated gzip"], path)


def test_nifti_shorter_than_its_header(tmp_path):
    path = _write(tmp_path / "img.nii.gz", _intensity())
    raw = gzip.decompress(open(path, "rb").read())
    open(path, "wb").write(gzip.compress(raw[:-400]))  # a whole gzip of a short NIfTI
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_readable", ["truncated NIfTI", "header declares 12800"], path)


def test_truncated_mask(tmp_path):
    mask = _write(tmp_path / "mask.nii.gz", _ball().astype(np.uint8))
    data = open(mask, "rb").read()
    open(mask, "wb").write(data[:-20])
    row, _, _ = _qc(tmp_path, mask=mask)
    _assert_fails(row, "mask_readable", ["mask unreadable", "truncated"], mask)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels(tmp_path, value):
    arr = _intensity()
    arr[0, 0, 0] = value
    path = _write(tmp_path / "img.nii.gz", arr)
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_valid", ["1 NaN/inf voxel(s)"], path)


def test_constant_image(tmp_path):
    path = _write(tmp_path / "img.nii.gz", np.full((8, 20, 20), 7.0, np.float32))
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_valid", ["constant", "= 7"], path)


def test_zero_spread_inside_roi(tmp_path):
    arr = _intensity()
    arr[_ball()] = 42.0
    path = _write(tmp_path / "img.nii.gz", arr)
    row, _, mask = _qc(tmp_path, image=path)
    _assert_fails(row, "roi_valid", ["zero intensity spread", "= 42"], mask)
    assert path in row["reason"]
    assert row["mask_nonempty"] is True


def test_tumour_below_min_roi_voxels(tmp_path):
    tiny = np.zeros((8, 20, 20), np.uint8)
    tiny[4, 10, 9:13] = 1
    tiny[4, 11, 9] = 1
    row, _, mask = _qc(tmp_path, mask=tiny)
    _assert_fails(row, "roi_valid", ["too small", "5 voxel(s)", "qc.min_roi_voxels 27"], mask)
    row, _, _ = _qc(tmp_path, mask=tiny, settings=QCSettings(min_roi_voxels=5))
    assert row["status"] == "pass", row["reason"]  # the configured minimum is the one used
    line = np.zeros((8, 20, 20), np.uint8)
    line[4, 10, :] = 1
    row, _, mask = _qc(tmp_path, mask=line, settings=QCSettings(min_roi_voxels=5))
    _assert_fails(row, "roi_valid", ["single voxel along two axes"], mask)


@pytest.mark.parametrize(
    "arr, is_vector, words",
    [
        (np.ones((20, 20), np.float32), False, ["is 2D", "only 3D scalar"]),
        (np.ones((2, 8, 20, 20), np.float32), False, ["is 4D"]),
        (np.ones((8, 20, 20, 3), np.uint8), True, ["3 components", "RGB"]),
        (np.ones((1, 20, 20), np.float32), False, ["single slice"]),
    ],
    ids=["2d", "4d", "rgb", "one-slice"],
)
def test_not_a_3d_scalar_image(tmp_path, arr, is_vector, words):
    arr = arr + RNG.normal(0, 1, arr.shape).astype(arr.dtype)
    path = _write(tmp_path / "img.nii.gz", arr, is_vector=is_vector)
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_valid", words, path)
    assert "geometry" not in row["reason"]  # the image is blamed, not the mask


def test_4d_image(tmp_path):
    vol = sitk.GetImageFromArray(_intensity())
    path = str(tmp_path / "img4d.nii.gz")
    sitk.WriteImage(sitk.JoinSeries([vol, vol]), path)
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_valid", ["is 4D", "only 3D scalar"], path)


@pytest.mark.parametrize(
    "values, label, tumour",
    [([0, 1], 1, 1), ([0, 1], 2, 1), ([0, 1, 2], 2, 2), ([0, 1, 2], 1, 1), ([0, 2, 3], 1, None)],
)
def test_tumour_label_rule(values, label, tumour):
    assert tumour_label(np.array(values), label) == tumour


@pytest.mark.parametrize("label", [1, 2, 3])
def test_qc_and_preprocessing_keep_the_same_tumour(tmp_path, label):
    labels = _ball().astype(np.uint8)
    labels[:, :, :10] *= 2  # half of the ball labelled 2, half 1
    if label == 3:
        labels = _ball().astype(np.uint8)  # binary mask, configured label absent
    row, _, mask = _qc(tmp_path, mask=labels, settings=QCSettings(mask_label=label))
    assert row["status"] == "pass", row["reason"]
    kept = sitk.GetArrayFromImage(binarise_mask(sitk.ReadImage(mask), label))
    assert kept.sum() == row["tumour_voxels"]
    expected = labels == (label if label != 3 else 1)
    assert np.array_equal(kept.astype(bool), expected)


def test_reader2_mask_checked_too(tmp_path):
    img = _write(tmp_path / "img.nii.gz", _intensity())
    tiny = np.zeros((8, 20, 20), np.uint8)
    tiny[4, 10, 10] = 1
    r2 = _write(tmp_path / "r2.nii.gz", tiny)
    row, _, _ = _qc(tmp_path, image=img, reader2=r2)
    # Only the reader-2 mask is left out (it feeds the ICC alone): the case passes.
    assert row["status"] == "pass" and row["reader2_ok"] is False
    assert row["roi_valid"] is True
    assert "reader-2 mask tumour too small" in row["reason"] and r2 in row["reason"]
    assert "left out of the ICC" in row["reason"]


# --------------------------------------------------------------------------- workflow
def _cohort_file(cohort, patient, sequence, column):
    samples = pd.read_csv(cohort["samples"], sep="\t")
    return samples.query("patient_id == @patient and sequence == @sequence")[column].iloc[0]


def _nan_voxel(path):
    image = sitk.ReadImage(path)
    arr = sitk.GetArrayFromImage(image)
    arr[0, 0, 0] = np.nan
    _write(path, arr, like=image)


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])


def _shrink_mask(path):
    image = sitk.ReadImage(path)
    arr = np.zeros_like(sitk.GetArrayFromImage(image))
    arr[4, 10, 10:13] = 1
    _write(path, arr, like=image)


@pytest.mark.snakemake
@pytest.mark.parametrize(
    "column, spoil, words",
    [
        ("image", _nan_voxel, ["NaN/inf"]),
        ("image", _truncate, ["image unreadable", "truncated"]),
        ("mask", _shrink_mask, ["tumour too small", "qc.min_roi_voxels"]),
    ],
    ids=["nan", "truncated", "small-roi"],
)
def test_qc_rule_stops_on_bad_file(tmp_path, user_cohort, column, spoil, words):
    path = _cohort_file(user_cohort, "A003", "CET1", column)
    spoil(path)
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    target = qc_batch_file(user_cohort["samples"], "A003")
    proc = run_workflow(tmp_path, cfg, target)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "InputError: QC failed" in line]
    assert lines, proc.stderr[-3000:]
    assert "Error in rule qc_batch" in proc.stderr  # caught at QC, not later
    for word in ["patient A003 sequence CET1", path, *words]:
        assert word in lines[0], lines[0]
    assert not (tmp_path / target).exists()
    assert not (tmp_path / "results/qc/qc.tsv").exists()


@pytest.mark.snakemake
def test_exclude_mode_drops_patient_with_nan_image(tmp_path, user_cohort):
    _nan_voxel(_cohort_file(user_cohort, "A006", "T1", "image"))
    user_cohort["config"]["qc"] = {"on_fail": "exclude"}
    cfg = write_config(tmp_path / "config.yaml", user_cohort["config"])
    proc = run_workflow(
        tmp_path, cfg, "results/split/split.tsv", "results/qc/qc.tsv", "--cores", "2"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    qc = pd.read_csv(tmp_path / "results/qc/qc.tsv", sep="\t", keep_default_na=False)
    bad = qc[qc["patient_id"] == "A006"]
    assert set(bad["patient_status"]) == {"excluded"}
    t1 = bad[bad["sequence"] == "T1"].iloc[0]
    assert "NaN/inf" in t1["reason"] and str(t1["image_valid"]) == "False"
    split = pd.read_csv(tmp_path / "results/split/split.tsv", sep="\t")
    assert "A006" not in set(split["patient_id"])


@pytest.mark.parametrize("name", ["img.nrrd", "img.mha", "img.nii"])
def test_truncated_uncompressed_formats(tmp_path, name):
    path = str(tmp_path / name)
    sitk.WriteImage(sitk.GetImageFromArray(_intensity()), path, False)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    row, _, _ = _qc(tmp_path, image=path)
    _assert_fails(row, "image_readable", ["image unreadable"], path)
    assert "No such file" not in row["reason"]
