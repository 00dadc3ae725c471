"""DICOM provenance of the inputs: the StudyInstanceUID, SeriesInstanceUID and
FrameOfReferenceUID of each DICOM image series and RTSTRUCT / SEG mask, read from the
headers with pydicom (no pixel data). They go into the QC table (columns
``image_*_uid`` / ``mask_*_uid``) and the run's provenance record, so a reviewer can tell
which scan and which contour set each feature came from. NIfTI, NRRD, MHA and other
non-DICOM inputs give empty strings.
"""

from __future__ import annotations

from pathlib import Path

#: Key -> DICOM attribute, in the order the columns are written.
UID_ATTRIBUTES = {
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
}
#: QC table columns: ``<image|mask>_<key>``.
QC_UID_COLUMNS = [f"{what}_{key}" for what in ("image", "mask") for key in UID_ATTRIBUTES]


def _is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file (the 'DICM' marker after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _header(path: Path):
    """The header of a DICOM file, or of the first DICOM file (by name) of a series
    folder (one series per folder, as the sheets require); None for anything else."""
    import pydicom

    if path.is_dir():
        path = next((f for f in sorted(path.iterdir()) if f.is_file() and _is_dicom_file(f)), None)
        if path is None:
            return None
    elif not (path.is_file() and _is_dicom_file(path)):
        return None
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - an unreadable header gives no provenance, QC says why
        return None


def dicom_uids(path: str | Path) -> dict[str, str]:
    """The three UIDs of a DICOM series folder or DICOM file (``UID_ATTRIBUTES`` keys),
    empty strings for a non-DICOM or unreadable input. An RTSTRUCT carries its frame of
    reference in ReferencedFrameOfReferenceSequence (several: joined by ';')."""
    out = dict.fromkeys(UID_ATTRIBUTES, "")
    if not path:
        return out
    ds = _header(Path(path))
    if ds is None:
        return out
    for key, attribute in UID_ATTRIBUTES.items():
        out[key] = str(getattr(ds, attribute, "") or "")
    if not out["frame_of_reference_uid"]:
        frames = sorted(
            {
                str(getattr(item, "FrameOfReferenceUID", ""))
                for item in getattr(ds, "ReferencedFrameOfReferenceSequence", [])
            }
            - {""}
        )
        out["frame_of_reference_uid"] = ";".join(frames)
    return out


def qc_uid_columns(image: str | Path, mask: str | Path) -> dict[str, str]:
    """The QC row's UID columns (:data:`QC_UID_COLUMNS`) of a case's image and mask (the
    sheet's mask: the RTSTRUCT / SEG file for a DICOM mask)."""
    out = {}
    for what, path in (("image", image), ("mask", mask)):
        out.update({f"{what}_{k}": v for k, v in dicom_uids(path).items()})
    return out


def dicom_provenance(paths) -> dict[str, dict[str, str]]:
    """path -> its UIDs for every DICOM input among ``paths`` (sorted; others left out)."""
    out = {}
    for path in sorted({str(p) for p in paths if p}):
        uids = dicom_uids(path)
        if any(uids.values()):
            out[path] = uids
    return out
