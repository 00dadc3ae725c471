"""SLURM benchmark: one config's wall time locally vs on the test SLURM, batched or per patient.

On SLURM the imaging stages (QC, preprocessing, extraction) run in batches of patients or
one patient per job; prints the ratios measured in one run (issue 12 target: SLURM at most
2x local on the single test node).

Modes (each in a fresh working directory, the same config):
- ``local``: ``--profile profiles/local --cores 2``.
- ``batched``: ``--profile profiles/slurm`` with the config's ``imaging.patients_per_job``
  (default 10 patients of one centre per SLURM job and stage).
- ``per_patient``: the same with ``imaging.patients_per_job: 1`` (an extra ``--configfile``
  written to the run's temporary directory, after ``--configfile``'s), i.e. one SLURM job
  per patient and stage.

Brings the test cluster up with tests/slurm/cluster.sh (and down again if it started it).
Every SLURM run is wrapped in ``timeout -s INT``. Prints the SLURM submissions per mode.

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/bench_slurm.py [--modes local,batched,per_patient]
        [--configfile tests/configs/tiny.yaml tests/configs/slurm.yaml] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
MODES = ("local", "batched", "per_patient")
#: The per_patient mode's extra config file: one patient per job of the imaging stages.
PER_PATIENT = "imaging:\n  patients_per_job: 1\n"


def progress(log: str) -> str:
    """The last "X of Y steps (Z%) done" line Snakemake printed, or a dash."""
    lines = [line for line in log.splitlines() if " steps (" in line and "done" in line]
    return lines[-1].strip() if lines else "-"


def run(mode: str, configfiles: list[str], timeout: int) -> tuple[float, int, bool]:
    work = Path(tempfile.mkdtemp(prefix=f"bench_slurm_{mode}_"))
    for sub in ("config", "resources"):
        shutil.copytree(ROOT / sub, work / sub)
    configfiles = list(configfiles)
    if mode == "per_patient":  # last, so it overrides the others' imaging.patients_per_job
        extra = work / "bench_per_patient.yaml"
        extra.write_text(PER_PATIENT)
        configfiles.append(str(extra))
    if mode == "local":
        cmd = [SNAKEMAKE, "--profile", str(ROOT / "profiles/local"), "--cores", "2"]
    else:
        cmd = ["timeout", "-s", "INT", "-k", "60", str(timeout), SNAKEMAKE]
        cmd += ["--profile", str(ROOT / "profiles/slurm")]
        cmd += ["--slurm-init-seconds-before-status-checks", "1"]
    cmd += ["-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", *configfiles]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    submitted = log.count("has been submitted with SLURM jobid")
    timed_out = mode != "local" and wall >= timeout - 1
    if proc.returncode != 0 and not timed_out:
        sys.exit(f"{mode} run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    if timed_out:  # a lower bound, with how far it got
        print(f"{mode}: stopped at the {timeout} s timeout, {progress(log)}", flush=True)
        subprocess.run(["scancel", "--user", "root"], check=False)
    shutil.rmtree(work, ignore_errors=True)
    return wall, submitted, timed_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma list of " + ", ".join(MODES)
    )
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=[
            str(ROOT / "tests/configs/tiny.yaml"),
            str(ROOT / "tests/configs/slurm.yaml"),
        ],
    )
    parser.add_argument("--timeout", type=int, default=3600)
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    started = False
    if any(m != "local" for m in modes):
        started = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode != 0
        subprocess.run([str(CLUSTER), "up"], check=True)
    try:
        results = {}
        for mode in modes:
            results[mode] = run(mode, args.configfile, args.timeout)
            wall, n, timed_out = results[mode]
            bound = " (timed out: at least)" if timed_out else ""
            print(f"{mode:11s} {wall:7.1f} s   {n:4d} SLURM jobs{bound}", flush=True)
    finally:
        if started:
            subprocess.run([str(CLUSTER), "down"], check=False)
    if "local" in results:
        for mode in modes:
            if mode != "local":
                ratio = results[mode][0] / results["local"][0]
                at_least = ">= " if results[mode][2] else ""
                print(f"{mode} / local: {at_least}{ratio:.2f}x (target <= 2x)")
    if "batched" in results and "per_patient" in results:
        at_least = ">= " if results["per_patient"][2] else ""
        ratio = results["per_patient"][0] / results["batched"][0]
        print(f"per_patient / batched: {at_least}{ratio:.2f}x")


if __name__ == "__main__":
    main()
