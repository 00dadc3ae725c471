"""Workflow Run RO-Crate of a run (npc_radiomics.glue.runcrate, with rocrate)."""

from __future__ import annotations

import hashlib
import json

from npc_radiomics.glue import runcrate as rc

RULE_OUTPUTS = {
    "split": ["results/split/split.tsv"],
    "nested_cv_fold": [
        "results/models/{model}/nested_cv/fold{fold}.tsv",
        "results/models/{model}/nested_cv/fold{fold}.json",
    ],
    "fit_final": ["results/models/{model}/predictions.tsv"],
    "bundle": ["results/bundle"],
    "bundle_model": ["results/bundles/{model}"],
}


def _results(tmp_path):
    res = tmp_path / "results"
    for rel in (
        "split/split.tsv",
        "models/knn/nested_cv/fold0.tsv",
        "models/knn/nested_cv/fold1.json",
        "models/knn/predictions.tsv",
        "bundle/manifest.json",
        "logs/split/split.log",
    ):
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / rel).write_text(rel)
    prov = {
        "software": {"snakemake": "9.27.1", "numpy": "2.4.6"},
        "config": {"seed": 1, "models": ["knn"]},
        "inputs": {"config/samples.tsv": "ab" * 32},
    }
    (res / "report").mkdir()
    (res / "report/provenance.json").write_text(json.dumps(prov))
    return res


def test_files_are_matched_to_the_rules_that_made_them():
    files = [
        "results/models/knn/nested_cv/fold0.tsv",
        "results/models/knn/predictions.tsv",
        "results/bundle/manifest.json",
        "results/split/split.tsv",
        "results/logs/x.log",
        "results/bundles/knn/manifest.json",
    ]
    made = rc.rule_of_files(files, RULE_OUTPUTS)
    assert made == {
        "results/models/knn/nested_cv/fold0.tsv": "nested_cv_fold",
        "results/models/knn/predictions.tsv": "fit_final",
        "results/bundle/manifest.json": "bundle",
        "results/split/split.tsv": "split",
        "results/bundles/knn/manifest.json": "bundle_model",
    }


def test_crate_lists_results_with_checksums_rules_inputs_and_versions(tmp_path):
    res = _results(tmp_path)
    path = rc.write_run_crate(
        res, res / "report/provenance.json", RULE_OUTPUTS, {"split": "c0de"}, "deadbeef"
    )
    graph = {e["@id"]: e for e in json.loads(path.read_text())["@graph"]}
    root = graph["./"]
    profiles = {p["@id"] for p in root["conformsTo"]}
    assert f"{rc.WFRUN}/workflow/0.5" in profiles and f"{rc.WFRUN}/provenance/0.5" in profiles
    split = graph["split/split.tsv"]
    assert split["sha256"] == hashlib.sha256(b"split/split.tsv").hexdigest()
    run_split = graph["#run-split"]
    assert run_split["instrument"]["@id"] == "#rule-split"
    assert {"@id": "split/split.tsv"} in _list(run_split["result"])
    assert graph["#rule-split"]["version"] == "c0de"
    assert {"@id": "bundle/manifest.json"} in _list(graph["#run-bundle"]["result"])
    run = graph["#run"]
    assert graph[run["instrument"]["@id"]]["version"] == "deadbeef"
    objects = [graph[o["@id"]] for o in _list(run["object"])]
    assert any(o.get("sha256") == "ab" * 32 for o in objects)
    assert any(o.get("name") == "seed" for o in objects)
    assert graph["#software-numpy"]["version"] == "2.4.6"
    results = {r["@id"] for r in _list(run["result"])}
    assert "logs/split/split.log" in results and rc.METADATA not in results
    assert not (res / "Snakefile").exists()  # nothing copied


def _list(value):
    return value if isinstance(value, list) else [value]
