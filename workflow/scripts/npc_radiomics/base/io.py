"""One reader for images and one for tables.

Images: anything SimpleITK reads from a file (NIfTI, NRRD, MHA, ...) or a folder holding
one DICOM series. Tables: CSV, TSV or Parquet, chosen by the file's extension. Tables a
user hands over (sheets, a ready feature table) may also be gzipped text or ``.xlsx``
workbooks, and their cells are read as written (:func:`read_rows`).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from npc_radiomics.base.errors import InputError

if TYPE_CHECKING:  # imported where tables are read: image-only jobs do without pandas
    import pandas as pd

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
            files = reader.GetGDCMSeriesFileNames(str(path), series[0])
            problem = slice_spacing_problem(files)
            if problem:
                raise InputError(f"DICOM series {path}: {problem}")
            reader.SetFileNames(files)
            return reader.Execute()
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"cannot read image {path}: {_itk_reason(str(err))}") from None


def slice_spacing_problem(files, tolerance_mm: float = 0.01) -> str | None:
    """Why the slices of a DICOM series (``files`` in SimpleITK's order) do not make one
    regular volume, or None: a missing slice (a gap of about a whole number of slice
    spacings), uneven slice spacing or two slices at one position. ITK would stack them
    anyway with the mean spacing, moving every slice past the gap. Positions are the
    ImagePositionPatient along the slice normal; spacings agree within ``tolerance_mm``
    or 1 %. A single file (a multi-frame object) is left to the reader."""
    import SimpleITK as sitk

    if len(files) < 3:
        return None
    positions, normal = [], None
    for name in files:
        header = sitk.ImageFileReader()
        header.SetFileName(str(name))
        header.ReadImageInformation()
        if not (header.HasMetaDataKey("0020|0032") and header.HasMetaDataKey("0020|0037")):
            return None  # no patient geometry (secondary capture ...): the reader decides
        position = np.array([float(v) for v in header.GetMetaData("0020|0032").split("\\")])
        if normal is None:
            cosines = [float(v) for v in header.GetMetaData("0020|0037").split("\\")]
            normal = np.cross(cosines[:3], cosines[3:6])
        positions.append(float(position @ normal))
    z = np.sort(np.asarray(positions))
    steps = np.diff(z)
    if np.any(steps < tolerance_mm):
        k = int(np.argmin(steps))
        return f"two slices at one position ({z[k]:.3f} mm along the slice normal)"
    spacing = float(np.median(steps))
    tolerance = max(tolerance_mm, 0.01 * spacing)
    if np.all(np.abs(steps - spacing) <= tolerance):
        return None
    k = int(np.argmax(np.abs(steps - spacing)))
    if steps[k] > 1.5 * spacing:
        missing = int(round(steps[k] / spacing)) - 1
        return (
            f"slice gap: {steps[k]:.3f} mm between slices at {z[k]:.3f} and {z[k + 1]:.3f} mm "
            f"where the series' spacing is {spacing:.3f} mm (about {max(missing, 1)} missing "
            f"slice(s) among {len(files)}); export the whole series"
        )
    return (
        f"non-uniform slice spacing: from {steps.min():.3f} to {steps.max():.3f} mm (median "
        f"{spacing:.3f} mm) over {len(files)} slices; resample or export a regular series"
    )


def _itk_reason(message: str) -> str:
    """The informative part of an ITK exception: the ``ITK ERROR`` line without the object
    address, and the reason unless it is a stale errno (``No such file`` for a file that
    exists but is truncated)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    error = next((x for x in lines if x.startswith("ITK ERROR")), None)
    if error is None:
        return lines[-1]
    text = re.sub(r"^ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", error)
    if text.endswith(":") and lines[-1] != error:  # the detail is on the last line
        text += " " + lines[-1]
    reason = next((x for x in lines if x.startswith("Reason:")), "")
    if reason and "No such file" not in reason:
        text += " " + reason
    return text


# NIfTI datatype codes of floating-point voxels -> numpy type (byte order added per file)
_NIFTI_FLOATS = {16: "f4", 64: "f8"}


def _nifti_layout(header: bytes) -> tuple[int, int, str | None] | None:
    """(voxel data offset, voxel data bytes, numpy float dtype or None) from a single-file
    NIfTI-1 or NIfTI-2 header, or None when ``header`` is not one."""
    for endian in ("<", ">"):
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            if header[344:347] != b"n+1":
                return None
            dim = struct.unpack(endian + "8h", header[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
            offset = max(int(struct.unpack(endian + "f", header[108:112])[0]), 352)
            break
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            if header[4:7] != b"n+2":
                return None
            datatype, bitpix = struct.unpack(endian + "2h", header[12:16])
            dim = struct.unpack(endian + "8q", header[16:80])
            offset = max(struct.unpack(endian + "q", header[168:176])[0], 544)
            break
    else:
        return None
    if not 1 <= dim[0] <= 7:
        return None
    voxels = 1
    for n in dim[1 : dim[0] + 1]:
        voxels *= max(int(n), 1)
    floats = _NIFTI_FLOATS.get(int(datatype))
    return offset, voxels * max(int(bitpix), 8) // 8, (endian + floats) if floats else None


def _blocks(path: Path, gzipped: bool):
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:
        while block := fh.read(1 << 22):
            yield block


def verify_image_file(path: str | Path) -> int:
    """Check that an image file is whole before it is read; return its NaN/inf voxel count.

    A ``.gz`` file is decompressed to the end (ITK zero-fills what is missing instead of
    failing), and a NIfTI file (``.nii``, ``.nii.gz``) must hold as many voxel bytes as its
    header declares. Floating-point NIfTI voxels are counted for NaN/inf in the stored
    bytes, since ITK's NIfTI reader turns NaN into 0. Other formats and DICOM folders are
    left to the reader (0 is returned). Raises :class:`InputError` naming the file.
    """
    path = Path(path)
    name = path.name.lower()
    gzipped, nifti = name.endswith(".gz"), name.endswith((".nii", ".nii.gz"))
    if path.is_dir() or not path.exists() or not (gzipped or nifti):
        return 0
    state = {"carry": b"", "nonfinite": 0}

    def scan(block: bytes, start: int) -> None:
        """Count NaN/inf among the float voxels of ``block`` (file bytes from ``start``)."""
        if not nifti or layout[2] is None:
            return
        offset, needed, dtype = layout
        lo, hi = max(offset - start, 0), min(offset + needed - start, len(block))
        if hi <= lo:
            return
        data = state["carry"] + block[lo:hi]
        whole = len(data) // np.dtype(dtype).itemsize * np.dtype(dtype).itemsize
        values = np.frombuffer(data[:whole], dtype=dtype)
        state["nonfinite"] += int(values.size - np.count_nonzero(np.isfinite(values)))
        state["carry"] = data[whole:]

    total, layout, buffered = 0, None, b""
    try:
        for block in _blocks(path, gzipped):
            if nifti and layout is None:  # buffer until the header is complete
                buffered += block
                if len(buffered) < 544:
                    continue
                layout = _nifti_layout(buffered)
                nifti = layout is not None  # not NIfTI (or an .hdr/.img pair): reader decides
                block, buffered = buffered, b""
            scan(block, total)
            total += len(block)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"corrupt or truncated gzip file {path}: {err}") from None
    if nifti and layout is None:  # a file shorter than 544 bytes
        if len(buffered) < 348:
            raise InputError(f"truncated NIfTI file {path}: {len(buffered)} bytes, no header")
        layout = _nifti_layout(buffered)
        nifti = layout is not None
        if nifti:
            scan(buffered, 0)
        total = len(buffered)
    nonfinite = state["nonfinite"]
    if not nifti:
        return 0
    offset, needed, _ = layout
    if total < offset + needed:
        raise InputError(
            f"truncated NIfTI file {path}: header declares {needed} voxel bytes after offset "
            f"{offset}, the file holds {max(total - offset, 0)}"
        )
    return nonfinite


def write_image(image, path: str | Path, compress: bool = True) -> None:
    """Write a SimpleITK image, creating the parent folder."""
    import SimpleITK as sitk

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), compress)


# Columns holding names, never numbers or missing values: a patient or centre called "NA",
# "None", "null" or "nan" keeps its name.
TEXT_COLUMNS = ("patient_id", "center", "cohort", "sequence", "model")


def as_paths(paths) -> list:
    """One path or several (a list, a Snakemake Namedlist; None: none) as a list."""
    if paths is None:
        return []
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)


def read_table(
    path: str | Path, text_columns: tuple[str, ...] | list[str] = (), **kwargs
) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table, chosen by extension.

    Columns named in :data:`TEXT_COLUMNS` or ``text_columns`` are read as strings exactly
    as written (``NA``, ``None``, ``null``, ``nan`` stay names); other columns are parsed
    as pandas does.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"table not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path, **kwargs)
        for col in {*TEXT_COLUMNS, *text_columns} & set(df.columns):
            if df[col].dtype != object:
                df[col] = df[col].astype(str)
        return df
    if suffix in (".csv", ".tsv", ".txt"):
        text = {*TEXT_COLUMNS, *text_columns}
        dtype = kwargs.pop("dtype", None)
        sep = "," if suffix == ".csv" else "\t"
        if dtype is not None and not isinstance(dtype, dict):  # one dtype for every column
            header = pd.read_csv(path, sep=sep, nrows=0).columns
            dtype = dict.fromkeys(header, dtype)
        if isinstance(dtype, dict):
            dtype = {k: v for k, v in dtype.items() if k not in text} or None
        converters = {**{c: str for c in text}, **kwargs.pop("converters", {})}
        return pd.read_csv(path, sep=sep, dtype=dtype, converters=converters, **kwargs)
    raise InputError(f"unknown table format {suffix!r} for {path}: use .csv, .tsv or .parquet")


# ---- tables as clinics keep them ------------------------------------------------------

#: Formats of a user's sheet or table: tab-, comma- or semicolon-separated text (the
#: delimiter read off the header line), the same gzipped, or an Excel workbook.
USER_TABLE_SUFFIXES = (".tsv", ".csv", ".txt", ".tsv.gz", ".csv.gz", ".txt.gz", ".xlsx")

_NEWLINE = re.compile(r"\r\n|\r|\n")


def is_workbook(path: str | Path) -> bool:
    """Whether ``path`` names an ``.xlsx`` workbook."""
    return str(path).lower().endswith(".xlsx")


def _delimiter(header: str) -> str:
    """The delimiter of a text table, from its header line: a tab if the header holds one,
    else the commonest of comma and semicolon (a one-column table: tab)."""
    if "\t" in header:
        return "\t"
    counts = {d: header.count(d) for d in (",", ";")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else "\t"


def _text_rows(path: Path, what: str) -> list[tuple[int, list[str]]]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip, whatever the name says
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(f"{what} {path}: corrupt or truncated gzip file ({err})") from None
    if data[:4] == b"PK\x03\x04":
        raise InputError(
            f"{what} {path}: a zip archive (an Excel workbook?); name it .xlsx to read its "
            f"first sheet"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{what} {path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as "
            f"UTF-8 text or .xlsx"
        ) from None
    return text_rows(text)


def text_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells stripped of surrounding space) of each non-blank line of a
    table's text, the delimiter read off the first non-blank line (:func:`_delimiter`)."""
    lines = _NEWLINE.split(text)
    header = next((line for line in lines if line.strip()), "")
    delimiter = _delimiter(header)
    rows = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            cells = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
            rows.append((number, [c.strip() for c in cells]))
    return rows


def _cell_text(value) -> str:
    """A workbook cell as text, as the spreadsheet shows it: whole numbers without a
    decimal point, other floats in their shortest exact form, error cells (``#DIV/0!``)
    as their code, TRUE / FALSE, dates as ``YYYY-MM-DD HH:MM:SS``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value).strip()


def _workbook_rows(path: Path, what: str, sheet: str | None) -> list[tuple[int, list[str]]]:
    """The rows of a workbook's sheet, read with openpyxl (cached values of formulas).
    openpyxl directly rather than through pandas, which turns error cells into missing
    values and whole floats into long integers."""
    import zipfile

    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise InputError(
            f"{what} {path}: not an .xlsx workbook ({type(err).__name__}: {err})"
        ) from None
    try:
        if sheet is None:
            worksheet = book.worksheets[0]
        elif sheet in book.sheetnames:
            worksheet = book[sheet]
        else:
            raise InputError(f"{what} {path}: no sheet {sheet!r} (sheets: {book.sheetnames})")
        worksheet.reset_dimensions()  # some writers record wrong ones: read every row
        rows = []
        for number, values in enumerate(
            worksheet.iter_rows(min_row=1, min_col=1, values_only=True), start=1
        ):
            cells = [_cell_text(v) for v in values]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                rows.append((number, cells))
        return rows
    finally:
        book.close()


def read_rows(
    path: str | Path, what: str, sheet: str | None = None
) -> tuple[list[tuple[int, list[str]]], str]:
    """The non-blank rows of a user's table as written: ``([(number, cells), ...], unit)``.

    Text (``.tsv``, ``.csv``, ``.txt``, each possibly gzipped): any line ending, a UTF-8
    byte-order mark, the delimiter read off the header line (tab, comma or semicolon);
    ``number`` is the line in the file and ``unit`` is ``"line"``. An ``.xlsx`` workbook:
    its first sheet, or ``sheet``; every cell as text (``007`` and ``NA`` stay as
    written, empty cells are empty strings), ``number`` is the spreadsheet row and
    ``unit`` is ``"row"``. ``sheet`` for a text file is refused (it would be ignored).
    Raises :class:`InputError` naming ``what`` and the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if is_workbook(path):
        return _workbook_rows(path, what, sheet), "row"
    if sheet is not None:
        raise InputError(
            f"{what} {path}: a sheet name ({sheet!r}) is set in config but the file is not "
            f"an .xlsx workbook"
        )
    return _text_rows(path, what), "line"


def table_header(path: str | Path, what: str = "table", sheet: str | None = None) -> list[str]:
    """Column names of a table as written (Parquet: its schema; others: the first row)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    rows, _ = read_rows(path, what, sheet)
    return rows[0][1] if rows else []


#: Cells of a feature table that mean "no value" (pandas' default missing-value markers).
MISSING_CELLS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"]
    + ["1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)
# A decimal number pandas cannot hold (1e999): Python's float reads it as +-inf.
_OVERFLOW = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _number(cell: str) -> float | None:
    """A cell as Python reads a decimal number (exact for the shortest repr of a float,
    ``1e999`` infinite), None when it is not one."""
    try:
        return float(cell) if "_" not in cell else None  # float() takes 1_000
    except ValueError:
        return None


def _column_cells(values, exact: bool) -> tuple[pd.Series | None, list[int]]:
    """(numbers or None, positions of text cells) of a column read as text: missing
    markers NaN. ``exact``: Python's float (a workbook's cells); else pandas' parser, as
    ``read_csv`` reads the same text (a number that overflows it, ``1e999``, is
    infinite)."""
    import pandas as pd

    cells = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
             for v in values]  # fmt: skip
    out = np.full(len(cells), np.nan)
    bad = []
    for k, cell in enumerate(cells):
        if cell in MISSING_CELLS:
            continue
        number = _number(cell)
        if number is None:
            bad.append(k)
        elif exact or not np.isfinite(number):
            out[k] = number
        else:
            out[k] = pd.to_numeric(cell)  # the digits read_csv gives
    return pd.Series(out, index=getattr(values, "index", None)), bad


def _first_row(path: Path, what: str) -> str:
    """The first non-blank line of a (possibly gzipped) text table, as written."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            for line in handle:
                if line.strip():
                    return line.rstrip("\r\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise InputError(f"{what}: cannot read the header ({err})") from None
    return ""


def read_features_table(path: str | Path, columns: dict, sheet: str | None = None) -> pd.DataFrame:
    """A ready feature table (config ``features_table``), its ID, centre and cohort columns
    (config ``features_table_columns``) read as text.

    Parquet as stored; text (tab-, comma- or semicolon-separated, the delimiter read off
    the header; gzipped too) as pandas parses it; an ``.xlsx`` workbook (its first sheet,
    or ``sheet``) cell by cell, numbers exactly. A column whose every cell is a number or
    missing is numbers (``1e999`` is infinite); a column of text only stays text (not a
    feature); a numeric column with a text cell (``#DIV/0!``, ``1,5``) stops the run
    naming the first such cell's line (workbook: row), column and value. Repeated or
    empty column names stop it too.
    """
    import pandas as pd

    path = Path(path)
    names = [c for c in (columns.get(k) for k in ("id", "center", "cohort")) if c]
    if path.suffix.lower() in (".parquet", ".pq"):
        return read_table(path, text_columns=names)
    what = f"features table {path.name}"
    text_columns = {*TEXT_COLUMNS, *names}
    if is_workbook(path):
        rows, unit = read_rows(path, "features table", sheet)
        header = rows[0][1] if rows else []
    else:
        if not path.exists():
            raise InputError(f"features table not found: {path}")
        if sheet is not None:
            read_rows(path, "features table", sheet)  # refuses a sheet name for text
        rows, unit = None, "line"
        line = _first_row(path, what)
        delimiter = _delimiter(line)
        header = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
    if not header:
        raise InputError(f"{what} is empty")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(f"{what}: duplicated column name(s) {repeated[:5]}")
    if "" in header:
        raise InputError(f"{what}: column {header.index('') + 1} has no name")
    width = len(header)
    if rows is not None:
        for number, cells in rows[1:]:
            if len(cells) > width and any(cells[width:]):
                raise InputError(
                    f"{what} {unit} {number}: {len(cells)} cells but the header has {width} columns"
                )
        table = pd.DataFrame(
            [(cells + [""] * width)[:width] for _, cells in rows[1:]], columns=header, dtype=object
        )
        suspects = [c for c in header if c not in text_columns]
    else:
        try:
            table = pd.read_csv(
                path,
                sep=delimiter,
                encoding="utf-8-sig",
                compression="gzip" if path.read_bytes()[:2] == b"\x1f\x8b" else None,
                converters=dict.fromkeys(text_columns & set(header), str),
            )
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise InputError(f"{what}: {str(err).strip().splitlines()[-1]}") from None
        table.columns = header
        # pandas has parsed the numbers (as the workflow always read them); a column
        # left as text holds a cell that is not a number.
        suspects = [c for c in header if c not in text_columns and table[c].dtype == object]
    mixed = []
    for col in suspects:
        numbers, bad = _column_cells(table[col], exact=rows is not None)
        if not bad:
            whole = numbers.notna().all() and np.isfinite(numbers).all()
            if whole and (numbers == numbers.round()).all() and rows is not None:
                numbers = numbers.astype("int64")  # as read_csv types whole numbers
            table[col] = numbers
        elif numbers.notna().any():
            mixed.append((col, bad))
        elif rows is not None:  # text only, not a feature: missing cells as read_csv has them
            table[col] = table[col].where(~table[col].isin(MISSING_CELLS), np.nan)
    if mixed:
        col, bad = mixed[0]
        k = bad[0]
        if rows is None:  # the line of data row k, blank lines counted (only now)
            rows, _ = read_rows(path, "features table")
        cells = sum(len(b) for _, b in mixed)
        raise InputError(
            f"{what} {unit} {rows[1 + k][0]}, column {col!r}: {str(table[col].iloc[k])!r} is "
            f"not a number ({cells} such cell(s) in {len(mixed)} numeric column(s)); fix the "
            f"cell or leave it empty"
        )
    return table


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
