"""Step 22 on the tiny run (the shared tiny_run fixture: no extra workflow run)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.report.kit import SECTION_IDS
from npc_radiomics.validation import baselines as bl

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]


def _tsv(run, rel):
    return pd.read_csv(run / rel, sep="\t")


def test_baselines_are_scored_like_the_radiomics_models(tiny_run):
    metrics = _tsv(tiny_run, "results/baselines/metrics.tsv")
    assert set(metrics["model"]) == set(bl.BASELINES)
    radiomics = _tsv(tiny_run, "results/evaluation/metrics.tsv")
    first = radiomics.loc[radiomics["model"] != PROCEDURE, "model"].iloc[0]
    for model in bl.BASELINES:  # the same cohorts, nested CV first
        assert list(metrics.loc[metrics["model"] == model, "cohort"]) == list(
            radiomics.loc[radiomics["model"] == first, "cohort"]
        )
    nested = _tsv(tiny_run, "results/baselines/nested_cv.tsv")
    real = _tsv(tiny_run, "results/predictions/nested_cv.tsv")
    folds = real.drop_duplicates("patient_id").set_index("patient_id")["outer_fold"]
    for _, g in nested.groupby("model"):
        assert (g.set_index("patient_id")["outer_fold"] == folds.reindex(g["patient_id"])).all()
    tests = _tsv(tiny_run, "results/baselines/delong_tests.tsv")
    chosen = json.loads((tiny_run / "results/evaluation/chosen_model.json").read_text())["model"]
    assert set(tests["model"]) == {chosen} and set(tests["comparator"]) == set(bl.BASELINES)
    reclass = _tsv(tiny_run, "results/baselines/reclassification.tsv")
    assert set(reclass["cohort"]) >= {"train", "test"}


def test_permutation_control_and_first_screen(tiny_run):
    null = _tsv(tiny_run, "results/permutation/null.tsv")
    models = _tsv(tiny_run, "results/evaluation/metrics.tsv")["model"]
    # every permutation repeats the procedure: its statistic and every configured model
    procedure = null[null["model"] == PROCEDURE]
    assert list(procedure["permutation"]) == [0, 1]
    assert set(null["model"]) == set(models)
    summary = _tsv(tiny_run, "results/permutation/permutation.tsv").iloc[0]
    assert summary["model"] == PROCEDURE
    assert summary["n_permutations"] == 2 and 1 / 3 <= summary["p_value"] <= 1
    metrics = _tsv(tiny_run, "results/evaluation/metrics.tsv")
    head = metrics.iloc[0]
    assert head["model"] == PROCEDURE and head["auc"] == pytest.approx(summary["real_auc"])
    evidence = json.loads((tiny_run / "results/evidence/evidence.json").read_text())
    # two permutations cannot give p < 0.05: never "evidence", and the floor is stated
    assert not evidence["evidence"] and evidence["permutation_p_min"] == pytest.approx(1 / 3)
    assert evidence["status"] in ("no evidence", "inconclusive")
    html = (tiny_run / "results/report/index.html").read_text()
    assert evidence["verdict"].split(":")[0] in html


def test_stability_checklist_and_run_crate(tiny_run):
    jaccard = _tsv(tiny_run, "results/selection/stability/jaccard.tsv")
    assert set(jaccard["stage"]) == {"mrmr", "lasso"}
    assert set(jaccard["scope"]) == {"bootstrap", "bootstrap_vs_final"}
    assert (jaccard["n_fits"] == 10).all()  # tests/configs/tiny.yaml
    assert jaccard["mean_jaccard"].between(0, 1).all()
    checklist = _tsv(tiny_run, "results/report/checklist.tsv")
    filled = checklist[checklist["status"] == "filled"]
    assert set(filled["section"]) <= set(SECTION_IDS) and len(filled) > 20
    html = (tiny_run / "results/report/index.html").read_text()
    assert all(f'<section id="{s}"' in html for s in set(filled["section"]))
    crate = json.loads((tiny_run / "results/ro-crate-metadata.json").read_text())
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert graph["split/split.tsv"]["sha256"]

    def results(run):
        return run["result"] if isinstance(run["result"], list) else [run["result"]]

    # the training pool's split by rule split, the whole-cohort table by split_table
    assert {"@id": "split/pool.tsv"} in results(graph["#run-split"])
    assert {"@id": "split/split.tsv"} in results(graph["#run-split_table"])
    assert "#run-baselines" in graph and "#run-permutation_run" in graph
