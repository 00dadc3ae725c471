"""DICOM provenance: the Study, Series and Frame-of-reference UIDs of each DICOM image
series and RTSTRUCT / SEG mask, in the QC table and the provenance record (real DICOM
written with pydicom / highdicom here); empty for NIfTI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk
from dicom_fixtures import sphere_contours, write_rtstruct, write_seg, write_series

from npc_radiomics.base.io import write_image, write_json
from npc_radiomics.imaging.qc import QC_COLUMNS, qc_batch_rule
from npc_radiomics.inputs.dicom_masks import convert_mask
from npc_radiomics.inputs.dicom_uids import QC_UID_COLUMNS, dicom_provenance, dicom_uids


def _case(tmp_path, pid="P1"):
    series = write_series(tmp_path / pid / "series", (24, 24, 8), (1.0, 1.0, 3.0))
    contours = sphere_contours(series, (12.0, 12.0, 3.5), 6.0)
    rtstruct = write_rtstruct(tmp_path / pid / "rs.dcm", series, {"GTV": contours})
    return series, rtstruct


def test_uids_of_a_series_an_rtstruct_a_seg_and_a_nifti(tmp_path):
    series, rtstruct = _case(tmp_path)
    got = dicom_uids(series.folder)
    assert got == {
        "study_instance_uid": series.study_uid,
        "series_instance_uid": series.series_uid,
        "frame_of_reference_uid": series.frame_uid,
    }
    rs = dicom_uids(rtstruct)
    own_series = str(pydicom.dcmread(rtstruct, stop_before_pixels=True).SeriesInstanceUID)
    assert rs["study_instance_uid"] == series.study_uid
    assert rs["series_instance_uid"] == own_series != series.series_uid
    # An RTSTRUCT's frame of reference is in ReferencedFrameOfReferenceSequence.
    assert rs["frame_of_reference_uid"] == series.frame_uid
    ball = np.zeros((8, 24, 24), bool)
    ball[2:6, 8:16, 8:16] = True
    seg = write_seg(tmp_path / "seg.dcm", series, {"GTV": ball})
    sg = dicom_uids(seg)
    assert sg["frame_of_reference_uid"] == series.frame_uid
    assert sg["series_instance_uid"] not in ("", series.series_uid)
    nifti = tmp_path / "image.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(nifti))
    assert dicom_uids(nifti) == dict.fromkeys(got, "")
    assert dicom_uids(tmp_path / "missing.dcm") == dict.fromkeys(got, "")
    record = dicom_provenance([str(nifti), str(series.folder), str(rtstruct), ""])
    assert list(record) == sorted([str(series.folder), str(rtstruct)])
    assert record[str(series.folder)]["series_instance_uid"] == series.series_uid
    json.dumps(record)  # plain strings for provenance.json


def test_the_qc_table_names_each_dicom_image_and_masks_uids(tmp_path):
    """One batch with a DICOM series + RTSTRUCT case and a NIfTI case: the DICOM case's
    row carries the series' and the RTSTRUCT's UIDs, the NIfTI one empty strings."""
    series, rtstruct = _case(tmp_path)
    mask, report = convert_mask("rtstruct", rtstruct, series.folder, "GTV")
    write_image(mask, tmp_path / "P1_mask.nii.gz")
    write_json(report, tmp_path / "P1_mask.json")
    # The NIfTI case: the same volume written as NIfTI.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series.folder)))
    volume = reader.Execute()
    sitk.WriteImage(volume, str(tmp_path / "P2.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "P2_mask.nii.gz"))
    cases = [
        {"patient_id": "P1", "center": "A", "sequence": "T1", "image": str(series.folder),
         "mask": str(tmp_path / "P1_mask.nii.gz"), "mask_reader2": "",
         "mask_report": str(tmp_path / "P1_mask.json"), "mask_reader2_report": ""},
        {"patient_id": "P2", "center": "A", "sequence": "T1", "image": str(tmp_path / "P2.nii.gz"),
         "mask": str(tmp_path / "P2_mask.nii.gz"), "mask_reader2": "", "mask_report": "",
         "mask_reader2_report": ""},
    ]  # fmt: skip
    out = tmp_path / "qc.tsv"
    qc_batch_rule(cases, {}, "stop", {}, ["T1"], str(out))
    table = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False).set_index("patient_id")
    assert set(QC_UID_COLUMNS) <= set(table.columns) and set(QC_UID_COLUMNS) <= set(QC_COLUMNS)
    rs = pydicom.dcmread(rtstruct, stop_before_pixels=True)
    dicom = table.loc["P1"]
    assert dicom["status"] == "pass", dicom["reason"]
    assert dicom["image_study_instance_uid"] == series.study_uid
    assert dicom["image_series_instance_uid"] == series.series_uid
    assert dicom["image_frame_of_reference_uid"] == series.frame_uid
    assert dicom["mask_series_instance_uid"] == str(rs.SeriesInstanceUID)
    assert dicom["mask_study_instance_uid"] == series.study_uid
    assert dicom["mask_frame_of_reference_uid"] == series.frame_uid
    assert (table.loc["P2", QC_UID_COLUMNS] == "").all()
