"""The provenance record: software versions, platform, config, seeds and input checksums."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
import sys
from pathlib import Path

from npc_radiomics.base.config import SEED_STEPS, derived_seed, file_sha256
from npc_radiomics.base.io import write_json

PACKAGES = (
    "snakemake",
    "pyradiomics-bhklab",
    "SimpleITK",
    "numpy",
    "scipy",
    "pandas",
    "openpyxl",
    "scikit-learn",
    "optuna",
    "xgboost",
    "lightgbm",
    "shap",
    "mrmr-selection",
    "statsmodels",
    "matplotlib",
    "seaborn",
)


def software_versions(packages=PACKAGES) -> dict[str, str]:
    """Installed version of each package ("not installed" when absent)."""
    out = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def input_checksums(paths: list[str]) -> dict[str, str]:
    """SHA-256 of each input file (DICOM folders: of their sorted files' checksums)."""
    out = {}
    for path in sorted(set(paths)):
        p = Path(path)
        if p.is_dir():
            inner = "".join(file_sha256(f) for f in sorted(p.rglob("*")) if f.is_file())
            out[path] = "dir:" + hashlib.sha256(inner.encode()).hexdigest()
        elif p.exists():
            out[path] = file_sha256(p)
    return out


def provenance_record(config: dict, inputs: list[str], clinical_coding: dict | None = None) -> dict:
    """Everything a reviewer needs to rerun: versions, platform, config, seeds, checksums,
    and how each categorical clinical variable is coded (``clinical_coding``:
    :func:`npc_radiomics.inputs.sheets.categorical_coding`; text levels sorted, the first
    the reference level, one dummy per other level)."""
    return {
        "clinical_coding": clinical_coding or {},
        "software": software_versions(),
        "platform": {"system": platform.platform(), "machine": platform.machine()},
        "config": config,
        "seeds": {
            "master": config.get("seed"),
            # selection, tuning, nested CV and the final fit derive theirs from the master
            **{step: derived_seed(config.get("seed", 0), step) for step in SEED_STEPS},
        },
        "inputs": input_checksums(inputs),
    }


def write_provenance(record: dict, path: str | Path) -> None:
    write_json(record, path)
