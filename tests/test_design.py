"""Loading the modelling design (features-in entry point) and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.design import load_design
from npc_radiomics.modelling.folds import check_fold_sizes
from npc_radiomics.modelling.settings import TuningSettings


def write_inputs(tmp_path, fmt="parquet", n=30, n_features=6, table=None):
    rng = np.random.default_rng(0)
    ids = [f"P{i:03d}" for i in range(n)]
    if table is None:
        table = pd.DataFrame(
            rng.normal(size=(n, n_features)), columns=[f"T2__f{i}" for i in range(n_features)]
        )
        table.insert(0, "patient_id", ids)
        table["response"] = np.arange(n) % 2
        table["center"] = ["A"] * (n - 5) + ["B"] * 5
    cohort = ["train"] * (n - 10) + ["test"] * 5 + ["B"] * 5
    split = pd.DataFrame(
        {
            "patient_id": ids,
            "center": table.get("center", "A"),
            "cohort": cohort,
            "label": np.arange(n) % 2,
        }
    )
    path = tmp_path / f"features.{fmt}"
    if fmt == "parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
    split_path = tmp_path / "split.tsv"
    split.to_csv(split_path, sep="\t", index=False)
    return path, split_path


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv"])
def test_load_design_formats_and_columns(tmp_path, fmt):
    features, split = write_inputs(tmp_path, fmt)
    design = load_design(features, split)
    assert design.features == [f"T2__f{i}" for i in range(6)]  # no id/outcome/centre
    assert design.cohorts() == ["train", "test", "B"]
    X, y = design.train()
    assert len(X) == 20 and list(X.index) == sorted(X.index)
    assert set(y) == {0, 1}


def test_robust_list_restricts_features(tmp_path):
    features, split = write_inputs(tmp_path)
    robust = tmp_path / "robust.txt"
    robust.write_text("T2__f1\nT2__f3\nnot_in_table\n")
    assert load_design(features, split, robust).features == ["T2__f1", "T2__f3"]


def test_outcome_from_the_table_when_split_has_no_label(tmp_path):
    features, split = write_inputs(tmp_path)
    pd.read_csv(split, sep="\t").drop(columns="label").to_csv(split, sep="\t", index=False)
    assert load_design(features, split).y.sum() == 15


def test_missing_id_column(tmp_path):
    features, split = write_inputs(tmp_path)
    with pytest.raises(InputError, match="no ID column 'case_id'"):
        load_design(features, split, id_column="case_id")


def test_missing_outcome(tmp_path):
    features, split = write_inputs(tmp_path)
    pd.read_csv(split, sep="\t").drop(columns="label").to_csv(split, sep="\t", index=False)
    with pytest.raises(InputError, match="outcome column 'cr'"):
        load_design(features, split, outcome_column="cr")


@pytest.mark.parametrize("value", [1.0, np.nan])
def test_constant_or_all_nan_table(tmp_path, value):
    ids = [f"P{i:03d}" for i in range(30)]
    table = pd.DataFrame({"patient_id": ids, "a": value, "b": value})
    features, split = write_inputs(tmp_path, table=table)
    with pytest.raises(InputError, match="constant or all-NaN"):
        load_design(features, split)


def test_patients_without_features_and_duplicates(tmp_path):
    features, split = write_inputs(tmp_path)
    table = pd.read_parquet(features)
    table.iloc[:-1].to_parquet(features)
    with pytest.raises(InputError, match="1 patient"):
        load_design(features, split)
    pd.concat([table, table.iloc[:1]]).to_parquet(features)
    with pytest.raises(InputError, match="duplicate patient id"):
        load_design(features, split)


def test_non_binary_labels(tmp_path):
    features, split = write_inputs(tmp_path)
    s = pd.read_csv(split, sep="\t")
    s.loc[0, "label"] = 2
    s.to_csv(split, sep="\t", index=False)
    with pytest.raises(InputError, match="0/1"):
        load_design(features, split)


def test_fewer_patients_of_a_class_than_folds():
    y = np.array([1] * 4 + [0] * 40)
    with pytest.raises(InputError, match="tuning.outer_folds: 5 folds but only 4"):
        check_fold_sizes(y, TuningSettings.defaults(outer_folds=5), nested=True)
    y = np.array([1] * 14 + [0] * 40)  # 14 -> 11 outer-train -> 9 inner-train < 10
    # The LASSO's CV adapts its folds to the smallest class: 9 patients are enough.
    check_fold_sizes(
        y, TuningSettings.defaults(outer_folds=5, inner_folds=10, lasso_folds=10), nested=True
    )
    y = np.array([1] * 4 + [0] * 40)  # 4 -> 2 outer-train -> 1 inner-train < 2
    with pytest.raises(InputError, match="selection.lasso.cv_folds"):
        check_fold_sizes(
            y, TuningSettings.defaults(outer_folds=2, inner_folds=2, lasso_folds=10), nested=True
        )
    with pytest.raises(InputError, match="only one outcome class"):
        check_fold_sizes(np.zeros(30), TuningSettings.defaults(), nested=False)
    check_fold_sizes(
        np.array([1] * 30 + [0] * 30),
        TuningSettings.defaults(inner_folds=5, lasso_folds=5),
        nested=True,
    )


def test_numeric_site_code_is_not_a_feature(tmp_path):
    features, split = write_inputs(tmp_path)
    table = pd.read_parquet(features)
    table["site_code"] = 3  # numeric centre code named in features_table_columns
    table.to_parquet(features)
    design = load_design(features, split, extra_excluded=("site_code",))
    assert "site_code" not in design.features and len(design.features) == 6
