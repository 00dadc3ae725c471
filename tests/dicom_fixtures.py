"""Real DICOM written with pydicom (image series, RTSTRUCT) and highdicom (SEG) for the
mask tests: a known geometry, so rasterised masks can be compared with analytic ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


class Series:
    """A written image series: its folder, UIDs and geometry (DICOM patient coordinates)."""

    def __init__(self, folder, study_uid, series_uid, frame_uid, sop_uids, origin, rows, cols,
                 spacing, normal, positions, modality):  # fmt: skip
        self.folder = Path(folder)
        self.study_uid, self.series_uid, self.frame_uid = study_uid, series_uid, frame_uid
        self.sop_uids = sop_uids
        self.origin = np.asarray(origin, float)
        self.row_dir, self.col_dir, self.normal = rows, cols, normal
        self.spacing = spacing  # (column spacing x, row spacing y, slice spacing)
        self.positions = positions  # ImagePositionPatient per slice
        self.modality = modality

    def slice_point(self, k: int, u_mm: float, v_mm: float) -> np.ndarray:
        """Patient coordinates of in-plane offset (u along rows, v along columns) on slice k."""
        return self.positions[k] + u_mm * self.row_dir + v_mm * self.col_dir


def _base(ds: Dataset, patient="P1", study_uid=None):
    ds.PatientName, ds.PatientID = "Test^Patient", patient
    ds.PatientBirthDate, ds.PatientSex = "19700101", "M"
    ds.StudyDate, ds.StudyTime = "20250101", "120000"
    ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "1", ""
    ds.StudyInstanceUID = study_uid
    ds.Manufacturer = "npc-radiomics tests"


def write_series(
    folder: Path,
    size=(40, 36, 20),
    spacing=(0.8, 0.8, 2.0),
    *,
    rotation_deg: float = 0.0,
    origin=(-16.0, -14.0, -20.0),
    modality: str = "MR",
    values: Callable[[np.ndarray], np.ndarray] | None = None,
    frame_uid: str | None = None,
    patient: str = "P1",
) -> Series:
    """Write a DICOM series of ``size`` (columns, rows, slices) voxels.

    ``rotation_deg`` tilts the slices about the patient x axis (an oblique series).
    ``values(points)`` gives the stored intensity at patient points (n, 3); default a
    smooth ramp plus noise-free texture.
    """
    folder.mkdir(parents=True, exist_ok=True)
    a = np.deg2rad(rotation_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, np.cos(a), np.sin(a)])
    normal = np.cross(row_dir, col_dir)
    study_uid, series_uid = generate_uid(), generate_uid()
    frame_uid = frame_uid or generate_uid()
    cols, rows, n = size
    sx, sy, sz = spacing
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    positions, sops = [], []
    for k in range(n):
        pos = np.asarray(origin, float) + k * sz * normal
        points = pos + ii[..., None] * sx * row_dir + jj[..., None] * sy * col_dir
        if values is None:
            pixel = 200 + 3 * points[..., 0] + 2 * points[..., 1] + 20 * np.sin(points[..., 2])
        else:
            pixel = values(points.reshape(-1, 3)).reshape(rows, cols)
        stored = np.clip(np.round(pixel + 1024), 0, 65535).astype(np.uint16)
        meta = FileMetaDataset()
        sop = generate_uid()
        meta.MediaStorageSOPClassUID = MR_STORAGE if modality == "MR" else CT_STORAGE
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        _base(ds, patient, study_uid)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = modality, series_uid, 1
        ds.FrameOfReferenceUID, ds.InstanceNumber = frame_uid, k + 1
        ds.ImagePositionPatient = [float(x) for x in pos]
        ds.ImageOrientationPatient = [float(x) for x in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(sy), float(sx)]  # row spacing, column spacing
        ds.SliceThickness = float(sz)
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
        positions.append(pos)
        sops.append(sop)
    return Series(folder, study_uid, series_uid, frame_uid, sops, origin, row_dir, col_dir,
                  spacing, normal, positions, modality)  # fmt: skip


def write_rtstruct(
    path: Path,
    series: Series,
    rois: dict[str, Sequence[tuple[int, np.ndarray]]],
    *,
    referenced_series_uid: str | None = None,
    frame_uid: str | None = None,
) -> Path:
    """Write an RTSTRUCT: ``rois`` maps ROI name -> [(slice index, points (n, 3) in patient
    mm)] closed planar contours, each contour referencing its slice's instance."""
    meta = FileMetaDataset()
    sop = generate_uid()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = RTSTRUCT_STORAGE, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    _base(ds, "P1", series.study_uid)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_STORAGE, sop, "RTSTRUCT"
    ds.SeriesInstanceUID, ds.SeriesNumber = generate_uid(), 2
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = "GTV", "20250101", "1200"
    frame_uid = frame_uid or series.frame_uid
    contour_images = DicomSequence()
    for uid in series.sop_uids:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = MR_STORAGE, uid
        contour_images.append(item)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = referenced_series_uid or series.series_uid
    ref_series.ContourImageSequence = contour_images
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref_study.ReferencedSOPInstanceUID = series.study_uid
    ref_study.RTReferencedSeriesSequence = DicomSequence([ref_series])
    ref_frame = Dataset()
    ref_frame.FrameOfReferenceUID = frame_uid
    ref_frame.RTReferencedStudySequence = DicomSequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_frame])
    ds.StructureSetROISequence, ds.ROIContourSequence = DicomSequence(), DicomSequence()
    ds.RTROIObservationsSequence = DicomSequence()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, frame_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = name, "MANUAL"
        ds.StructureSetROISequence.append(roi)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber, roi_contour.ROIDisplayColor = number, [255, 0, 0]
        roi_contour.ContourSequence = DicomSequence()
        for k, points in contours:
            contour = Dataset()
            image = Dataset()
            image.ReferencedSOPClassUID = MR_STORAGE
            image.ReferencedSOPInstanceUID = series.sop_uids[k]
            contour.ContourImageSequence = DicomSequence([image])
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [round(float(x), 4) for x in np.asarray(points).ravel()]
            roi_contour.ContourSequence.append(contour)
        ds.ROIContourSequence.append(roi_contour)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType, obs.ROIInterpreter = "GTV", ""
        ds.RTROIObservationsSequence.append(obs)
    ds.save_as(path, enforce_file_format=True)
    return path


def circle(series: Series, k: int, centre_uv, radius_mm: float, n: int = 90) -> np.ndarray:
    """A closed polygon of ``n`` vertices: a circle on slice ``k`` (in-plane centre u, v)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u, v = centre_uv
    return np.array(
        [series.slice_point(k, u + radius_mm * np.cos(a), v + radius_mm * np.sin(a)) for a in t]
    )


def square(series: Series, k: int, centre_uv, half_mm: float) -> np.ndarray:
    u, v = centre_uv
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    return np.array([series.slice_point(k, u + a * half_mm, v + b * half_mm) for a, b in corners])


def sphere_contours(series: Series, centre_uvk, radius_mm: float):
    """Contours of a sphere of ``radius_mm`` centred at in-plane (u, v) mm on slice
    position ``k`` (fractional allowed): one circle per slice it crosses."""
    u, v, kc = centre_uvk
    out = []
    for k in range(len(series.positions)):
        dz = (k - kc) * series.spacing[2]
        if abs(dz) < radius_mm:
            out.append((k, circle(series, k, (u, v), float(np.sqrt(radius_mm**2 - dz**2)))))
    return out


def write_seg(path: Path, series: Series, masks: dict[str, np.ndarray]) -> Path:
    """A binary DICOM SEG written by highdicom: ``masks`` maps segment label -> bool array
    (slices, rows, columns) on the series' grid, numbered 1, 2, ... in order."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f) for f in sorted(series.folder.glob("*.dcm"))]
    sources.sort(key=lambda d: int(d.InstanceNumber))
    descriptions = []
    for number, label in enumerate(masks, start=1):
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Neoplasm,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    stack = np.stack([np.asarray(m, dtype=bool) for m in masks.values()], axis=-1)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stack.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=3,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="npc-radiomics tests",
        manufacturer_model_name="tests",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)
    return path
