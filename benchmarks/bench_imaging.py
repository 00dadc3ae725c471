"""Imaging-stage benchmark: prints ratios measured in one run (issue 3 targets).

1. N4 at the config's default settings vs full-resolution N4 (shrink 1, same other settings)
   on the same demo images (T1, T2, CET1 of one patient): speed ratio (target >= 20x) and
   correlation of the two log bias fields inside the head mask (target r >= 0.99); also
   each one's correlation with the bias field the demo generator planted.
2. The extract_batch rule script on a one-case batch (reader 1 only) vs a bare
   ``RadiomicsFeatureExtractor.execute`` with the same params on the same preprocessed
   image: time per case (target <= 1.10x).
3. Peak memory (ru_maxrss) of one extraction job (the extract_batch rule script on a
   one-case batch) on a ~400 cm3 tumour at 1 mm, in a subprocess (target <= 2 GiB).
4. The imaging stage of the demo cohort (preprocess -> z-score -> features -> ICC; QC and
   split are run first, untimed) with ``--cores 2`` vs ``--cores 1`` (target >= 1.8x). Its
   jobs are batches of config ``imaging.patients_per_job`` patients of one centre.
5. Preprocessing before vs after issue 18, side by side on a demo case and on a 512 x 512
   x 100 MR volume: before = the whole field of view with the earlier N4 rule (factor 4 of
   the finest axis, every iteration), crop alone = ``preprocessing.crop_margin_mm: auto``
   with that N4 (features must be equal to 1e-6), after = the config's defaults (crop + N4
   fitted on voxels of at least ``n4.fit_spacing_mm``). Prints CPU-s per case of
   preprocessing (read, N4, resampling, writing: one case's work in the preprocess_batch
   rule) and of extraction (``extract_rule``, per reader: one case's work in the
   extract_batch rule), bytes on disk, the largest relative feature difference per feature
   class and the five largest columns (target: >= 2x less CPU). On the large volume each
   N4 setting is timed once and counted in the modes that use it.

Usage (from the repository root; single-threaded parts pin every pool to 1 thread):
    .venv/bin/python benchmarks/bench_imaging.py [--skip n4,workflow] [--n4-preset small]
        [--preset tiny] [--params resources/pyradiomics_params_fast.yaml]
        [--configfile extra.yaml] [--snakefile Snakefile] [--crop-cases demo,large]
"""

from __future__ import annotations

import argparse
import json
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from npc_radiomics.glue.runtime import limit_threads  # noqa: E402

DEFAULT_PARAMS = ROOT / "resources" / "pyradiomics_params.yaml"
EXTRACT_SCRIPT = ROOT / "workflow" / "scripts" / "extract_batch.py"
#: The one patient x sequence of the extraction benchmarks' one-case batch.
CASE = {"patient_id": "QZ001", "sequence": "T1", "mask_reader2": False}


def _demo_image(preset: str, sequence: str = "T1", patient: str = "QZ001"):
    """One simulated demo patient (image, tumour mask) with the preset's field of view."""
    from npc_radiomics.inputs import demo

    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    cfg = demo.resolve_preset(settings, preset)
    scan = demo.simulate_patient(cfg, 1, patient, patient[:2], 1, False)
    image = sitk.GetImageFromArray(scan.images[sequence].astype(np.float32))
    mask = sitk.GetImageFromArray(scan.mask)
    for img in (image, mask):
        img.SetSpacing(scan.spacing)
        img.SetOrigin(scan.origin)
    return image, mask


# ---------------------------------------------------------------------------------- 1
def _demo_with_truth(preset: str, patient: str = "QZ001"):
    """The demo patient's images with the log bias field the generator planted in each."""
    from npc_radiomics.inputs import demo

    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    cfg = demo.resolve_preset(settings, preset)
    scan = demo.simulate_patient(cfg, 1, patient, patient[:2], 1, False)
    out = {}
    for sequence, array in scan.images.items():
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.SetSpacing(scan.spacing)
        image.SetOrigin(scan.origin)
        out[sequence] = (image, scan.log_bias[sequence])
    return out


def bench_n4(preset: str, sequences: list[str]) -> None:
    import yaml

    from npc_radiomics.imaging.preprocess import (
        head_mask_otsu,
        n4_log_bias_field,
        n4_shrink_factors,
    )

    n4 = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["preprocessing"]["n4"]
    settings = {k: n4[k] for k in ("iterations", "convergence_threshold", "spline_distance_mm")}
    shrinks = {
        "default": {"shrink_factor": n4["shrink_factor"], "fit_spacing_mm": n4["fit_spacing_mm"]},
        "full": {"shrink_factor": 1, "fit_spacing_mm": None},
    }
    print(f"[n4] config defaults: {shrinks['default']}, {settings}")
    ratios, correlations = [], []
    for sequence, (image, truth) in _demo_with_truth(preset).items():
        if sequence not in sequences:
            continue
        head = head_mask_otsu(image)
        inside = sitk.GetArrayViewFromImage(head) > 0
        times, fields = {}, {}
        for key, shrink in shrinks.items():
            start = time.perf_counter()
            field = n4_log_bias_field(image, head, **shrink, **settings)
            times[key] = time.perf_counter() - start
            fields[key] = sitk.GetArrayFromImage(field)[inside]
        default, full = fields["default"], fields["full"]
        ratio = times["full"] / times["default"]
        r = float(np.corrcoef(default, full)[0, 1])
        r_true = [float(np.corrcoef(f, truth[inside])[0, 1]) for f in (default, full)]
        ratios.append(ratio)
        correlations.append(r)
        shrink = n4_shrink_factors(image, **shrinks["default"])
        print(
            f"[n4] demo '{preset}' {sequence} {image.GetSize()} at {image.GetSpacing()} mm, "
            f"head {inside.mean():.0%} of the image, shrink {shrink}: "
            f"{times['default']:.2f} s vs full resolution {times['full']:.2f} s"
        )
        print(
            f"[n4]   {sequence}: speed ratio {ratio:.1f}x, log-bias r(default, full) = {r:.4f}; "
            f"r with the planted field: default {r_true[0]:.3f}, full {r_true[1]:.3f}"
        )
    print(f"[n4] speed ratio full/default, worst = {min(ratios):.1f}x (target >= 20x)")
    print(
        f"[n4] log-bias-field correlation inside the head mask, worst r = "
        f"{min(correlations):.4f} (target >= 0.99)"
    )


# ---------------------------------------------------------------------------------- 2
def _batch_case_paths(folder: Path) -> dict[str, Path]:
    """Where the one-case batch's files go: the batch folder (as rule preprocess_batch
    writes it: <patient>/<sequence>_image.nii.gz, _mask.nii.gz) with the case's image and
    mask, the z-score table, and the z-scored image that the bare reference reads."""
    from npc_radiomics.imaging.batches import preprocessed_paths

    batch = folder / "batch"
    case = preprocessed_paths(str(batch), CASE["patient_id"], CASE["sequence"])
    paths = {
        "folder": batch,
        "image": Path(case["image"]),
        "mask": Path(case["mask"]),
        "zscored": folder / "T1_zscored.nii.gz",
        "zscore": folder / "zscore.tsv",
    }
    paths["image"].parent.mkdir(parents=True, exist_ok=True)
    return paths


def _preprocessed_case(folder: Path, preset: str) -> dict[str, Path]:
    """A preprocessed (N4, 1 mm) demo case in a one-case batch folder plus its z-score
    file, as rule extract_batch sees them."""
    from npc_radiomics.base.io import write_image
    from npc_radiomics.imaging.preprocess import preprocess_case, tumour_moments, zscore_apply

    image, mask = _demo_image(preset)
    image, mask = preprocess_case(image, mask, n4={"enabled": True})
    moments = tumour_moments(image, mask)
    mean, sd = moments.mean, (moments.m2 / moments.n) ** 0.5
    paths = _batch_case_paths(folder)
    write_image(image, paths["image"])
    write_image(mask, paths["mask"])
    write_image(zscore_apply(image, mean, sd), paths["zscored"])
    paths["zscore"].write_text(
        f"sequence\tmean\tsd\tn_voxels\tn_patients\treference\nT1\t{mean!r}\t{sd!r}\t"
        f"{moments.n}\t1\ttrain\n"
    )
    return paths


class _Params(SimpleNamespace):
    """A rule's ``snakemake.params`` stand-in: attributes plus ``keys()``, which
    ``rule_setup`` reads (it strips the code-version param, absent here)."""

    def keys(self):
        return vars(self).keys()


def run_rule_script(paths: dict[str, Path], params: Path, out: Path) -> None:
    """Run workflow/scripts/extract_batch.py as Snakemake would, in this process, on the
    one-case batch in ``paths["folder"]`` (reader 1 only, z-scored with the ``zscore``
    table); writes ``out``/features.parquet and provenance.tsv."""
    sequence = CASE["sequence"]
    fake = SimpleNamespace(
        input=SimpleNamespace(
            folder=str(paths["folder"]), zscore=str(paths["zscore"]), params=[str(params)]
        ),
        output=SimpleNamespace(
            features=str(out / "features.parquet"), provenance=str(out / "provenance.tsv")
        ),
        params=_Params(
            cases=[dict(CASE)],
            params_files={sequence: str(params)},
            normalization={sequence: {"method": "zscore", "window": None}},
            crop_margin_mm=10.0,
        ),
        wildcards=SimpleNamespace(centre="QZ", batch="000"),
        threads=1,
        log=[str(out / "extract.log")],
    )
    runpy.run_path(str(EXTRACT_SCRIPT), init_globals={"snakemake": fake})


def n_features(out: Path) -> int:
    """Features of the one case in the rule's long table (one row per feature)."""
    import pandas as pd

    return len(pd.read_parquet(out / "features.parquet"))


def run_bare(paths: dict[str, Path], params: Path) -> None:
    """The reference: pyradiomics alone on the z-scored preprocessed image."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    RadiomicsFeatureExtractor(str(params)).execute(str(paths["zscored"]), str(paths["mask"]))


def bench_extraction(preset: str, params: Path, repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _preprocessed_case(folder, preset)
        run_rule_script(paths, params, folder)  # warm-up: imports, caches
        run_bare(paths, params)
        rule_times, bare_times = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            start = time.perf_counter()
            run_rule_script(paths, params, folder)
            rule_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            run_bare(paths, params)
            bare_times.append(time.perf_counter() - start)
        n_feat = n_features(folder)
        voxels = int((sitk.GetArrayViewFromImage(sitk.ReadImage(str(paths["mask"]))) > 0).sum())
    rule, bare = statistics.median(rule_times), statistics.median(bare_times)
    print(f"[extract] demo '{preset}' case, tumour {voxels / 1000:.1f} cm3, {n_feat} features")
    print(
        f"[extract] rule script (one-case batch) {rule:.2f} s vs bare execute {bare:.2f} s "
        f"(median of {repeats})"
    )
    print(f"[extract] ratio rule/bare = {rule / bare:.3f} (target <= 1.10)")


# ---------------------------------------------------------------------------------- 3
_MEMORY_CHILD = """
import json, resource, sys
sys.path.insert(0, {scripts!r})
sys.path.insert(0, {bench!r})
from bench_imaging import n_features, run_rule_script
from pathlib import Path
paths = {{k: Path(v) for k, v in json.loads({paths!r}).items()}}
run_rule_script(paths, Path({params!r}), Path({out!r}))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before reading the table back
print(n_features(Path({out!r})), peak)
"""


def large_tumour_case(folder: Path, volume_cm3: float = 400.0) -> dict[str, Path]:
    """A 1 mm head (200 x 200 x 140 mm) with an ellipsoidal textured tumour of ``volume_cm3``,
    as a one-case batch folder (already in z units: z-score mean 0, sd 1)."""
    from npc_radiomics.base.io import write_image

    shape = (140, 200, 200)  # z, y, x
    z, y, x = np.meshgrid(*(np.arange(n) - n / 2 for n in shape), indexing="ij")
    radii = np.array([0.8, 1.0, 1.2])  # z, y, x axes of the ellipsoid, relative
    scale = (volume_cm3 * 1000.0 / (4 / 3 * np.pi * radii.prod())) ** (1 / 3)
    a = radii * scale
    tumour = (z / a[0]) ** 2 + (y / a[1]) ** 2 + (x / a[2]) ** 2 <= 1
    rng = np.random.default_rng(0)
    texture = sitk.GetArrayFromImage(
        sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(rng.normal(size=shape)), 3.0)
    )
    image = np.where(tumour, 1.0 + 8.0 * texture, -1.0) + rng.normal(0, 0.2, shape)
    img = sitk.GetImageFromArray(image.astype(np.float32))
    msk = sitk.GetImageFromArray(tumour.astype(np.uint8))
    paths = _batch_case_paths(folder)
    paths["zscored"] = paths["image"]
    write_image(img, paths["image"])
    write_image(msk, paths["mask"])
    paths["zscore"].write_text("sequence\tmean\tsd\tn_voxels\tn_patients\treference\n")
    with open(paths["zscore"], "a") as handle:  # image is already in z units
        handle.write("T1\t0.0\t1.0\t1\t1\ttrain\n")
    return paths


def bench_memory(params: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = large_tumour_case(folder)
        voxels = int((sitk.GetArrayViewFromImage(sitk.ReadImage(str(paths["mask"]))) > 0).sum())
        code = _MEMORY_CHILD.format(
            scripts=str(ROOT / "workflow" / "scripts"),
            bench=str(Path(__file__).parent),
            paths=json.dumps({k: str(v) for k, v in paths.items()}),
            params=str(params),
            out=str(folder),
        )
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"[memory] extraction job failed:\n{proc.stderr[-2000:]}")
        return
    n_features, peak_kib = map(int, proc.stdout.strip().splitlines()[-1].split())
    print(
        f"[memory] tumour {voxels / 1000:.1f} cm3 at 1 mm, {n_features} features "
        f"({params.name}): {elapsed:.1f} s"
    )
    # Linux reports ru_maxrss in KiB.
    print(f"[memory] peak RSS of the extraction job = {peak_kib / 2**20:.2f} GiB (target <= 2)")


# ---------------------------------------------------------------------------------- 4
def _snakemake(workdir: Path, snakefile: Path, configs: list[Path], cores: int, *targets):
    """Run snakemake; returns (wall seconds, CPU seconds of Snakemake's own process)."""
    import psutil

    cmd = [str(Path(sys.executable).with_name("snakemake")), *targets, "--cores", str(cores)]
    # As users run it (`make demo`): the local profile, with --cores overriding its `all`.
    cmd += ["--profile", str(ROOT / "profiles" / "local")]
    cmd += ["-s", str(snakefile), "-d", str(workdir), "--quiet", "rules"]
    if configs:
        cmd += ["--configfile", *map(str, configs)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        # Snakemake's own CPU (scheduling, bookkeeping), sampled until it exits.
        main, own_cpu = psutil.Process(proc.pid), 0.0
        while proc.poll() is None:
            try:
                times = main.cpu_times()
                own_cpu = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"snakemake failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
    return elapsed, own_cpu


def bench_workflow(
    snakefile: Path, preset: str, params: Path, extra: Path | None, keep: Path | None
) -> None:
    imaging = ["results/features/features.parquet", "results/features/icc.tsv"]
    with tempfile.TemporaryDirectory(prefix="bench_imaging_") as tmp:
        if keep is not None:  # keep both working directories for inspection
            tmp = keep
            shutil.rmtree(tmp, ignore_errors=True)
        base = Path(tmp) / "cores1"
        base.mkdir(parents=True)
        override = base / "bench_config.yaml"
        override.write_text(f"demo:\n  preset: {preset}\nfeatures:\n  params: {params}\n")
        configs = [override] + ([extra.resolve()] if extra else [])
        # Everything before the imaging stage (demo cohort, QC, split) is not timed.
        _snakemake(base, snakefile, configs, 2, "results/qc/qc.tsv", "results/split/split.tsv")
        other = Path(tmp) / "cores2"
        shutil.copytree(base, other, symlinks=True)
        configs2 = [other / "bench_config.yaml"] + configs[1:]
        t1, cpu1 = _snakemake(base, snakefile, configs, 1, *imaging)
        t2, cpu2 = _snakemake(other, snakefile, configs2, 2, *imaging)
        n_jobs = len(list((other / "results" / "benchmarks").rglob("*.tsv")))
    print(f"[workflow] demo '{preset}' imaging stage, params {params.name}")
    print(f"[workflow] --cores 1: {t1:.1f} s; --cores 2: {t2:.1f} s")
    print(
        f"[workflow] Snakemake's own CPU: {cpu1:.1f} s / {cpu2:.1f} s "
        f"({n_jobs} jobs in the run dir, qc included)"
    )
    print(f"[workflow] speed-up = {t1 / t2:.2f}x (target >= 1.8x)")


# ---------------------------------------------------------------------------------- 5
def _crop_cases(kinds: list[str], preset: str):
    """(name, image, mask, reader-2 mask) of the crop benchmark's cases."""
    from npc_radiomics.inputs import demo

    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    for kind in kinds:
        cfg = demo.resolve_preset(settings, preset)
        if kind == "large":  # 512 x 512 x 100: 0.47 mm in plane, 2 mm slices
            cfg["centers"]["QZ"]["pixel_spacing_mm"] = 0.47
            cfg["centers"]["QZ"]["slice_thickness_mm"] = 2.0
            cfg["fov_mm"] = [240.64, 240.64, 200.0]
        scan = demo.simulate_patient(cfg, 1, "QZ001", "QZ", 1, True)
        images = []
        for array in (scan.images["T1"].astype(np.float32), scan.mask, scan.mask_reader2):
            img = sitk.GetImageFromArray(array)
            img.SetSpacing(scan.spacing)
            img.SetOrigin(scan.origin)
            images.append(img)
        yield (f"demo '{preset}'" if kind == "demo" else "512x512x100", *images)


def _cpu(fn, *args, **kwargs):
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def _feature_class(name: str) -> str:
    return name.split("_")[-2]  # <image type>_<class>_<feature>


#: N4 as it was before issue 18 (a factor 4 of the finest axis, every iteration run): the
#: "before" of the preprocessing benchmark.
N4_BEFORE = {
    "shrink_factor": 4,
    "fit_spacing_mm": None,
    "iterations": [50, 50],
    "convergence_threshold": 1e-6,
    "spline_distance_mm": 100.0,
}


def _rel_diff(a, b):
    """Relative difference of ``b`` from ``a``, element by element (absolute where a ~ 0)."""
    return (b - a).abs() / a.abs().where(a.abs() > 1e-12, 1.0)


def _max_rel_diff(a, b):
    """Largest relative difference of ``b`` from ``a`` per feature class, and per row."""
    rel = _rel_diff(a, b)
    return rel.max().groupby(_feature_class).max(), rel.max(axis=1).tolist()


def bench_crop(kinds: list[str], preset: str, params_path: Path, repeats: int = 3) -> None:
    import pandas as pd
    import yaml

    from npc_radiomics.base.io import read_image, write_image
    from npc_radiomics.imaging.features import extract_rule, load_params
    from npc_radiomics.imaging.preprocess import (
        crop_margin_setting,
        n4_correct,
        n4_shrink_factors,
        preprocess_case,
        reader2_mask,
        tumour_moments,
        write_moments,
    )

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    prep = config["preprocessing"]
    spacing = prep["resample"]["spacing_mm"]
    features_margin = config["features"]["crop_margin_mm"]
    params = load_params(params_path)
    auto = crop_margin_setting("auto", params, spacing, features_margin)
    n4_after = {k: v for k, v in prep["n4"].items() if k != "enabled"}
    # before: today's code before issue 18; crop: the ROI crop alone (same N4 as before, so
    # features must be equal); after: the defaults (crop + N4 on >= fit_spacing_mm voxels).
    modes = {"before": (None, N4_BEFORE), "crop": (auto, N4_BEFORE), "after": (auto, n4_after)}
    print(
        f"[crop] params {params_path.name}: auto margin {auto} mm (features.crop_margin_mm "
        f"{features_margin}); N4 before {N4_BEFORE}; N4 after (config) {n4_after}"
    )

    def preprocess(raw: dict, out: Path, margin, n4: dict, corrected=None) -> float:
        """CPU-s of one case's work in rule preprocess_batch (image, mask, moments,
        reader-2 mask onto the image as read back)."""
        start = time.process_time()
        image = read_image(raw["image"]) if corrected is None else corrected
        mask, mask2 = read_image(raw["mask"]), read_image(raw["mask2"])
        img, msk = preprocess_case(
            image,
            mask,
            n4={"enabled": corrected is None, **n4},
            spacing_mm=spacing,
            crop_margin_mm=margin,
            extra_masks=[mask2] if margin is not None else [],
        )
        write_image(img, out / "image.nii.gz")
        write_image(msk, out / "mask.nii.gz")
        write_moments(tumour_moments(img, msk), out / "moments.json")
        reference = read_image(out / "image.nii.gz")  # as preprocess_batch: read back
        write_image(reader2_mask(mask2, reference), out / "mask_reader2.nii.gz")
        return time.process_time() - start

    for name, image, mask, mask2 in _crop_cases(kinds, preset):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            raw = {k: folder / f"raw_{k}.nii.gz" for k in ("image", "mask", "mask2")}
            for key, img in zip(raw, (image, mask, mask2), strict=True):
                write_image(img, raw[key])
            outs = {m: folder / m for m in modes}
            for out in outs.values():
                out.mkdir()
            cpu = {m: [] for m in modes}
            n4_cpu = {}
            if image.GetNumberOfPixels() > 5e6:  # N4 once per setting, counted where used
                corrected = {}
                for key, n4 in (("before", N4_BEFORE), ("after", n4_after)):
                    (_, read_s) = _cpu(read_image, raw["image"])
                    corrected[key], n4_cpu[key] = _cpu(n4_correct, read_image(raw["image"]), **n4)
                    n4_cpu[key] += read_s
                for mode, (margin, n4) in modes.items():
                    key = "after" if mode == "after" else "before"
                    cpu[mode].append(
                        n4_cpu[key] + preprocess(raw, outs[mode], margin, n4, corrected[key])
                    )
            else:
                for _ in range(repeats):  # interleaved, so load changes hit all alike
                    for mode, (margin, n4) in modes.items():
                        cpu[mode].append(preprocess(raw, outs[mode], margin, n4))
                for key, n4 in (("before", N4_BEFORE), ("after", n4_after)):
                    n4_cpu[key] = statistics.median(
                        _cpu(n4_correct, read_image(raw["image"]), **n4)[1] for _ in range(repeats)
                    )
            moments = {m: json.loads((outs[m] / "moments.json").read_text()) for m in modes}
            features, extract_cpu = {}, {}
            for mode, out in outs.items():
                # Each mode's own z-score (one patient: its tumour moments), as the workflow.
                stats = moments[mode]
                zscore = folder / f"zscore_{mode}.tsv"
                sd = (stats["m2"] / stats["n"]) ** 0.5
                zscore.write_text(
                    f"sequence\tmean\tsd\tn_voxels\tn_patients\treference\n"
                    f"T1\t{stats['mean']!r}\t{sd!r}\t{stats['n']}\t1\ttrain\n"
                )
                rows, secs = [], 0.0
                for reader, mask_file in (("reader1", "mask"), ("reader2", "mask_reader2")):
                    (table, _), s = _cpu(
                        extract_rule,
                        out / "image.nii.gz",
                        out / f"{mask_file}.nii.gz",
                        zscore,
                        params_path,
                        patient="QZ001",
                        sequence="T1",
                        reader=reader,
                        crop_margin_mm=features_margin,
                    )
                    rows.append(table.drop(columns=["patient_id", "sequence"]))
                    secs += s
                features[mode] = pd.concat(rows, ignore_index=True).astype(float)
                extract_cpu[mode] = secs
            disk = {m: sum(f.stat().st_size for f in outs[m].glob("*.nii.gz")) for m in modes}
            sizes = {m: read_image(outs[m] / "image.nii.gz").GetSize() for m in modes}
        pre = {m: statistics.median(v) for m, v in cpu.items()}
        shrink = {
            k: n4_shrink_factors(image, n4["shrink_factor"], n4["fit_spacing_mm"])
            for k, n4 in (("before", N4_BEFORE), ("after", n4_after))
        }
        print(
            f"[crop] {name} {image.GetSize()} at {image.GetSpacing()} mm -> 1 mm image "
            f"{sizes['before']} (before) vs {sizes['after']} (after); N4 shrink "
            f"{shrink['before']} (before) vs {shrink['after']} (after)"
        )
        print(
            f"[crop]   preprocessing CPU-s per case (both readers' masks): before "
            f"{pre['before']:.2f}, crop alone {pre['crop']:.2f}, after {pre['after']:.2f} -> "
            f"{pre['before'] / pre['after']:.2f}x (target >= 2x; crop alone "
            f"{pre['before'] / pre['crop']:.2f}x)"
        )
        print(
            f"[crop]   of which N4 (read + fit + apply, whole image): before "
            f"{n4_cpu['before']:.2f} s, after {n4_cpu['after']:.2f} s -> "
            f"{n4_cpu['before'] / n4_cpu['after']:.2f}x"
        )
        print(
            f"[crop]   extraction CPU-s per case (reader 1 + reader 2): before "
            f"{extract_cpu['before']:.2f} vs after {extract_cpu['after']:.2f} -> "
            f"{extract_cpu['before'] / extract_cpu['after']:.2f}x"
        )
        print(
            f"[crop]   disk per case (image + 2 masks): before {disk['before'] / 1e6:.2f} MB vs "
            f"after {disk['after'] / 1e6:.3f} MB -> {disk['before'] / disk['after']:.1f}x smaller"
        )
        print(f"[crop]   tumour moments equal (crop alone): {moments['before'] == moments['crop']}")
        full = features["before"]
        for mode, label in (("crop", "crop alone (target <= 1e-6)"), ("after", "after (N4)")):
            worst, by_reader = _max_rel_diff(full, features[mode])
            print(
                f"[crop]   max relative feature difference per class, {label}, "
                f"{full.shape[1]} features: "
                + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
                + f"; reader 1 {by_reader[0]:.1e}, reader 2 {by_reader[1]:.1e}"
            )
        # "after" differs because N4 fits another field; relative differences are largest
        # where a feature is near zero (means, medians). The five largest, named:
        rel = _rel_diff(full, features["after"])
        worst_cols = rel.max().sort_values(ascending=False).head(5)
        print(
            f"[crop]   after vs before: median relative difference {rel.stack().median():.1e}; "
            "largest: "
            + "; ".join(
                f"{c} {v:.1e} ({full[c].iloc[0]:.3g} -> {features['after'][c].iloc[0]:.3g})"
                for c, v in worst_cols.items()
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", default="", help="comma list: n4,extract,memory,workflow,crop")
    parser.add_argument("--crop-cases", default="demo,large", help="comma list: demo,large")
    parser.add_argument("--crop-preset", default="small", help="demo preset of the crop cases")
    parser.add_argument("--n4-preset", default="small", help="demo preset of the N4 images")
    parser.add_argument("--n4-sequences", default="T1,T2,CET1", help="comma list")
    parser.add_argument("--extract-preset", default="small")
    parser.add_argument("--extract-params", type=Path, default=DEFAULT_PARAMS)
    # The demo cohort as `make demo` makes it (preset 'small', full pyradiomics params): about
    # 14 + 7.5 minutes on 2 cores; `--preset tiny --params resources/pyradiomics_params_fast.yaml`
    # is a 6-minute proxy with short jobs, where Snakemake's own per-job work weighs more.
    parser.add_argument("--preset", default="small", help="demo preset of the workflow run")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--configfile", type=Path, default=None)
    parser.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    parser.add_argument("--keep", type=Path, default=None, help="workflow runs' folder, kept")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    # Single-threaded timings: the ratios compare work, not thread pools.
    limit_threads(1)
    if "n4" not in skip:
        bench_n4(args.n4_preset, args.n4_sequences.split(","))
    if "extract" not in skip:
        bench_extraction(args.extract_preset, args.extract_params.resolve())
    if "memory" not in skip:
        bench_memory(args.extract_params.resolve())
    if "crop" not in skip:
        bench_crop(args.crop_cases.split(","), args.crop_preset, args.extract_params.resolve())
    if "workflow" not in skip:
        bench_workflow(
            args.snakefile.resolve(),
            args.preset,
            args.params.resolve(),
            args.configfile,
            args.keep,
        )
    print(
        "[done] peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )


if __name__ == "__main__":
    main()
