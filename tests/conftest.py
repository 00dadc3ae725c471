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
import SimpleITK as sitk
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


def make_user_cohort(root: Path, n_train: int = 24, n_external: int = 4, seed: int = 0) -> dict:
    """A complete user cohort: images, masks, samples.tsv, clinical.tsv, config overrides.

    24 training patients (12 per class) are the fewest whose split leaves two patients per
    class at the LASSO's CV level inside 2 x 2 nested folds: the start-up checks refuse
    fewer (common.smk, npc_radiomics.checks.check_design)."""
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
        "selection": {"mrmr_k": 10, "lasso": {"cv_folds": 2}},
        "tuning": {"n_trials": 2, "inner_folds": 2, "outer_folds": 2},
    }
    return {"samples": samples_tsv, "clinical": clinical_tsv, "config": config, "root": root}


def write_config(path: Path, overrides: dict) -> Path:
    path.write_text(yaml.safe_dump(overrides, sort_keys=True))
    return path


_SNAKEMAKE_MARKED = {"value": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Record whether the test about to run carries the ``snakemake`` marker (a hook, not
    a fixture: it runs before the test's fixtures, module-scoped ones included)."""
    _SNAKEMAKE_MARKED["value"] = item.get_closest_marker("snakemake") is not None


def pytest_runtest_teardown(item):
    _SNAKEMAKE_MARKED["value"] = False


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


def preprocessed_file(workdir: Path, patient: str, name: str) -> Path:
    """A preprocessed file of ``patient`` (e.g. ``T1_image.nii.gz``) in its batch's folder
    (results/preprocess/<centre>/<batch>/<patient>/)."""
    found = sorted((Path(workdir) / "results" / "preprocess").glob(f"*/*/{patient}/{name}"))
    assert len(found) == 1, (patient, name, found)
    return found[0]


def batch_of(samples, patient: str, patients_per_job: int = 10) -> tuple[str, str]:
    """(centre, batch) of ``patient`` in a sample sheet (a path or a DataFrame), as the
    workflow cuts it (npc_radiomics.imaging.batches.plan_batches, imaging.patients_per_job)."""
    from npc_radiomics.imaging.batches import plan_batches

    sheet = samples if isinstance(samples, pd.DataFrame) else pd.read_csv(samples, sep="\t")
    centre_of = dict(zip(sheet["patient_id"].astype(str), sheet["center"].astype(str), strict=True))
    for key, batch in plan_batches(centre_of, patients_per_job).items():
        if patient in batch.patients:
            return key
    raise KeyError(patient)


def qc_batch_file(samples, patient: str, patients_per_job: int = 10) -> str:
    """The QC table (a workflow target) of ``patient``'s batch."""
    centre, batch = batch_of(samples, patient, patients_per_job)
    return f"results/qc/batches/{centre}/{batch}.tsv"


def prepare_workdir(tmp: Path) -> Path:
    """A working directory with the repo's config/ and resources/ (relative paths work)."""
    for sub in ("config", "resources"):
        shutil.copytree(ROOT / sub, tmp / sub, dirs_exist_ok=True)
    return tmp


@pytest.fixture
def user_cohort(tmp_path):
    return make_user_cohort(tmp_path / "cohort")


# ---- synthetic predictions tables (metrics, plots, report tests) -------------------------
def predictions_frame(parts) -> pd.DataFrame:
    """A predictions table (patient_id, cohort, model, probability, label) from
    ``(cohort, model, patient_prefix, probabilities, labels)`` parts, in order."""
    frames = [
        pd.DataFrame(
            {
                "patient_id": [f"{prefix}{i}" for i in range(len(p))],
                "cohort": cohort,
                "model": model,
                "probability": p,
                "label": y,
            }
        )
        for cohort, model, prefix, p, y in parts
    ]
    return pd.concat(frames, ignore_index=True)


# ---- synthetic images for the imaging-stage tests ----------------------------------------
def head_phantom(
    size: tuple[int, int, int] = (96, 96, 24),
    spacing: tuple[float, float, float] = (0.9, 0.9, 3.5),
    *,
    tumour_radii_mm: tuple[float, float, float] = (14.0, 11.0, 12.0),
    tumour_centre_mm: tuple[float, float, float] = (4.0, -6.0, 2.0),
    bias_strength: float = 0.3,
    origin: tuple[float, float, float] = (-40.0, -35.0, -30.0),
    seed: int = 0,
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """A head-like ellipsoid on an MR grid (x, y, z sizes; mm spacing).

    Returns:
        (image float32 with multiplicative bias, tumour mask uint8, true log bias field
        float32), all on the same grid. The image is ~100 in tissue, ~160 in the tumour,
        ~2 in air; bias = exp(linear ramp), ``bias_strength`` = log-range across the head.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = size
    z, y, x = np.meshgrid(
        np.arange(nz) * spacing[2],
        np.arange(ny) * spacing[1],
        np.arange(nx) * spacing[0],
        indexing="ij",
    )
    centre = np.array([(nx - 1) * spacing[0], (ny - 1) * spacing[1], (nz - 1) * spacing[2]]) / 2
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    semi = centre * 0.85
    head = (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2 <= 1
    tx, ty, tz = (
        dx - tumour_centre_mm[0],
        dy - tumour_centre_mm[1],
        dz - tumour_centre_mm[2],
    )
    rx, ry, rz = tumour_radii_mm
    tumour = head & ((tx / rx) ** 2 + (ty / ry) ** 2 + (tz / rz) ** 2 <= 1)
    tissue = np.where(head, 100.0, 2.0) + 60.0 * tumour
    # Smooth texture inside the tumour so texture features are not degenerate.
    tissue += tumour * 15.0 * np.sin(x / 3.0) * np.cos(y / 4.0)
    log_bias = bias_strength * (dx / (2 * semi[0]) + 0.5 * dy / (2 * semi[1]) + 0.3 * dz / semi[2])
    noisy = tissue * np.exp(log_bias) + rng.normal(0, 3.0, tissue.shape)
    arrays = (
        np.clip(noisy, 0.5, None).astype(np.float32),
        tumour.astype(np.uint8),
        log_bias.astype(np.float32),
    )
    images = [sitk.GetImageFromArray(a) for a in arrays]
    for img in images:
        img.SetSpacing(spacing)
        img.SetOrigin(origin)
    return images[0], images[1], images[2]


def mask_volume_mm3(mask: sitk.Image) -> float:
    """Volume of the non-zero voxels, mm^3."""
    return float((sitk.GetArrayViewFromImage(mask) > 0).sum() * np.prod(mask.GetSpacing()))


def mask_centroid_mm(mask: sitk.Image) -> np.ndarray:
    """Physical centroid (x, y, z) of the non-zero voxels, mm."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))


# ---- one whole-workflow run shared by the end-to-end modules ------------------------------
TINY_CONFIG = ROOT / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole workflow on the tiny demo preset with --cores 2, with a bundle for every
    model (``bundle.models: all``); its config is ``tiny_run.yaml`` in the returned
    working directory and Snakemake's stderr is ``snakemake.stderr``. Tests only read it."""
    work = prepare_workdir(tmp_path_factory.mktemp("tiny"))
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["bundle"] = {"models": "all"}
    configfile = work / "tiny_run.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = run_workflow(work, configfile, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    (work / "snakemake.stderr").write_text(proc.stderr)
    return work
