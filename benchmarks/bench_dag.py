"""DAG scale: `snakemake -n` on a cohort of N patients x 3 sequences, before and after QC.

Writes a sample sheet and a clinical table of N patients whose images are hard links to one
small image + mask pair (the DAG does not read them), then times two dry runs and reads
their peak memory (RSS of Snakemake's process tree, sampled with psutil):

- before QC: nothing has run;
- after QC: the QC batches' tables and the QC table are written as if QC had passed for
  every case. The DAG has no checkpoint (the imaging stages run in batches of
  ``imaging.patients_per_job`` patients and read their own batch's QC table), so both
  dry runs plan the whole workflow; the second also checks the QC files' time stamps.

Target (issue 12): at most 60 s and 2 GiB for 10,000 patients.

    .venv/bin/python benchmarks/bench_dag.py [--patients 1000 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SEQUENCES = ["T1", "T2", "CET1"]
#: config imaging.patients_per_job (the default).
PATIENTS_PER_JOB = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["imaging"][
    "patients_per_job"
]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))


def write_cohort(folder: Path, n_patients: int) -> Path:
    """Sheets of ``n_patients`` (80% centre A = training, 20% centre B = external) whose
    images all link to one tiny image and mask; returns the config override file."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(8, 16, 16)))
    mask = sitk.GetImageFromArray((np.ones((8, 16, 16)) > 0).astype(np.uint8))
    sitk.WriteImage(image, str(folder / "image.nii.gz"))
    sitk.WriteImage(mask, str(folder / "mask.nii.gz"))
    links = folder / "images"
    links.mkdir(exist_ok=True)
    rows, clinical = [], []
    for k in range(n_patients):
        pid = f"P{k:05d}"
        center = "A" if k % 5 else "B"
        for seq in SEQUENCES:
            img, msk = links / f"{pid}_{seq}.nii.gz", links / f"{pid}_{seq}_mask.nii.gz"
            # hard links: the sheet check refuses one (real) file on two rows
            img.hardlink_to(folder / "image.nii.gz")
            msk.hardlink_to(folder / "mask.nii.gz")
            rows.append((pid, center, seq, str(img), str(msk), ""))
        clinical.append({"patient_id": pid, "response": k % 2})
    pd.DataFrame(
        rows, columns=["patient_id", "center", "sequence", "image", "mask", "mask_reader2"]
    ).to_csv(folder / "samples.tsv", sep="\t", index=False)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    variables = cfg["clinical_variables"]
    rng = np.random.default_rng(1)
    table = pd.DataFrame(clinical)
    for var in variables["continuous"]:
        table[var] = rng.normal(10, 2, len(table)).round(3)
    for var in variables["categorical"]:
        table[var] = rng.integers(0, 3, len(table))
    table.to_csv(folder / "clinical.tsv", sep="\t", index=False)
    override = {
        "samples": str(folder / "samples.tsv"),
        "clinical": str(folder / "clinical.tsv"),
        "demo": {"enabled": False},
        "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(override))
    return path


def fake_qc(workdir: Path, samples: Path, patients_per_job: int) -> None:
    """The QC batches' tables and the QC table, as if every case had passed."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.imaging.batches import plan_batches
    from npc_radiomics.imaging.qc import QC_COLUMNS

    sheet = pd.read_csv(samples, sep="\t", dtype=str, keep_default_na=False)
    rows = sheet.reindex(columns=QC_COLUMNS).fillna("")
    rows["status"] = "pass"
    rows["patient_status"] = "included"
    centre_of = dict(zip(sheet["patient_id"], sheet["center"], strict=False))
    for (centre, batch), members in plan_batches(centre_of, patients_per_job).items():
        part = rows[rows["patient_id"].isin(set(members.patients))]
        write_tsv(part, workdir / "results" / "qc" / "batches" / centre / f"{batch}.tsv")
    time.sleep(1.1)  # the table must be newer than every batch's table
    write_tsv(rows, workdir / "results" / "qc" / "qc.tsv")


def timed_dry_run(workdir: Path, config: Path) -> tuple[float, float, int, str]:
    """(seconds, peak GiB of the process tree, jobs in the DAG, last stderr lines)."""
    cmd = [SNAKEMAKE, "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    cmd += ["--configfile", str(config), "--quiet", "rules"]
    peak, stop = [0], threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample():
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    thread.join()
    jobs = 0
    for line in (out + err).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            jobs = int(parts[1])
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, peak[0] / 2**30, jobs, err[-500:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--keep", type=Path, default=None, help="keep the cohorts here")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench_dag_"))
    print(f"{'patients':>9} {'stage':>10} {'jobs':>8} {'seconds':>8} {'peak GiB':>9}")
    try:
        for n in args.patients:
            folder = base / f"n{n}"
            config = write_cohort(folder / "cohort", n)
            work = folder / "work"
            work.mkdir(exist_ok=True)
            wall, gib, jobs, _ = timed_dry_run(work, config)
            print(f"{n:>9} {'before QC':>10} {jobs:>8} {wall:>8.1f} {gib:>9.2f}", flush=True)
            fake_qc(work, folder / "cohort" / "samples.tsv", PATIENTS_PER_JOB)
            wall, gib, jobs, _ = timed_dry_run(work, config)
            print(f"{n:>9} {'after QC':>10} {jobs:>8} {wall:>8.1f} {gib:>9.2f}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print("target: <= 60 s and <= 2 GiB at 10,000 patients")


if __name__ == "__main__":
    main()
