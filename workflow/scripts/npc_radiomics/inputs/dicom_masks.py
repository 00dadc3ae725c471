"""Tumour masks from DICOM contours: RTSTRUCT and SEG, rasterised onto the image's grid.

pipeline step 1 (inputs). The sheet's ``mask`` (or ``mask_reader2``) may name a DICOM
RTSTRUCT or SEG file instead of a label image; :func:`mask_kind` tells which from the
file's header. :func:`convert_mask` turns it into a 0/1 uint8 mask on the grid of the
referenced DICOM series (the ``image`` column), written once per case as NIfTI by its
batch's QC job (rules ``qc_batch``, ``predict_qc_batch``: no job per case), so QC,
preprocessing and extraction read a label mask as before.

Libraries (pinned in requirements.lock and envs/imaging.yaml, see README "Masks"):

- RTSTRUCT: ``dcmrtstruct2nii``'s rasteriser (``DcmPatientCoords2Mask``). It maps every
  contour point from patient coordinates to the image's continuous index with SimpleITK
  (so oblique and non-axial series are handled by the image's direction matrix), fills each
  polygon at sub-voxel precision (scikit-image) and XORs the polygons of one slice (so an
  inner contour is a hole, and several contours per slice are several islands).
  ``rt-utils`` rounds vertices to whole pixels and needs OpenCV (with libGL);
  ``med-imagetools`` pulls in highdicom, scikit-image, pydantic, dask-like tooling and more.
- SEG: ``highdicom`` (current, reads and writes SEG, checks the frames' spatial
  references); ``pydicom-seg`` pins numpy < 2 and jsonschema < 4, which this stack cannot
  take.

Every failure is returned, not raised: a report naming the file, ROI and reason, with
the QC check that fails (``contour_reference_ok``, ``contour_roi_ok`` or
``mask_nonempty``), so ``qc.on_fail: exclude`` can drop just that patient.
"""

from __future__ import annotations

import contextlib
import io as _io
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from npc_radiomics.base.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "MASK_KINDS",
    "MaskReport",
    "mask_kind",
    "series_info",
    "match_names",
    "rtstruct_structures",
    "rasterise_rtstruct",
    "seg_mask",
    "convert_mask",
    "annotate_mask_kinds",
]

#: What the sheet's mask column may name: a label image, an RTSTRUCT or a SEG file.
MASK_KINDS = ("label", "rtstruct", "seg")
_MODALITY_KIND = {"RTSTRUCT": "rtstruct", "SEG": "seg"}
#: Names of label-image formats, never DICOM Part 10 files (their headers are not read).
_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")

# A contour point further than this from an image slice (in slices) is not drawn on the
# image's slice planes (another series' orientation or slice positions).
_SLICE_TOLERANCE = 0.25


@dataclass
class MaskReport:
    """What the conversion did: the JSON next to the converted mask, read by QC.

    ``status`` is ``pass`` or ``fail``; on failure ``check`` is the QC column that fails
    and ``reason`` one line naming the file and ROI.
    """

    kind: str
    source: str
    roi: str
    status: str = "pass"
    check: str = ""
    reason: str = ""
    matched: list[str] = field(default_factory=list)
    structures: list[str] = field(default_factory=list)
    action: str = ""
    voxels: int = 0
    #: A mismatch accepted knowingly (``masks.frame_of_reference: warn``); QC shows it.
    warning: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class _Fail(Exception):
    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


# ------------------------------------------------------------------------ detection
def _dicom_modality(path: Path) -> str | None:
    """The Modality of a DICOM file (Part 10 preamble), or None for any other file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception as err:  # noqa: BLE001 - any parse error: the file is not usable DICOM
        raise InputError(f"cannot read DICOM file {path}: {err}") from None
    return str(getattr(ds, "Modality", "")).upper()


def mask_kind(path: str | Path) -> str:
    """``rtstruct`` or ``seg`` for a DICOM RTSTRUCT / SEG file, else ``label`` (a label
    image in any format SimpleITK reads, or a folder). Reads at most the file's header."""
    path = Path(path)
    if path.name.lower().endswith(_IMAGE_SUFFIXES) or not path.is_file():
        return "label"  # every process reads the sheet: no open() for an image format
    return _MODALITY_KIND.get(_dicom_modality(path) or "", "label")


# ---------------------------------------------------------------------- the series
@dataclass(frozen=True)
class SeriesInfo:
    """A DICOM image series folder: files in SimpleITK's slice order and its UIDs."""

    files: tuple[str, ...]
    series_uid: str
    frame_of_reference_uid: str
    sop_uids: tuple[str, ...]


def series_info(folder: str | Path) -> SeriesInfo:
    """The one DICOM series in ``folder`` (files in the order SimpleITK stacks them)."""
    import pydicom
    import SimpleITK as sitk

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"not a DICOM series folder: {folder}")
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if len(series) != 1:
        raise InputError(f"{len(series)} DICOM series in folder {folder}: need exactly one")
    files = tuple(reader.GetGDCMSeriesFileNames(str(folder), series[0]))
    sops, frames = [], set()
    for name in files:
        ds = pydicom.dcmread(name, stop_before_pixels=True)
        sops.append(str(ds.SOPInstanceUID))
        frames.add(str(getattr(ds, "FrameOfReferenceUID", "")))
    if len(frames) != 1:
        raise InputError(f"DICOM series {folder}: slices in {len(frames)} frames of reference")
    return SeriesInfo(files, str(series[0]), frames.pop(), tuple(sops))


# ------------------------------------------------------------------- ROI matching
def match_names(pattern: str, names: list[str]) -> list[str]:
    """The names that ``pattern`` (a regular expression, case-insensitive) matches whole,
    in the order given: ``GTVp|GTV_NP`` matches ``GTVp`` and ``gtv_np``, not ``GTVp_old``."""
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise InputError(f"ROI {pattern!r} is not a regular expression: {err}") from None
    return [name for name in names if regex.fullmatch(name.strip())]


def _several(matched: list[str], structures: str, what: str) -> str:
    """The action for ``matched`` (>= 1) names under ``masks.structures``."""
    if len(matched) == 1:
        return f"one {what}: {matched[0]}"
    if structures == "fail":
        raise _Fail(
            "contour_roi_ok",
            f"matches {len(matched)} {what}s {matched} (masks.structures: fail; make the ROI "
            "pattern match one, or set masks.structures: merge)",
        )
    return f"merged {len(matched)} {what}s: {', '.join(matched)}"


# ---------------------------------------------------------------------- RTSTRUCT
def rtstruct_structures(ds) -> dict[str, dict]:
    """ROI name -> {number, frame} of every structure of an RTSTRUCT dataset, file order."""
    out = {}
    for item in getattr(ds, "StructureSetROISequence", []):
        name = str(getattr(item, "ROIName", "")).strip()
        out[name] = {
            "number": int(item.ROINumber),
            "frame": str(getattr(item, "ReferencedFrameOfReferenceUID", "")),
        }
    return out


def _referenced_series(ds) -> set[str]:
    """Series UIDs an RTSTRUCT's ReferencedFrameOfReferenceSequence names (may be empty)."""
    uids = set()
    for frame in getattr(ds, "ReferencedFrameOfReferenceSequence", []):
        for study in getattr(frame, "RTReferencedStudySequence", []):
            for series in getattr(study, "RTReferencedSeriesSequence", []):
                uids.add(str(series.SeriesInstanceUID))
    return uids


def _roi_contours(ds, number: int) -> list[dict]:
    """The planar contours of ROI ``number`` in dcmrtstruct2nii's form."""
    contours = []
    for roi in getattr(ds, "ROIContourSequence", []):
        if int(roi.ReferencedROINumber) != number:
            continue
        for contour in getattr(roi, "ContourSequence", []):
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            contours.append(
                {
                    "type": str(contour.ContourGeometricType),
                    "points": {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2]},
                }
            )
    return contours


def _check_planes(contours: list[dict], image, name: str) -> None:
    """Every closed contour lies in one of the image's slice planes."""
    for k, contour in enumerate(contours):
        if contour["type"].upper() not in ("CLOSED_PLANAR", "INTERPOLATED_PLANAR"):
            continue
        p = contour["points"]
        slices = np.array(
            [
                image.TransformPhysicalPointToContinuousIndex((float(x), float(y), float(z)))[2]
                for x, y, z in zip(p["x"], p["y"], p["z"], strict=True)
            ]
        )
        off = np.abs(slices - np.round(slices[0]))
        if off.max() > _SLICE_TOLERANCE:
            raise _Fail(
                "contour_reference_ok",
                f"contour {k + 1} of ROI {name!r} is not in a slice plane of the image (up "
                f"to {off.max():.2f} slices off): drawn on another series' orientation?",
            )
        if not -_SLICE_TOLERANCE <= slices[0] <= image.GetSize()[2] - 1 + _SLICE_TOLERANCE:
            raise _Fail(
                "contour_reference_ok",
                f"contour {k + 1} of ROI {name!r} lies outside the image's slices",
            )


def _rasterise(contours: list[dict], image, name: str) -> np.ndarray:
    """dcmrtstruct2nii's XOR polygon fill of ``contours`` on ``image``'s grid (z, y, x)."""
    import SimpleITK as sitk

    with contextlib.redirect_stdout(_io.StringIO()):  # the package prints a citation
        from dcmrtstruct2nii.adapters.convert.rtstructcontour2mask import DcmPatientCoords2Mask
        from dcmrtstruct2nii.exceptions import ContourOutOfBoundsException

    try:
        mask = DcmPatientCoords2Mask().convert(contours, image, 0, 1)
    except ContourOutOfBoundsException:
        raise _Fail(
            "contour_reference_ok", f"ROI {name!r} has contour points outside the image"
        ) from None
    return sitk.GetArrayFromImage(mask).astype(bool)


#: Config ``masks.frame_of_reference``: ``check`` refuses a mask in another frame of
#: reference than the image's; ``warn`` accepts it with a warning (e.g. contours drawn
#: after a registration that kept their UID) in the QC table.
FRAME_OF_REFERENCE_CHOICES = ("check", "warn")


def _frame_mismatch(report: MaskReport, message: str, frame_of_reference: str) -> None:
    """A frame-of-reference mismatch: a failure, or a warning under ``warn``."""
    if frame_of_reference == "warn":
        report.warning = f"{message} (accepted: masks.frame_of_reference is warn)"
        return
    raise _Fail(
        "contour_reference_ok",
        f"{message} (masks.frame_of_reference: warn accepts it if the contours are known to "
        f"fit the image)",
    )


def rasterise_rtstruct(
    path: str | Path,
    image,
    series: SeriesInfo,
    roi: str,
    structures: str = "merge",
    frame_of_reference: str = "check",
) -> tuple[np.ndarray, MaskReport]:
    """The structures of an RTSTRUCT whose names ``roi`` matches, on the image's grid.

    Args:
        path: the RTSTRUCT file.
        image: the referenced series as a SimpleITK image (``io.read_image`` of its folder).
        series: that folder's :func:`series_info`.
        roi: ROI name or regular expression (:func:`match_names`).
        structures: ``merge`` (union of every match) or ``fail`` (more than one match
            fails) (config ``masks.structures``).
        frame_of_reference: ``check`` (a structure in another frame of reference than
            the image's fails) or ``warn`` (accepted, the report's ``warning`` says so).

    Returns:
        (bool array (z, y, x) on ``image``'s grid, :class:`MaskReport`); on failure the
        array is all False and the report says why.
    """
    import pydicom

    report = MaskReport(kind="rtstruct", source=str(path), roi=roi)
    empty = np.zeros(tuple(reversed(image.GetSize())), dtype=bool)
    try:
        try:
            ds = pydicom.dcmread(path)
        except Exception as err:  # noqa: BLE001
            raise _Fail("contour_reference_ok", f"unreadable RTSTRUCT: {err}") from None
        found = rtstruct_structures(ds)
        report.structures = list(found)
        referenced = _referenced_series(ds)
        if referenced and series.series_uid not in referenced:
            raise _Fail(
                "contour_reference_ok",
                f"RTSTRUCT references series {sorted(referenced)}, not the image's series "
                f"{series.series_uid}",
            )
        try:
            matched = match_names(roi, list(found))
        except InputError as err:
            raise _Fail("contour_roi_ok", str(err)) from None
        if not matched:
            raise _Fail(
                "contour_roi_ok", f"ROI {roi!r} matches no structure (structures: {list(found)})"
            )
        report.action = _several(matched, structures, "structure")
        report.matched = matched
        union = empty.copy()
        for name in matched:
            frame = found[name]["frame"]
            if frame and frame != series.frame_of_reference_uid:
                _frame_mismatch(
                    report,
                    f"structure {name!r} is in frame of reference {frame}, the image's is "
                    f"{series.frame_of_reference_uid}",
                    frame_of_reference,
                )
            contours = _roi_contours(ds, found[name]["number"])
            _check_planes(contours, image, name)
            union |= _rasterise(contours, image, name)
        report.voxels = int(union.sum())
        if report.voxels == 0:
            raise _Fail("mask_nonempty", f"ROI {roi!r} ({', '.join(matched)}) has no voxel")
        return union, report
    except _Fail as fail:
        report.status, report.check = "fail", fail.check
        report.reason = f"RTSTRUCT {path}, ROI {roi!r}: {fail}"
        return empty, report


# --------------------------------------------------------------------------- SEG
def seg_mask(
    path: str | Path,
    series: SeriesInfo,
    shape: tuple[int, int, int],
    segment: str,
    structures: str = "merge",
    frame_of_reference: str = "check",
) -> tuple[np.ndarray, MaskReport]:
    """The segments of a DICOM SEG chosen by ``segment`` on the source series' grid.

    Args:
        path: the SEG file.
        series: :func:`series_info` of the image series the SEG was made on.
        shape: the image array's shape (z, y, x).
        segment: a segment number (``2``) or a label / regular expression matched against
            the segment labels (:func:`match_names`).
        structures: ``merge`` or ``fail`` when several segments match.
        frame_of_reference: ``check`` or ``warn``, as :func:`rasterise_rtstruct`.

    Returns:
        (bool array (z, y, x), :class:`MaskReport`), as :func:`rasterise_rtstruct`.
    """
    import highdicom as hd

    report = MaskReport(kind="seg", source=str(path), roi=str(segment))
    empty = np.zeros(shape, dtype=bool)
    try:
        try:
            seg = hd.seg.segread(path)
        except Exception as err:  # noqa: BLE001
            raise _Fail("contour_reference_ok", f"unreadable SEG: {err}") from None
        labels = {
            int(n): str(seg.get_segment_description(n).SegmentLabel) for n in seg.segment_numbers
        }
        report.structures = [f"{n}:{name}" for n, name in labels.items()]
        referenced = {str(s) for _, s, _ in seg.get_source_image_uids()}
        if series.series_uid not in referenced:
            raise _Fail(
                "contour_reference_ok",
                f"SEG was made on series {sorted(referenced)}, not the image's series "
                f"{series.series_uid}",
            )
        frame = str(getattr(seg, "FrameOfReferenceUID", ""))
        if frame and frame != series.frame_of_reference_uid:
            _frame_mismatch(
                report,
                f"SEG frame of reference {frame} is not the image's "
                f"{series.frame_of_reference_uid}",
                frame_of_reference,
            )
        text = str(segment).strip()
        if text.isdigit():
            numbers = [int(text)] if int(text) in labels else []
        else:
            try:
                names = match_names(text, list(labels.values()))
            except InputError as err:
                raise _Fail("contour_roi_ok", str(err)) from None
            numbers = [n for n, name in labels.items() if name in names]
        if not numbers:
            raise _Fail(
                "contour_roi_ok",
                f"segment {text!r} is not in the SEG (segments: {report.structures})",
            )
        report.matched = [f"{n}:{labels[n]}" for n in numbers]
        report.action = _several(report.matched, structures, "segment")
        try:
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=list(series.sop_uids),
                segment_numbers=numbers,
                assert_missing_frames_are_empty=True,
            )
        except (ValueError, KeyError) as err:
            raise _Fail(
                "contour_reference_ok", f"SEG frames do not map onto the series: {err}"
            ) from None
        mask = np.asarray(pixels).reshape(shape + (len(numbers),)).any(axis=-1)
        report.voxels = int(mask.sum())
        if report.voxels == 0:
            raise _Fail("mask_nonempty", f"segment {text!r} has no voxel")
        return mask, report
    except _Fail as fail:
        report.status, report.check = "fail", fail.check
        report.reason = f"SEG {path}, segment {segment!r}: {fail}"
        return empty, report


# ----------------------------------------------------------------- one case's mask
def convert_mask(
    kind: str,
    source: str | Path,
    image_path: str | Path,
    roi: str,
    structures: str = "merge",
    frame_of_reference: str = "check",
):
    """One DICOM mask: (uint8 0/1 SimpleITK mask on the image's grid, report dict).

    ``image_path`` must be the DICOM series folder the RTSTRUCT / SEG references. When the
    conversion fails the mask is all zero (a 2 x 2 x 2 zero image when the series itself
    cannot be read) and the report says why; QC refuses the case before the mask is used.
    ``frame_of_reference`` (config ``masks.frame_of_reference``): ``check`` or ``warn``.
    """
    if frame_of_reference not in FRAME_OF_REFERENCE_CHOICES:
        raise ValueError(f"masks.frame_of_reference: {frame_of_reference!r}")
    import SimpleITK as sitk

    from npc_radiomics.base.io import read_image

    if kind not in ("rtstruct", "seg"):
        raise ValueError(f"not a DICOM contour kind: {kind!r}")
    stage = "folder"
    try:
        info = series_info(image_path)
        stage = "series"
        image = read_image(image_path)
    except InputError as err:
        report = MaskReport(kind=kind, source=str(source), roi=str(roi), status="fail")
        report.check = "contour_reference_ok"
        report.reason = (
            f"{kind.upper()} {source}: the image must be the DICOM series folder it references: "
            f"{err}"
            if stage != "series"
            else f"{kind.upper()} {source}: its image series cannot be read: {err}"
        )
        placeholder = sitk.Image([2, 2, 2], sitk.sitkUInt8)
        return placeholder, report.to_dict()
    if kind == "rtstruct":
        array, report = rasterise_rtstruct(source, image, info, roi, structures, frame_of_reference)
    else:
        shape = tuple(reversed(image.GetSize()))
        array, report = seg_mask(source, info, shape, roi, structures, frame_of_reference)
    mask = sitk.GetImageFromArray(array.astype(np.uint8))
    mask.CopyInformation(image)
    log.info("%s %s: %s %s", kind, source, report.status, report.reason or report.action)
    return mask, report.to_dict()


# --------------------------------------------------------------------- start-up
def annotate_mask_kinds(
    samples,
    roi_by_sequence: dict[str, str],
    check_files: bool = True,
    what: str = "sample sheet",
):
    """The sample sheet with ``mask_kind``, ``mask_reader2_kind`` and ``mask_roi`` filled.

    ``mask_roi``: the sheet's column when given, else config ``masks.roi`` for the row's
    sequence. A DICOM mask without an ROI, or whose image is not a folder (the DICOM
    series it references), stops the run at start-up (:class:`InputError` naming the
    patient, sequence and file). ``check_files=False`` (the demo, whose files do not yet
    exist) marks every mask a label image. ``what`` names the sheet in the messages.
    """
    df = samples.copy()
    if "mask_roi" not in df.columns:
        df["mask_roi"] = ""
    df["mask_roi"] = df["mask_roi"].fillna("").astype(str).str.strip()
    for col in ("mask", "mask_reader2"):
        df[f"{col}_kind"] = [mask_kind(p) if (check_files and p) else "label" for p in df[col]]
    contour = (df["mask_kind"] != "label") | (df["mask_reader2_kind"] != "label")
    for i, row in df[contour].iterrows():
        where = f"patient {row['patient_id']} sequence {row['sequence']}"
        roi = row["mask_roi"] or str(roi_by_sequence.get(row["sequence"], "") or "")
        col = "mask" if row["mask_kind"] != "label" else "mask_reader2"
        kind = row[f"{col}_kind"].upper()
        if not roi:
            raise InputError(
                f"{what}: {where}: {col} is a DICOM {kind} ({row[col]}) but no ROI is "
                "given (column mask_roi, or config masks.roi for the sequence)"
            )
        if not Path(row["image"]).is_dir():
            raise InputError(
                f"{what}: {where}: {col} is a DICOM {kind} ({row[col]}); the image must "
                f"be the DICOM series folder it references, not {row['image']}"
            )
        df.loc[i, "mask_roi"] = roi
    return df
