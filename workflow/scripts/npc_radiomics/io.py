"""One reader for images and one for tables.

Images: anything SimpleITK reads from a file (NIfTI, NRRD, MHA, ...) or a folder holding
one DICOM series. Tables: CSV, TSV or Parquet, chosen by the file's extension.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def read_image(path: str | Path):
    """Read an image or mask; ``path`` may be a file or a DICOM series folder.

    Returns a ``SimpleITK.Image``. Raises :class:`InputError` naming the file when it is
    missing or unreadable.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InputError(f"image file not found: {path}")
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise InputError(f"no DICOM series in folder: {path}")
            if len(series) > 1:
                raise InputError(
                    f"{len(series)} DICOM series in folder {path}: point the sheet at one series"
                )
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
            return reader.Execute()
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise InputError(f"cannot read image {path}: {first}") from None


def write_image(image, path: str | Path, compress: bool = True) -> None:
    """Write a SimpleITK image, creating the parent folder."""
    import SimpleITK as sitk

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), compress)


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table, chosen by extension."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"table not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path, **kwargs)
    if suffix == ".csv":
        return pd.read_csv(path, **kwargs)
    if suffix in (".tsv", ".txt"):
        return pd.read_csv(path, sep="\t", **kwargs)
    raise InputError(f"unknown table format {suffix!r} for {path}: use .csv, .tsv or .parquet")


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a tab-separated table with a fixed float format (stable bytes across runs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False, lineterminator="\n")


def write_json(data: dict, path: str | Path) -> None:
    """JSON with sorted keys, NaN as null and other objects (paths, ...) as their str:
    stable bytes for the same content. The one JSON writer of the workflow."""

    def clean(value):
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(data), indent=2, sort_keys=True, default=str) + "\n")
