"""The split: stratified, seeded, external centres untouched, independent of row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.errors import InputError
from npc_radiomics.split import make_split, split_from_table


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
    """The pool's split from the training centres' QC tables and labels (params) equals
    make_split on every patient; an external centre's cohort table holds that centre only;
    split_table gathers both into the old whole-cohort split.tsv."""
    from npc_radiomics.split import gather_split, split_rule

    patients = _patients(n_train=173, n_ext=12).sort_values("patient_id")
    pool, ext = patients[patients["center"] == "QZ"], patients[patients["center"] == "ND"]
    common = dict(outcome="response", train_centers=["QZ"], test_size=0.3, seed=4, stratify=True)
    labels = lambda df: {p: [c, int(y)] for p, c, y in df.itertuples(index=False)}  # noqa: E731
    split = split_rule(
        **common,
        external_centers=[],
        qc=[_qc_file(tmp_path / "QZ.tsv", list(pool["patient_id"]), excluded={"QZ003"})],
        labels=labels(pool),
        cohorts=["train", "test"],
    )
    expected = make_split(patients[patients["patient_id"] != "QZ003"], ["QZ"], ["ND"], 0.3, 4)
    pd.testing.assert_frame_equal(
        split, expected[expected["center"] == "QZ"].reset_index(drop=True), check_dtype=False
    )
    cohort = split_rule(
        **common,
        external_centers=["ND"],
        qc=[_qc_file(tmp_path / "ND.tsv", list(ext["patient_id"]))],
        labels=labels(ext),
        cohorts=["ND"],
    )
    assert set(cohort["cohort"]) == {"ND"} and len(cohort) == len(ext)
    split.to_csv(tmp_path / "pool.tsv", sep="\t", index=False)
    cohort.to_csv(tmp_path / "ext.tsv", sep="\t", index=False)
    table = gather_split([tmp_path / "pool.tsv", tmp_path / "ext.tsv"])
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    with pytest.raises(InputError, match="QZ000 has no outcome"):
        split_rule(
            **common,
            external_centers=[],
            qc=[tmp_path / "QZ.tsv"],
            labels={k: v for k, v in labels(pool).items() if k != "QZ000"},
        )


def test_gathered_predictions_pool_the_external_centres(tmp_path):
    """Per-centre prediction tables + the pool's: one table, the pooled ``external``
    cohort repeating every external row, sorted as the layout says."""
    from npc_radiomics.evaluation import gather_predictions

    def table(name, cohort, ids):
        df = pd.DataFrame(
            {"patient_id": ids, "cohort": cohort, "model": "knn", "probability": 0.5, "label": 1}
        )
        df.to_csv(tmp_path / name, sep="\t", index=False)
        return tmp_path / name

    nested = tmp_path / "nested.tsv"
    pd.DataFrame(
        {
            "patient_id": ["a"],
            "model": ["knn"],
            "outer_fold": [0],
            "probability": [0.5],
            "label": [1],
        }
    ).to_csv(nested, sep="\t", index=False)
    pool = table("pool.tsv", ["test", "train"], ["t1", "t0"])
    c, d = table("C.tsv", "C", ["c1", "c0"]), table("D.tsv", "D", ["d0"])
    final, _ = gather_predictions([pool], [nested], [d, c])
    assert final["cohort"].tolist() == [
        "train",
        "test",
        "C",
        "C",
        "D",
        "external",
        "external",
        "external",
    ]
    assert final["patient_id"].tolist() == ["t0", "t1", "c0", "c1", "d0", "c0", "c1", "d0"]
    one, _ = gather_predictions([pool], [nested], [c])
    assert "external" not in set(one["cohort"])
