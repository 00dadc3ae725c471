"""Reporting checklist: one row per item with a status; filled rows link to sections."""

from __future__ import annotations

import re

import pandas as pd

from npc_radiomics.report import assemble, kit
from npc_radiomics.report import checklist as cl


def _inputs(tmp_path, external=True, drop=()):
    keys = {k for *_, keys in cl.ITEMS for k in keys if k != "external"}
    inputs = {}
    for key in sorted(keys - set(drop)):
        path = tmp_path / f"{key}.tsv"
        path.write_text("x\n1\n")
        inputs[key] = str(path)
    cohorts = ["nested_cv", "train", "test"] + (["B"] if external else [])
    pd.DataFrame({"model": "m", "cohort": cohorts, "auc": 0.7}).to_csv(
        tmp_path / "metrics.tsv", sep="\t", index=False
    )
    inputs["metrics"] = str(tmp_path / "metrics.tsv")
    for key in ("chosen", "evidence", "provenance", "lasso_lambda"):  # JSON inputs
        if key in inputs:
            (tmp_path / f"{key}.json").write_text('{"model": null}')
            inputs[key] = str(tmp_path / f"{key}.json")
    return inputs


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
