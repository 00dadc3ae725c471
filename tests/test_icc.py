"""ICC(2,1): equal to pingouin's ICC2 / ICC(A,1) (value and 95% CI), vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest

from npc_radiomics.imaging.icc import feature_icc, icc2_1, icc_report


def pingouin_icc2(ratings: np.ndarray) -> tuple[float, float, float]:
    """pingouin's two-way random, absolute agreement, single-rater ICC with unrounded CI."""
    n, k = ratings.shape
    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "rating": ratings.ravel(),
        }
    )
    table = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    # pingouin >= 0.6 names it ICC(A,1); older versions ICC2.
    row = table.set_index("Type").loc["ICC(A,1)" if "ICC(A,1)" in set(table["Type"]) else "ICC2"]
    return float(row["ICC"]), float(row["CI95"][0]), float(row["CI95"][1])


@pytest.fixture
def unrounded_pingouin(monkeypatch):
    monkeypatch.setitem(pingouin.options, "round.column.CI95", None)


@pytest.mark.parametrize("n_subjects,n_raters", [(30, 2), (12, 3), (5, 2)])
def test_icc2_1_equals_pingouin(unrounded_pingouin, n_subjects, n_raters):
    rng = np.random.default_rng(n_subjects * 10 + n_raters)
    n_features = 12
    truth = rng.normal(0, 1, (n_subjects, 1, n_features))
    rater_bias = rng.normal(0, 0.3, (1, n_raters, n_features))
    noise_sd = np.linspace(0.05, 2.0, n_features)  # from near-perfect to poor agreement
    ratings = truth + rater_bias + rng.normal(0, 1, (n_subjects, n_raters, n_features)) * noise_sd
    icc, low, high = icc2_1(ratings)
    for j in range(n_features):
        expected = pingouin_icc2(ratings[:, :, j])
        assert icc[j] == pytest.approx(expected[0], rel=1e-10, abs=1e-12)
        assert low[j] == pytest.approx(expected[1], rel=1e-8, abs=1e-10)
        assert high[j] == pytest.approx(expected[2], rel=1e-8, abs=1e-10)


def test_icc2_1_constant_feature_is_nan():
    ratings = np.ones((6, 2, 1))
    icc, low, high = icc2_1(ratings)
    assert np.isnan(icc[0])


def test_feature_icc_uses_complete_cases_per_feature(unrounded_pingouin):
    rng = np.random.default_rng(7)
    patients = [f"P{i:02d}" for i in range(10)]
    base = rng.normal(size=(10, 4))
    reader1 = pd.DataFrame(base, columns=["T1__a", "T1__b", "T2__a", "T2__b"])
    reader1.insert(0, "patient_id", patients)
    reader2 = reader1.iloc[:8].copy()
    reader2.iloc[:, 1:] += rng.normal(0, 0.2, (8, 4))
    reader2.loc[[0, 1], ["T2__a", "T2__b"]] = np.nan  # no reader-2 T2 mask for 2 patients
    table = feature_icc(reader1, reader2, threshold=0.85)
    assert list(table.columns) == ["feature", "icc", "ci_low", "ci_high", "robust", "n_patients"]
    assert table["n_patients"].tolist() == [8, 8, 6, 6]
    expected = pingouin_icc2(
        np.column_stack([reader1["T2__a"].iloc[2:8], reader2["T2__a"].iloc[2:8]])
    )
    row = table.set_index("feature").loc["T2__a"]
    assert (row["icc"], row["ci_low"], row["ci_high"]) == pytest.approx(expected, rel=1e-9)
    assert table["robust"].tolist() == (table["icc"] > 0.85).tolist()


def test_icc_report_writes_outputs(tmp_path):
    rng = np.random.default_rng(8)
    reader1 = pd.DataFrame(rng.normal(size=(6, 3)), columns=["T1__x", "T1__y", "T1__z"])
    reader1.insert(0, "patient_id", [f"P{i}" for i in range(6)])
    reader2 = reader1.copy()
    reader2["T1__z"] = rng.normal(size=6)  # unrelated: not robust
    paths = {
        "icc_path": tmp_path / "icc.tsv",
        "robust_path": tmp_path / "robust.txt",
        "histogram_path": tmp_path / "icc_hist.png",
    }
    table = icc_report(reader1, reader2, threshold=0.85, enabled=True, reference="all", **paths)
    assert paths["robust_path"].read_text().split() == ["T1__x", "T1__y"]
    assert pd.read_csv(paths["icc_path"], sep="\t").shape == (3, 7)
    assert paths["histogram_path"].stat().st_size > 1000
    assert table["robust"].sum() == 2
    # Filter off: every feature is kept.
    icc_report(reader1, reader2, threshold=0.85, enabled=False, reference="all", **paths)
    assert paths["robust_path"].read_text().split() == ["T1__x", "T1__y", "T1__z"]


def test_icc_report_needs_reader2_patients(tmp_path):
    reader1 = pd.DataFrame({"patient_id": ["A", "B", "C"], "T1__x": [1.0, 2.0, 3.0]})
    reader2 = reader1.iloc[:2]
    with pytest.raises(ValueError, match="robustness.enabled"):
        icc_report(
            reader1,
            reader2,
            threshold=0.85,
            enabled=True,
            reference="all",
            icc_path=tmp_path / "a",
            robust_path=tmp_path / "b",
            histogram_path=tmp_path / "c.png",
        )


def _reader_tables(seed: int = 3):
    """Reader-1 and reader-2 tables of 12 patients (6 train, 3 test, 3 external)."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:02d}" for i in range(12)]
    cohorts = ["train"] * 6 + ["test"] * 3 + ["ND"] * 3
    split = pd.DataFrame({"patient_id": ids, "center": "QZ", "cohort": cohorts, "label": 0})
    reader1 = pd.DataFrame(rng.normal(size=(12, 3)), columns=["T1__x", "T1__y", "T1__z"])
    reader1.insert(0, "patient_id", ids)
    reader2 = reader1.copy()
    reader2[["T1__x", "T1__y", "T1__z"]] += rng.normal(0, 0.05, (12, 3))
    return reader1, reader2, split


def test_icc_ignores_second_readings_of_external_patients(tmp_path):
    reader1, reader2, split = _reader_tables()
    unstable = reader2.copy()
    external = split["cohort"].isin(["test", "ND"]).to_numpy()
    # Reader 2 disagrees wildly on T1__y and T1__z, but only on test / external patients.
    unstable.loc[external, ["T1__y", "T1__z"]] = np.random.default_rng(9).normal(
        0, 5, (external.sum(), 2)
    )
    paths = {
        "icc_path": tmp_path / "icc.tsv",
        "robust_path": tmp_path / "robust.txt",
        "histogram_path": tmp_path / "icc_hist.png",
    }
    kw = dict(threshold=0.85, enabled=True, split=split, **paths)
    icc_report(reader1, reader2, reference="train", **kw)
    baseline = paths["robust_path"].read_text().split()
    table = icc_report(reader1, unstable, reference="train", **kw)
    assert paths["robust_path"].read_text().split() == baseline == ["T1__x", "T1__y", "T1__z"]
    assert table["n_patients"].tolist() == [6, 6, 6]
    assert set(pd.read_csv(paths["icc_path"], sep="\t")["reference"]) == {"train"}
    # The paper's whole-cohort variant does see them.
    icc_report(reader1, unstable, reference="all", **kw)
    assert paths["robust_path"].read_text().split() == ["T1__x"]


def test_icc_train_reference_needs_three_training_patients(tmp_path):
    reader1, reader2, split = _reader_tables()
    reader2 = reader2[split["cohort"] != "train"].reset_index(drop=True)  # none in train
    with pytest.raises(ValueError, match="robustness.reference: all"):
        icc_report(
            reader1,
            reader2,
            threshold=0.85,
            enabled=True,
            split=split,
            reference="train",
            icc_path=tmp_path / "a",
            robust_path=tmp_path / "b",
            histogram_path=tmp_path / "c.png",
        )
