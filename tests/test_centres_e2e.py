"""One small multi-centre run from a ready feature table (no images: seconds per job):
two training centres with a planted scanner shift, two external centres; ComBat and
leave-one-centre-out on. Checks ComBat inside the rules, the pooled external cohort, the
LOCO table, the centre diagnostics, the bundle and the report section."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import prepare_workdir, run_workflow, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]

CENTRES = {"A": 36, "B": 36, "C": 16, "D": 16}  # A, B training; C, D external


def make_table(path, n_features=16, seed=5):
    rng = np.random.default_rng(seed)
    parts = []
    for k, (centre, n) in enumerate(CENTRES.items()):
        label = np.arange(n) % 2
        x = rng.normal(size=(n, n_features))
        x[:, :4] += 1.0 * label[:, None]
        x = x * (1.0 + 0.5 * k) + 3.0 * k  # the scanner of each centre
        t = pd.DataFrame(x, columns=[f"T2__feature_{j:02d}" for j in range(n_features)])
        t.insert(0, "response", label)
        t.insert(0, "site", centre)
        t.insert(0, "case", [f"{centre}{i:03d}" for i in range(n)])
        parts.append(t)
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = prepare_workdir(tmp_path_factory.mktemp("centres"))
    table = make_table(work / "features.csv")
    cfg = write_config(
        work / "centres.yaml",
        {
            "features_table": str(table),
            "features_table_columns": {"id": "case", "center": "site", "cohort": None},
            "cohorts": {"train_centers": ["A", "B"], "external_centers": ["C", "D"]},
            "harmonization": {"combat": True, "unseen_centre": "training_prior"},
            "validation": {"leave_one_centre_out": True},
            "models": ["logistic_regression"],
            "selection": {"mrmr_k": 8, "lasso": {"cv_folds": 2, "n_lambdas": 8, "rule": "min"}},
            "tuning": {
                "n_trials": 2,
                "inner_folds": 2,
                "outer_folds": 2,
                "n_jobs_per_model": 1,
                "batch_size": 2,
                "timeout_s": None,
            },
            "evaluation": {"n_bootstrap": 100},
        },
    )
    proc = run_workflow(work, cfg, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work


def _tsv(run, rel):
    return pd.read_csv(run / rel, sep="\t", dtype={"patient_id": str})


def test_pooled_external_cohort_everywhere(run):
    preds = _tsv(run, "results/predictions/predictions.tsv")
    assert preds["cohort"].drop_duplicates().tolist() == ["train", "test", "C", "D", "external"]
    pooled = preds[preds["cohort"] == "external"]
    assert len(pooled) == CENTRES["C"] + CENTRES["D"]
    metrics = _tsv(run, "results/evaluation/metrics.tsv")
    assert "external" in set(metrics["cohort"])
    curves = _tsv(run, "results/evaluation/net_benefit_ci.tsv")
    assert "external" in set(curves["cohort"])


def test_combat_is_in_the_fitted_pipeline_and_the_bundle(run):
    manifest = json.loads((run / "results/bundle/manifest.json").read_text())
    assert "__center__" in manifest["features"]
    log = (run / "results/logs/fit_final/logistic_regression.log").read_text()
    assert "Traceback" not in log


def test_loco_table_lists_every_training_centre_once(run):
    loco = _tsv(run, "results/loco/loco.tsv")
    assert loco["held_out_center"].tolist() == ["A", "B"]
    assert (loco["n"] == [CENTRES["A"], CENTRES["B"]]).all()
    assert loco["auc"].between(0, 1).all()
    for centre in ("A", "B"):
        info = json.loads((run / f"results/loco/{centre}/logistic_regression.json").read_text())
        assert info["fit_centres"] == [c for c in ("A", "B") if c != centre]
    assert (run / "results/figures/loco_forest.png").stat().st_size > 0


def test_centre_diagnostics_and_report(run):
    centres = _tsv(run, "results/centres/centres.tsv").set_index("center")
    assert centres.loc["C", "n"] == CENTRES["C"] and centres.loc["C", "events"] == 8
    assert "AUC unstable" in centres.loc["C", "note"]
    diag = _tsv(run, "results/centres/diagnostics.tsv")
    training = diag[diag["patients"] == "training"].set_index("harmonised")["auc"]
    assert training[False] > 0.8 and abs(training[True] - 0.5) < 0.2, diag
    html = (run / "results/report/index.html").read_text()
    assert '<section id="centres">' in html
    assert "Leave-one-centre-out (AUC with 95% DeLong CI)" in html
    assert "cohort &#x27;external&#x27;" in html or "cohort 'external'" in html
