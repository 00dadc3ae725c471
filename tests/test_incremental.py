"""Incremental by construction (issue 15): a centre added to the finished tiny run reruns
only what it must. Dry runs on a copy of the session's tiny run (no job runs): the demo's
sheets become user sheets, a new centre's rows are appended (its images: copies of
existing patients' files), and ``snakemake -n`` lists the jobs that would run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]

# What a new external centre may rerun: its batches' jobs, the gathers that list every
# centre (QC table, split table, every cohort's features), its cohort, features and
# predictions, and everything downstream of the predictions (evaluation, clinical tables,
# baselines, the permutation p-value, evidence, the report, the bundle's manifest, the
# provenance record and the run crate); centre_diagnostics shows every centre.
EXTERNAL_RERUN = {
    "qc_batch",
    "qc",
    "preprocess_batch",
    "extract_batch",
    "external_cohort",
    "split_table",
    "merge_features",
    "merge_external_features",
    "predict_external",
    "gather_predictions",
    "evaluate",
    "decision_curves",
    "subgroups",  # per cohort and centre: the new centre is one more (fits nothing)
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
    "merge_pool_features",
    "icc",
    "select_features",
    "selection_figures",
    "cv_selection",
    "tune_model_part",
    "tune_model",
    "nested_cv_fold",
    "fit_final",
    "choose_model",
    "shap_analysis",
    "selection_stability",
    "permutation_run",
    "inner_scores",
}
BATCH_RULES = ("qc_batch", "preprocess_batch", "extract_batch")


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
    demo sheets as user sheets; returns (workdir, config dict)."""
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
    return work, config


def _dry_run(work: Path, config: dict, name: str) -> list[tuple[str, str]]:
    configfile = work / f"{name}.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = run_workflow(work, configfile, "-n")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _jobs(proc.stdout)


def _add_centre(work: Path, source_centre: str, new_centre: str, n: int) -> list[str]:
    """Append ``n`` patients of a new centre to the sheets (copies of ``source_centre``'s
    first patients: same image contents, labels and clinical values); returns their ids."""
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
    """The demo's sheets as a user's: the same cohort, so no result may change (the demo
    switch reaches only the provenance record, the bundle manifest and what shows them)."""
    work, config = user_copy
    rules = {rule for rule, _ in _dry_run(work, config, "unchanged")}
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
    work, config = user_copy
    new = _add_centre(work, "ND", "NX", 4)
    config = {**config, "cohorts": {**config["cohorts"]}}
    config["cohorts"]["external_centers"] = [*config["cohorts"]["external_centers"], "NX"]
    jobs = _dry_run(work, config, "external")
    rules = {rule for rule, _ in jobs}
    assert not rules & FITTED, sorted(rules & FITTED)
    assert rules <= EXTERNAL_RERUN, sorted(rules - EXTERNAL_RERUN)
    # Only the new centre's batch (its 4 patients) is QC'd, preprocessed and extracted.
    assert len(new) == 4
    for rule in BATCH_RULES:
        assert [wc for r, wc in jobs if r == rule] == ["centre=NX, batch=000"], (rule, jobs)
    for rule in ("external_cohort", "merge_external_features", "predict_external"):
        assert [wc for r, wc in jobs if r == rule] == ["centre=NX"], (rule, jobs)
    assert {"predict_external", "gather_predictions", "evaluate", "standalone_report"} <= rules


def test_new_training_centre_reruns_the_modelling(user_copy):
    work, config = user_copy
    if not (work / "results/demo/samples.tsv").read_text().count("\tNX\t"):
        _add_centre(work, "ND", "NX", 4)
    _add_centre(work, "QZ", "NT", 24)
    config = {**config, "cohorts": {**config["cohorts"]}}
    config["cohorts"]["train_centers"] = [*config["cohorts"]["train_centers"], "NT"]
    config["cohorts"]["external_centers"] = [*config["cohorts"]["external_centers"], "NX"]
    jobs = _dry_run(work, config, "training")
    rules = {rule for rule, _ in jobs}
    # The pool's split, normalisation, tables and models take the new centre in.
    assert {"split", "zscore_params", "merge_pool_features", "icc", "select_features"} <= rules
    assert {"tune_model_part", "nested_cv_fold", "fit_final", "choose_model"} <= rules
    # QC and preprocessing run for the new centres' batches only; every batch's features
    # are extracted again (the z-score statistics now pool the new training centre too).
    batches = {"centre=NT, batch=000", "centre=NT, batch=001", "centre=NT, batch=002"}
    for rule in ("qc_batch", "preprocess_batch"):
        assert {wc for r, wc in jobs if r == rule} == batches | {"centre=NX, batch=000"}
    extracted = {wc for r, wc in jobs if r == "extract_batch"}
    assert {"centre=QZ, batch=000", "centre=ND, batch=000"} <= extracted
