"""Radiomics feature extraction with pyradiomics, and the merge into the wide table.

pipeline steps 5-6. One call of :func:`extract_case` gives the features of one patient x
sequence (x reader); :func:`merge_cases` joins the per-case rows into one row per patient
with columns ``<sequence>__<feature>``. pyradiomics' diagnostics (versions, hashes,
settings) are provenance, kept apart from the feature values.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

from npc_radiomics.imaging.preprocess import window_clip, zscore_apply

__all__ = [
    "CaseFeatures",
    "load_params",
    "crop_to_roi",
    "make_extractor",
    "extract_case",
    "merge_cases",
    "case_tables",
    "merge_batch_features",
    "read_batch_features",
    "merge_provenance",
    "SEPARATOR",
]

# Column name = <sequence>SEPARATOR<pyradiomics feature name>.
SEPARATOR = "__"
_DIAGNOSTICS_PREFIX = "diagnostics_"

# pyradiomics logs every image type at INFO; keep the rule logs readable.
logging.getLogger("radiomics").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

#: pyradiomics warnings that say nothing about the case, counted once per batch
#: (:class:`BenignWarnings`) instead of logged per case and per image type: the GLCM
#: Sum Average note (it equals 2 x Joint Average on a symmetrical GLCM, which the
#: feature selection copes with), deprecated features the params file enables, and
#: shape eigenvalues of -1e-10 rounded to 0.
BENIGN_RADIOMICS_WARNINGS = (
    "GLCM is symmetrical, therefore Sum Average = 2 * Joint Average",
    "is deprecated, use with caution",
    "eigenvalues < 0 and > -1e-10, rounding to 0",
)


class BenignWarnings(logging.Handler):
    """While active (a ``with`` block), the one handler of the ``radiomics`` logger:
    pyradiomics' known benign warnings (:data:`BENIGN_RADIOMICS_WARNINGS`) are counted by
    message, every other record goes where it went before (pyradiomics' own handlers,
    then the root's). On exit the handlers come back and :meth:`summary` says
    ``pyradiomics: 312 x '<message>' (benign)`` once per message."""

    def __init__(self, patterns=BENIGN_RADIOMICS_WARNINGS):
        super().__init__(logging.NOTSET)
        self.patterns = tuple(patterns)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno == logging.WARNING and any(p in message for p in self.patterns):
            self.counts[message] = self.counts.get(message, 0) + 1
            return
        for handler in self._saved:
            if record.levelno >= handler.level:
                handler.handle(record)
        if self._propagate:
            logging.getLogger().handle(record)

    def __enter__(self) -> BenignWarnings:
        import radiomics  # noqa: F401 - its import adds its stderr handler: take it first

        logger = logging.getLogger("radiomics")
        self._saved, self._propagate = list(logger.handlers), logger.propagate
        logger.handlers, logger.propagate = [self], False
        return self

    def __exit__(self, *exc) -> None:
        logger = logging.getLogger("radiomics")
        logger.handlers, logger.propagate = self._saved, self._propagate

    def summary(self) -> list[str]:
        """One line per benign message with its count, in message order."""
        return [f"pyradiomics: {n} x {m!r} (benign)" for m, n in sorted(self.counts.items())]


@dataclass
class CaseFeatures:
    """Features of one patient x sequence: values by pyradiomics name, and provenance."""

    features: dict[str, float]
    provenance: dict[str, str]


def load_params(path: str | Path) -> dict[str, Any]:
    """Read a pyradiomics parameter file (YAML) into the dict pyradiomics accepts."""
    with open(path) as handle:
        params = yaml.safe_load(handle)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: not a pyradiomics parameter mapping")
    return params


def crop_to_roi(
    image: sitk.Image, mask: sitk.Image, margin_mm: float, label: int = 1
) -> tuple[sitk.Image, sitk.Image]:
    """Crop image and mask to the bounding box of ``mask == label`` plus ``margin_mm``.

    Filters (LoG, wavelet) then run on a box around the tumour instead of the whole head:
    less time and memory, and the margin keeps the filter response inside the ROI close to
    the whole-image one. The crop keeps physical coordinates (origin shifts accordingly).

    Raises:
        ValueError: if the mask has no voxel with ``label``.
    """
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask, sitk.sitkUInt32))
    if label not in stats.GetLabels():
        raise ValueError(f"mask has no voxel with label {label}")
    box = stats.GetBoundingBox(label)  # (index..., size...)
    dim = mask.GetDimension()
    start, extent = np.asarray(box[:dim]), np.asarray(box[dim:])
    margin_vox = np.ceil(float(margin_mm) / np.asarray(mask.GetSpacing())).astype(int)
    lower = np.maximum(start - margin_vox, 0)
    upper = np.minimum(start + extent + margin_vox, np.asarray(mask.GetSize()))
    size, index = [int(v) for v in upper - lower], [int(v) for v in lower]
    return sitk.RegionOfInterest(image, size, index), sitk.RegionOfInterest(mask, size, index)


def make_extractor(params: Mapping[str, Any]):
    """A ``RadiomicsFeatureExtractor`` for ``params`` (validated by pyradiomics' schema).

    pyradiomics runs with the exact speed-ups of
    :mod:`npc_radiomics.imaging.radiomics_speedups` (bit-identical features; on the
    verified pyradiomics version only, one log line per process; opt-out:
    ``NPC_RADIOMICS_NO_PYRADIOMICS_SPEEDUPS=1``).
    """
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from npc_radiomics.imaging.radiomics_speedups import apply_speedups

    apply_speedups()

    return RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))


def extract_case(
    image: sitk.Image,
    mask: sitk.Image,
    params: Mapping[str, Any] | Any,
    *,
    label: int = 1,
    crop_margin_mm: float | None = 10.0,
    zscore: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
) -> CaseFeatures:
    """Radiomics features of one image inside one mask.

    Args:
        image: the preprocessed image (z-scored here when ``zscore`` is given); the
            params' ``binWidth`` is in the units of the image handed to pyradiomics.
        mask: label mask on the image grid.
        params: a pyradiomics parameter mapping (see :func:`load_params`), or a ready
            ``RadiomicsFeatureExtractor`` (reused across cases to skip re-validation).
        label: the tumour label in ``mask``.
        crop_margin_mm: crop to the ROI's bounding box plus this margin (mm) before any
            filter; ``None`` skips the crop.
        zscore: (mean, sd) of the sequence's pooled reference tumours (image units):
            the image is z-scored after the crop (same result, fewer voxels).
        window: (low, high): intensities clipped to this fixed window instead (image
            units, e.g. HU; config normalization method ``window``).

    Returns:
        :class:`CaseFeatures`: ``features`` maps pyradiomics names (e.g.
        ``original_firstorder_Mean``) to floats; ``provenance`` maps diagnostics names
        (versions, image/mask hashes, settings, ROI geometry) to strings.
    """
    extractor = params if hasattr(params, "execute") else make_extractor(params)
    if crop_margin_mm is not None:
        image, mask = crop_to_roi(image, mask, crop_margin_mm, label)
    if zscore is not None:
        image = zscore_apply(image, *zscore)
    if window is not None:
        image = window_clip(image, *window)
    result = extractor.execute(image, mask, label=label)
    features: dict[str, float] = {}
    provenance: dict[str, str] = {}
    for name, value in result.items():
        if name.startswith(_DIAGNOSTICS_PREFIX):
            provenance[name[len(_DIAGNOSTICS_PREFIX) :]] = str(value)
        else:
            features[name] = float(value)
    return CaseFeatures(features, provenance)


def merge_cases(
    rows: Iterable[Mapping[str, Any]], *, patients: Iterable[str] | None = None
) -> pd.DataFrame:
    """Join per-case feature rows into the wide table, one row per patient.

    Args:
        rows: per-case mappings with ``patient_id``, ``sequence`` and feature values.
        patients: optional full list of patient ids; patients without any row get NaNs.

    Returns:
        DataFrame with ``patient_id`` then ``<sequence>__<feature>`` columns (float64),
        rows sorted by patient_id, columns sorted by sequence then pyradiomics order kept
        within a sequence, so the table is identical whatever the job order.
    """
    by_patient: dict[str, dict[str, float]] = {}
    # Feature names per sequence in first-seen order (a dict is an ordered set).
    column_order: dict[str, dict[str, None]] = {}
    for row in rows:
        patient, sequence = str(row["patient_id"]), str(row["sequence"])
        values = by_patient.setdefault(patient, {})
        names = column_order.setdefault(sequence, {})
        for name, value in row.items():
            if name in ("patient_id", "sequence"):
                continue
            names[name] = None
            values[f"{sequence}{SEPARATOR}{name}"] = math.nan if value is None else float(value)
    columns = [
        f"{seq}{SEPARATOR}{name}" for seq in sorted(column_order) for name in column_order[seq]
    ]
    index = sorted(set(by_patient) | set(patients or ()))
    # Filled row by row into one float64 block: DataFrame.from_dict on thousands of columns
    # was most of the merge's time.
    position = {name: j for j, name in enumerate(columns)}
    data = np.full((len(index), len(columns)), np.nan)
    for i, patient in enumerate(index):
        for name, value in by_patient.get(patient, {}).items():
            data[i, position[name]] = value
    table = pd.DataFrame(data, index=pd.Index(index, name="patient_id"), columns=columns)
    return table.reset_index()


def case_tables(
    patient: str, sequence: str, case: CaseFeatures, reader: str = "reader1"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two per-case files: one feature row, and the provenance in long form.

    Returns:
        (features: ``patient_id, sequence, <feature>...``; provenance: ``patient_id,
        sequence, reader, key, value``).
    """
    features = pd.DataFrame([{"patient_id": patient, "sequence": sequence, **case.features}])
    provenance = pd.DataFrame(
        {
            "patient_id": patient,
            "sequence": sequence,
            "reader": reader,
            "key": list(case.provenance),
            "value": list(case.provenance.values()),
        }
    )
    return features, provenance


def _read_tsv(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str, "sequence": str})


def merge_provenance(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All per-case provenance files in one long table, sorted by patient, sequence, reader."""
    frames = [_read_tsv(path) for path in paths]
    columns = ["patient_id", "sequence", "reader", "key", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)[columns]
    return table.sort_values(["patient_id", "sequence", "reader"], kind="stable").reset_index(
        drop=True
    )


def normalisation_args(
    sequence: str, normalization: Mapping[str, Any] | None, zscores: pd.DataFrame | None
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """(zscore, window) of :func:`extract_case` for a sequence's ``normalization``
    (:func:`npc_radiomics.imaging.preprocess.sequence_preprocessing`): ``zscore`` (default) with the
    sequence's row of ``zscores`` (the ``zscore_params`` table indexed by sequence),
    ``none`` or ``window``."""
    method = (normalization or {}).get("method", "zscore")
    if method == "zscore":
        stats = zscores.loc[sequence]
        return (float(stats["mean"]), float(stats["sd"])), None
    if method == "window":
        return None, tuple(float(v) for v in normalization["window"])
    if method != "none":
        raise ValueError(f"sequence {sequence}: unknown normalization method {method!r}")
    return None, None


def extract_rule(
    image_path,
    mask_path,
    zscore_path,
    params_path,
    *,
    patient: str,
    sequence: str,
    reader: str,
    crop_margin_mm: float,
    normalization: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One case's feature row and provenance (what rule ``extract_batch`` computes per case).

    The preprocessed image is cropped to the ROI + margin, normalised as the sequence's
    ``normalization`` says (:func:`npc_radiomics.imaging.preprocess.sequence_preprocessing`):
    ``zscore`` (default) with its sequence's pooled statistics (the ``zscore_params``
    table), ``none`` (CT in HU, PET in SUV: pyradiomics sees the image's own values) or
    ``window`` (clipped to a fixed window), and passed to pyradiomics.
    """
    from npc_radiomics.base.io import read_image

    zscores = pd.read_csv(zscore_path, sep="\t").set_index("sequence") if zscore_path else None
    zscore, window = normalisation_args(sequence, normalization, zscores)
    case = extract_case(
        read_image(image_path),
        read_image(mask_path),
        load_params(params_path),
        crop_margin_mm=crop_margin_mm,
        zscore=zscore,
        window=window,
    )
    log.info("%s %s (%s): %d features", patient, sequence, reader, len(case.features))
    return case_tables(patient, sequence, case, reader)


# ------------------------------------------------------------------ batches
#: The long feature table of a batch: one row per patient x sequence x reader x feature.
BATCH_FEATURE_COLUMNS = ["patient_id", "sequence", "reader", "feature", "value"]
PROVENANCE_COLUMNS = ["patient_id", "sequence", "reader", "key", "value"]


def extract_batch_rule(
    cases: list[dict],
    folder: str,
    zscore_path: str | None,
    *,
    params_files: Mapping[str, str],
    normalization: Mapping[str, Mapping[str, Any]],
    crop_margin_mm: float | None,
    features_path: str,
    provenance_path: str,
    workers: int = 1,
) -> pd.DataFrame:
    """Rule ``extract_batch``: pyradiomics features of every preprocessed case of a batch.

    ``cases``: dicts with patient_id, sequence and mask_reader2 (a reader-2 mask exists:
    its features are extracted too, unless QC failed it and preprocessing wrote none); a
    case whose patient QC excluded has no files in ``folder`` (rule ``preprocess_batch``)
    and no features. Each sequence is normalised as
    its ``normalization`` says (z-score with the ``zscore_path`` table's statistics,
    ``none`` or ``window``, see :func:`extract_rule`) and extracted with its own params
    file (``params_files``). Writes the long table :data:`BATCH_FEATURE_COLUMNS` (Parquet:
    the floats exactly) and the provenance :data:`PROVENANCE_COLUMNS`, both in case order
    (reader 1, then reader 2), the cases run in ``workers`` processes
    (:func:`npc_radiomics.imaging.batches.run_cases`; the tables do not depend on it).
    pyradiomics' benign warnings are counted and logged once for the batch
    (:class:`BenignWarnings`; with several workers, those of the parent process's cases).
    """
    from npc_radiomics.base.io import read_image, write_tsv
    from npc_radiomics.imaging.batches import preprocessed_paths, run_cases

    todo = [
        case
        for case in cases
        if Path(preprocessed_paths(folder, case["patient_id"], case["sequence"])["image"]).exists()
    ]
    zscores = None
    if zscore_path:
        zscores = pd.read_csv(zscore_path, sep="\t").set_index("sequence")
    params = {sequence: load_params(path) for sequence, path in params_files.items()}

    def work(case):
        patient, sequence = case["patient_id"], case["sequence"]
        zscore, window = normalisation_args(sequence, normalization[sequence], zscores)
        paths = preprocessed_paths(folder, patient, sequence)
        image = read_image(paths["image"])
        readers = [("reader1", paths["mask"])]
        # No reader-2 file: QC failed that mask (rule preprocess_batch left it out).
        if case.get("mask_reader2") and Path(paths["mask_reader2"]).exists():
            readers.append(("reader2", paths["mask_reader2"]))
        rows, provenance = [], []
        for reader, mask_path in readers:
            result = extract_case(
                image,
                read_image(mask_path),
                params[sequence],
                crop_margin_mm=crop_margin_mm,
                zscore=zscore,
                window=window,
            )
            rows.extend(
                (patient, sequence, reader, name, value) for name, value in result.features.items()
            )
            provenance.append(case_tables(patient, sequence, result, reader)[1])
            log.info("%s %s (%s): %d features", patient, sequence, reader, len(result.features))
        return rows, provenance

    # In case order whatever the worker count (each case's rows come back with it).
    with BenignWarnings() as benign:
        done = run_cases(todo, work, "feature extraction", workers=workers)
    for line in benign.summary():
        log.info(line)
    feature_rows = [row for rows, _ in done for row in rows]
    provenance_rows = [frame for _, frames in done for frame in frames]
    table = pd.DataFrame(feature_rows, columns=BATCH_FEATURE_COLUMNS)
    table["value"] = table["value"].astype(float)
    table.to_parquet(features_path, index=False)
    provenance = (
        pd.concat(provenance_rows, ignore_index=True)
        if provenance_rows
        else pd.DataFrame(columns=PROVENANCE_COLUMNS)
    )
    write_tsv(provenance, provenance_path)
    return table


def read_batch_features(paths) -> pd.DataFrame:
    """The batches' long tables in one, cases in sorted patient order (stable: within a
    case, readers, sequences and features keep their extraction order)."""
    from npc_radiomics.base.io import as_paths

    frames = [pd.read_parquet(path) for path in as_paths(paths)]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=BATCH_FEATURE_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values("patient_id", kind="mergesort").reset_index(drop=True)


def batch_case_rows(table: pd.DataFrame, reader: str) -> Iterable[dict]:
    """The per-case rows (patient_id, sequence, feature values in extraction order) of one
    reader in a :func:`read_batch_features` table, as :func:`merge_cases` takes them."""
    table = table[table["reader"] == reader]
    patients, sequences = table["patient_id"].to_numpy(), table["sequence"].to_numpy()
    names, values = table["feature"].to_numpy(), table["value"].to_numpy()
    start = 0
    for end in range(1, len(table) + 1):
        if (
            end == len(table)
            or patients[end] != patients[start]
            or sequences[end] != sequences[start]
        ):
            row = {"patient_id": patients[start], "sequence": sequences[start]}
            row.update(zip(names[start:end].tolist(), values[start:end].tolist(), strict=True))
            yield row
            start = end


def merge_batch_features(
    paths_or_table, reader: str = "reader1", patients: Iterable[str] | None = None
) -> pd.DataFrame:
    """The wide table (:func:`merge_cases`) of one reader from the batches' long tables
    (their paths, or the table :func:`read_batch_features` made of them)."""
    table = paths_or_table
    if not isinstance(table, pd.DataFrame):
        table = read_batch_features(table)
    return merge_cases(batch_case_rows(table, reader), patients=patients)
