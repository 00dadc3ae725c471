"""End-to-end: the workflow on the tiny demo cohort, and the default config's DAG."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import ROOT, prepare_workdir, preprocessed_file, run_workflow

from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.inputs import demo
from npc_radiomics.modelling.zoo import MODEL_NAMES

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]


def _job_counts(stdout: str) -> dict[str, int]:
    counts, in_stats = {}, False
    for line in stdout.splitlines():
        if line.startswith("Job stats"):
            in_stats = True
            continue
        if in_stats:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m:
                counts[m.group(1)] = int(m.group(2))
            elif line.strip() == "" and counts:
                break
    return counts


def test_default_config_dry_run_fans_out_per_batch_of_patients(tmp_path):
    work = prepare_workdir(tmp_path)
    proc = run_workflow(work, None, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    sheet = demo.demo_sample_sheet(settings, "small", "results/demo")
    counts = _job_counts(proc.stdout)
    assert counts["demo_cohort"] == 1
    # imaging.patients_per_job (10) patients of one centre per job: 40 QZ + 14 ND patients.
    per_centre = sheet.groupby("center")["patient_id"].nunique()
    assert per_centre.to_dict() == {"QZ": 40, "ND": 14}
    for rule in ("qc_batch", "preprocess_batch", "extract_batch"):
        assert counts[rule] == 4 + 2, (rule, counts)
    assert not {"qc_case", "preprocess_case", "extract_features"} & set(counts)


def test_qc_table_lists_every_case(tiny_run):
    qc = pd.read_csv(tiny_run / "results/qc/qc.tsv", sep="\t")
    sheet = pd.read_csv(tiny_run / "results/demo/samples.tsv", sep="\t")
    assert len(qc) == len(sheet)
    assert (qc["status"] == "pass").all()
    assert (qc["patient_status"] == "included").all()


def test_split_keeps_external_centre_apart(tiny_run):
    split = pd.read_csv(tiny_run / "results/split/split.tsv", sep="\t")
    assert set(split["cohort"]) == {"train", "test", "ND"}
    assert (split.loc[split["center"] == "ND", "cohort"] == "ND").all()
    train = split[split["cohort"] == "train"]
    assert train["label"].nunique() == 2


def test_feature_table_is_wide_per_patient(tiny_run):
    features = pd.read_parquet(tiny_run / "results/features/features.parquet")
    split = pd.read_csv(tiny_run / "results/split/split.tsv", sep="\t")
    assert sorted(features["patient_id"]) == sorted(split["patient_id"])
    columns = [c for c in features.columns if c != "patient_id"]
    prefixes = {c.split("__", 1)[0] for c in columns}
    assert prefixes == {"T1", "T2", "CET1"}
    assert not any("diagnostics" in c for c in columns)


def test_zscore_file_pools_the_training_tumours(tiny_run):
    # The gather pools per-case moments; the result must equal numpy on the pooled voxels
    # of the training patients' preprocessed images (and must not see any other patient).
    split = pd.read_csv(tiny_run / "results/split/split.tsv", sep="\t")
    zscore = pd.read_csv(tiny_run / "results/normalization/zscore.tsv", sep="\t")
    train = sorted(split.loc[split["cohort"] == "train", "patient_id"])
    for row in zscore.itertuples():
        voxels = []
        for patient in train:
            image, mask = (
                sitk.GetArrayFromImage(
                    sitk.ReadImage(preprocessed_file(tiny_run, patient, f"{row.sequence}_{x}"))
                )
                for x in ("image.nii.gz", "mask.nii.gz")
            )
            voxels.append(image[mask > 0].astype(np.float64))
        pooled = np.concatenate(voxels)
        assert row.reference == "train"
        assert row.n_patients == len(train)
        assert row.n_voxels == pooled.size
        assert row.mean == pytest.approx(pooled.mean(), rel=1e-12)
        assert row.sd == pytest.approx(pooled.std(), rel=1e-12)


def test_every_job_left_a_benchmark_and_a_log(tiny_run):
    # One benchmark file and one log per job that ran (every job but the target rule all).
    finished = re.findall(
        r"Finished jobid: \d+ \(Rule: (\w+)\)", (tiny_run / "snakemake.stderr").read_text()
    )
    jobs = [rule for rule in finished if rule != "all"]
    # The imaging stages ran per batch of 10 patients of one centre: 24 QZ + 8 ND patients.
    for rule in ("qc_batch", "preprocess_batch", "extract_batch"):
        assert jobs.count(rule) == 3 + 1, rule
    benchmarks = list((tiny_run / "results/benchmarks").rglob("*.tsv"))
    logs = list((tiny_run / "results/logs").rglob("*.log"))
    assert len(benchmarks) == len(logs) == len(jobs)
    per_rule = {rule: jobs.count(rule) for rule in set(jobs)}
    for rule, n in per_rule.items():
        assert len(list((tiny_run / "results/benchmarks" / rule).rglob("*.tsv"))) == n, rule


def test_metrics_cover_every_model_and_cohort(tiny_run):
    metrics = pd.read_csv(tiny_run / "results/evaluation/metrics.tsv", sep="\t")
    # every model, and the procedure's headline row (model chosen inside each outer fold)
    assert set(metrics["model"]) == set(MODEL_NAMES) | {PROCEDURE}
    assert metrics.iloc[0]["model"] == PROCEDURE and metrics.iloc[0]["cohort"] == "nested_cv"
    assert {"train", "test", "ND", "nested_cv"} <= set(metrics["cohort"])
    # one original row per model x cohort; the external centre's updated models after it
    original = metrics[metrics["row_type"] == "original"]
    assert not original.duplicated(["model", "cohort"]).any()
    assert set(metrics.loc[metrics["row_type"] != "original", "cohort"]) == {"ND"}
    final = original[original["cohort"].isin(["train", "test", "ND"])]
    assert final["auc"].between(0, 1).all()
    # a logit-scale CI strictly inside (0, 1) around the AUC; an AUC of exactly 1 (in-sample
    # separation) has the score interval [low, 1] and a note saying so, never 1.00-1.00
    one = final["auc"] == 1.0
    assert final.loc[one, "note"].str.contains("perfect separation").all()
    assert ((final.loc[one, "auc_ci_low"] < 1) & (final.loc[one, "auc_ci_high"] == 1)).all()
    # no CI only with a note why: constant predictions (a model that learnt nothing on the
    # tiny run's 16 patients: AUC 0.5 by ties) or fewer than 2 patients in a class
    none = final["auc_ci_low"].isna()
    assert final.loc[none, "note"].fillna("").str.contains("no AUC CI").all()
    final = final[~one & ~none]
    assert ((final["auc_ci_low"] < final["auc"]) & (final["auc"] < final["auc_ci_high"])).all()
    assert ((final["auc_ci_low"] > 0) & (final["auc_ci_high"] < 1)).all()


def test_both_reports_are_made(tiny_run):
    html = (tiny_run / "results/report/index.html").read_text()
    assert "Table 3" in html and "data:image/png;base64," in html
    proc = run_workflow(tiny_run, tiny_run / "tiny_run.yaml", "--report", str(tiny_run / "r.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tiny_run / "r.html").stat().st_size > 100_000


def test_aucs_match_an_independent_recomputation(tiny_run):
    """metrics.tsv against sklearn on predictions.tsv and nested_cv.tsv; shuffled labels
    give other AUCs, so the check cannot pass by construction."""
    from sklearn.metrics import roc_auc_score

    metrics = pd.read_csv(tiny_run / "results/evaluation/metrics.tsv", sep="\t")
    predictions = pd.read_csv(tiny_run / "results/predictions/predictions.tsv", sep="\t")
    nested = pd.read_csv(tiny_run / "results/predictions/nested_cv.tsv", sep="\t")
    original = metrics[metrics["row_type"] == "original"]
    final = original[original["cohort"] != "nested_cv"].set_index(["model", "cohort"])
    rng = np.random.default_rng(0)
    differs = 0
    for (model, cohort), g in predictions.groupby(["model", "cohort"]):
        expected = roc_auc_score(g["label"], g["probability"])
        assert final.loc[(model, cohort), "auc"] == pytest.approx(expected, abs=1e-12)
        shuffled = roc_auc_score(rng.permutation(g["label"].to_numpy()), g["probability"])
        differs += abs(shuffled - expected) > 1e-9
    assert differs > len(final) // 2
    rows = metrics[metrics["cohort"] == "nested_cv"].set_index("model")
    for model, g in nested.groupby("model"):
        folds = [roc_auc_score(f["label"], f["probability"]) for _, f in g.groupby("outer_fold")]
        assert rows.loc[model, "auc"] == pytest.approx(np.mean(folds), abs=1e-12)


def test_thresholds_come_from_the_final_configuration(tiny_run):
    thresholds = pd.read_csv(tiny_run / "results/evaluation/thresholds.tsv", sep="\t")
    assert list(thresholds.columns[:3]) == ["model", "threshold", "source"]
    assert thresholds["source"].str.contains("final configuration").all()
    metrics = pd.read_csv(tiny_run / "results/evaluation/metrics.tsv", sep="\t")
    final = metrics[(metrics["cohort"] != "nested_cv") & (metrics["row_type"] == "original")]
    by_model = thresholds.set_index("model")["threshold"]
    assert np.allclose(final["threshold"], final["model"].map(by_model))
    for column in ("calibration_slope", "ici", "sensitivity_ci_low", "brier_ci_high"):
        assert column in metrics
    icc = pd.read_csv(tiny_run / "results/features/icc.tsv", sep="\t")
    split = pd.read_csv(tiny_run / "results/split/split.tsv", sep="\t")
    sheet = pd.read_csv(tiny_run / "results/demo/samples.tsv", sep="\t").fillna("")
    readers2 = set(sheet.loc[sheet["mask_reader2"] != "", "patient_id"])
    n_train = int(split[split["patient_id"].isin(readers2)]["cohort"].eq("train").sum())
    assert set(icc["reference"]) == {"train"} and icc["n_patients"].max() == n_train
