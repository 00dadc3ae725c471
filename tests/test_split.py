"""The split: stratified, seeded, external centres untouched, independent of row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs.split import make_split, split_from_table


def _patients(n_train=173, n_ext=55, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"QZ{i:03d}" for i in range(n_train)] + [f"ND{i:03d}" for i in range(n_ext)]
    labels = np.r_[np.arange(n_train) < 93, np.arange(n_ext) < 37].astype(int)
    centers = ["QZ"] * n_train + ["ND"] * n_ext
    df = pd.DataFrame({"patient_id": ids, "center": centers, "label": labels})
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


def test_paper_sized_split_is_stratified_and_leaves_external_alone():
    split = make_split(_patients(), ["QZ"], ["ND"], test_size=0.3, seed=1)
    counts = split["cohort"].value_counts()
    assert counts["train"] == 121 and counts["test"] == 52 and counts["ND"] == 55
    rate = split.groupby("cohort")["label"].mean()
    assert abs(rate["train"] - rate["test"]) < 0.02
    assert (split.loc[split["center"] == "ND", "cohort"] == "ND").all()
    assert list(split["patient_id"]) == sorted(split["patient_id"])


def test_split_depends_on_seed_not_row_order():
    a = make_split(_patients(seed=0), ["QZ"], ["ND"], 0.3, seed=7)
    b = make_split(_patients(seed=5), ["QZ"], ["ND"], 0.3, seed=7)
    c = make_split(_patients(seed=0), ["QZ"], ["ND"], 0.3, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["cohort"].equals(c["cohort"])


def test_adding_an_external_centre_keeps_the_split():
    base = _patients(n_ext=0)
    more = pd.concat([base, _patients(n_train=0, n_ext=20)], ignore_index=True)
    a = make_split(base, ["QZ"], ["ND"], 0.3, seed=3)
    b = make_split(more, ["QZ"], ["ND"], 0.3, seed=3)
    pd.testing.assert_frame_equal(a, b[b["center"] == "QZ"].reset_index(drop=True))


def test_one_class_pool_is_refused():
    df = _patients()
    df["label"] = 1
    with pytest.raises(InputError, match="one class"):
        make_split(df, ["QZ"], ["ND"], 0.3, seed=0)


def test_table_split_uses_cohort_column_or_splits():
    df = _patients(n_train=40, n_ext=10).rename(columns={"label": "y"})
    df["y"] = np.arange(len(df)) % 2
    df["f1"] = 1.0
    out = split_from_table(df, "patient_id", "y", "center", None, ["QZ"], ["ND"], 0.25, 0)
    assert set(out["cohort"]) == {"train", "test", "ND"}
    df["cohort"] = np.where(df["center"] == "ND", "ND", "train")
    out = split_from_table(df, "patient_id", "y", "center", "cohort", ["QZ"], ["ND"], 0.25, 0)
    assert set(out["cohort"]) == {"train", "ND"}
    with pytest.raises(InputError, match="no outcome column"):
        split_from_table(df, "patient_id", "response", "center", None, ["QZ"], ["ND"], 0.3, 0)
    with pytest.raises(InputError, match="no ID column"):
        split_from_table(df, "pid", "y", "center", None, ["QZ"], ["ND"], 0.3, 0)


def _qc_file(path, patients, excluded=()):
    rows = pd.DataFrame({"patient_id": patients, "sequence": "T2", "status": "pass"})
    rows["patient_status"] = ["excluded" if p in excluded else "included" for p in patients]
    rows.to_csv(path, sep="\t", index=False)
    return str(path)


def test_split_rules_read_only_their_own_centres(tmp_path):
    """The pool's split from the training centres' QC tables and clinical rows equals the
    pool's rows of make_split on every patient; an external centre's cohort table holds
    that centre only; split_table gathers both into the whole-cohort split.tsv. Other
    centres' rows in the clinical table are not read (an external row with a bad outcome
    does not stop the pool's split)."""
    from npc_radiomics.inputs.split import gather_split, split_rule

    patients = _patients(n_train=173, n_ext=12).sort_values("patient_id")
    clinical = patients.rename(columns={"label": "response"})[["patient_id", "response"]]
    clinical = clinical.astype({"response": str})
    clinical_path = tmp_path / "clinical.tsv"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    pool, ext = patients[patients["center"] == "QZ"], patients[patients["center"] == "ND"]
    common = dict(outcome="response", train_centers=["QZ"], external_centers=[], test_size=0.3)
    common.update(seed=4, stratify=True, clinical=str(clinical_path))
    split = split_rule(
        **common,
        qc=[_qc_file(tmp_path / "QZ.tsv", list(pool["patient_id"]), excluded={"QZ003"})],
        samples=dict(zip(pool["patient_id"], pool["center"], strict=True)),
        cohorts=["train", "test"],
    )
    expected = make_split(patients[patients["patient_id"] != "QZ003"], ["QZ"], ["ND"], 0.3, 4)
    pd.testing.assert_frame_equal(
        split, expected[expected["center"] == "QZ"].reset_index(drop=True), check_dtype=False
    )
    cohort = split_rule(
        **common,
        qc=[_qc_file(tmp_path / "ND.tsv", list(ext["patient_id"]))],
        samples=dict(zip(ext["patient_id"], ext["center"], strict=True)),
        cohorts=["ND"],
    )
    assert set(cohort["cohort"]) == {"ND"} and len(cohort) == len(ext)
    split.to_csv(tmp_path / "pool.tsv", sep="\t", index=False)
    cohort.to_csv(tmp_path / "ext.tsv", sep="\t", index=False)
    table = gather_split([tmp_path / "pool.tsv", tmp_path / "ext.tsv"])
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    # An external patient's bad outcome stops its own cohort, not the pool's split.
    clinical.loc[clinical["patient_id"] == ext["patient_id"].iloc[0], "response"] = "2"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    again = split_rule(
        **common,
        qc=[tmp_path / "QZ.tsv"],
        samples=dict(zip(pool["patient_id"], pool["center"], strict=True)),
        cohorts=["train", "test"],
    )
    pd.testing.assert_frame_equal(again, split)
    with pytest.raises(InputError):
        split_rule(
            **common,
            qc=[tmp_path / "ND.tsv"],
            samples=dict(zip(ext["patient_id"], ext["center"], strict=True)),
            cohorts=["ND"],
        )


def test_rows_digest_changes_only_with_its_patients_rows():
    from npc_radiomics.inputs.sheets import parse_sheet, rows_digest

    table = parse_sheet("patient_id\tresponse\tage\nA1\t1\t50\nA2\t0\t61\nB1\t1\t70\n", "t")
    pool = rows_digest(table, ["A1", "A2"])
    assert pool == rows_digest(table, ["A2", "A1"])  # order of the ids does not matter
    more = parse_sheet(
        "patient_id\tresponse\tage\nA1\t1\t50\nA2\t0\t61\nB1\t0\t71\nC1\t1\t1\n", "t"
    )
    assert rows_digest(more, ["A1", "A2"]) == pool  # other centres' rows changed or added
    edited = parse_sheet("patient_id\tresponse\tage\nA1\t1\t50\nA2\t0\t62\n", "t")
    assert rows_digest(edited, ["A1", "A2"]) != pool
    assert rows_digest(table, ["A1", "A2", "A3"]) != pool  # a patient without a row counts
