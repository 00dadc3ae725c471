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
