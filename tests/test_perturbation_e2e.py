"""End-to-end: the tiny demo config with robustness.method: perturbation (k = 3) runs; the
perturbations are of training patients only and the robust list gates selection."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import TINY_CONFIG, prepare_workdir, run_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = prepare_workdir(tmp_path_factory.mktemp("perturbation"))
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["robustness"] = {
        **config["robustness"],
        "method": "perturbation",
        "perturbation": {
            "n": 3,
            "noise": True,
            "rotation_deg": 4.0,
            "translation_mm": 1.0,
            "contour": "morphology",
            "contour_voxels": 1,
        },
    }
    configfile = work / "perturbation.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = run_workflow(work, configfile, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    return work


def test_perturbed_patients_are_exactly_the_training_patients(run):
    results = run / "results"
    split = pd.read_csv(results / "split" / "split.tsv", sep="\t", dtype={"patient_id": str})
    train = set(split.loc[split["cohort"] == "train", "patient_id"])
    held_out = set(split["patient_id"]) - train
    assert train and held_out
    batches = sorted((results / "features" / "perturbed").glob("*/*.parquet"))
    # Only the training centre's batches (QZ); the external centre ND has none.
    assert batches and {p.parent.name for p in batches} == {"QZ"}
    perturbed = pd.concat([pd.read_parquet(p) for p in batches])
    assert set(perturbed["patient_id"]) == train
    assert sorted(perturbed["perturbation"].unique()) == [0, 1, 2]
    drawn = pd.concat(pd.read_csv(p, sep="\t") for p in sorted(batches[0].parent.glob("*.tsv")))
    assert (drawn["noise_sd"] > 0).all() and drawn["rotation_deg"].abs().max() <= 4.0


def test_icc_table_and_robust_list_gate_selection(run):
    results = run / "results"
    icc = pd.read_csv(results / "features" / "icc.tsv", sep="\t")
    assert set(icc["method"]) == {"perturbation"} and set(icc["n_perturbations"]) == {3}
    split = pd.read_csv(results / "split" / "split.tsv", sep="\t")
    assert icc["n_patients"].max() == (split["cohort"] == "train").sum()
    robust = (results / "features" / "robust_features.txt").read_text().split()
    assert robust == icc.loc[icc["robust"], "feature"].tolist()
    assert 0 < len(robust) < len(icc)
    ranking = pd.read_csv(results / "selection" / "mrmr_ranking.tsv", sep="\t")
    assert set(ranking["feature"]) <= set(robust)
    html = (results / "report" / "index.html").read_text()
    assert "seeded image and contour perturbations" in html
