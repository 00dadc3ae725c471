"""Faults that used to pass silently, each now one clear line: a multi-label mask lacking
the configured tumour label, NaN in a float mask, a failing reader-2 mask (only that mask
is dropped), DICOM slice gaps and uneven spacing, predict-sheet line numbers, and an
RTSTRUCT / SEG in another frame of reference (refused, or accepted knowingly with a
warning in the QC table)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from dicom_fixtures import square, write_rtstruct, write_series

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_image
from npc_radiomics.imaging.qc import QCSettings, qc_batch_rule, qc_case
from npc_radiomics.inputs.dicom_masks import convert_mask

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)


def _ball(shape=(10, 24, 24), radius=6.0) -> np.ndarray:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    c = np.array(shape) / 2
    return ((x - c[2]) ** 2 + (y - c[1]) ** 2 + ((z - c[0]) * 2) ** 2) < radius**2


def _write(path, arr) -> str:
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def _image(path, shape=(10, 24, 24)) -> str:
    return _write(path, (RNG.normal(100, 10, shape) + 50 * _ball(shape)).astype(np.float32))


def _default_qc_settings() -> QCSettings:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return QCSettings.from_config(config["qc"], config["masks"])


# ------------------------------------------------------------------------ mask labels
def test_a_multi_label_mask_without_a_configured_label_fails_naming_its_labels(tmp_path):
    image = _image(tmp_path / "img.nii.gz")
    labels = _ball().astype(np.uint8)
    labels[:, :, :12] *= 2  # tumour 2, nodes 1: which is the tumour?
    mask = _write(tmp_path / "mask.nii.gz", labels)
    row = qc_case("P1", "A", "T1", image, mask, settings=_default_qc_settings())
    assert row["status"] == "fail" and row["mask_labels_ok"] is False
    assert "(qc.mask_label is not set): labels found [1, 2]" in row["reason"]
    assert mask in row["reason"]
    # A configured label the mask lacks: named with the labels found.
    row = qc_case("P1", "A", "T1", image, mask, settings=QCSettings(mask_label=3))
    assert row["status"] == "fail"
    assert "configured tumour label qc.mask_label 3: labels found [1, 2]" in row["reason"]
    # The configured label present: that label is the tumour.
    row = qc_case("P1", "A", "T1", image, mask, settings=QCSettings(mask_label=2))
    assert row["status"] == "pass" and row["tumour_voxels"] == int((labels == 2).sum())
    # A binary mask needs no label.
    binary = _write(tmp_path / "binary.nii.gz", _ball().astype(np.uint8))
    assert qc_case("P1", "A", "T1", image, binary, settings=_default_qc_settings())["status"] == (
        "pass"
    )


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.nrrd"])
def test_nan_in_a_float_mask_fails_qc_naming_it(tmp_path, name):
    image = _image(tmp_path / "img.nii.gz")
    values = _ball().astype(np.float32)
    values[0, 0, :5] = np.nan  # outside the tumour: ITK's NIfTI reader would make it 0
    mask = _write(tmp_path / name, values)
    row = qc_case("P1", "A", "T1", image, mask, settings=_default_qc_settings())
    assert row["status"] == "fail" and row["mask_labels_ok"] is False
    assert "mask has 5 NaN/inf voxel(s)" in row["reason"] and mask in row["reason"]


# ------------------------------------------------------------------------ reader 2
def test_a_failing_reader2_mask_drops_only_that_mask(tmp_path):
    """QC (exclude), preprocessing and extraction of a batch of two patients whose second
    has a reader-2 mask too small to pass: the patient stays, without reader-2 features;
    the first keeps both readers. Under qc.on_fail stop the run still stops."""
    from npc_radiomics.imaging.features import extract_batch_rule
    from npc_radiomics.imaging.preprocess import preprocess_batch_rule

    cases = []
    for pid, tiny in (("P1", False), ("P2", True)):
        image = _image(tmp_path / f"{pid}.nii.gz")
        mask = _write(tmp_path / f"{pid}_m.nii.gz", _ball().astype(np.uint8))
        r2 = _ball(radius=5.5).astype(np.uint8)
        if tiny:
            r2[:] = 0
            r2[5, 12, 12:14] = 1
        reader2 = _write(tmp_path / f"{pid}_r2.nii.gz", r2)
        cases.append(
            {
                "patient_id": pid,
                "center": "A",
                "sequence": "T1",
                "image": image,
                "mask": mask,
                "mask_reader2": reader2,
                "mask_report": "",
                "mask_reader2_report": "",
            }
        )
    qc_config = {"on_fail": "exclude", "mask_label": None, "geometry_tolerance": 1e-3}
    with pytest.raises(InputError, match="QC failed: patient P2 sequence T1: reader-2 mask"):
        qc_batch_rule(cases, qc_config, "stop", None, ["T1"], str(tmp_path / "qc_stop.tsv"))
    qc_path = str(tmp_path / "qc.tsv")
    table = qc_batch_rule(cases, qc_config, "exclude", None, ["T1"], qc_path)
    p2 = table.set_index("patient_id").loc["P2"]
    assert p2["patient_status"] == "included" and p2["status"] == "pass"
    assert str(p2["reader2_ok"]) == "False" and "left out of the ICC" in p2["reason"]
    settings = {"T1": {"n4": {"enabled": False}, "interpolator": "bspline", "crop_margin_mm": None}}
    folder = tmp_path / "pre"
    keys = ("patient_id", "sequence", "image", "mask", "mask_reader2")
    preprocess_batch_rule(
        [{k: c[k] for k in keys} for c in cases],
        qc_path,
        str(folder),
        str(tmp_path / "moments.tsv"),
        settings=settings,
        spacing_mm=[1.0, 1.0, 1.0],
        mask_label=None,
        components="merge",
    )
    assert (folder / "P1" / "T1_mask_reader2.nii.gz").exists()
    assert not (folder / "P2" / "T1_mask_reader2.nii.gz").exists()
    assert (folder / "P2" / "T1_mask.nii.gz").exists()
    extract_batch_rule(
        [{"patient_id": c["patient_id"], "sequence": "T1", "mask_reader2": True} for c in cases],
        str(folder),
        None,
        params_files={"T1": str(ROOT / "resources" / "pyradiomics_params_fast.yaml")},
        normalization={"T1": {"method": "none"}},
        crop_margin_mm=None,
        features_path=str(tmp_path / "features.parquet"),
        provenance_path=str(tmp_path / "provenance.tsv"),
    )
    features = pd.read_parquet(tmp_path / "features.parquet")
    readers = features.groupby("patient_id")["reader"].apply(lambda r: sorted(set(r)))
    assert readers.to_dict() == {"P1": ["reader1", "reader2"], "P2": ["reader1"]}


# ------------------------------------------------------------------------ DICOM series
def _remove_slice(series, k):
    (series.folder / f"{k:04d}.dcm").unlink()


def _shift_slice(series, k, mm):
    import pydicom

    path = series.folder / f"{k:04d}.dcm"
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [
        float(v) + mm * n for v, n in zip(series.positions[k], series.normal, strict=True)
    ]
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda s: _remove_slice(s, 4), ["slice gap: 4.000 mm", "about 1 missing slice(s)"]),
        (lambda s: _shift_slice(s, 4, 0.6), ["non-uniform slice spacing: from 1.400 to 2.600"]),
    ],
    ids=["missing-slice", "uneven-spacing"],
)
def test_dicom_slice_gaps_and_uneven_spacing_are_named_at_qc(tmp_path, spoil, words):
    series = write_series(tmp_path / "series", size=(30, 30, 10), spacing=(1.0, 1.0, 2.0))
    gtv = [(k, square(series, k, (14, 14), 6)) for k in (2, 3, 6, 7)]
    contours = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": gtv})
    read_image(series.folder)  # a whole regular series reads
    spoil(series)
    with pytest.raises(InputError, match=re.escape(words[0])):
        read_image(series.folder)
    mask, report = convert_mask("rtstruct", contours, series.folder, "GTV")
    for word in words:
        assert word in report["reason"], report["reason"]
    assert "slice plane" not in report["reason"] and "orientation" not in report["reason"]
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    row = qc_case(
        "P1", "A", "T1", str(series.folder), str(tmp_path / "mask.nii.gz"), reports={"mask": report}
    )
    assert row["status"] == "fail" and row["image_readable"] is False
    for word in words:
        assert word in row["reason"], row["reason"]


# ------------------------------------------------------------------------ frame of reference
def test_frame_of_reference_mismatch_is_refused_or_accepted_with_a_warning(tmp_path):
    series = write_series(tmp_path / "series", size=(30, 30, 6), spacing=(1.0, 1.0, 2.0))
    gtv = [(k, square(series, k, (12, 12), 5)) for k in (2, 3)]
    path = write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": gtv}, frame_uid="1.2.3.4")
    _, refused = convert_mask("rtstruct", path, series.folder, "GTV")
    assert refused["status"] == "fail" and "masks.frame_of_reference: warn" in refused["reason"]
    mask, accepted = convert_mask("rtstruct", path, series.folder, "GTV", frame_of_reference="warn")
    assert accepted["status"] == "pass" and accepted["voxels"] > 0
    assert "frame of reference 1.2.3.4" in accepted["warning"]
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    row = qc_case(
        "P1",
        "A",
        "T1",
        str(series.folder),
        str(tmp_path / "mask.nii.gz"),
        reports={"mask": accepted},
        settings=QCSettings(min_roi_voxels=8),
    )
    assert row["status"] == "pass", row["reason"]
    assert row["reason"].startswith("patient P1 sequence T1: warning: structure 'GTV'")
    assert "accepted: masks.frame_of_reference is warn" in row["reason"]


def test_frame_of_reference_switch_is_in_config_and_schema():
    from npc_radiomics.base.config import validate_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert config["masks"]["frame_of_reference"] == "check"
    config["masks"]["frame_of_reference"] = "ignore"
    with pytest.raises(InputError, match="frame_of_reference"):
        validate_config(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


# ------------------------------------------------------------------------ predict sheet lines
def test_predict_sheet_messages_name_the_real_line(tmp_path):
    from test_bundle import SEQUENCES, make_bundle

    from npc_radiomics.deploy.predict import predict_setup

    bundle = make_bundle(tmp_path / "b")
    folder = tmp_path / "img"
    folder.mkdir()
    lines = ["patient_id\tsequence\timage\tmask\tresponse"]
    for seq in SEQUENCES:
        (folder / f"N1_{seq}.nii.gz").write_bytes(b"x")
        (folder / f"N1_{seq}_m.nii.gz").write_bytes(b"x")
        lines.append(f"N1\t{seq}\timg/N1_{seq}.nii.gz\timg/N1_{seq}_m.nii.gz\t1")
    lines.insert(2, "")  # a blank line: every later row is one line further down
    sheet = tmp_path / "new.tsv"

    def setup(rows):
        sheet.write_text("\n".join(rows) + "\n")
        cfg = {"samples": str(sheet), "bundle": str(bundle), "outcomes": None}
        return predict_setup({**cfg, "allow_extractor_mismatch": False})

    # Relative paths resolve against the sheet's folder, wherever the run starts.
    assert setup(lines).samples["image"].iloc[0] == str(folder / f"N1_{SEQUENCES[0]}.nii.gz")
    unknown = lines + ["N1\tFLAIR\timg/x.nii.gz\timg/y.nii.gz\t1"]
    with pytest.raises(InputError, match=f"predict sample sheet line {len(unknown)}: sequence"):
        setup(unknown)
    bad = [*lines[:-1], lines[-1].replace("\t1", "\t2")]
    with pytest.raises(InputError, match=f"predict sample sheet line {len(bad)}: outcome"):
        setup(bad)
