"""Reporting checklist: one row per item with a status; filled rows link to sections."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.report import assemble, kit
from npc_radiomics.report import checklist as cl


def _inputs(tmp_path, external=True, drop=()):
    """A complete run's inputs: every file present, the checked ones with their content."""
    keys = {k for *_, keys in cl.ITEMS for k in keys if k != "external"}
    inputs = {}
    for key in sorted(keys - set(drop)):
        path = tmp_path / f"{key}.tsv"
        path.write_text("x\n1\n")
        inputs[key] = str(path)
    cohorts = ["nested_cv", "nested_cv", "train", "test"] + (["B"] if external else [])
    models = [PROCEDURE] + ["m"] * (len(cohorts) - 1)
    metrics = pd.DataFrame(
        {"model": models, "cohort": cohorts, "auc": 0.7, "auc_ci_low": 0.6, "auc_ci_high": 0.8}
    )
    metrics["threshold"] = 0.4
    metrics.loc[1, ["auc_ci_low", "auc_ci_high"]] = np.nan  # the chosen model's row: an SD
    metrics.to_csv(tmp_path / "metrics.tsv", sep="\t", index=False)
    inputs["metrics"] = str(tmp_path / "metrics.tsv")
    json_content = {
        "chosen": {"model": "m"},
        "evidence": {"events_per_candidate": 0.05, "riley": {"candidates": {"n_required": 900}}},
        "provenance": {},
        "lasso_lambda": {},
    }
    for key, content in json_content.items():  # JSON inputs
        if key in inputs:
            (tmp_path / f"{key}.json").write_text(json.dumps(content))
            inputs[key] = str(tmp_path / f"{key}.json")
    tables = {
        "permutation": pd.DataFrame({"model": [PROCEDURE], "p_value": [0.01]}),
        "stability_jaccard": pd.DataFrame(
            {"stage": "lasso", "scope": ["bootstrap"], "n_fits": [100], "mean_jaccard": [0.4]}
        ),
        "baselines_metrics": metrics.iloc[2:4].assign(model="baseline_volume"),
    }
    for key, table in tables.items():
        if key in inputs:
            table.to_csv(inputs[key], sep="\t", index=False)
    return inputs


def _status(inputs, guideline, item):
    table = cl.checklist_table(inputs, kit.SECTION_IDS).set_index(["guideline", "item"])
    return table.loc[(guideline, item), "status"], table.loc[(guideline, item), "note"]


def _rewrite(inputs, key, change):
    table = pd.read_csv(inputs[key], sep="\t")
    change(table).to_csv(inputs[key], sep="\t", index=False)


def _json_rewrite(inputs, key, content):
    Path(inputs[key]).write_text(json.dumps(content))


def _no_procedure_ci(t):
    t.loc[t["model"] == PROCEDURE, ["auc_ci_low", "auc_ci_high"]] = np.nan
    return t


def _no_test_ci(t):
    t.loc[t["cohort"] == "test", ["auc_ci_low", "auc_ci_high"]] = np.nan
    return t


def _no_external_ci(t):
    t.loc[t["cohort"] == "B", ["auc_ci_low", "auc_ci_high"]] = np.nan
    return t


# item -> (how to take its content away, the note's words); each must flip "filled"
CONTENT_CASES = {
    ("TRIPOD+AI", "26a", "procedure"): (
        lambda i: _rewrite(i, "metrics", _no_procedure_ci),
        "an SD over folds is not a CI",
    ),
    ("TRIPOD+AI", "26a", "test"): (lambda i: _rewrite(i, "metrics", _no_test_ci), "test-set"),
    ("TRIPOD+AI", "26b", ""): (lambda i: _rewrite(i, "metrics", _no_external_ci), "external"),
    ("METRICS", "testing", ""): (lambda i: _rewrite(i, "metrics", _no_external_ci), "external"),
    ("TRIPOD+AI", "15", ""): (
        lambda i: _rewrite(i, "metrics", lambda t: t.assign(threshold=np.nan)),
        "threshold",
    ),
    ("TRIPOD+AI", "10", ""): (
        lambda i: _json_rewrite(i, "evidence", {"events_per_candidate": 0.05, "riley": {}}),
        "Riley",
    ),
    ("TRIPOD+AI", "12c", ""): (
        lambda i: _json_rewrite(i, "chosen", {"model": None}),
        "no model was chosen",
    ),
    ("TRIPOD+AI", "26e", ""): (
        lambda i: _rewrite(i, "baselines_metrics", lambda t: t.assign(auc_ci_low=np.nan)),
        "baseline",
    ),
    ("CLEAR", "baselines", ""): (
        lambda i: _rewrite(i, "baselines_metrics", lambda t: t.iloc[:0]),
        "baseline",
    ),
    ("CLEAR", "negative-control", ""): (
        lambda i: _rewrite(i, "permutation", lambda t: t.assign(model="m")),
        "procedure's statistic",
    ),
    ("CLEAR", "selection-stability", ""): (
        lambda i: _rewrite(i, "stability_jaccard", lambda t: t.assign(n_fits=5)),
        "only 5 bootstrap refits",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTENT_CASES), ids=lambda c: "-".join(c).strip("-"))
def test_an_item_is_filled_only_when_its_content_is_present(tmp_path, case):
    guideline, item, _ = case
    inputs = _inputs(tmp_path)
    assert _status(inputs, guideline, item) == ("filled", "")
    take_away, words = CONTENT_CASES[case]
    take_away(inputs)
    status, note = _status(inputs, guideline, item)
    assert status == "not produced" and words in note, (status, note)


def test_every_content_check_is_tested():
    assert {(g, i) for g, i, _ in CONTENT_CASES} == set(cl.CONTENT_CHECKS)


def test_one_row_per_item_with_a_status(tmp_path):
    table = cl.checklist_table(_inputs(tmp_path), kit.SECTION_IDS)
    assert len(table) == len(cl.ITEMS)
    assert not table.duplicated(["guideline", "item"]).any()
    assert set(table["status"]) == {"filled", "user"}
    assert {"TRIPOD+AI", "CLEAR", "METRICS"} == set(table["guideline"])
    ethics = table[(table["guideline"] == "TRIPOD+AI") & (table["item"] == "17")].iloc[0]
    assert ethics["status"] == "user" and ethics["link"] == ""


def test_missing_files_and_no_external_centre_are_not_produced(tmp_path):
    table = cl.checklist_table(
        _inputs(tmp_path, external=False, drop=("icc",)), kit.SECTION_IDS
    ).set_index(["guideline", "item"])
    assert table.loc[("TRIPOD+AI", "26b"), "status"] == "not produced"
    assert "no external centre" in table.loc[("TRIPOD+AI", "26b"), "note"]
    assert table.loc[("CLEAR", "reader-robustness"), "status"] == "not produced"
    assert table.loc[("TRIPOD+AI", "26a"), "status"] == "filled"


def test_every_filled_row_links_to_a_section_of_the_report(tmp_path):
    inputs = _inputs(tmp_path)
    table = cl.checklist_table(inputs, kit.SECTION_IDS)
    (tmp_path / "checklist.tsv").write_text(table.to_csv(sep="\t", index=False))
    inputs["checklist"] = str(tmp_path / "checklist.tsv")
    path = assemble.write_standalone_report(tmp_path / "index.html", inputs, {})
    document = path.read_text()
    ids = set(re.findall(r'<section id="([^"]+)"', document))
    filled = table[table["status"] == "filled"]
    assert len(filled) > 20
    for row in filled.itertuples():
        assert row.section in ids, row
        assert row.link == f"index.html#{row.section}"
    assert "Reporting checklist" in document and "TRIPOD+AI" in document
