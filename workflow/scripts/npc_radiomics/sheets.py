"""The input contract: validation of the sample sheet and the clinical table.

Every check raises :class:`InputError` with one line naming the sheet line, patient or
file, so a bad sheet stops the run before any job starts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError

SAMPLE_COLUMNS = ("patient_id", "center", "sequence", "image", "mask")
OPTIONAL_SAMPLE_COLUMNS = ("mask_reader2",)


def _line(index: int) -> int:
    """Sheet line of a 0-based data row (line 1 is the header)."""
    return int(index) + 2


def read_sheet(path: str | Path, what: str) -> pd.DataFrame:
    """Read a tab-separated sheet as strings, with empty cells as empty strings."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except Exception as err:  # pandas raises several types for malformed text
        raise InputError(f"cannot parse {what} {path}: {err}") from None
    df.columns = [c.strip() for c in df.columns]
    return df


SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def validate_rows(df: pd.DataFrame, schema_name: str, what: str) -> None:
    """Validate every row against ``workflow/schemas/<schema_name>``; name the first bad line."""
    import jsonschema

    from .config import load_yaml

    validator = jsonschema.Draft202012Validator(load_yaml(SCHEMA_DIR / schema_name))
    for i, record in enumerate(df.to_dict(orient="records")):
        record = {k: v for k, v in record.items() if not (isinstance(v, float) and pd.isna(v))}
        error = next(iter(validator.iter_errors(record)), None)
        if error is not None:
            column = ".".join(str(p) for p in error.absolute_path) or "row"
            raise InputError(
                f"{what} line {_line(i)}: column {column}: {error.message} "
                f"(patient {record.get('patient_id', '?')})"
            )


def validate_samples(
    samples: pd.DataFrame,
    sequences: list[str],
    centers: list[str],
    base_dir: str | Path = ".",
    check_files: bool = True,
) -> pd.DataFrame:
    """Check the long sample sheet and return it normalised and sorted.

    ``sequences``: sequence names declared in config; ``centers``: every centre named in
    config (training pool and external). Paths are resolved against ``base_dir`` when
    relative. Returns columns patient_id, center, sequence, image, mask, mask_reader2,
    sorted by patient_id and the config's sequence order.
    """
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise InputError(f"sample sheet: missing column(s) {missing}; need {list(SAMPLE_COLUMNS)}")
    df = samples.copy()
    if "mask_reader2" not in df.columns:
        df["mask_reader2"] = ""
    for col in (*SAMPLE_COLUMNS, "mask_reader2"):
        df[col] = df[col].fillna("").astype(str).str.strip()
    for i, row in df.iterrows():
        for col in SAMPLE_COLUMNS:
            if not row[col]:
                raise InputError(f"sample sheet line {_line(i)}: empty {col}")
    validate_rows(df, "samples.schema.yaml", "sample sheet")
    for i, row in df.iterrows():
        if row["sequence"] not in sequences:
            raise InputError(
                f"sample sheet line {_line(i)}: unknown sequence {row['sequence']!r} for patient "
                f"{row['patient_id']} (config sequences: {sequences})"
            )
        if row["center"] not in centers:
            raise InputError(
                f"sample sheet line {_line(i)}: centre {row['center']!r} of patient "
                f"{row['patient_id']} is neither a training nor an external centre in config"
            )
    dup = df.duplicated(["patient_id", "sequence"], keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        row = df.iloc[i]
        raise InputError(
            f"sample sheet line {_line(i)}: duplicated patient {row['patient_id']} "
            f"sequence {row['sequence']}"
        )
    centers_per_patient = df.groupby("patient_id")["center"].nunique()
    if (centers_per_patient > 1).any():
        pid = sorted(centers_per_patient[centers_per_patient > 1].index)[0]
        raise InputError(f"sample sheet: patient {pid} is listed under more than one centre")
    present = df.groupby("patient_id")["sequence"].apply(set)
    for pid in sorted(present.index):
        lacking = [s for s in sequences if s not in present[pid]]
        if lacking:
            raise InputError(f"sample sheet: patient {pid} has no row for sequence(s) {lacking}")
    base_dir = Path(base_dir)
    for col in ("image", "mask", "mask_reader2"):
        df[col] = [str(base_dir / p) if p and not Path(p).is_absolute() else p for p in df[col]]
    if check_files:
        for i, row in df.iterrows():
            for col in ("image", "mask", "mask_reader2"):
                if row[col] and not Path(row[col]).exists():
                    raise InputError(
                        f"sample sheet line {_line(i)}: {col} file not found for patient "
                        f"{row['patient_id']} sequence {row['sequence']}: {row[col]}"
                    )
    order = {s: k for k, s in enumerate(sequences)}
    df["_order"] = df["sequence"].map(order)
    df = df.sort_values(["patient_id", "_order"], kind="mergesort").drop(columns="_order")
    return df.reset_index(drop=True)[
        ["patient_id", "center", "sequence", "image", "mask", "mask_reader2"]
    ]


def validate_clinical(
    clinical: pd.DataFrame,
    outcome: str,
    continuous: list[str],
    categorical: list[str],
) -> pd.DataFrame:
    """Check the clinical table; return it with typed columns, sorted by patient_id.

    The outcome must be present and 0/1 for every patient; declared variables must exist
    as columns (missing values inside them are allowed and reported later); continuous
    variables must be numeric.
    """
    if "patient_id" not in clinical.columns:
        raise InputError("clinical table: missing column 'patient_id'")
    if outcome not in clinical.columns:
        raise InputError(f"clinical table: missing outcome column {outcome!r}")
    df = clinical.copy()
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    validate_rows(df[["patient_id"]], "clinical.schema.yaml", "clinical table")
    dup = df.duplicated("patient_id")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(
            f"clinical table line {_line(i)}: duplicated patient {df['patient_id'].iloc[i]}"
        )
    for i, (pid, value) in enumerate(zip(df["patient_id"], df[outcome], strict=True)):
        text = str(value).strip()
        if text in ("", "nan", "NA", "NaN", "None"):
            raise InputError(
                f"clinical table line {_line(i)}: patient {pid} has no outcome ({outcome!r})"
            )
        try:
            number = float(text)
        except ValueError:
            number = None
        if number not in (0.0, 1.0):
            raise InputError(
                f"clinical table line {_line(i)}: outcome {outcome!r} of patient {pid} is "
                f"{text!r}; must be 1 (complete response) or 0 (non-CR)"
            )
    df[outcome] = df[outcome].astype(float).astype(int)
    for col in [*continuous, *categorical]:
        if col not in df.columns:
            raise InputError(f"clinical table: declared clinical variable {col!r} is not a column")
    for col in continuous:
        values = pd.to_numeric(df[col].replace({"": None}), errors="coerce")
        bad = values.isna() & ~df[col].astype(str).str.strip().isin(["", "nan", "NA", "NaN"])
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"clinical table line {_line(i)}: variable {col!r} of patient "
                f"{df['patient_id'].iloc[i]} is not a number: {df[col].iloc[i]!r}"
            )
        df[col] = values
    return df.sort_values("patient_id", kind="mergesort").reset_index(drop=True)


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
