"""Incremental by construction (issue 15): a centre added to the finished tiny run reruns
only its own work. Dry runs on a copy of the session's tiny run (no job runs): the demo's
sheets become user sheets, a new centre's rows are appended (its images: copies of
external patients' files), and ``snakemake -n`` says which jobs would run."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]

# What a new external centre may rerun: its per-case jobs, its QC / cohort / feature
# tables, its predictions and everything downstream of predictions (evaluation, clinical
# tables, baselines, the permutation p-value, evidence, the report, the bundle's manifest,
# the provenance record and the run crate); centre_diagnostics shows every centre.
EXTERNAL_RERUN = {
    "qc_case",
    "qc",
    "qc_table",
    "external_cohort",
    "split_table",
    "merge_external_features",
    "predict_external",
    "gather_predictions",
    "evaluate",
    "decision_curves",
    "clinical_analysis",
    "baselines",
    "centre_diagnostics",
    "permutation_test",
    "evidence",
    "checklist",
    "standalone_report",
    "provenance",
    "bundle",
    "bundle_model",
    "run_crate",
    "all",
}
# The training pool's work: none of it may rerun for an external centre.
FITTED = {
    "split",
    "zscore_params",
    "merge_features",
    "icc",
    "select_features",
    "selection_figures",
    "tune_model_part",
    "tune_model",
    "nested_cv_fold",
    "fit_final",
    "choose_model",
    "shap_analysis",
    "selection_stability",
    "permutation_run",
    "preprocess_case",
    "extract_features",
}


def _jobs(stdout: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs, rule = [], None
    for line in stdout.splitlines():
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, ""))
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and rule is not None and jobs and jobs[-1][0] == rule:
            jobs[-1] = (rule, m.group(1))
    return jobs


@pytest.fixture(scope="module")
def user_copy(tiny_run, tmp_path_factory):
    """The tiny run copied (results hard-linked: a dry run writes none of them), with its
    demo sheets as user sheets; returns (workdir, config dict, timings)."""
    work = tmp_path_factory.mktemp("incremental")
    for name in ("config", "resources", ".snakemake"):
        if (tiny_run / name).exists():
            shutil.copytree(tiny_run / name, work / name, symlinks=True)
    subprocess.run(["cp", "-al", str(tiny_run / "results"), str(work / "results")], check=True)
    for sheet in ("samples.tsv", "clinical.tsv"):  # edited below: own copies, not links
        path = work / "results/demo" / sheet
        text = path.read_text()
        path.unlink()
        path.write_text(text)
    config = yaml.safe_load((tiny_run / "tiny_run.yaml").read_text())
    config["demo"]["enabled"] = False
    config["samples"] = "results/demo/samples.tsv"
    config["clinical"] = "results/demo/clinical.tsv"
    # The defaults' centres (config/config.yaml), spelled out for the tests to extend.
    config["cohorts"] = {"train_centers": ["QZ"], "external_centers": ["ND"]}
    return work, config, {}


def _dry_run(work, config, name):
    configfile = work / f"{name}.yaml"
    configfile.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    proc = run_workflow(work, configfile, "-n")
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"dry run {name}: {seconds:.1f} s")
    return _jobs(proc.stdout), seconds


def _add_centre(work, source_centre: str, new_centre: str, n: int) -> list[str]:
    """Append ``n`` patients of a new centre to the sheets (copies of ``source_centre``'s
    first patients: same image files, labels and clinical values); returns their ids."""
    samples = pd.read_csv(work / "results/demo/samples.tsv", sep="\t", dtype=str).fillna("")
    clinical = pd.read_csv(work / "results/demo/clinical.tsv", sep="\t", dtype=str)
    source = sorted(samples.loc[samples["center"] == source_centre, "patient_id"].unique())[:n]
    ids = {p: f"{new_centre}{k:03d}" for k, p in enumerate(source, start=1)}
    rows = samples[samples["patient_id"].isin(source)].copy()
    rows["patient_id"] = rows["patient_id"].map(ids)
    rows["center"] = new_centre
    for column in ("image", "mask", "mask_reader2"):  # own copies of the files
        for k, (old, pid) in enumerate(zip(rows[column], rows["patient_id"], strict=False)):
            if old:
                new = f"results/demo/images/{pid}/{Path(old).name}"
                (work / new).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(work / old, work / new)
                rows.iloc[k, rows.columns.get_loc(column)] = new
    extra = clinical[clinical["patient_id"].isin(source)].copy()
    extra["patient_id"] = extra["patient_id"].map(ids)
    pd.concat([samples, rows]).to_csv(work / "results/demo/samples.tsv", sep="\t", index=False)
    pd.concat([clinical, extra]).to_csv(work / "results/demo/clinical.tsv", sep="\t", index=False)
    return sorted(ids.values())


def test_user_sheets_rerun_nothing_fitted(user_copy):
    work, config, timings = user_copy
    jobs, timings["unchanged"] = _dry_run(work, config, "unchanged")
    rules = {rule for rule, _ in jobs}
    # The demo's config switch reaches the provenance record and the bundle manifest only.
    assert rules <= {
        "provenance",
        "standalone_report",
        "checklist",
        "bundle",
        "bundle_model",
        "run_crate",
        "all",
    }, sorted(rules)


def test_new_external_centre_reruns_only_its_own_work(user_copy):
    work, config, timings = user_copy
    new = _add_centre(work, "ND", "NX", 4)
    config = {**config, "cohorts": {**config["cohorts"]}}
    config["cohorts"]["external_centers"] = [*config["cohorts"]["external_centers"], "NX"]
    jobs, timings["external"] = _dry_run(work, config, "external")
    rules = {rule for rule, _ in jobs}
    assert not rules & FITTED, sorted(rules & FITTED)
    assert rules <= EXTERNAL_RERUN, sorted(rules - EXTERNAL_RERUN)
    # Only the new centre's cases, QC table, cohort, features and predictions.
    cases = {wc for rule, wc in jobs if rule == "qc_case"}
    assert cases == {f"patient={p}, sequence={s}" for p in new for s in ("T1", "T2", "CET1")}
    for rule in ("qc", "external_cohort", "merge_external_features", "predict_external"):
        assert [wc for r, wc in jobs if r == rule] == ["centre=NX"], (rule, jobs)
    assert {"predict_external", "gather_predictions", "evaluate", "standalone_report"} <= rules
    assert timings["external"] < 120


def test_new_training_centre_reruns_the_modelling(user_copy):
    work, config, timings = user_copy
    if not (work / "results/demo/samples.tsv").read_text().count("\tNX\t"):
        _add_centre(work, "ND", "NX", 4)
    _add_centre(work, "QZ", "NT", 24)
    config = {**config, "cohorts": {**config["cohorts"]}}
    config["cohorts"]["train_centers"] = [*config["cohorts"]["train_centers"], "NT"]
    config["cohorts"]["external_centers"] = [*config["cohorts"]["external_centers"], "NX"]
    jobs, timings["training"] = _dry_run(work, config, "training")
    rules = {rule for rule, _ in jobs}
    # The pool's split, normalisation, tables and models wait on the new centre's QC.
    assert {"qc", "split", "zscore_params", "merge_features", "select_features"} <= rules
    assert {"tune_model_part", "nested_cv_fold", "fit_final", "choose_model"} <= rules
    # The existing centres' QC tables stay (only the new centres' checkpoints run).
    assert {wc for r, wc in jobs if r == "qc"} == {"centre=NT", "centre=NX"}
