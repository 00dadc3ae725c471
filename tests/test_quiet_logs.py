"""Quiet logs: pyradiomics' known benign warnings (the GLCM Sum Average note, ...) are
counted once per extraction batch, not written per case; other warnings still show."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from npc_radiomics.imaging.batches import preprocessed_paths
from npc_radiomics.imaging.features import BenignWarnings, extract_batch_rule

ROOT = Path(__file__).resolve().parents[1]
GLCM = (
    "GLCM is symmetrical, therefore Sum Average = 2 * Joint Average, only 1 needs to be calculated"
)


def _case(folder: Path, patient: str, rng) -> None:
    shape = (10, 24, 24)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    ball = ((x - 12) ** 2 + (y - 12) ** 2 + ((z - 5) * 2) ** 2) < 36
    paths = preprocessed_paths(str(folder), patient, "T1")
    Path(paths["image"]).parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(rng.normal(0, 1, shape).astype(np.float32) + ball)
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    sitk.WriteImage(image, paths["image"])
    sitk.WriteImage(mask, paths["mask"])


class _Collect(logging.Handler):
    """Records reaching pyradiomics' logger (as its own stderr handler would print them)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_benign_warnings_are_counted_once_per_batch(tmp_path, caplog):
    import radiomics  # noqa: F401 - its stderr handler first, as in a rule's process

    rng = np.random.default_rng(3)
    folder = tmp_path / "batch"
    patients = ["P1", "P2", "P3"]
    for patient in patients:
        _case(folder, patient, rng)
    collect = _Collect()
    logging.getLogger("radiomics").addHandler(collect)
    before = list(logging.getLogger("radiomics").handlers)
    with caplog.at_level(logging.INFO):
        extract_batch_rule(
            [{"patient_id": p, "sequence": "T1", "mask_reader2": False} for p in patients],
            str(folder),
            None,
            params_files={"T1": str(ROOT / "resources" / "pyradiomics_params_fast.yaml")},
            normalization={"T1": {"method": "none"}},
            crop_margin_mm=None,
            features_path=str(tmp_path / "f.parquet"),
            provenance_path=str(tmp_path / "p.tsv"),
        )
    assert logging.getLogger("radiomics").handlers == before  # put back after the batch
    logging.getLogger("radiomics").removeHandler(collect)
    assert GLCM not in collect.messages  # pyradiomics' own handlers: nothing per case
    per_case = [r for r in caplog.records if r.getMessage() == GLCM]
    assert not per_case  # nor through the root logger
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pyradiomics:")]
    assert summary == [f"pyradiomics: {len(patients)} x {GLCM!r} (benign)"]
    features = pd.read_parquet(tmp_path / "f.parquet")
    assert set(features["patient_id"]) == set(patients)
    assert "original_glcm_SumAverage" in set(features["feature"])  # still extracted


def test_other_pyradiomics_warnings_still_show(caplog):
    collect = _Collect()
    logging.getLogger("radiomics").addHandler(collect)
    with caplog.at_level(logging.INFO), BenignWarnings() as benign:
        logging.getLogger("radiomics.glcm").warning(GLCM)
        logging.getLogger("radiomics.imageoperations").warning("Image too small to apply LoG")
    logging.getLogger("radiomics").removeHandler(collect)
    assert collect.messages == ["Image too small to apply LoG"]
    assert any("Image too small" in r.getMessage() for r in caplog.records)
    assert benign.summary() == [f"pyradiomics: 1 x {GLCM!r} (benign)"]
