"""End-to-end on a real SLURM: the workflow through every stage with --profile profiles/slurm.

tests/slurm/cluster.sh brings up a single-node SLURM on localhost (munged, MariaDB +
slurmdbd, slurmctld, slurmd); `make test` keeps it up for the whole session, and the
fixture below brings it up (and down again) when pytest runs on its own. The SLURM run
sends one job per batch of patients for the imaging stages and two tuning jobs per model
sharing one Optuna journal; its result tables must be byte-identical to a local run with
one tuning job per model.
"""

from __future__ import annotations

import filecmp
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SNAKEMAKE, prepare_workdir, run_workflow

from npc_radiomics.base.config import load_yaml
from npc_radiomics.evaluation.procedure import PROCEDURE

pytestmark = [pytest.mark.e2e, pytest.mark.slurm, pytest.mark.snakemake]

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
CONFIGS = [str(ROOT / "tests" / "configs" / name) for name in ("tiny.yaml", "slurm.yaml")]
PARALLEL = str(ROOT / "tests" / "configs" / "slurm_parallel.yaml")
# A hung status check must not hang CI: SIGINT after this, SIGKILL 60 s later.
SLURM_TIMEOUT_S = 2400
TABLES = [
    "results/split/split.tsv",
    "results/split/pool.tsv",
    "results/qc/qc.tsv",
    "results/normalization/zscore.tsv",
    "results/features/features.parquet",
    "results/features/pool/features.parquet",
    "results/predictions/predictions.tsv",
    "results/evaluation/metrics.tsv",
]


@pytest.fixture(scope="module")
def cluster():
    was_up = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0
    if not was_up:
        proc = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"test SLURM did not come up:\n{proc.stderr[-6000:]}"
    yield
    if not was_up:
        subprocess.run([str(CLUSTER), "down"], capture_output=True, timeout=300)


def squeue_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """(local workdir, SLURM workdir, SLURM run's stdout+stderr) for the same config."""
    local = prepare_workdir(tmp_path_factory.mktemp("local"))
    start = time.perf_counter()
    proc = run_workflow(local, None, "--cores", "2", "--configfile", *CONFIGS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    local_s = time.perf_counter() - start

    remote = prepare_workdir(tmp_path_factory.mktemp("slurm"))
    before = set(squeue_jobs())
    cmd = [
        "timeout", "-s", "INT", "-k", "60", str(SLURM_TIMEOUT_S),
        SNAKEMAKE, "--profile", str(ROOT / "profiles" / "slurm"),
        # Poll 1 s after a submission or a finish instead of the plugin's 40 s (the plugin adds
        # 10 s after each poll that finds nothing finished): the test cluster is idle and its
        # jobs are seconds long.
        "--slurm-init-seconds-before-status-checks", "1",
        "-s", str(ROOT / "Snakefile"), "-d", str(remote),
        "--configfile", *CONFIGS, PARALLEL,
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S + 120)
    slurm_s = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"SLURM run failed ({proc.returncode}):\n{log[-8000:]}"
    print(f"\nlocal --cores 2: {local_s:.0f} s; SLURM: {slurm_s:.0f} s ({slurm_s / local_s:.2f}x)")
    assert set(squeue_jobs()) <= before, "the SLURM run left jobs in the queue"
    return local, remote, log


def test_result_tables_are_byte_identical_to_the_local_run(runs):
    local, remote, _ = runs
    selection = sorted(p.name for p in (local / "results/selection").glob("*.tsv"))
    assert "selected_features.tsv" in selection
    assert selection == sorted(p.name for p in (remote / "results/selection").glob("*.tsv"))
    for rel in TABLES + [f"results/selection/{name}" for name in selection]:
        assert (remote / rel).is_file(), rel
        assert filecmp.cmp(local / rel, remote / rel, shallow=False), f"{rel} differs"
    metrics = pd.read_csv(remote / "results/evaluation/metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"logistic_regression", "knn", PROCEDURE}
    assert (remote / "results/report/index.html").stat().st_size > 10_000


def test_jobs_ran_on_slurm_in_batches_and_tuning_split(runs):
    local, remote, log = runs
    # Every submission is logged with its SLURM log path, .../slurm_logs/rule_NAME/...; the
    # plugin deletes successful jobs' log files, so count the lines.
    text = "".join(p.read_text() for p in sorted((remote / ".snakemake" / "log").glob("*.log")))
    paths = re.findall(r"has been submitted with SLURM jobid \S+ \(log: ([^)]+)\)", text)
    kinds = [next(part for part in Path(path).parts if part.startswith("rule_")) for path in paths]
    # One SLURM job per batch of imaging.patients_per_job (10) patients of one centre and
    # stage: 24 QZ + 8 ND patients.
    sheet = pd.read_csv(remote / "results/demo/samples.tsv", sep="\t", keep_default_na=False)
    assert sheet.groupby("center")["patient_id"].nunique().to_dict() == {"QZ": 24, "ND": 8}
    for stage in ("qc_batch", "preprocess_batch", "extract_batch"):
        assert kinds.count(f"rule_{stage}") == 3 + 1, (stage, sorted(kinds))
    # the light aggregation rules of config cluster.local_rules ran in the main process,
    # every other rule job went to SLURM
    local_rules = load_yaml(ROOT / "config" / "config.yaml")["cluster"]["local_rules"]
    assert not {f"rule_{name}" for name in local_rules} & set(kinds), sorted(kinds)
    for name in ("select_features", "tune_model_part", "nested_cv_fold", "fit_final"):
        assert f"rule_{name}" in kinds, (name, sorted(kinds))
    # each job's rule ran in the job's own Snakemake process (npc_radiomics.glue.snakemake_fixes
    # run_slurm_jobs_in_process): no srun step per job, only the batch script
    ids = re.findall(r"submitted with SLURM jobid (\d+)", text)
    acct = subprocess.run(
        ["sacct", "-n", "-P", "-j", ",".join(ids), "-o", "JobID"], capture_output=True, text=True
    )
    assert acct.returncode == 0, acct.stderr
    steps = acct.stdout.split()
    assert {f"{jobid}.batch" for jobid in ids} <= set(steps), steps
    assert not [step for step in steps if re.fullmatch(r"\d+\.\d+", step)], steps
    ran_locally = set(re.findall(r"^localrule (\w+):", text, flags=re.M))
    assert {"merge_features", "evaluate", "standalone_report"} <= ran_locally, ran_locally

    # two tuning jobs per model in the SLURM run, one locally
    def parts(workdir: Path, model: str) -> list[str]:
        return sorted(p.name for p in (workdir / f"results/models/{model}/tuning").glob("part*"))

    for model in ("logistic_regression", "knn"):
        assert parts(remote, model) == ["part0.json", "part1.json"]
        assert parts(local, model) == ["part0.json"]


def test_cluster_script_is_idempotent(cluster):
    again = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True)
    name, state = node.stdout.split()
    assert name == "localhost" and state in ("idle", "mix", "alloc")
    assert Path("/etc/slurm/slurm.conf").resolve().is_file()


RETRY_SNAKEFILE = """
import sys

sys.path.insert(0, config["scripts"])
from npc_radiomics.glue.cluster import fixed_resource


rule slow:
    output:
        "done.txt",
    resources:
        mem_mb=fixed_resource(500),
        runtime=fixed_resource(1),
    shell:
        "sleep 80; echo $SLURM_JOB_ID > {output}"
"""


def test_job_killed_at_its_time_limit_is_retried_with_more(cluster, tmp_path):
    # The workflow's resource callables on a job that outlives its first time limit (1 min):
    # SLURM kills it (TIMEOUT), Snakemake resubmits it with 2x runtime and memory.
    (tmp_path / "Snakefile").write_text(RETRY_SNAKEFILE)
    cmd = [
        "timeout", "-s", "INT", "-k", "60", "600",
        SNAKEMAKE, "--executor", "slurm", "--jobs", "1", "--retries", "1",
        "--slurm-init-seconds-before-status-checks", "5", "--slurm-status-command", "sacct",
        "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path),
        "--config", f"scripts={ROOT / 'workflow' / 'scripts'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=720)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "SLURM status is: 'TIMEOUT'" in log and "Trying to restart job" in log
    assert "runtime=1, mem_mb=500," in log and "runtime=2, mem_mb=1000," in log
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(ids) == 2
    acct = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(ids), "-o", "JobID,State,Timelimit,ReqMem"],
        capture_output=True,
        text=True,
    )
    rows = sorted((line.split("|") for line in acct.stdout.split()), key=lambda r: int(r[0]))
    assert [r[1:] for r in rows] == [
        ["TIMEOUT", "00:01:00", "500M"],
        ["COMPLETED", "00:02:00", "1000M"],
    ]
    assert (tmp_path / "done.txt").read_text().strip() == ids[1]
