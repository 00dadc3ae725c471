"""Subgroup performance of the chosen model (issue 27, bullet 7)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from npc_radiomics.base.errors import InputError
from npc_radiomics.evaluation import subgroups


def _cohort(seed=0):
    """The chosen model (svm) and another on train / test / ND; patients with age,
    gender (text-free 0/1 code, one missing) and centre."""
    rng = np.random.default_rng(seed)
    rows, patients = [], []
    for cohort, n, centre in (("train", 80, "QZ"), ("test", 40, "QZ"), ("ND", 30, "ND")):
        y = rng.integers(0, 2, n)
        age = rng.normal(50 if cohort == "train" else 60, 8, n).round()
        p = 1 / (1 + np.exp(-(1.5 * (y - 0.5) + rng.normal(0, 1, n))))
        ids = [f"{cohort}{i:03d}" for i in range(n)]
        for model in ("svm", "knn"):
            rows.append(
                pd.DataFrame(
                    {
                        "patient_id": ids,
                        "cohort": cohort,
                        "model": model,
                        "probability": p if model == "svm" else 1 - p,
                        "label": y,
                    }
                )
            )
        gender = rng.integers(0, 2, n).astype(float)
        patients.append(
            pd.DataFrame({"patient_id": ids, "center": centre, "age": age, "gender": gender})
        )
    patients = pd.concat(patients, ignore_index=True)
    patients.loc[3, "gender"] = np.nan
    return pd.concat(rows, ignore_index=True), patients


def test_levels_aucs_and_the_training_median_cut():
    predictions, patients = _cohort()
    table = subgroups.subgroup_table(predictions, "svm", patients, ["gender", "age"], ["age"])
    assert set(table["model"]) == {"svm"}
    assert table["cohort"].drop_duplicates().tolist() == ["train", "test", "ND"]
    median = float(np.median(patients.loc[patients["patient_id"].str.startswith("train"), "age"]))
    age = table[table["variable"] == "age"]
    assert set(age["cut"]) == {f"training median {median:g}"}
    assert age["level"].drop_duplicates().tolist() == [f"< {median:g}", f">= {median:g}"]
    # the same cut on the test cohort (whose own median is about 10 years higher)
    test = predictions[(predictions["model"] == "svm") & (predictions["cohort"] == "test")]
    merged = test.merge(patients, on="patient_id")
    old = merged[merged["age"] >= median]
    row = age[(age["cohort"] == "test") & (age["level"] == f">= {median:g}")].iloc[0]
    assert row["n"] == len(old) and row["n_positive"] == int(old["label"].sum())
    assert row["auc"] == pytest.approx(roc_auc_score(old["label"], old["probability"]))
    assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"]
    gender = table[(table["variable"] == "gender") & (table["cohort"] == "train")]
    assert gender["level"].tolist() == ["0", "1", "missing"]
    assert gender["n"].sum() == 80
    centre = table[table["variable"] == "center"]
    assert centre[["cohort", "level"]].values.tolist() == [
        ["train", "QZ"],
        ["test", "QZ"],
        ["ND", "ND"],
    ]
    assert table.loc[table["cohort"] == "train", "in_sample"].all()
    assert not table.loc[table["cohort"] != "train", "in_sample"].any()


def test_a_one_class_level_is_nan_with_a_reason():
    predictions, patients = _cohort(1)
    table = subgroups.subgroup_table(predictions, "svm", patients, ["gender"], [])
    missing = table[(table["variable"] == "gender") & (table["level"] == "missing")].iloc[0]
    assert missing["n"] == 1 and np.isnan(missing["auc"]) and np.isnan(missing["auc_ci_low"])
    assert "one class only" in missing["note"]
    assert np.isfinite(table.loc[table["level"] == "0", "auc"]).all()


def test_rule_writes_the_table_with_and_without_a_clinical_table(tmp_path):
    predictions, patients = _cohort(2)
    predictions.to_csv(tmp_path / "predictions.tsv", sep="\t", index=False)
    patients.assign(cohort="x")[["patient_id", "center", "cohort"]].to_csv(
        tmp_path / "split.tsv", sep="\t", index=False
    )
    clinical = patients[["patient_id", "age", "gender"]].assign(
        response=predictions.drop_duplicates("patient_id")
        .set_index("patient_id")
        .loc[patients["patient_id"], "label"]
        .to_numpy()
    )
    clinical.to_csv(tmp_path / "clinical.tsv", sep="\t", index=False)
    (tmp_path / "chosen.json").write_text(json.dumps({"model": "svm"}))
    kw = dict(
        variables=["gender", "age"],
        outcome="response",
        continuous=["age"],
        categorical=["gender"],
        ci_method="delong",
        n_bootstrap=200,
        seed=1,
    )
    out = tmp_path / "subgroups.tsv"
    subgroups.subgroups_rule(
        tmp_path / "predictions.tsv",
        tmp_path / "chosen.json",
        tmp_path / "split.tsv",
        out,
        tmp_path / "clinical.tsv",
        **kw,
    )
    table = pd.read_csv(out, sep="\t", dtype={"level": str})
    assert list(table.columns) == subgroups.SUBGROUP_COLUMNS
    assert table["variable"].drop_duplicates().tolist() == ["gender", "age", "center"]
    subgroups.subgroups_rule(
        tmp_path / "predictions.tsv",
        tmp_path / "chosen.json",
        tmp_path / "split.tsv",
        out,
        None,
        **kw,
    )
    assert set(pd.read_csv(out, sep="\t")["variable"]) == {"center"}
    # the report's Table 3 section shows it
    from npc_radiomics.report.sections import subgroup_blocks

    subgroups.subgroups_rule(
        tmp_path / "predictions.tsv",
        tmp_path / "chosen.json",
        tmp_path / "split.tsv",
        out,
        tmp_path / "clinical.tsv",
        **kw,
    )
    html = "".join(subgroup_blocks({"subgroups": str(out)}, {}))
    assert "<h3>Subgroups</h3>" in html and "training median" in html
    assert "train (in-sample)" in html and "one class only" in html


def test_subgroup_variables_must_be_declared():
    from npc_radiomics.base.config import with_defaults
    from npc_radiomics.checks import check_subgroup_config

    cfg = with_defaults({}, Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    check_subgroup_config(cfg)  # the default config's subgroups are declared variables
    cfg["evaluation"]["subgroups"] = ["gender", "smoking"]
    with pytest.raises(InputError, match=r"evaluation.subgroups: \['smoking'\]"):
        check_subgroup_config(cfg)
