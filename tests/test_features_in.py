"""The features-in entry: modelling from a ready table, deterministic whatever --cores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import prepare_workdir, run_workflow, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]

COMPARED = [
    "results/split/split.tsv",
    "results/selection/selected_features.tsv",
    "results/selection/mrmr_ranking.tsv",
    "results/predictions/predictions.tsv",
    "results/predictions/nested_cv.tsv",
    "results/models/logistic_regression/best_params.json",
    "results/models/random_forest/best_params.json",
]


def make_table(path, n_pool=60, n_external=20, n_features=40, seed=3):
    """A radiomics-like table: 5 informative features among correlated noise."""
    rng = np.random.default_rng(seed)
    n = n_pool + n_external
    label = np.r_[np.arange(n_pool) % 2, np.arange(n_external) % 2]
    latent = rng.normal(size=(n, 8))
    x = latent @ rng.normal(size=(8, n_features)) + rng.normal(size=(n, n_features))
    x[:, :5] += 0.9 * label[:, None]
    table = pd.DataFrame(x, columns=[f"T2__feature_{k:02d}" for k in range(n_features)])
    table.insert(0, "response", label)
    table.insert(0, "site", ["A"] * n_pool + ["B"] * n_external)
    table.insert(0, "case", [f"P{k:03d}" for k in range(n)])
    table.to_csv(path, index=False)
    return path


def _config(tmp, table):
    return write_config(
        tmp / "features_in.yaml",
        {
            "features_table": str(table),
            "features_table_columns": {"id": "case", "center": "site", "cohort": None},
            "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
            "models": ["logistic_regression", "random_forest"],
            "selection": {"mrmr_k": 15, "lasso": {"cv_folds": 3, "n_lambdas": 12, "rule": "min"}},
            "tuning": {
                "n_trials": 4,
                "inner_folds": 3,
                "outer_folds": 2,
                "n_jobs_per_model": 1,
                "batch_size": 2,
                "timeout_s": None,
            },
        },
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    table = make_table(tmp_path_factory.mktemp("table") / "features.csv")
    runs = {}
    for cores in ("1", "2"):
        work = prepare_workdir(tmp_path_factory.mktemp(f"cores{cores}"))
        cfg = _config(work, table)
        proc = run_workflow(work, cfg, *[t for t in COMPARED], "--cores", cores)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        runs[cores] = work
    return runs


def test_same_results_with_one_or_two_cores(two_runs):
    for rel in COMPARED:
        a = (two_runs["1"] / rel).read_bytes()
        b = (two_runs["2"] / rel).read_bytes()
        assert a == b, rel


def test_external_centre_and_test_set_are_predicted_not_fitted(two_runs):
    preds = pd.read_csv(two_runs["1"] / "results/predictions/predictions.tsv", sep="\t")
    assert set(preds["cohort"]) == {"train", "test", "B"}
    assert set(preds["model"]) == {"logistic_regression", "random_forest"}
    nested = pd.read_csv(two_runs["1"] / "results/predictions/nested_cv.tsv", sep="\t")
    split = pd.read_csv(two_runs["1"] / "results/split/split.tsv", sep="\t")
    train_ids = set(split.loc[split["cohort"] == "train", "patient_id"])
    # Nested CV only ever sees training patients.
    assert set(nested["patient_id"]) == train_ids


def test_informative_features_are_selected(two_runs):
    selected = pd.read_csv(two_runs["1"] / "results/selection/selected_features.tsv", sep="\t")
    names = set(selected.iloc[:, 0])
    assert len(names & {f"T2__feature_{k:02d}" for k in range(5)}) >= 2


def test_a_model_that_fails_is_a_gap_not_a_stop(tmp_path):
    """Every trial of svm fails (a precomputed kernel on a feature matrix): the run goes
    on, the other model is evaluated and the report names the failed model."""
    table = make_table(tmp_path / "features.csv", n_pool=40, n_external=10, n_features=20)
    work = prepare_workdir(tmp_path / "work")
    cfg = _config(work, table)
    import yaml

    overrides = yaml.safe_load(cfg.read_text())
    overrides["models"] = ["logistic_regression", "svm"]
    overrides["search_spaces"] = {"svm": {"kernel": "precomputed", "C": 1.0}}
    cfg.write_text(yaml.safe_dump(overrides))
    proc = run_workflow(work, cfg, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    best = (work / "results/models/svm/best_params.json").read_text()
    assert '"failed": true' in best and "every tuning trial failed" in best
    preds = pd.read_csv(work / "results/predictions/predictions.tsv", sep="\t")
    assert set(preds["model"]) == {"logistic_regression"}
    metrics = pd.read_csv(work / "results/evaluation/metrics.tsv", sep="\t")
    assert "logistic_regression" in set(metrics["model"])
    html = (work / "results/report/index.html").read_text()
    assert "Model svm</b>: no predictions: the model failed to fit" in html
