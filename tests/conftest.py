"""Shared fixtures: a small user-style cohort on disk and a runner for the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SEQUENCES = ["T1", "T2", "CET1"]
CLINICAL_VARS = {
    "continuous": [
        "age",
        "ki67",
        "ebv_dna",
        "alb",
        "tc",
        "ldh",
        "wbc",
        "tk1",
        "lym",
        "d_dimer",
        "neut",
    ],
    "categorical": ["gender", "t_stage", "n_stage", "clinical_stage"],
}


def write_case(
    folder: Path, patient: str, sequence: str, rng, size=(20, 20, 8), spacing=(1.0, 1.0, 3.0)
) -> tuple[str, str]:
    """Write one small image + spherical tumour mask; returns (image, mask) paths."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]]
    ball = ((x - size[0] / 2) ** 2 + (y - size[1] / 2) ** 2 + ((z - size[2] / 2) * 3) ** 2) < 36
    arr = rng.normal(100, 10, (size[2], size[1], size[0])).astype(np.float32) + 50 * ball
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing(spacing)
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.CopyInformation(image)
    img_path, mask_path = (
        folder / f"{patient}_{sequence}.nii.gz",
        folder / f"{patient}_{sequence}_mask.nii.gz",
    )
    sitk.WriteImage(image, str(img_path))
    sitk.WriteImage(mask, str(mask_path))
    return str(img_path), str(mask_path)


def make_user_cohort(root: Path, n_train: int = 10, n_external: int = 4, seed: int = 0) -> dict:
    """A complete user cohort: images, masks, samples.tsv, clinical.tsv, config overrides."""
    rng = np.random.default_rng(seed)
    rows, clinical = [], []
    patients = [(f"A{i:03d}", "A") for i in range(n_train)] + [
        (f"B{i:03d}", "B") for i in range(n_external)
    ]
    for k, (pid, center) in enumerate(patients):
        for seq in SEQUENCES:
            img, mask = write_case(root / "images", pid, seq, rng)
            rows.append(
                {
                    "patient_id": pid,
                    "center": center,
                    "sequence": seq,
                    "image": img,
                    "mask": mask,
                    "mask_reader2": "",
                }
            )
        rec = {"patient_id": pid, "response": k % 2}
        for var in CLINICAL_VARS["continuous"]:
            rec[var] = round(float(rng.normal(10, 2)), 3)
        for var in CLINICAL_VARS["categorical"]:
            rec[var] = int(rng.integers(0, 3))
        clinical.append(rec)
    samples_tsv, clinical_tsv = root / "samples.tsv", root / "clinical.tsv"
    pd.DataFrame(rows).to_csv(samples_tsv, sep="\t", index=False)
    pd.DataFrame(clinical).to_csv(clinical_tsv, sep="\t", index=False)
    config = {
        "samples": str(samples_tsv),
        "clinical": str(clinical_tsv),
        "demo": {"enabled": False, "preset": "tiny", "settings": "resources/demo_cohort.yaml"},
        "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
    }
    return {"samples": samples_tsv, "clinical": clinical_tsv, "config": config, "root": root}


def write_config(path: Path, overrides: dict) -> Path:
    path.write_text(yaml.safe_dump(overrides, sort_keys=True))
    return path


_SNAKEMAKE_MARKED = {"value": False}


@pytest.fixture(autouse=True)
def _snakemake_marker(request):
    """Record whether the running test carries the ``snakemake`` marker."""
    _SNAKEMAKE_MARKED["value"] = request.node.get_closest_marker("snakemake") is not None
    yield
    _SNAKEMAKE_MARKED["value"] = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Set before any fixture of the test, so a module-scoped fixture that starts Snakemake
    (set up before every function-scoped fixture) sees the marker of the test needing it."""
    _SNAKEMAKE_MARKED["value"] = item.get_closest_marker("snakemake") is not None


def require_snakemake_marker() -> None:
    """Fail a test that starts Snakemake without the ``snakemake`` marker (so that
    ``-m "not snakemake"`` really leaves out every test that starts it)."""
    assert _SNAKEMAKE_MARKED["value"], "a test that starts Snakemake must be marked snakemake"


def run_workflow(
    workdir: Path, configfile: Path | None, *args: str, timeout: int = 1800, check: bool = False
) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile with results under ``workdir``."""
    require_snakemake_marker()
    # Targets and flags first: --configfile takes several values and would swallow them.
    cmd = [SNAKEMAKE, *args, "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    if "--cores" not in args and "-c" not in args:
        cmd += ["--cores", "1"]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    env = dict(os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def prepare_workdir(tmp: Path) -> Path:
    """A working directory with the repo's config/ and resources/ (relative paths work)."""
    for sub in ("config", "resources"):
        shutil.copytree(ROOT / sub, tmp / sub, dirs_exist_ok=True)
    return tmp


@pytest.fixture
def user_cohort(tmp_path):
    return make_user_cohort(tmp_path / "cohort")
