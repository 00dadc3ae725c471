"""The input contract: validation of the sample sheet and the clinical table.

Sheets as clinics keep them: tab- or comma-separated text, gzipped text or an ``.xlsx``
workbook (:func:`read_sheet`); relative paths in the sample sheet resolve against the
sheet's own folder; text-coded categorical variables are kept as levels and dummy-coded
for the models (:func:`categorical_coding`, :func:`dummy_code`). Every check raises
:class:`InputError` with one line naming the file, its line (row), patient or key, so a
bad sheet stops the run before any job starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError

SAMPLE_COLUMNS = ("patient_id", "center", "sequence", "image", "mask")


OPTIONAL_SAMPLE_COLUMNS = ("mask_reader2", "mask_roi")


# Results paths put these right after a sequence name ({sequence}_mask.nii.gz,
# {sequence}_reader2.tsv, ...): a sequence named like that would share another's files.
# The schemas already allow only letters and digits joined by single _ or -.
RESERVED_SEQUENCE_SUFFIXES = ("_image", "_mask", "_reader2", "_moments")


def check_sequence_names(sequences: list[str]) -> None:
    """Sequence names keep the results paths unambiguous (see
    :data:`RESERVED_SEQUENCE_SUFFIXES`); raises :class:`InputError` naming the key."""
    for name in sequences:
        for suffix in RESERVED_SEQUENCE_SUFFIXES:
            if name.lower().endswith(suffix):
                raise InputError(
                    f"config key sequences: {name!r} ends in {suffix!r}, which the results "
                    f"paths put after a sequence name; rename the sequence"
                )


def _line(df: pd.DataFrame, label) -> int:
    """Sheet line (text) or spreadsheet row (``.xlsx``) of the row with index ``label``.

    :func:`read_sheet` indexes rows by their real line in the file (blank lines counted)
    or their row in the workbook; a table built in memory has a 0-based index under a
    header on line 1.
    """
    return int(label) if df.index.name in ("line", "row") else int(label) + 2


def line_of(df: pd.DataFrame, label) -> str:
    """``line N`` of a text sheet, ``row N`` of a workbook's, for the row ``label`` (the
    index of a sheet :func:`read_sheet` read: the real line, blank lines counted)."""
    return f"{'row' if df.index.name == 'row' else 'line'} {_line(df, label)}"


_at = line_of


def _at_position(df: pd.DataFrame, position: int) -> str:
    return line_of(df, df.index[position])


def _named(df: pd.DataFrame, what: str) -> str:
    """``what`` with the file it was read from (:func:`read_sheet` records it)."""
    source = df.attrs.get("source", "")
    return f"{what} {source}" if source else what


def read_sheet(path: str | Path, what: str, sheet: str | None = None) -> pd.DataFrame:
    """Read a sheet as strings, exactly as written but for surrounding space.

    Text (tab-, comma- or semicolon-separated, the delimiter read off the header; gzipped
    too) or an ``.xlsx`` workbook (its first sheet, or ``sheet``), read by
    :func:`npc_radiomics.base.io.read_rows`. Everything is text (``NA``, ``None``,
    ``null``, ``nan`` and ``007`` stay as written; empty cells are empty strings). A UTF-8
    byte-order mark, any line ending (LF, CRLF, CR) and blank lines are accepted; cells
    and column names are stripped of surrounding white space. The index is each row's
    real line number in the file (name ``line``) or its spreadsheet row (name ``row``),
    so messages name the line an editor (the row a spreadsheet) shows; the file is named
    in every message (``attrs["source"]``, and ``attrs["folder"]``: where relative paths
    in it start). Raises :class:`InputError` for duplicated or empty column names and
    rows with more cells than the header.
    """
    from npc_radiomics.base.io import read_rows

    rows, unit = read_rows(path, what, sheet)
    df = _sheet_frame(rows, what, str(path), unit)
    df.attrs["folder"] = str(Path(path).parent)
    return df


def parse_sheet(text: str, what: str, path: str | Path = "") -> pd.DataFrame:
    """:func:`read_sheet` of a sheet's text (``path`` only names it in messages)."""
    from npc_radiomics.base.io import text_rows

    return _sheet_frame(text_rows(text), what, str(path), "line")


def _sheet_frame(rows: list, what: str, source: str, unit: str) -> pd.DataFrame:
    named = f"{what} {source}" if source else what
    if not rows:
        raise InputError(f"{named} is empty")
    header_line, header = rows[0]
    seen: dict[str, int] = {}
    for k, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"{named} {unit} {header_line}: column {k} has no name")
        if name in seen:
            raise InputError(
                f"{named} {unit} {header_line}: duplicated column name {name!r} "
                f"(columns {seen[name]} and {k})"
            )
        seen[name] = k
    width = len(header)
    data, lines = [], []
    for number, cells in rows[1:]:
        if len(cells) > width and any(cells[width:]):
            raise InputError(
                f"{named} {unit} {number}: {len(cells)} cells but the header has {width} columns"
            )
        data.append((cells + [""] * width)[:width])
        lines.append(number)
    df = pd.DataFrame(data, columns=header, index=pd.Index(lines, name=unit), dtype=object)
    if source:
        df.attrs["source"] = source
    return df


def rows_digest(table: pd.DataFrame, patients) -> str:
    """SHA-256 of the rows of ``patients`` in a sheet read by :func:`read_sheet` (every
    column, as written, columns in name order; a patient without a row counts as such).
    A rule that reads only these patients' rows carries it as a param, so it reruns
    exactly when one of them changes."""
    import hashlib

    columns = sorted(table.columns)
    text = {
        record[0]: "\t".join(f"{k}={v}" for k, v in zip(columns, record[1:], strict=True))
        for record in table[["patient_id", *columns]].itertuples(index=False)
    }
    digest = hashlib.sha256()
    for patient in sorted(patients):
        digest.update(text.get(patient, f"{patient}: no row").encode() + b"\n")
    return digest.hexdigest()


SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def validate_rows(df: pd.DataFrame, schema_name: str, what: str) -> None:
    """Validate every row against ``workflow/schemas/<schema_name>``; name the first bad line."""
    import jsonschema

    from npc_radiomics.base.config import load_yaml

    validator = jsonschema.Draft202012Validator(load_yaml(SCHEMA_DIR / schema_name))
    for label, record in zip(df.index, df.to_dict(orient="records"), strict=True):
        record = {k: v for k, v in record.items() if not (isinstance(v, float) and pd.isna(v))}
        error = next(iter(validator.iter_errors(record)), None)
        if error is not None:
            column = ".".join(str(p) for p in error.absolute_path) or "row"
            raise InputError(
                f"{what} {_at(df, label)}: column {column}: {error.message} "
                f"(patient {record.get('patient_id', '?')})"
            )


def validate_samples(
    samples: pd.DataFrame,
    sequences: list[str],
    centers: list[str],
    base_dir: str | Path | None = None,
    check_files: bool = True,
    checks: bool = True,
) -> pd.DataFrame:
    """Check the long sample sheet and return it normalised and sorted.

    ``sequences``: sequence names declared in config; ``centers``: every centre named in
    config (training pool and external). Relative paths are resolved against
    ``base_dir``, by default the sheet's own folder (:func:`read_sheet` records it; a
    table built in memory: the working directory), so a cohort folder moved with its
    sheet keeps working; a relative path found only under the working directory (a sheet
    written before this rule) is taken from there, and ``attrs["warnings"]`` of the result
    says how many were. Absolute paths are kept. Returns columns patient_id, center,
    sequence, image, mask, mask_reader2, mask_roi (the ROI of DICOM contour masks, see
    :mod:`npc_radiomics.inputs.dicom_masks`), sorted by patient_id and the config's
    sequence order. ``checks=False`` (a job process: the
    main process has checked the same sheet before any job) returns the same table without
    checking it (the row-by-row schema checks cost seconds on a 10,000-patient sheet).
    """
    what = _named(samples, "sample sheet")
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; need {list(SAMPLE_COLUMNS)}")
    df = samples.copy()
    for col in OPTIONAL_SAMPLE_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    for col in (*SAMPLE_COLUMNS, *OPTIONAL_SAMPLE_COLUMNS):
        df[col] = df[col].fillna("").astype(str).str.strip()
    if checks:
        _check_samples(df, sequences, centers, what)
    folder = Path(samples.attrs.get("folder", ".") if base_dir is None else base_dir)
    from_cwd = 0
    for col in ("image", "mask", "mask_reader2"):
        resolved = []
        for p in df[col]:
            if p and not Path(p).is_absolute() and folder != Path("."):
                inside = folder / p
                if not inside.exists() and Path(p).exists():
                    from_cwd += 1  # a sheet written for the working directory
                else:
                    p = str(inside)
            resolved.append(p)
        df[col] = resolved
    if checks:
        _check_shared_files(df, what)
    if checks and check_files:
        for i, row in df.iterrows():
            for col in ("image", "mask", "mask_reader2"):
                if row[col] and not Path(row[col]).exists():
                    raise InputError(
                        f"{what} {_at(df, i)}: {col} file not found for patient "
                        f"{row['patient_id']} sequence {row['sequence']}: {row[col]}"
                    )
    order = {s: k for k, s in enumerate(sequences)}
    df["_order"] = df["sequence"].map(order)
    df = df.sort_values(["patient_id", "_order"], kind="mergesort").drop(columns="_order")
    out = df.reset_index(drop=True)[[*SAMPLE_COLUMNS, *OPTIONAL_SAMPLE_COLUMNS]]
    out.attrs = {}
    if from_cwd:
        out.attrs["warnings"] = [
            f"{what}: {from_cwd} relative path(s) are not under the sheet's folder {folder} "
            f"but under the working directory, and are read from there; relative paths "
            f"resolve against the sheet's folder (write them so, or make them absolute)"
        ]
    return out


def _check_samples(
    df: pd.DataFrame, sequences: list[str], centers: list[str], what: str = "sample sheet"
) -> None:
    """:func:`validate_samples`' checks of the rows (before paths are resolved)."""
    for i, row in df.iterrows():
        for col in SAMPLE_COLUMNS:
            if not row[col]:
                raise InputError(f"{what} {_at(df, i)}: empty {col}")
    validate_rows(df, "samples.schema.yaml", what)
    for i, row in df.iterrows():
        if row["sequence"] not in sequences:
            raise InputError(
                f"{what} {_at(df, i)}: unknown sequence {row['sequence']!r} for "
                f"patient {row['patient_id']} (config sequences: {sequences})"
            )
        if row["center"] not in centers:
            raise InputError(
                f"{what} {_at(df, i)}: centre {row['center']!r} of patient "
                f"{row['patient_id']} is neither a training nor an external centre in config"
            )
    dup = df.duplicated(["patient_id", "sequence"], keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        row = df.iloc[i]
        raise InputError(
            f"{what} {_at_position(df, i)}: duplicated patient {row['patient_id']} "
            f"sequence {row['sequence']}"
        )
    centers_per_patient = df.groupby("patient_id")["center"].nunique()
    if (centers_per_patient > 1).any():
        pid = sorted(centers_per_patient[centers_per_patient > 1].index)[0]
        raise InputError(f"{what}: patient {pid} is listed under more than one centre")
    present = df.groupby("patient_id")["sequence"].apply(set)
    for pid in sorted(present.index):
        lacking = [s for s in sequences if s not in present[pid]]
        if lacking:
            raise InputError(f"{what}: patient {pid} has no row for sequence(s) {lacking}")


def _check_shared_files(df: pd.DataFrame, what: str = "sample sheet") -> None:
    """A copy-paste error in the sheet: one image file on two rows, or one mask file for
    two patients (a patient may share a mask between co-registered sequences)."""
    for col, per_patient in (("image", False), ("mask", True), ("mask_reader2", True)):
        first: dict[str, tuple] = {}
        for label, pid, seq, path in zip(
            df.index, df["patient_id"], df["sequence"], df[col], strict=True
        ):
            if not path:
                continue
            key = os.path.normcase(os.path.realpath(path))
            if key in first:
                line0, pid0, seq0 = first[key]
                if not per_patient or pid0 != pid:
                    raise InputError(
                        f"{what} {_at(df, label)}: {col} of patient {pid} sequence "
                        f"{seq} is the same file as on {line0} (patient {pid0} sequence "
                        f"{seq0}): {path}"
                    )
            else:
                first[key] = (_at(df, label), pid, seq)


# Cells that mean "not recorded" in a clinical variable (never in ids or centre names).
MISSING = ("", "NA", "N/A", "NaN", "nan", "None", "null", "NULL", ".")


def _numeric_column(df: pd.DataFrame, col: str, what: str, hint: str, table: str) -> pd.Series:
    """``df[col]`` as numbers (missing cells NaN); InputError naming the first text cell."""
    text = df[col].fillna("").astype(str).str.strip()
    missing = text.isin(MISSING)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = values.isna() & ~missing
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{table} {_at_position(df, i)}: {what} {col!r} of patient "
            f"{df['patient_id'].iloc[i]} is not a number: {text.iloc[i]!r}{hint}"
        )
    if np.isinf(values).any():
        i = int(np.isinf(values).to_numpy().nonzero()[0][0])
        raise InputError(
            f"{table} {_at_position(df, i)}: {what} {col!r} of patient "
            f"{df['patient_id'].iloc[i]} is infinite"
        )
    return values


def _categorical_column(df: pd.DataFrame, col: str, table: str) -> pd.Series:
    """A categorical variable: numbers when every recorded cell is one (used as coded,
    one coefficient, as in the paper), else text levels (``Male`` / ``Female``,
    histology names; missing cells NaN), which the models dummy-code
    (:func:`dummy_code`)."""
    text = df[col].fillna("").astype(str).str.strip()
    missing = text.isin(MISSING)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    if not (values.isna() & ~missing).any():
        return _numeric_column(df, col, "categorical variable", "", table)
    return text.where(~missing, np.nan).astype(object)


def validate_clinical(
    clinical: pd.DataFrame,
    outcome: str | None,
    continuous: list[str],
    categorical: list[str],
    biomarkers: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """Check the clinical table; return it with typed columns, sorted by patient_id.

    The outcome must be present and 0/1 for every patient (``outcome`` None: not
    checked, e.g. for ComBat's covariates); declared variables and the
    ``evaluation.biomarkers`` must exist as columns; continuous variables and biomarkers
    hold numbers; a categorical variable holds numbers (used as coded) or text levels
    (kept as text, dummy-coded by the models: :func:`categorical_coding`); cells in
    :data:`MISSING` are missing values (allowed, reported by :func:`clinical_warnings`).
    Other columns are left as text. Messages name the file (when read by
    :func:`read_sheet`) and its line (row).
    """
    table = _named(clinical, "clinical table")
    if "patient_id" not in clinical.columns:
        raise InputError(
            f"{table}: missing column 'patient_id' (columns: {list(clinical.columns)[:10]})"
        )
    if outcome is not None and outcome not in clinical.columns:
        raise InputError(f"{table}: missing outcome column {outcome!r}")
    df = clinical.copy()
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    validate_rows(df[["patient_id"]], "clinical.schema.yaml", table)
    dup = df.duplicated("patient_id")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{table} {_at_position(df, i)}: duplicated patient {df['patient_id'].iloc[i]}"
        )
    for i, (pid, value) in enumerate(zip(df["patient_id"], df.get(outcome, []), strict=False)):
        text = str(value).strip()
        if text in ("", "nan", "NA", "NaN", "None"):
            raise InputError(
                f"{table} {_at_position(df, i)}: patient {pid} has no outcome ({outcome!r})"
            )
        try:
            number = float(text)
        except ValueError:
            number = None
        if number not in (0.0, 1.0):
            raise InputError(
                f"{table} {_at_position(df, i)}: outcome {outcome!r} of patient {pid} is "
                f"{text!r}; must be 1 (complete response) or 0 (non-CR)"
            )
    if outcome is not None:
        df[outcome] = df[outcome].astype(float).astype(int)
    for col in [*continuous, *categorical, *biomarkers]:
        if col not in df.columns:
            key = "evaluation.biomarkers" if col in biomarkers else "clinical_variables"
            raise InputError(
                f"{table}: {key} names {col!r}, which is not a column (columns: "
                f"{sorted(c for c in df.columns if c != 'patient_id')[:20]})"
            )
    for col in dict.fromkeys([*continuous, *biomarkers]):
        if col not in categorical:
            df[col] = _numeric_column(df, col, "variable", "", table)
    for col in categorical:
        hint = "; a biomarker's AUC needs numbers" if col in biomarkers else ""
        df[col] = (
            _numeric_column(df, col, "categorical variable", hint, table)
            if col in biomarkers
            else _categorical_column(df, col, table)
        )
    out = df.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    out.index.name = None
    out.attrs = {}
    return out


def read_clinical(
    path: str | Path,
    outcome: str | None,
    continuous: list[str],
    categorical: list[str],
    biomarkers: list[str] | tuple[str, ...] = (),
    sheet: str | None = None,
) -> pd.DataFrame:
    """The one reader of the clinical table, used at start-up and by the clinical stage:
    :func:`read_sheet` then :func:`validate_clinical`."""
    return validate_clinical(
        read_sheet(path, "clinical table", sheet), outcome, continuous, categorical, biomarkers
    )


def is_text_variable(values: pd.Series) -> bool:
    """Whether a validated categorical variable holds text levels (not numbers)."""
    return not pd.api.types.is_numeric_dtype(values)


def categorical_coding(clinical: pd.DataFrame, categorical: list[str]) -> dict:
    """How each categorical variable enters the models, as recorded in the provenance and
    the bundle: text levels sorted, the first the reference, one 0/1 dummy column
    ``<variable>=<level>`` per other level; numeric codes used as coded (one coefficient).
    """
    coding = {}
    for col in categorical:
        values = clinical[col].dropna()
        if is_text_variable(clinical[col]):
            levels = sorted({str(v) for v in values})
            coding[col] = {
                "kind": "text",
                "levels": levels,
                "reference": levels[0] if levels else None,
                "columns": [f"{col}={level}" for level in levels[1:]],
            }
        else:
            coding[col] = {
                "kind": "numeric",
                "levels": sorted(float(v) for v in set(values)),
                "columns": [col],
            }
    return coding


def dummy_code(
    clinical: pd.DataFrame, variables: list[str], categorical: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The clinical table with a 0/1 column ``<variable>=<level>`` for each non-reference
    level of each text categorical variable (NaN where the variable is missing), and the
    model's variables: ``variables`` with each text variable replaced by its dummies
    (:func:`categorical_coding`); numeric variables are kept as they are."""
    coding = categorical_coding(clinical, [v for v in categorical if v in variables])
    out = clinical.copy()
    columns: list[str] = []
    for var in variables:
        code = coding.get(var)
        if code is None or code["kind"] == "numeric":
            columns.append(var)
            continue
        values = clinical[var]
        for level, name in zip(code["levels"][1:], code["columns"], strict=True):
            out[name] = (values.astype(str) == level).astype(float).where(values.notna())
        columns.extend(code["columns"])
    return out, columns


def clinical_warnings(
    clinical: pd.DataFrame, variables: list[str], patients: list[str] | None = None
) -> list[str]:
    """Lines warning of declared variables with no value or a single level.

    ``patients``: restrict to these (e.g. the training pool, where the clinical models
    are fitted); default every row.
    """
    df = clinical if patients is None else clinical[clinical["patient_id"].isin(patients)]
    where = "" if patients is None else " among the training-pool patients"
    out = []
    for col in variables:
        values = df[col].dropna()
        if values.empty:
            out.append(f"clinical table: variable {col!r} has no value{where}; it is left out")
        elif values.nunique() == 1:
            level = values.iloc[0]
            shown = f"{level:g}" if isinstance(level, (int, float, np.number)) else repr(level)
            out.append(
                f"clinical table: variable {col!r} has a single level ({shown})"
                f"{where}; it cannot enter a regression"
            )
    return out


def cross_check(samples: pd.DataFrame, clinical: pd.DataFrame) -> None:
    """Every imaged patient has a clinical row and every clinical row has images."""
    imaged = set(samples["patient_id"])
    known = set(clinical["patient_id"])
    no_clinical = sorted(imaged - known)
    if no_clinical:
        raise InputError(
            f"patient {no_clinical[0]} has images but no clinical row"
            + (f" ({len(no_clinical) - 1} more)" if len(no_clinical) > 1 else "")
        )
    no_images = sorted(known - imaged)
    if no_images:
        raise InputError(
            f"patient {no_images[0]} has a clinical row but no images in the sample sheet"
            + (f" ({len(no_images) - 1} more)" if len(no_images) > 1 else "")
        )


def check_clinical_columns(columns: list[str] | tuple[str, ...], cfg: dict, what: str) -> None:
    """The outcome, declared clinical variables and ``evaluation.biomarkers`` are columns of
    a clinical table with these ``columns`` (e.g. the demo's, known before it is written)."""
    keys = [("outcome.column", [cfg["outcome"]["column"]])]
    keys += [(f"clinical_variables.{k}", v) for k, v in cfg["clinical_variables"].items()]
    keys += [("evaluation.biomarkers", cfg.get("evaluation", {}).get("biomarkers", []))]
    for key, names in keys:
        missing = [n for n in names if n not in columns]
        if missing:
            raise InputError(
                f"config key {key}: {missing[0]!r} is not a column of {what} (columns: "
                f"{[c for c in columns if c != 'patient_id']})"
            )
