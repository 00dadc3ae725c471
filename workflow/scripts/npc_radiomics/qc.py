"""Input QC per patient x sequence (pipeline step 1).

Checks: image readable; mask readable; mask geometry equals the image's (size exactly;
spacing, origin and direction within a relative tolerance); mask binary or carrying the
configured label; tumour non-empty; the same for the second reader's mask when given.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .errors import InputError
from .io import read_image

log = logging.getLogger(__name__)

QC_COLUMNS = [
    "patient_id",
    "center",
    "sequence",
    "image",
    "mask",
    "mask_reader2",
    "image_readable",
    "mask_readable",
    "geometry_match",
    "mask_labels_ok",
    "mask_nonempty",
    "reader2_ok",
    "size",
    "spacing_mm",
    "tumour_voxels",
    "tumour_volume_ml",
    "status",
    "reason",
]


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


def _check_mask(image, mask_path: str, label: int, tolerance: float, who: str) -> dict:
    """Run the mask checks; return counts, or raise InputError with the reason."""
    import SimpleITK as sitk

    try:
        mask = read_image(mask_path)
    except InputError as err:
        raise InputError(f"{who} unreadable: {err}") from None
    mismatch = geometry_mismatch(image, mask, tolerance)
    if mismatch:
        raise InputError(f"{who} geometry differs from the image: {mismatch} ({mask_path})")
    values = sitk.GetArrayViewFromImage(mask)
    labels = np.unique(values)
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise InputError(f"{who} has non-integer values ({mask_path})")
    binary = set(labels.tolist()) <= {0, 1}
    if not binary and label not in labels:
        raise InputError(
            f"{who} is neither binary nor carries label {label}: labels {labels[:10].tolist()} "
            f"({mask_path})"
        )
    voxels = int(np.count_nonzero(values == (1 if binary else label)))
    if voxels == 0:
        raise InputError(f"{who} is empty (no tumour voxel) ({mask_path})")
    return {"voxels": voxels, "labels_ok": True}


def qc_case(
    patient_id: str,
    center: str,
    sequence: str,
    image_path: str,
    mask_path: str,
    mask_reader2_path: str = "",
    mask_label: int = 1,
    tolerance: float = 1e-3,
) -> dict:
    """QC one patient x sequence; returns one row of the QC table (see ``QC_COLUMNS``).

    Never raises for bad data: a failing check gives ``status == "fail"`` and a
    ``reason`` naming patient, sequence and file; the caller decides to stop or exclude.
    """
    row = dict.fromkeys(QC_COLUMNS, "")
    row.update(
        patient_id=patient_id,
        center=center,
        sequence=sequence,
        image=image_path,
        mask=mask_path,
        mask_reader2=mask_reader2_path or "",
        image_readable=False,
        mask_readable=False,
        geometry_match=False,
        mask_labels_ok=False,
        mask_nonempty=False,
        reader2_ok="" if not mask_reader2_path else False,
        status="fail",
    )
    where = f"patient {patient_id} sequence {sequence}"
    try:
        image = read_image(image_path)
    except InputError as err:
        row["reason"] = f"{where}: image unreadable: {err}"
        return row
    row["image_readable"] = True
    row["size"] = "x".join(map(str, image.GetSize()))
    row["spacing_mm"] = "x".join(f"{s:.4g}" for s in image.GetSpacing())
    try:
        result = _check_mask(image, mask_path, mask_label, tolerance, "mask")
    except InputError as err:
        msg = str(err)
        row["mask_readable"] = "unreadable" not in msg
        row["geometry_match"] = row["mask_readable"] and "geometry" not in msg
        row["mask_labels_ok"] = row["geometry_match"] and "label" not in msg
        row["reason"] = f"{where}: {msg}"
        return row
    row.update(mask_readable=True, geometry_match=True, mask_labels_ok=True, mask_nonempty=True)
    row["tumour_voxels"] = result["voxels"]
    row["tumour_volume_ml"] = round(result["voxels"] * float(np.prod(image.GetSpacing())) / 1e3, 4)
    if mask_reader2_path:
        try:
            _check_mask(image, mask_reader2_path, mask_label, tolerance, "reader-2 mask")
        except InputError as err:
            row["reason"] = f"{where}: {err}"
            return row
        row["reader2_ok"] = True
    row["status"] = "pass"
    return row


def gather_qc(rows: list[pd.DataFrame], sequences: list[str]) -> pd.DataFrame:
    """Concatenate per-case QC rows, sorted by patient and the config's sequence order.

    A patient fails as a whole when any of its sequences fails (column
    ``patient_status``), since the model needs every sequence.
    """
    df = pd.concat(rows, ignore_index=True)
    order = {s: k for k, s in enumerate(sequences)}
    df = df.assign(_o=df["sequence"].map(order)).sort_values(["patient_id", "_o"], kind="mergesort")
    df = df.drop(columns="_o").reset_index(drop=True)
    failed = set(df.loc[df["status"] != "pass", "patient_id"])
    df["patient_status"] = np.where(df["patient_id"].isin(failed), "excluded", "included")
    return df
