"""One extraction batch at 1 and 2 (or more) worker processes, side by side in one run.

A batch job runs its cases in ``imaging.threads_per_job`` worker processes
(npc_radiomics.imaging.batches.run_cases). This times ``extract_batch_rule`` (the work of
rule extract_batch) on one batch of demo-size cases (``--cases``, default 8 patients x T1 of
the demo's default preset, preprocessed as the workflow does: N4 + 1 mm + crop, untimed)
with the params file ``--params`` (default the workflow's: Original + LoG + Wavelet) at
each worker count of ``--workers``, each repeated ``--repeats`` times interleaved so that
every count sees the same machine load (best and median wall time reported), and prints:

- wall time per worker count, the speed-up over one worker, and the efficiency
  (speed-up / workers);
- CPU seconds of the job (its process + its workers) and per case;
- peak RSS of the job's process and of its largest worker (what ``mem_mb`` must hold:
  base + workers x per-worker peak, see rule extract_batch's resources);
- whether the outputs (features Parquet, provenance table) are byte-identical to the
  one-worker run's (they must be).

The machine's load average is printed before and after: a speed-up below the worker
count on a machine whose other processes use the cores is the machine's, not the batch's.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_batch_workers.py [--cases 8] [--workers 1,2]
        [--repeats 1] [--params resources/pyradiomics_params.yaml] [--preset small]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

DEFAULT_PARAMS = ROOT / "resources" / "pyradiomics_params.yaml"
SEQUENCE = "T1"


def prepare_batch(folder: Path, n_cases: int, preset: str) -> list[dict]:
    """``n_cases`` demo patients' T1, preprocessed as rule preprocess_batch does (the
    config's N4, 1 mm, crop margin auto = 10 mm here) into one batch folder, and the z-score
    table of their pooled tumour moments; returns rule extract_batch's ``cases``."""
    from npc_radiomics.base.config import load_yaml
    from npc_radiomics.base.io import write_image
    from npc_radiomics.imaging.batches import preprocessed_paths
    from npc_radiomics.imaging.preprocess import preprocess_case, tumour_moments, zscore_table
    from npc_radiomics.inputs import demo

    config = load_yaml(ROOT / "config" / "config.yaml")
    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    cfg = demo.resolve_preset(settings, preset)
    cases, moments = [], []
    for k in range(n_cases):
        patient = f"QZ{k + 1:03d}"
        scan = demo.simulate_patient(cfg, k + 1, patient, "QZ", k % 2, False)
        image = sitk.GetImageFromArray(scan.images[SEQUENCE].astype(np.float32))
        mask = sitk.GetImageFromArray(scan.mask)
        for img in (image, mask):
            img.SetSpacing(scan.spacing)
            img.SetOrigin(scan.origin)
        image, mask = preprocess_case(
            image, mask, n4=config["preprocessing"]["n4"], crop_margin_mm=10.0
        )
        paths = preprocessed_paths(str(folder), patient, SEQUENCE)
        Path(paths["image"]).parent.mkdir(parents=True, exist_ok=True)
        write_image(image, paths["image"])
        write_image(mask, paths["mask"])
        moments.append(tumour_moments(image, mask))
        cases.append({"patient_id": patient, "sequence": SEQUENCE, "mask_reader2": False})
    zscore_table({SEQUENCE: moments}, "all").to_csv(
        folder.parent / "zscore.tsv", sep="\t", index=False
    )
    return cases


def run_batch(cases, folder: Path, params: Path, out: Path, workers: int) -> dict:
    """extract_batch_rule on the batch in a child process forked after the imports (so
    that its CPU time and peak RSS, and its workers', are its own); returns its wall time
    (the batch's work, not the imports every job pays alike), CPU and peak RSS."""
    from npc_radiomics.glue.runtime import limit_threads
    from npc_radiomics.imaging.features import extract_batch_rule

    out.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # the job's process, its imports done (as the rule script's are)
        code = 1
        try:
            limit_threads(1)
            start = time.perf_counter()
            extract_batch_rule(
                cases,
                str(folder),
                str(folder.parent / "zscore.tsv"),
                params_files={SEQUENCE: str(params)},
                normalization={SEQUENCE: {"method": "zscore"}},
                crop_margin_mm=10.0,
                features_path=str(out / "features.parquet"),
                provenance_path=str(out / "provenance.tsv"),
                workers=workers,
            )
            wall = time.perf_counter() - start
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            (out / "usage.txt").write_text(
                f"{wall} {own.ru_utime + own.ru_stime} {kids.ru_utime + kids.ru_stime} "
                f"{own.ru_maxrss} {kids.ru_maxrss}\n"
            )
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"the batch at {workers} worker(s) failed (status {status})")
    wall, own_cpu, kids_cpu, own_rss, kids_rss = (out / "usage.txt").read_text().split()
    return {
        "wall": float(wall),
        "cpu": float(own_cpu) + float(kids_cpu),
        "rss_job_mb": int(own_rss) / 1024,
        "rss_worker_mb": int(kids_rss) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    # pyradiomics' per-case warnings go to the rule's log in the workflow; here, nowhere.
    import radiomics  # noqa: F401  (adds its own stderr handler)

    logging.getLogger("radiomics").handlers[:] = [logging.NullHandler()]
    logging.getLogger("radiomics").propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        cases = prepare_batch(tmp / "batch" / "QZ" / "000", args.cases, args.preset)
        print(
            f"batch: {args.cases} demo '{args.preset}' cases ({SEQUENCE}, N4 + 1 mm + 10 mm "
            f"crop), prepared in {time.perf_counter() - start:.1f} s (untimed); params "
            f"{args.params.relative_to(ROOT) if args.params.is_relative_to(ROOT) else args.params}"
        )
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        runs: dict[int, list[dict]] = {w: [] for w in counts}
        for r in range(args.repeats):
            for w in counts:  # interleaved: every count sees the same load
                runs[w].append(
                    run_batch(cases, tmp / "batch" / "QZ" / "000", args.params,
                              tmp / f"out{w}_{r}", w)
                )  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        reference = tmp / f"out{counts[0]}_0"
        base = min(run["wall"] for run in runs[counts[0]])
        print(
            f"\n{'workers':>7} {'wall best s':>11} {'median s':>9} {'speed-up':>8} "
            f"{'efficiency':>10} {'CPU s':>7} {'CPU s/case':>10} {'job RSS MB':>10} "
            f"{'worker RSS MB':>13}  outputs"
        )
        for w in counts:
            best = min(run["wall"] for run in runs[w])
            median = statistics.median(run["wall"] for run in runs[w])
            cpu = statistics.median(run["cpu"] for run in runs[w])
            same = all(
                (tmp / f"out{w}_{r}" / name).read_bytes() == (reference / name).read_bytes()
                for r in range(args.repeats)
                for name in ("features.parquet", "provenance.tsv")
            )
            job_rss = max(run["rss_job_mb"] for run in runs[w])
            worker_rss = max(run["rss_worker_mb"] for run in runs[w]) if w > 1 else float("nan")
            print(
                f"{w:>7} {best:>11.1f} {median:>9.1f} {base / best:>7.2f}x "
                f"{base / best / w:>10.2f} {cpu:>7.1f} {cpu / args.cases:>10.2f} "
                f"{job_rss:>10.0f} {worker_rss:>13.0f}  "
                f"{'identical' if same else 'DIFFERENT'} to {counts[0]} worker(s)"
            )
            if not same:
                raise SystemExit(f"outputs at {w} workers differ from {counts[0]} worker(s)")


if __name__ == "__main__":
    main()
