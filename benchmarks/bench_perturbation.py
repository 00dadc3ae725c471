"""Cost of robustness.method perturbation: CPU seconds per perturbation per case.

Reads preprocessed cases of one batch (a ``results/preprocess/<centre>/<batch>`` folder of
a run, e.g. ``snakemake results/preprocess/QZ/000`` on the default demo preset), and for
each case times, single-threaded as a rule job runs, one plain extraction (what rule
``extract_batch`` does per case) and the default config's perturbations with their
extractions (what rule ``perturb_batch`` does per case). The z-score uses each case's own
tumour mean and SD (the pooled statistics need every training batch; the cost is the
same). Prints CPU seconds per perturbation per case and the ratio to one extraction.

    .venv/bin/python benchmarks/bench_perturbation.py RESULTS/preprocess/QZ/000 [--cases 3]
        [--contour morphology|supervoxel|none]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

from npc_radiomics.base.io import read_image  # noqa: E402
from npc_radiomics.imaging.features import extract_case, load_params, make_extractor  # noqa: E402
from npc_radiomics.imaging.perturbation import (  # noqa: E402
    PerturbationSettings,
    perturbed_features,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--contour", default=None)
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    section = dict(config["robustness"]["perturbation"])
    if args.contour:
        section["contour"] = args.contour
    settings = PerturbationSettings.from_config(section)
    extractor = make_extractor(load_params(ROOT / config["features"]["params"]))
    margin = float(config["features"]["crop_margin_mm"])
    images = sorted(args.folder.glob("*/*_image.nii.gz"))[: args.cases]
    plain, per_perturbation = [], []
    for path in images:
        image = read_image(path)
        mask = read_image(str(path).replace("_image.nii.gz", "_mask.nii.gz"))
        values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
        zscore = (float(values.mean()), float(values.std()))
        start = time.process_time()
        extract_case(image, mask, extractor, crop_margin_mm=margin, zscore=zscore)
        plain.append(time.process_time() - start)
        start = time.process_time()
        perturbed_features(
            image,
            mask,
            extractor,
            settings,
            7,
            patient=path.parent.name,
            sequence=path.name.split("_")[0],
            crop_margin_mm=margin,
            zscore=zscore,
        )
        per_perturbation.append((time.process_time() - start) / settings.n)
        print(
            f"{path.parent.name} {path.name}: extraction {plain[-1]:.2f} CPU s, "
            f"{per_perturbation[-1]:.2f} CPU s per perturbation"
        )
    print(
        f"{len(images)} cases, n = {settings.n}, contour {settings.contour}: "
        f"median {np.median(per_perturbation):.2f} CPU s per perturbation per case "
        f"(plain extraction {np.median(plain):.2f} s; ratio "
        f"{np.median(per_perturbation) / np.median(plain):.2f}); per training case "
        f"{settings.n * np.median(per_perturbation):.1f} CPU s"
    )


if __name__ == "__main__":
    main()
