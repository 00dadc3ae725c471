"""Masks from DICOM RTSTRUCT and SEG: rasterised on real DICOM written in the test and
compared with the analytic shapes; every bad input gives one QC line naming the file and
ROI (npc_radiomics.inputs.dicom_masks)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_fixtures import (
    circle,
    sphere_contours,
    square,
    write_rtstruct,
    write_seg,
    write_series,
)

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_image
from npc_radiomics.inputs.dicom_masks import (
    annotate_mask_kinds,
    convert_mask,
    mask_kind,
    match_names,
)

RADIUS = 9.0


def _physical_points(image: sitk.Image) -> np.ndarray:
    """Patient coordinates (z, y, x, 3) of every voxel centre of ``image``."""
    size = image.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), axis=-1)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    points = idx * np.asarray(image.GetSpacing()) @ direction.T + np.asarray(image.GetOrigin())
    return points.transpose(2, 1, 0, 3)  # numpy order (z, y, x)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _sphere_case(tmp_path, rotation_deg):
    series = write_series(tmp_path / "series", rotation_deg=rotation_deg)
    centre_uvk = (15.2, 13.7, 9.6)  # in-plane mm on slice position 9.6: off the voxel grid
    body = [(k, circle(series, k, (16, 14), 14)) for k in range(2, 18)]
    gtv = sphere_contours(series, centre_uvk, RADIUS)
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"BODY": body, "GTVp": gtv})
    u, v, k = centre_uvk
    centre = series.slice_point(0, u, v) + k * series.spacing[2] * series.normal
    return series, path, centre


@pytest.mark.parametrize("rotation_deg", [0.0, 35.0], ids=["axial", "oblique"])
def test_rtstruct_sphere_matches_the_analytic_mask(tmp_path, rotation_deg):
    series, path, centre = _sphere_case(tmp_path, rotation_deg)
    mask, report = convert_mask("rtstruct", path, series.folder, "gtv.*")
    assert report["status"] == "pass", report
    assert report["matched"] == ["GTVp"] and report["structures"] == ["BODY", "GTVp"]
    image = read_image(series.folder)
    assert mask.GetSize() == image.GetSize()
    assert np.allclose(mask.GetDirection(), image.GetDirection())
    if rotation_deg:  # the series really is oblique
        assert not np.allclose(image.GetDirection(), np.eye(3).ravel())
    got = sitk.GetArrayFromImage(mask).astype(bool)
    # Analytic mask: the sphere's slice circles (polygons are drawn slice by slice, so the
    # truth is the sphere sampled at the slice planes, voxel centres inside the circle).
    points = _physical_points(image)
    truth = np.linalg.norm(points - centre, axis=-1) < RADIUS
    assert _dice(got, truth) > 0.95
    voxel_ml = float(np.prod(image.GetSpacing()))
    layer = 4 * np.pi * RADIUS**2 * min(image.GetSpacing())  # one voxel layer over the surface
    assert abs(int(got.sum()) - int(truth.sum())) * voxel_ml <= layer
    assert report["voxels"] == int(got.sum())


def test_rtstruct_hole_and_two_islands_on_one_slice(tmp_path):
    series = write_series(tmp_path / "series", size=(40, 40, 6), spacing=(1.0, 1.0, 2.0))
    k = 3
    # Edges half-way between voxel centres (1 mm voxels at whole mm from the origin).
    contours = [
        (k, square(series, k, (12.5, 20.5), 8)),  # outer 16 x 16 mm
        (k, square(series, k, (12.5, 20.5), 3)),  # inner 6 x 6 mm: a hole
        (k, square(series, k, (31.5, 20.5), 3)),  # a second island
    ]
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": contours})
    mask, report = convert_mask("rtstruct", path, series.folder, "GTV")
    assert report["status"] == "pass", report
    got = sitk.GetArrayFromImage(mask).astype(bool)
    assert got[[0, 1, 2, 4, 5]].sum() == 0  # only slice 3
    plane = got[k]  # (rows: v mm, columns: u mm) from the slice origin
    vv, uu = np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij")
    outer = (np.abs(uu - 12.5) < 8) & (np.abs(vv - 20.5) < 8)
    hole = (np.abs(uu - 12.5) < 3) & (np.abs(vv - 20.5) < 3)
    island = (np.abs(uu - 31.5) < 3) & (np.abs(vv - 20.5) < 3)
    truth = (outer & ~hole) | island
    assert hole.sum() == 36 and plane[hole].sum() == 0  # the hole is a hole
    assert plane[island].all()
    assert np.array_equal(plane, truth)


def test_rtstruct_several_structures_merge_or_fail(tmp_path):
    series = write_series(tmp_path / "series", size=(40, 40, 6), spacing=(1.0, 1.0, 2.0))
    rois = {
        "GTVp": [(k, square(series, k, (10, 10), 4)) for k in (2, 3)],
        "GTVn_L": [(k, square(series, k, (30, 30), 3)) for k in (2, 3)],
    }
    path = write_rtstruct(tmp_path / "rs.dcm", series, rois)
    mask, report = convert_mask("rtstruct", path, series.folder, "GTV.*", "merge")
    assert report["status"] == "pass" and report["matched"] == ["GTVp", "GTVn_L"]
    assert report["action"] == "merged 2 structures: GTVp, GTVn_L"
    one, _ = convert_mask("rtstruct", path, series.folder, "GTVp")
    two, _ = convert_mask("rtstruct", path, series.folder, "gtvn_l")
    total = sitk.GetArrayFromImage(one).sum() + sitk.GetArrayFromImage(two).sum()
    assert sitk.GetArrayFromImage(mask).sum() == total > 0
    _, report = convert_mask("rtstruct", path, series.folder, "GTV.*", "fail")
    assert report["status"] == "fail" and report["check"] == "contour_roi_ok"
    assert "matches 2 structures ['GTVp', 'GTVn_L']" in report["reason"]
    assert str(path) in report["reason"] and "'GTV.*'" in report["reason"]


def test_rtstruct_bad_inputs_give_one_clear_reason(tmp_path):
    series = write_series(tmp_path / "series", size=(30, 30, 6), spacing=(1.0, 1.0, 2.0))
    other = write_series(tmp_path / "other", size=(30, 30, 6), spacing=(1.0, 1.0, 2.0))
    gtv = [(k, square(series, k, (12, 12), 4)) for k in (2, 3)]
    good = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": gtv, "Empty": []})
    # An RTSTRUCT made on another series (another frame of reference too).
    foreign = write_rtstruct(tmp_path / "foreign.dcm", other, {"GTV": gtv})
    cases = [
        (foreign, series.folder, "GTV", "contour_reference_ok", "references series"),
        (good, series.folder, "CTV", "contour_roi_ok", "ROI 'CTV' matches no structure"),
        (good, series.folder, "Empty", "mask_nonempty", "ROI 'Empty' (Empty) has no voxel"),
        (good, series.folder, "GTV[", "contour_roi_ok", "not a regular expression"),
        (good, tmp_path / "rs.dcm", "GTV", "contour_reference_ok", "DICOM series folder"),
    ]
    for path, image, roi, check, words in cases:
        mask, report = convert_mask("rtstruct", path, image, roi)
        assert report["status"] == "fail" and report["check"] == check, report
        assert words in report["reason"] and str(path) in report["reason"], report["reason"]
        assert "\n" not in report["reason"]
        assert sitk.GetArrayFromImage(mask).sum() == 0


def test_rtstruct_frame_of_reference_mismatch(tmp_path):
    series = write_series(tmp_path / "series", size=(30, 30, 6), spacing=(1.0, 1.0, 2.0))
    gtv = [(k, square(series, k, (12, 12), 4)) for k in (2, 3)]
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": gtv}, frame_uid="1.2.3.4")
    _, report = convert_mask("rtstruct", path, series.folder, "GTV")
    assert report["check"] == "contour_reference_ok"
    assert "frame of reference 1.2.3.4" in report["reason"]


def test_rtstruct_contour_off_the_slice_planes(tmp_path):
    series = write_series(tmp_path / "series", size=(30, 30, 6), spacing=(1.0, 1.0, 2.0))
    tilted = square(series, 2, (12, 12), 4)
    tilted[2:] += series.normal * 3.0  # two corners 1.5 slices away: not planar in the image
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": [(2, tilted)]})
    _, report = convert_mask("rtstruct", path, series.folder, "GTV")
    assert report["check"] == "contour_reference_ok"
    assert "not in a slice plane" in report["reason"]


def _seg_case(tmp_path):
    series = write_series(tmp_path / "series", size=(24, 20, 8), spacing=(1.0, 1.0, 2.0))
    shape = (8, 20, 24)
    gtv = np.zeros(shape, bool)
    gtv[2:6, 5:12, 6:15] = True
    node = np.zeros(shape, bool)
    node[3:5, 14:18, 17:21] = True
    path = write_seg(tmp_path / "seg.dcm", series, {"GTVp": gtv, "GTVn": node})
    return series, path, gtv, node


def test_seg_segment_by_label_number_and_pattern(tmp_path):
    series, path, gtv, node = _seg_case(tmp_path)
    assert mask_kind(path) == "seg"
    for segment, truth in (("GTVp", gtv), ("2", node), ("gtv.", gtv | node)):
        mask, report = convert_mask("seg", path, series.folder, segment)
        assert report["status"] == "pass", report
        got = sitk.GetArrayFromImage(mask).astype(bool)
        assert np.array_equal(got, truth), segment
        assert mask.GetSize() == read_image(series.folder).GetSize()
    assert report["action"] == "merged 2 segments: 1:GTVp, 2:GTVn"


def test_seg_missing_segment_and_other_series(tmp_path):
    series, path, _, _ = _seg_case(tmp_path)
    _, report = convert_mask("seg", path, series.folder, "CTV")
    assert report["check"] == "contour_roi_ok"
    assert "segment 'CTV' is not in the SEG (segments: ['1:GTVp', '2:GTVn'])" in report["reason"]
    _, report = convert_mask("seg", path, series.folder, "7")
    assert report["check"] == "contour_roi_ok" and str(path) in report["reason"]
    other = write_series(tmp_path / "other", size=(24, 20, 8), spacing=(1.0, 1.0, 2.0))
    _, report = convert_mask("seg", path, other.folder, "GTVp")
    assert report["check"] == "contour_reference_ok" and "made on series" in report["reason"]


def test_match_names_is_whole_and_case_insensitive():
    names = ["GTVp", "GTVp_old", "gtv_np", "CTV"]
    assert match_names("GTVp|GTV_NP", names) == ["GTVp", "gtv_np"]
    with pytest.raises(InputError, match="not a regular expression"):
        match_names("(", names)


def test_mask_kind_and_start_up_checks(tmp_path):
    import pandas as pd

    series = write_series(tmp_path / "series", size=(20, 20, 4), spacing=(1.0, 1.0, 2.0))
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": [(1, square(series, 1, (8, 8), 3))]})
    label = tmp_path / "m.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(label))
    assert mask_kind(rs) == "rtstruct" and mask_kind(label) == "label"
    assert mask_kind(next(series.folder.glob("*.dcm"))) == "label"  # an MR slice, not contours
    sheet = pd.DataFrame(
        [
            {"patient_id": "P1", "sequence": "MR_T1", "image": str(series.folder),
             "mask": str(rs), "mask_reader2": ""},
            {"patient_id": "P2", "sequence": "MR_T1", "image": "x.nii.gz",
             "mask": str(label), "mask_reader2": ""},
        ]
    )  # fmt: skip
    out = annotate_mask_kinds(sheet, {"MR_T1": "GTV.*"})
    assert out["mask_kind"].tolist() == ["rtstruct", "label"]
    assert out["mask_roi"].tolist() == ["GTV.*", ""]
    with pytest.raises(InputError, match=r"patient P1 sequence MR_T1: mask is a DICOM RTSTRUCT"):
        annotate_mask_kinds(sheet, {})
    sheet.loc[0, "mask_roi"] = "GTV"  # the sheet's column wins over config
    assert annotate_mask_kinds(sheet, {"MR_T1": "other"})["mask_roi"].iloc[0] == "GTV"
    sheet.loc[0, "image"] = str(label)
    with pytest.raises(InputError, match="the image must be the DICOM series folder"):
        annotate_mask_kinds(sheet, {})


# ------------------------------------------------------------------ through the workflow
def _dicom_case(root, pid, kind, roi_names=("GTVp",)):
    """A DICOM series with a bright ball and its RTSTRUCT / SEG (20 x 20 x 8, 1 x 1 x 3 mm,
    as conftest.write_case)."""
    centre = np.array([10.0, 10.0, 12.0])  # mm from the series' first voxel

    def values(points):
        inside = np.linalg.norm((points - series_origin - centre) / [1, 1, 1], axis=1) < 6
        ramp = 0.5 * points[:, 0] + np.sin(points[:, 1])
        return 100 + 50 * inside + ramp

    series_origin = np.array([0.0, 0.0, 0.0])
    series = write_series(
        root / pid / "series", size=(20, 20, 8), spacing=(1.0, 1.0, 3.0), origin=series_origin,
        values=values, patient=pid,
    )  # fmt: skip
    if kind == "rtstruct":
        rois = {name: sphere_contours(series, (10.0, 10.0, 4.0), 6.0) for name in roi_names}
        return series, write_rtstruct(root / pid / "rs.dcm", series, rois)
    zz, yy, xx = np.mgrid[:8, :20, :20]
    ball = np.sqrt((xx - 10) ** 2 + (yy - 10) ** 2 + ((zz - 4) * 3) ** 2) < 6
    return series, write_seg(root / pid / "seg.dcm", series, dict.fromkeys(roi_names, ball))


@pytest.mark.snakemake
def test_workflow_qc_with_rtstruct_and_seg_masks(tmp_path, user_cohort):
    """T1 of A000 from an RTSTRUCT (ROI by config map), of A001 from a SEG (segment by the
    sheet's mask_roi), of A002 from an RTSTRUCT whose ROI matches nothing: with
    qc.on_fail: exclude only A002 is dropped, with one line naming patient, sequence, file
    and ROI; the rasterised masks feed preprocessing."""
    import pandas as pd
    from conftest import preprocessed_file, qc_batch_file, run_workflow, write_config

    root = user_cohort["root"] / "dicom"
    path = user_cohort["samples"]
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df["mask_roi"] = ""
    for pid, kind, roi in (("A000", "rtstruct", ""), ("A001", "seg", "GTVp"),
                           ("A002", "rtstruct", "CTV")):  # fmt: skip
        series, contours = _dicom_case(root, pid, kind)
        row = (df["patient_id"] == pid) & (df["sequence"] == "T1")
        df.loc[row, ["image", "mask", "mask_roi"]] = [str(series.folder), str(contours), roi]
    df.to_csv(path, sep="\t", index=False)
    config = user_cohort["config"]
    config["qc"] = {"on_fail": "exclude"}
    config["masks"] = {"roi": {"T1": "gtv.*"}}
    # two worker processes per batch job: rasterisation, QC and N4 in the workers
    config["imaging"] = {"patients_per_job": 10, "threads_per_job": 2}
    cfg = write_config(tmp_path / "config.yaml", config)
    # The QC table of the batch of A000-A002 (A000-A009) and its preprocessed masks.
    target = qc_batch_file(path, "A000")
    assert target == qc_batch_file(path, "A002")
    proc = run_workflow(tmp_path, cfg, target, "results/preprocess/A/000", "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    qc = pd.read_csv(tmp_path / target, sep="\t", keep_default_na=False)
    qc = qc[(qc["sequence"] == "T1") & qc["patient_id"].isin(["A000", "A001", "A002"])]
    t1 = qc.set_index("patient_id")
    assert t1.loc["A000", "mask_kind"] == "rtstruct" and t1.loc["A000", "status"] == "pass"
    assert t1.loc["A000", "mask"].endswith("A000/rs.dcm")
    assert t1.loc["A000", "mask_roi"] == "gtv.*"  # from config masks.roi
    assert t1.loc["A001", "mask_kind"] == "seg" and t1.loc["A001", "status"] == "pass"
    assert t1.loc["A001", "mask_roi"] == "GTVp"
    assert t1.loc["A001", "mask_action"] == "one segment: 1:GTVp"
    bad = t1.loc["A002"]
    assert bad["status"] == "fail" and str(bad["contour_roi_ok"]) == "False"
    assert str(bad["contour_reference_ok"]) == "True"
    for words in ("patient A002 sequence T1", "A002/rs.dcm", "ROI 'CTV' matches no structure"):
        assert words in bad["reason"], bad["reason"]
    status = t1["patient_status"]
    assert status["A002"] == "excluded" and status["A000"] == status["A001"] == "included"
    # The rasterised ball (radius 6 mm, 3 mm slices): ~ its volume, on the 1 mm grid after
    # preprocessing.
    raw = sitk.ReadImage(str(tmp_path / "results/masks/A000/T1_mask.nii.gz"))
    assert 0.8 < sitk.GetArrayFromImage(raw).sum() * 3.0 / (4 / 3 * np.pi * 6**3) < 1.2
    pre = sitk.ReadImage(str(preprocessed_file(tmp_path, "A000", "T1_mask.nii.gz")))
    # A002 (excluded by QC) was not preprocessed.
    assert not list((tmp_path / "results/preprocess/A/000").glob("A002/*"))
    assert pre.GetSpacing() == (1.0, 1.0, 1.0)
    assert 0.8 < sitk.GetArrayFromImage(pre).sum() / (4 / 3 * np.pi * 6**3) < 1.2
    # the batch job rasterised A000's RTSTRUCT voxel for voxel as the conversion alone does
    series = str(root / "A000" / "series")
    alone, report = convert_mask("rtstruct", str(root / "A000" / "rs.dcm"), series, "gtv.*")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(raw), sitk.GetArrayFromImage(alone))
    assert raw.GetOrigin() == alone.GetOrigin() and raw.GetDirection() == alone.GetDirection()
    log = (tmp_path / "results/logs/qc_batch/A/000.log").read_text()
    assert "QC: 30 cases in 2 worker processes" in log and "QC 30/30: " in log


# ---------------------------------------------------------- several lesions in one mask
def _two_lesions():
    arr = np.zeros((10, 30, 30), np.uint8)
    arr[2:8, 3:12, 3:12] = 1  # 486 voxels
    arr[3:6, 20:25, 20:25] = 1  # 75 voxels
    return arr


def test_components_merge_or_largest_in_qc_and_preprocessing(tmp_path):
    from npc_radiomics.imaging.preprocess import binarise_mask
    from npc_radiomics.imaging.qc import QCSettings, qc_case, tumour_components

    arr = _two_lesions()
    kept, n, action = tumour_components(arr > 0, "largest")
    assert n == 2 and kept.sum() == 486 and action.startswith("kept the largest of 2")
    merged, n, action = tumour_components(arr > 0, "merge")
    assert merged.sum() == 561 and action == "merged 2 components"
    touching = arr.copy()
    touching[8, 12, 12] = 1  # touches the first lesion at a corner only: the same lesion
    assert tumour_components(touching > 0, "largest")[1] == 2
    mask = sitk.GetImageFromArray(arr)
    assert sitk.GetArrayFromImage(binarise_mask(mask, 1, "largest")).sum() == 486
    assert sitk.GetArrayFromImage(binarise_mask(mask, 1)).sum() == 561
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray((rng.normal(100, 10, arr.shape) + 40 * arr).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "img.nii.gz"))
    mask.CopyInformation(image)
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    args = ("P1", "A", "T1", str(tmp_path / "img.nii.gz"), str(tmp_path / "mask.nii.gz"))
    row = qc_case(*args, settings=QCSettings(components="largest"))
    assert row["status"] == "pass" and row["tumour_voxels"] == 486
    assert row["mask_components"] == 2 and "kept the largest of 2" in row["mask_action"]
    row = qc_case(*args)  # default merge: today's behaviour
    assert row["tumour_voxels"] == 561 and row["mask_action"] == "merged 2 components"
    assert row["mask_kind"] == "label" and row["contour_roi_ok"] is True


def test_qc_case_reads_the_conversion_reports(tmp_path):
    """QC of a converted mask: a passing report gives a passing row naming the RTSTRUCT,
    a failing one fails its check with the report's line; reader 2 likewise."""
    from npc_radiomics.base.io import write_image
    from npc_radiomics.imaging.qc import qc_case

    series, contours = _dicom_case(tmp_path, "P1", "rtstruct", ("GTVp", "GTVn"))
    reports = {}
    for name, roi in (("good", "GTVp"), ("none", "CTV"), ("two", "GTV.")):
        mask, reports[name] = convert_mask("rtstruct", contours, series.folder, roi, "fail")
        write_image(mask, tmp_path / f"{name}.nii.gz")
    args = ("P1", "A", "MR_T1", str(series.folder))
    row = qc_case(*args, str(tmp_path / "good.nii.gz"), reports={"mask": reports["good"]})
    assert row["status"] == "pass", row["reason"]
    assert row["mask"] == str(contours) and row["mask_kind"] == "rtstruct"
    assert row["mask_action"] == "one structure: GTVp" and row["mask_components"] == 1
    row = qc_case(*args, str(tmp_path / "two.nii.gz"), reports={"mask": reports["two"]})
    assert row["status"] == "fail" and row["contour_roi_ok"] is False
    assert row["contour_reference_ok"] is True and row["mask_readable"] is False
    assert row["reason"].startswith("patient P1 sequence MR_T1: RTSTRUCT ")
    assert "matches 2 structures ['GTVp', 'GTVn']" in row["reason"]
    row = qc_case(
        *args,
        str(tmp_path / "good.nii.gz"),
        str(tmp_path / "none.nii.gz"),
        reports={"mask": reports["good"], "mask_reader2": reports["none"]},
    )
    assert row["status"] == "pass" and row["reader2_ok"] is False  # only reader 2 left out
    assert row["mask_reader2"] == str(contours)
    assert "reader-2 mask: RTSTRUCT" in row["reason"] and "'CTV'" in row["reason"]


# ------------------------------------------------ rasterised inside the batches, no job per case
def _dicom_batch_cases(root, n=4):
    """QC cases of one batch whose T1 masks are DICOM contours (RTSTRUCT and SEG in turn,
    patient 1 with a reader-2 RTSTRUCT too), as rule qc_batch receives them."""
    cases = []
    for k in range(n):
        pid = f"P{k}"
        kind = ("rtstruct", "seg")[k % 2]
        series, contours = _dicom_case(root, pid, kind)
        second = str(contours) if k == 1 else ""
        out = root / "results" / "masks" / pid
        cases.append(
            {"patient_id": pid, "center": "A", "sequence": "T1", "image": str(series.folder),
             "mask": str(out / "T1_mask.nii.gz"), "mask_report": str(out / "T1_mask.json"),
             "mask_reader2": str(out / "T1_mask_reader2.nii.gz") if second else "",
             "mask_reader2_report": str(out / "T1_mask_reader2.json") if second else "",
             "mask_source": str(contours), "mask_kind": kind, "mask_roi": "GTVp",
             "mask_reader2_source": second, "mask_reader2_kind": kind if second else "label"}
        )  # fmt: skip
    return cases


def test_qc_batch_rasterises_the_dicom_masks_as_the_per_case_conversion(tmp_path):
    """The batch's QC job (two workers) writes each DICOM mask and its report where QC and
    preprocessing read them, voxel for voxel what the per-case conversion wrote."""
    import json

    import pandas as pd

    from npc_radiomics.imaging.qc import qc_batch_rule

    cases = _dicom_batch_cases(tmp_path)
    table = qc_batch_rule(
        cases, {"on_fail": "stop"}, "stop", {"structures": "merge"}, ["T1"],
        str(tmp_path / "qc.tsv"), workers=2,
    )  # fmt: skip
    assert (table["status"] == "pass").all(), table["reason"].tolist()
    assert table["mask"].tolist() == [c["mask_source"] for c in cases]  # names the DICOM file
    assert table["mask_kind"].tolist() == ["rtstruct", "seg", "rtstruct", "seg"]
    written = 0
    for case in cases:
        for key in ("mask", "mask_reader2"):
            if not case[f"{key}_source"]:
                continue
            mask, report = convert_mask(
                case[f"{key}_kind"], case[f"{key}_source"], case["image"], "GTVp", "merge"
            )
            got = sitk.ReadImage(case[key])
            assert got.GetPixelID() == sitk.sitkUInt8
            for attr in ("GetSize", "GetOrigin", "GetSpacing", "GetDirection"):
                assert getattr(got, attr)() == getattr(mask, attr)(), (case["patient_id"], attr)
            np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(mask))
            assert sitk.GetArrayFromImage(got).sum() > 100
            assert json.loads(open(case[f"{key}_report"]).read()) == report
            written += 1
    assert written == 5
    assert pd.read_csv(tmp_path / "qc.tsv", sep="\t")["patient_status"].eq("included").all()


@pytest.mark.snakemake
def test_a_dicom_cohort_adds_no_job_per_case(tmp_path, user_cohort):
    """Every T1 mask an RTSTRUCT or SEG (28 patients, 84 cases): the DAG has as many QC,
    preprocessing and extraction jobs as batches, and no per-case mask job."""
    import pandas as pd
    from conftest import run_workflow, write_config
    from test_workflow import _job_counts

    root = user_cohort["root"] / "dicom"
    path = user_cohort["samples"]
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for k, pid in enumerate(sorted(df["patient_id"].unique())):
        series, contours = _dicom_case(root, pid, ("rtstruct", "seg")[k % 2])
        row = (df["patient_id"] == pid) & (df["sequence"] == "T1")
        df.loc[row, ["image", "mask"]] = [str(series.folder), str(contours)]
    df.to_csv(path, sep="\t", index=False)
    config = {**user_cohort["config"], "masks": {"roi": {"T1": "GTVp"}}}
    cfg = write_config(tmp_path / "config.yaml", config)
    proc = run_workflow(tmp_path, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = _job_counts(proc.stdout)
    batches = 3 + 1  # 24 patients of A in runs of 10, 4 of B
    for rule in ("qc_batch", "preprocess_batch", "extract_batch"):
        assert counts[rule] == batches, (rule, counts)
    assert not {"dicom_mask", "dicom_mask_reader2"} & set(counts), counts
    assert "results/masks/" not in proc.stdout  # no job writes a mask of its own
