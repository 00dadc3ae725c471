"""Fitted pipelines on disk: ``save_pipeline`` writes a joblib file and its SHA-256,
``load_pipeline`` refuses a file whose checksum does not match (results/models/<model>/).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sklearn.pipeline import Pipeline

from npc_radiomics.base.config import file_sha256
from npc_radiomics.base.errors import InputError

log = logging.getLogger(__name__)


def save_pipeline(pipe: Pipeline | None, path: str | Path, checksum_path: str | Path) -> None:
    """The fitted pipeline as joblib (this workflow's own use) and its SHA-256 beside it."""
    import joblib

    joblib.dump(pipe, path)
    Path(checksum_path).write_text(f"{file_sha256(path)}  {Path(path).name}\n")


def load_pipeline(path: str | Path) -> Pipeline:
    """Load a pipeline that :func:`save_pipeline` wrote; refuses one whose SHA-256 differs
    from its ``.sha256`` file (the pickle is only trusted as the file this run wrote)."""
    import joblib

    expected = Path(f"{path}.sha256").read_text().split()[0]
    if file_sha256(path) != expected:
        raise InputError(f"{path}: SHA-256 differs from {path}.sha256")
    return joblib.load(path)
