"""Extraction benchmark (issue 30): pyradiomics CPU per case without and with the speed-ups.

One process, one thread (BLAS, OpenMP and ITK pinned to 1), the same extractor settings both
ways; per case the image is cut to the tumour's bounding box + 10 mm first, as the workflow's
``crop_to_roi`` does. For each case ``RadiomicsFeatureExtractor.execute`` is timed unpatched
and patched (``npc_radiomics.imaging.radiomics_speedups``), alternating the order between
repeats; the table gives the least CPU seconds (``time.process_time``) and wall seconds of
the repeats, their ratio, and the largest relative difference over all features (0 means
bit-identical; the target is 1e-12).

Cases:
  large       synthetic lobulated ellipsoid, about 1.2 litres, full params (>= 1 litre)
  half-litre  the same kind, about 0.5 litre, full params
  demo        one patient of the repository's demo generator (T2, ~20 cm3), resampled to
              1 mm and z-scored like the workflow's preprocessing (no N4), full params;
              a synthetic ellipsoid of that size if the generator cannot be imported
  tiny-config a demo-generator patient of ~5 cm3 with resources/pyradiomics_params_fast.yaml
  (--quick: demo, tiny-config and a 0.2 litre synthetic case "fifth-litre")

Targets: >= 3x less CPU on tumours >= 0.5 litre, >= 1.5x on the demo's.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_extract.py [--quick] [--repeats N]
        [--cases large,demo] [--by-patch] [--profile]

--by-patch adds, per case, the patched CPU with one patch alone (shape, binning once, numpy
bin edges, GLCM sums, feature names); --profile prints the top functions by CPU time both
ways (cProfile, extra runs).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import cProfile  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import radiomics  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import yaml  # noqa: E402
from radiomics.featureextractor import RadiomicsFeatureExtractor  # noqa: E402
from scipy import ndimage  # noqa: E402

from npc_radiomics.imaging import radiomics_speedups as rs  # noqa: E402

FULL_PARAMS = ROOT / "resources" / "pyradiomics_params.yaml"
FAST_PARAMS = ROOT / "resources" / "pyradiomics_params_fast.yaml"
DEMO_SETTINGS = ROOT / "resources" / "demo_cohort.yaml"
DEMO_SEED = 20251121  # config/config.yaml's master seed
CROP_MARGIN_MM = 10.0

sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
logging.getLogger("radiomics").setLevel(logging.ERROR)


@dataclass
class Case:
    name: str
    params: Path
    build: Callable[[], tuple[sitk.Image, sitk.Image, str]]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def synthetic_case(semi_axes_mm: tuple[float, float, float], seed: int) -> Callable:
    """A z-scored lobulated ellipsoid tumour with smooth texture and noise, 1 mm voxels."""

    def build() -> tuple[sitk.Image, sitk.Image, str]:
        rng = np.random.default_rng(seed)
        axes = np.asarray(semi_axes_mm, dtype=float)  # z, y, x
        shape = tuple(int(math.ceil(2 * a * 1.15)) + 2 * int(CROP_MARGIN_MM) + 1 for a in axes)
        grid = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij", sparse=True)
        radius = np.sqrt(sum((g / a) ** 2 for g, a in zip(grid, axes, strict=True)))
        bumps = ndimage.gaussian_filter(rng.standard_normal(shape), 5)
        radius = radius + 0.12 * bumps / np.abs(bumps).max()
        mask = radius <= 1.0
        texture = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
        values = 0.8 * texture / texture.std() + 0.5 * rng.standard_normal(shape) - 0.6 * radius
        values = (values - values[mask].mean()) / values[mask].std()
        image = sitk.GetImageFromArray(values.astype(np.float32))
        label = sitk.GetImageFromArray(mask.astype(np.uint8))
        for item in (image, label):
            item.SetSpacing((1.0, 1.0, 1.0))
        return image, label, f"synthetic ellipsoid, semi-axes {semi_axes_mm} mm"

    return build


def _demo_module():
    for name in ("npc_radiomics.inputs.demo", "npc_radiomics.demo"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def demo_case(target_cm3: float, fallback_semi_axes: tuple[float, float, float]) -> Callable:
    """The demo generator's QZ patient (of the first 12) whose tumour is nearest ``target_cm3``:
    T2 resampled to 1 mm (B-spline; mask nearest neighbour) and z-scored on the tumour."""

    def build() -> tuple[sitk.Image, sitk.Image, str]:
        demo = _demo_module()
        if demo is None:
            image, mask, _ = synthetic_case(fallback_semi_axes, seed=7)()
            return image, mask, "synthetic ellipsoid (demo generator not importable)"
        cfg = demo.resolve_preset(demo.load_settings(DEMO_SETTINGS), "small")
        scans = {
            pid: demo.simulate_patient(cfg, DEMO_SEED, pid, "QZ", 0, False)
            for pid in (f"QZ{i:03d}" for i in range(1, 13))
        }
        pid = min(scans, key=lambda p: abs(scans[p].tumour_volume_cm3 - target_cm3))
        scan = scans[pid]
        image = sitk.GetImageFromArray(scan.images["T2"].astype(np.float32))
        mask = sitk.GetImageFromArray(scan.mask)
        for item in (image, mask):
            item.SetSpacing(scan.spacing)
            item.SetOrigin(scan.origin)
        image, mask = resample_1mm(image, mask)
        values = sitk.GetArrayFromImage(image)
        inside = sitk.GetArrayViewFromImage(mask) > 0
        zscored = (values - values[inside].mean()) / values[inside].std()
        out = sitk.GetImageFromArray(zscored.astype(np.float32))
        out.CopyInformation(image)
        return out, mask, f"demo generator {pid} (T2), 1 mm"

    return build


def resample_1mm(image: sitk.Image, mask: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    spacing = np.array(image.GetSpacing())
    size = [int(round(n)) for n in np.array(image.GetSize()) * spacing]
    args = (size, sitk.Transform(), None, image.GetOrigin(), (1.0, 1.0, 1.0))

    def resample(item: sitk.Image, interpolator: int, pixel: int) -> sitk.Image:
        return sitk.Resample(
            item, args[0], args[1], interpolator, args[3], args[4], item.GetDirection(), 0, pixel
        )

    return (
        resample(image, sitk.sitkBSpline, sitk.sitkFloat32),
        resample(mask, sitk.sitkNearestNeighbor, sitk.sitkUInt8),
    )


def crop_to_roi(image: sitk.Image, mask: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    """The workflow's crop (ROI bounding box + margin); a local copy if it cannot be imported."""
    for name in ("npc_radiomics.imaging.features", "npc_radiomics.features"):
        try:
            return importlib.import_module(name).crop_to_roi(image, mask, CROP_MARGIN_MM, 1)
        except (ImportError, AttributeError):
            continue
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask, sitk.sitkUInt32))
    box = stats.GetBoundingBox(1)
    start, extent = np.array(box[:3]), np.array(box[3:])
    margin = np.ceil(CROP_MARGIN_MM / np.array(mask.GetSpacing())).astype(int)
    lower = np.maximum(start - margin, 0)
    upper = np.minimum(start + extent + margin, np.array(mask.GetSize()))
    size, index = [int(v) for v in upper - lower], [int(v) for v in lower]
    return sitk.RegionOfInterest(image, size, index), sitk.RegionOfInterest(mask, size, index)


CASES = {
    "large": Case("large", FULL_PARAMS, synthetic_case((56, 70, 76), seed=11)),
    "half-litre": Case("half-litre", FULL_PARAMS, synthetic_case((42, 54, 60), seed=12)),
    "fifth-litre": Case("fifth-litre", FULL_PARAMS, synthetic_case((31, 40, 44), seed=13)),
    "demo": Case("demo", FULL_PARAMS, demo_case(20.0, (14, 17, 20))),
    "tiny-config": Case("tiny-config", FAST_PARAMS, demo_case(5.0, (9, 11, 12))),
}
DEFAULT = ["large", "half-litre", "demo", "tiny-config"]
QUICK = ["fifth-litre", "demo", "tiny-config"]


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------

#: The adapter's patches by name: (owner attribute names) as installed by apply_speedups.
PATCHES = {
    "shape": {"cShape"},
    "binning once": {"_applyBinning", "computeFeatures"},
    "numpy bin edges": {"getBinEdges"},
    "GLCM sums": {"_calculateCoefficients", "getMCCFeatureValue"},
    "feature names": {"getFeatureNames"},
}


def set_mode(mode: str) -> None:
    """'before' (unpatched), 'after' (all patches) or one name of PATCHES alone."""
    rs.remove_speedups()
    if mode == "before":
        return
    if not rs.apply_speedups():
        raise SystemExit("the speed-ups did not apply (see the log line above)")
    if mode == "after":
        return
    for owner, name, original in rs._installed:  # keep one patch: undo the others
        if name not in PATCHES[mode]:
            setattr(owner, name, original)


def run(extractor: RadiomicsFeatureExtractor, image, mask, mode: str) -> tuple[dict, float, float]:
    set_mode(mode)
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # features.py lowers it to WARNING
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        result = extractor.execute(image, mask, label=1)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        rs.remove_speedups()
    features = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    return features, cpu, wall


def max_relative_difference(before: dict, after: dict) -> tuple[float, int]:
    if list(before) != list(after):
        raise SystemExit("feature names differ between unpatched and patched extraction")
    worst, unequal = 0.0, 0
    for name, a in before.items():
        b = after[name]
        if a == b or (math.isnan(a) and math.isnan(b)):
            continue
        unequal += 1
        worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    return worst, unequal


def profile(extractor, image, mask, mode: str, top: int = 12) -> str:
    """The ``top`` functions by own CPU time (cProfile with a CPU clock), one per line."""
    set_mode(mode)
    profiler = cProfile.Profile(time.process_time)
    try:
        logging.getLogger("radiomics").setLevel(logging.ERROR)
        profiler.enable()
        extractor.execute(image, mask, label=1)
        profiler.disable()
    finally:
        rs.remove_speedups()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines = []
    for (file, line, function), (_, calls, own, cumulative, _) in rows:
        where = f"{Path(file).name}:{line}({function})" if line else function
        lines.append(f"    {own:7.2f} s own {cumulative:7.2f} s cum {calls:6d} calls  {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only (a smoke run)")
    parser.add_argument("--cases", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=1, help="timed pairs per case (min kept)")
    parser.add_argument("--by-patch", action="store_true", help="CPU with each patch alone")
    parser.add_argument("--profile", action="store_true", help="where the CPU goes (cProfile)")
    args = parser.parse_args()
    names = args.cases.split(",") if args.cases else (QUICK if args.quick else DEFAULT)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}")

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pykwalify").setLevel(logging.WARNING)
    print(f"pyradiomics {radiomics.__version__}, numpy {np.__version__}, one thread")
    cpu = time.process_time()
    if not rs.apply_speedups():
        raise SystemExit("the speed-ups did not apply")
    cpu = time.process_time() - cpu
    print(f"one-time set-up of the adapter (triangle table check): {cpu:.2f} s CPU")
    rs.remove_speedups()

    rows, extra = [], []
    for name in names:
        case = CASES[name]
        image, mask, source = case.build()
        image, mask = crop_to_roi(image, mask)
        volume = np.count_nonzero(sitk.GetArrayViewFromImage(mask)) * np.prod(mask.GetSpacing())
        print(f"\n{name}: {source}, {volume / 1000:.1f} cm3, ROI box + 10 mm {image.GetSize()}")
        with open(case.params) as handle:
            params = yaml.safe_load(handle)
        extractor = RadiomicsFeatureExtractor(copy.deepcopy(params))
        repeats = max(args.repeats, 3 if volume < 100_000 else 1)  # small cases are noisy
        timings: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        results: dict[str, dict] = {}
        for repeat in range(repeats):
            for mode in ("before", "after") if repeat % 2 == 0 else ("after", "before"):
                features, seconds, wall = run(extractor, image, mask, mode)
                results.setdefault(mode, features)
                timings[mode].append((seconds, wall))
                print(f"  {mode:6s} CPU {seconds:7.2f} s  wall {wall:7.2f} s")
        worst, unequal = max_relative_difference(results["before"], results["after"])
        before = min(t[0] for t in timings["before"])
        after = min(t[0] for t in timings["after"])
        rows.append(
            (
                name,
                volume / 1000,
                before,
                after,
                before / after,
                min(t[1] for t in timings["before"]),
                min(t[1] for t in timings["after"]),
                worst,
                unequal,
                len(results["before"]),
            )
        )
        if args.by_patch:
            for patch in PATCHES:
                _, seconds, _ = run(extractor, image, mask, patch)
                extra.append((name, patch, before, seconds))
                print(f"  only {patch:16s} CPU {seconds:7.2f} s ({before / seconds:.2f}x)")
        if args.profile:
            for mode in ("before", "after"):
                print(f"  profile {mode} (top functions by own CPU time):")
                print(profile(extractor, image, mask, mode))

    print(
        "\n| case | volume (cm3) | CPU before (s) | CPU after (s) | ratio | wall before (s) "
        "| wall after (s) | max rel. diff (features) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, vol, before, after, ratio, wall_b, wall_a, worst, unequal, n in rows:
        diff = "0 (identical)" if unequal == 0 else f"{worst:.2e} ({unequal} differ)"
        print(
            f"| {name} | {vol:.1f} | {before:.2f} | {after:.2f} | {ratio:.2f}x | {wall_b:.2f} "
            f"| {wall_a:.2f} | {diff} of {n} |"
        )
    if extra:
        print("\n| case | patch alone | CPU before (s) | CPU with it (s) | ratio |")
        print("|---|---|---:|---:|---:|")
        for name, patch, before, seconds in extra:
            print(f"| {name} | {patch} | {before:.2f} | {seconds:.2f} | {before / seconds:.2f}x |")
    failed = [r[0] for r in rows if r[7] > 1e-12]
    if failed:
        raise SystemExit(f"parity above 1e-12 relative: {failed}")


if __name__ == "__main__":
    main()
