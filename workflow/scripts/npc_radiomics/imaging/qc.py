"""Input QC per patient x sequence (pipeline step 1).

Checks, in order (the QC table's columns): image readable (the whole file decompresses and
a NIfTI holds the voxels its header declares); image valid (a 3D scalar volume, no NaN/inf,
not constant, not a 0/1 mask); mask readable; mask geometry equals the image's (size
exactly; spacing, origin and direction within a relative tolerance); mask labels (integer,
a label mask rather than an intensity image, binary or carrying ``qc.mask_label``); tumour
non-empty; ROI valid (at least ``qc.min_roi_voxels`` voxels, extending over two axes, some
intensity spread inside); the same mask checks for the second reader's mask when given.

A mask given as a DICOM RTSTRUCT or SEG is rasterised by the batch's QC job first
(:func:`rasterise_case_masks`, :mod:`npc_radiomics.inputs.dicom_masks`); its report adds
two checks (``contour_reference_ok``: the contours reference the image's series and
frame of reference and lie on its slices; ``contour_roi_ok``: the ROI matches a
structure / segment) and the QC row names the RTSTRUCT / SEG file. Label masks pass both
(nothing to check). Several connected components are merged or cut to the largest
(config ``masks.components``); the columns ``mask_components`` and ``mask_action`` say
which was done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_image, verify_image_file
from npc_radiomics.inputs.dicom_uids import QC_UID_COLUMNS, qc_uid_columns

if TYPE_CHECKING:  # the QC tables need pandas; preprocessing's mask helpers here do not
    import pandas as pd

log = logging.getLogger(__name__)

#: The reader-1 checks of a case, in the order they run (each a True/False column).
CASE_CHECKS = [
    "image_readable",
    "image_valid",
    "contour_reference_ok",
    "contour_roi_ok",
    "mask_readable",
    "geometry_match",
    "mask_labels_ok",
    "mask_nonempty",
    "roi_valid",
]
QC_COLUMNS = [
    "patient_id",
    "center",
    "sequence",
    "image",
    "mask",
    "mask_reader2",
    *CASE_CHECKS,
    "reader2_ok",
    "size",
    "spacing_mm",
    "tumour_voxels",
    "tumour_volume_ml",
    "mask_kind",
    "mask_roi",
    "mask_components",
    "mask_action",
    "status",
    "reason",
    # DICOM provenance of the image and the mask (empty for NIfTI and other formats).
    *QC_UID_COLUMNS,
]

#: How a failing reader-2 mask is reported: its case passes, the mask is left out.
READER2_DROPPED = "the reader-2 mask is left out of the ICC (the patient stays)"

# A label mask carries a handful of labels; an intensity image given as the mask (image and
# mask columns swapped) carries hundreds of distinct values.
MAX_MASK_LABELS = 255


@dataclass(frozen=True)
class QCSettings:
    """Config ``qc`` (see config/config.yaml): the thresholds of the checks."""

    mask_label: int | None = None
    tolerance: float = 1e-3
    min_roi_voxels: int = 27
    max_mask_fraction: float = 0.5
    components: str = "merge"

    @classmethod
    def from_config(cls, qc: dict, masks: dict | None = None) -> QCSettings:
        return cls(
            mask_label=None if qc.get("mask_label") is None else int(qc["mask_label"]),
            tolerance=float(qc.get("geometry_tolerance", 1e-3)),
            min_roi_voxels=int(qc.get("min_roi_voxels", 27)),
            max_mask_fraction=float(qc.get("max_mask_fraction", 0.5)),
            components=str((masks or {}).get("components", "merge")),
        )


class _Fail(Exception):
    """A failed check: ``check`` is the QC column that stays False."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


def tumour_label(values: np.ndarray, mask_label: int | None) -> int | None:
    """Which value of a mask is the tumour, the one rule QC and preprocessing share.

    ``values``: the distinct values of the mask. The configured ``mask_label`` when the
    mask carries it; else 1 when the mask is binary (0/1); else None (no tumour label:
    a multi-label mask lacking the configured label, or any multi-label mask when no
    label is configured, ``qc.mask_label: null``).
    """
    values = np.asarray(values)
    if mask_label is not None and np.any(values == mask_label):
        return int(mask_label)
    if values.size and set(np.unique(values).tolist()) <= {0, 1}:
        return 1
    return None


def tumour_components(roi: np.ndarray, components: str = "merge") -> tuple[np.ndarray, int, str]:
    """Several lesions in one mask, the one rule QC and preprocessing share.

    ``roi``: bool tumour array. ``components`` (config ``masks.components``): ``merge``
    keeps every connected component (26-connectivity), ``largest`` the largest (ties: the
    first in raster order). Returns (kept bool array, number of components, what was done).
    """
    import SimpleITK as sitk

    labelled = sitk.ConnectedComponent(
        sitk.GetImageFromArray(roi.astype(np.uint8)), True
    )  # fully connected: voxels touching at a corner are one lesion
    labels = sitk.GetArrayFromImage(labelled)
    n = int(labels.max())
    if n <= 1:
        return roi, n, ""
    if components == "largest":
        sizes = np.bincount(labels.ravel())[1:]
        keep = labels == int(np.argmax(sizes)) + 1
        return (
            keep,
            n,
            f"kept the largest of {n} components ({int(sizes.max())} of {int(sizes.sum())} voxels)",
        )
    return roi, n, f"merged {n} components"


def geometry_mismatch(image, mask, tolerance: float = 1e-3) -> str | None:
    """Describe how ``mask``'s grid differs from ``image``'s, or None when they match.

    Size must match exactly; spacing, origin and direction within ``tolerance`` relative to
    the image's spacing (origin differences are compared in voxels of the image).
    """
    if image.GetDimension() != mask.GetDimension():
        return f"dimension {mask.GetDimension()} != image {image.GetDimension()}"
    if tuple(image.GetSize()) != tuple(mask.GetSize()):
        return f"size {tuple(mask.GetSize())} != image {tuple(image.GetSize())}"
    spacing = np.asarray(image.GetSpacing())
    if not np.allclose(mask.GetSpacing(), spacing, rtol=tolerance, atol=0):
        return f"spacing {tuple(mask.GetSpacing())} != image {tuple(image.GetSpacing())}"
    offset_vox = np.abs(np.subtract(mask.GetOrigin(), image.GetOrigin())) / spacing
    if np.any(offset_vox > tolerance):
        return f"origin {tuple(mask.GetOrigin())} != image {tuple(image.GetOrigin())}"
    if not np.allclose(mask.GetDirection(), image.GetDirection(), atol=tolerance):
        return "direction differs from the image's"
    return None


def scalar_3d_problem(image) -> str | None:
    """Why ``image`` is not a 3D scalar volume (2D, 4D, vector/RGB, one slice), or None."""
    dim = image.GetDimension()
    if dim != 3:
        return f"is {dim}D (size {tuple(image.GetSize())}); only 3D scalar images are supported"
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        return (
            f"has {components} components per voxel (vector or RGB image); only 3D scalar "
            "images are supported"
        )
    if min(image.GetSize()) < 2:
        return f"has a single slice (size {tuple(image.GetSize())}): a 2D image, not a 3D volume"
    return None


def _read(path: str, what: str, check: str):
    """(image, NaN/inf voxels stored in the file) or raise _Fail."""
    try:
        nonfinite = verify_image_file(path)
        return read_image(path), nonfinite
    except InputError as err:
        raise _Fail(check, f"{what} unreadable: {err}") from None


def _check_image(path: str):
    """Read the image and check it is a finite, non-constant 3D scalar volume."""
    import SimpleITK as sitk

    image, stored_nonfinite = _read(path, "image", "image_readable")
    problem = scalar_3d_problem(image)
    if problem:
        raise _Fail("image_valid", f"image {problem} ({path})")
    values = sitk.GetArrayViewFromImage(image)
    # ITK's NIfTI reader turns stored NaN into 0: count in the file's bytes as well.
    bad = max(int(values.size - np.count_nonzero(np.isfinite(values))), stored_nonfinite)
    if bad:
        raise _Fail(
            "image_valid",
            f"image has {bad} NaN/inf voxel(s) of {values.size}; they would spread through N4 "
            f"and resampling into every feature ({path})",
        )
    low, high = float(values.min()), float(values.max())
    if low == high:
        raise _Fail("image_valid", f"image is constant (every voxel = {low:g}) ({path})")
    if low >= 0 and high <= 1 and np.array_equal(values, np.round(values)):
        raise _Fail(
            "image_valid",
            f"image holds only 0 and 1: a mask, not an MR image (image and mask columns "
            f"swapped?) ({path})",
        )
    return image


def _check_mask(
    image,
    image_path: str,
    mask_path: str,
    settings: QCSettings,
    who: str,
    components_out: list | None = None,
) -> int:
    """Run the mask and ROI checks; return the tumour's voxel count or raise _Fail.
    ``components_out`` receives [number of components, action]."""
    components_out = [] if components_out is None else components_out
    import SimpleITK as sitk

    mask, stored_nonfinite = _read(mask_path, who, "mask_readable")
    problem = scalar_3d_problem(mask)
    if problem:
        raise _Fail("mask_readable", f"{who} {problem} ({mask_path})")
    # ITK's NIfTI reader turns a float mask's NaN into 0 (background): count them in the
    # file's bytes, and in the voxels for other formats.
    nonfinite = max(
        stored_nonfinite,
        int(np.count_nonzero(~np.isfinite(sitk.GetArrayViewFromImage(mask))))
        if mask.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64)
        else 0,
    )
    if nonfinite:
        raise _Fail(
            "mask_labels_ok",
            f"{who} has {nonfinite} NaN/inf voxel(s): a float mask with undefined voxels, "
            f"not a label mask ({mask_path})",
        )
    mismatch = geometry_mismatch(image, mask, settings.tolerance)
    if mismatch:
        raise _Fail(
            "geometry_match", f"{who} geometry differs from the image: {mismatch} ({mask_path})"
        )
    values = sitk.GetArrayViewFromImage(mask)
    labels = np.unique(values)
    swapped = "an intensity image? image and mask columns swapped?"
    if not np.all(np.isfinite(labels)) or not np.all(np.equal(np.mod(labels, 1), 0)):
        raise _Fail("mask_labels_ok", f"{who} has non-integer values ({swapped}) ({mask_path})")
    if len(labels) > MAX_MASK_LABELS:
        raise _Fail(
            "mask_labels_ok",
            f"{who} has {len(labels)} distinct values, not a label mask ({swapped}) ({mask_path})",
        )
    fraction = np.count_nonzero(values) / values.size
    if fraction > settings.max_mask_fraction:
        raise _Fail(
            "mask_labels_ok",
            f"{who} is non-zero in {fraction:.0%} of the voxels (more than qc.max_mask_fraction "
            f"{settings.max_mask_fraction:g}; {swapped}) ({mask_path})",
        )
    label = tumour_label(labels, settings.mask_label)
    if label is None:
        found = [int(v) if float(v).is_integer() else float(v) for v in labels[labels != 0][:10]]
        raise _Fail(
            "mask_labels_ok",
            (
                f"{who} is neither binary nor carries a configured tumour label (qc.mask_label "
                f"is not set): labels found {found}; set qc.mask_label to the tumour's label"
                if settings.mask_label is None
                else f"{who} is neither binary nor carries the configured tumour label "
                f"qc.mask_label {settings.mask_label}: labels found {found}"
            )
            + f" ({mask_path})",
        )
    roi = values == label
    if not roi.any():
        raise _Fail("mask_nonempty", f"{who} is empty (no tumour voxel) ({mask_path})")
    roi, n_components, action = tumour_components(roi, settings.components)
    components_out[:] = [n_components, action]
    voxels = int(np.count_nonzero(roi))
    if voxels < settings.min_roi_voxels:
        raise _Fail(
            "roi_valid",
            f"{who} tumour too small: {voxels} voxel(s), fewer than qc.min_roi_voxels "
            f"{settings.min_roi_voxels} ({mask_path})",
        )
    extent = [int(np.ptp(axis)) + 1 for axis in np.nonzero(roi)]
    if sum(e > 1 for e in extent) < 2:
        raise _Fail(
            "roi_valid",
            f"{who} tumour spans a single voxel along two axes (extent {extent[::-1]} voxels "
            f"x, y, z): too few dimensions for texture features ({mask_path})",
        )
    inside = sitk.GetArrayViewFromImage(image)[roi]
    if float(inside.min()) == float(inside.max()):
        raise _Fail(
            "roi_valid",
            f"{who}: zero intensity spread inside the tumour (every voxel = "
            f"{float(inside.min()):g}) in image {image_path} ({mask_path})",
        )
    return voxels


def qc_case(
    patient_id: str,
    center: str,
    sequence: str,
    image_path: str,
    mask_path: str,
    mask_reader2_path: str = "",
    settings: QCSettings | None = None,
    reports: dict | None = None,
) -> dict:
    """QC one patient x sequence; returns one row of the QC table (see ``QC_COLUMNS``).

    ``reports``: for a mask converted from DICOM contours, ``{"mask": report,
    "mask_reader2": report}`` (:func:`rasterise_case_masks`' JSON, see
    :class:`npc_radiomics.inputs.dicom_masks.MaskReport`); the row then names the RTSTRUCT / SEG
    file and a failed conversion fails its check.

    Never raises for bad data: a failing check gives ``status == "fail"``, the check's
    column False, and a ``reason`` naming patient, sequence and file; the caller decides
    to stop or exclude. A failing reader-2 mask fails only ``reader2_ok``: the case
    passes (the reader-2 mask, which only feeds the ICC, is left out, and ``reason`` says
    so). A DICOM mask accepted with a warning (``masks.frame_of_reference: warn``) passes
    with the warning as its ``reason``.
    """
    settings = settings or QCSettings()
    checks = list(CASE_CHECKS)
    row = dict.fromkeys(QC_COLUMNS, "")
    row.update(
        patient_id=patient_id,
        center=center,
        sequence=sequence,
        image=image_path,
        mask=mask_path,
        mask_reader2=mask_reader2_path or "",
        reader2_ok="" if not mask_reader2_path else False,
        status="fail",
        mask_kind="label",
    )
    row.update(dict.fromkeys(checks, False))
    reports = reports or {}
    report = reports.get("mask")
    if report:
        row.update(mask=report["source"], mask_kind=report["kind"], mask_roi=report["roi"])
        row["mask_action"] = report.get("action", "")
    report2 = reports.get("mask_reader2")
    if report2:
        row["mask_reader2"] = report2["source"]
    where = f"patient {patient_id} sequence {sequence}"
    try:
        image = _check_image(image_path)
        row["size"] = "x".join(map(str, image.GetSize()))
        row["spacing_mm"] = "x".join(f"{s:.4g}" for s in image.GetSpacing())
        if report and report["status"] != "pass":
            raise _Fail(report["check"], report["reason"])
        components: list = []
        voxels = _check_mask(image, image_path, mask_path, settings, "mask", components)
        row["mask_components"] = components[0]
        if components[1]:
            row["mask_action"] = "; ".join(a for a in (row["mask_action"], components[1]) if a)
        row["tumour_voxels"] = voxels
        row["tumour_volume_ml"] = round(voxels * float(np.prod(image.GetSpacing())) / 1e3, 4)
    except _Fail as fail:
        # Every check before the failing one passed.
        row.update(dict.fromkeys(checks[: checks.index(fail.check)], True))
        row["reason"] = f"{where}: {fail}"
        return row
    row.update(dict.fromkeys(checks, True))
    row["status"] = "pass"
    if report and report.get("warning"):
        row["reason"] = f"{where}: warning: {report['warning']}"
    if mask_reader2_path:
        try:
            if report2 and report2["status"] != "pass":
                raise _Fail("reader2_ok", f"reader-2 mask: {report2['reason']}")
            _check_mask(image, image_path, mask_reader2_path, settings, "reader-2 mask")
        except _Fail as fail:
            # The reader-2 mask only feeds the ICC: it is left out, the case stays.
            row["reason"] = f"{where}: {fail}; {READER2_DROPPED}"
            return row
        row["reader2_ok"] = True
    return row


def gather_qc(rows: list[pd.DataFrame], sequences: list[str]) -> pd.DataFrame:
    """Concatenate the cases' QC rows, sorted by patient and the config's sequence order.

    A patient fails as a whole when any of its sequences fails (column
    ``patient_status``), since the model needs every sequence.
    """
    import pandas as pd

    df = pd.concat(rows, ignore_index=True)
    order = {s: k for k, s in enumerate(sequences)}
    df = df.assign(_o=df["sequence"].map(order)).sort_values(["patient_id", "_o"], kind="mergesort")
    df = df.drop(columns="_o").reset_index(drop=True)
    failed = set(df.loc[df["status"] != "pass", "patient_id"])
    df["patient_status"] = np.where(df["patient_id"].isin(failed), "excluded", "included")
    return df


def qc_rule(
    patient: str,
    center: str,
    sequence: str,
    image: str,
    mask: str,
    mask_reader2: str,
    qc_config: dict,
    on_fail: str,
    masks_config: dict | None = None,
    report_paths: dict | None = None,
) -> pd.DataFrame:
    """One case of rule ``qc_batch``: the case's QC row, or an InputError when it fails and
    ``on_fail`` is ``stop`` (``exclude``: the failing row is kept and the patient dropped
    from the later stages). ``report_paths``: {"mask" / "mask_reader2": JSON path} of masks
    converted from DICOM contours (:func:`rasterise_case_masks`)."""
    import json

    reports = {k: json.loads(open(v).read()) for k, v in (report_paths or {}).items() if v}
    row = qc_case(
        patient,
        center,
        sequence,
        image,
        mask,
        mask_reader2,
        settings=QCSettings.from_config(qc_config, masks_config),
        reports=reports,
    )
    # row["mask"] is the sheet's file: the RTSTRUCT / SEG for a DICOM mask.
    row.update(qc_uid_columns(image, row["mask"]))
    log.info("%s %s: %s %s", row["patient_id"], row["sequence"], row["status"], row["reason"])
    if on_fail == "stop" and (row["status"] != "pass" or row["reader2_ok"] is False):
        raise InputError(
            f"QC failed: {row['reason']} (set qc.on_fail: exclude to drop the patient)"
        )
    import pandas as pd

    return pd.DataFrame([row], columns=QC_COLUMNS)


def rasterise_case_masks(
    case: dict, structures: str = "merge", frame_of_reference: str = "check"
) -> list[str]:
    """A case's DICOM RTSTRUCT / SEG masks rasterised onto its series' grid
    (:func:`npc_radiomics.inputs.dicom_masks.convert_mask`): for each of ``mask`` and
    ``mask_reader2`` with a ``<key>_source`` file, the uint8 label mask written to
    ``case[key]`` and the report to ``case[key + "_report"]``, as QC and preprocessing
    read them. Label masks (no source) are left as they are. ``frame_of_reference``:
    config ``masks.frame_of_reference`` (``check`` or ``warn``). Returns the masks written.
    """
    from pathlib import Path

    from npc_radiomics.base.io import write_image, write_json
    from npc_radiomics.inputs.dicom_masks import convert_mask

    written = []
    for key in ("mask", "mask_reader2"):
        source = case.get(f"{key}_source")
        if not source:
            continue
        mask, report = convert_mask(
            case[f"{key}_kind"],
            source,
            case["image"],
            case["mask_roi"],
            structures,
            frame_of_reference=frame_of_reference,
        )
        Path(case[key]).parent.mkdir(parents=True, exist_ok=True)
        write_image(mask, case[key])
        write_json(report, case[f"{key}_report"])
        log.info(
            "%s %s: %s %s rasterised, %s", case["patient_id"], case["sequence"], key,
            case[f"{key}_kind"], report["status"],
        )  # fmt: skip
        written.append(case[key])
    return written


def qc_batch_rule(
    cases: list[dict],
    qc_config: dict,
    on_fail: str,
    masks_config: dict | None,
    sequences: list[str],
    out_path: str,
    workers: int = 1,
) -> pd.DataFrame:
    """Rule ``qc_batch``: :func:`qc_rule` for each case of a batch (``cases``: dicts with
    patient_id, center, sequence, image, mask, mask_reader2, and the DICOM masks' report
    paths mask_report / mask_reader2_report, '' for label masks; a DICOM mask's file, kind
    and ROI in mask_source / mask_kind, mask_reader2_source / mask_reader2_kind, mask_roi:
    rasterised first by :func:`rasterise_case_masks`, with config ``masks.structures``),
    gathered with each
    patient's inclusion (:func:`gather_qc`) into ``out_path``. The first failing case
    raises under ``on_fail: stop`` and nothing is written. The cases run in ``workers``
    processes (:func:`npc_radiomics.imaging.batches.run_cases`); the table is the same."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.imaging.batches import run_cases

    structures = (masks_config or {}).get("structures", "merge")
    frame_of_reference = (masks_config or {}).get("frame_of_reference", "check")

    def work(case):
        rasterise_case_masks(case, structures, frame_of_reference)
        return qc_rule(
            case["patient_id"],
            case["center"],
            case["sequence"],
            case["image"],
            case["mask"],
            case["mask_reader2"],
            qc_config,
            on_fail,
            masks_config,
            {
                key: case[f"{key}_report"]
                for key in ("mask", "mask_reader2")
                if case.get(f"{key}_report")
            },
        )

    rows = run_cases(cases, work, "QC", passthrough=(InputError,), workers=workers)
    table = gather_qc(rows, sequences)
    write_tsv(table, out_path)
    excluded = sorted(table.loc[table["patient_status"] == "excluded", "patient_id"].unique())
    log.info("QC: %d cases, %d patient(s) excluded: %s", len(table), len(excluded), excluded)
    return table
