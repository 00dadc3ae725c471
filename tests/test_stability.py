"""Selection stability across outer folds and the final fit (npc_radiomics.validation.stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from npc_radiomics.modelling.fits import nested_cv_fold
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.zoo import parse_search_spaces
from npc_radiomics.validation import stability as st

SETTINGS = TuningSettings.defaults(
    n_trials=1, inner_folds=2, outer_folds=3, mrmr_k=6, lasso_folds=3, n_lambdas=8
)


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = pd.Series(np.arange(n) % 2, index=[f"P{k:03d}" for k in range(n)])
    X = pd.DataFrame(
        rng.normal(size=(n, 15)), index=y.index, columns=[f"T2__f{k:02d}" for k in range(15)]
    )
    X.iloc[:, :3] += 1.5 * y.to_numpy()[:, None]
    return X, y


def test_jaccard_and_frequencies_by_hand():
    sets = pd.DataFrame(
        [
            ("outer0", "mrmr", "a;b;c"), ("outer0", "lasso", "a;b"),
            ("outer1", "mrmr", "a;c;d"), ("outer1", "lasso", "a"),
            ("final", "mrmr", "a;b;c"), ("final", "lasso", "a;c"),
        ],
        columns=["fit", "stage", "features"],
    )  # fmt: skip
    freq, summary = st.stability_tables(sets)
    f = freq.set_index("feature")
    assert f.loc["a", "lasso_count"] == 3 and f.loc["a", "lasso_frequency"] == 1.0
    assert f.loc["d", "mrmr_count"] == 1 and not f.loc["d", "in_final_mrmr"]
    assert list(freq["feature"])[0] == "a"
    s = summary.set_index(["stage", "scope"])
    assert s.loc[("lasso", "outer_folds"), "mean_jaccard"] == pytest.approx(0.5)
    # all fits, lasso: {a,b},{a},{a,c}: 1/2, 1/3, 1/2
    assert s.loc[("lasso", "all_fits"), "mean_jaccard"] == pytest.approx((0.5 + 1 / 3 + 0.5) / 3)
    assert st.jaccard(set(), set()) == 1.0


def test_fold_sets_are_the_nested_cv_selections():
    X, y = _table()
    sets = st.selection_sets(X, y, SETTINGS, 4)
    assert list(dict.fromkeys(sets["fit"])) == ["outer0", "outer1", "outer2", "final"]
    spaces = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["search_spaces"]
    space = parse_search_spaces(spaces, ["logistic_regression"])["logistic_regression"]
    for k in range(3):
        _, info = nested_cv_fold("logistic_regression", space, X, y, k, SETTINGS, 4)
        lasso = sets[(sets["fit"] == f"outer{k}") & (sets["stage"] == "lasso")]["features"].iloc[0]
        assert sorted(info["selected_features"]) == lasso.split(";")
    freq, _ = st.stability_tables(sets)
    top = set(freq.head(3)["feature"])
    assert top == {"T2__f00", "T2__f01", "T2__f02"}  # the planted features are the stable ones
    mrmr = sets[sets["stage"] == "mrmr"]["features"].str.split(";").map(len)
    assert (mrmr == SETTINGS.mrmr_k).all()


def test_frequency_figure(tmp_path):
    X, y = _table()
    freq, _ = st.stability_tables(st.selection_sets(X, y, SETTINGS, 4))
    st.plot_selection_frequency(freq, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
