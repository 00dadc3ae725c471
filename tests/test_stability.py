"""Selection stability over bootstrap refits (npc_radiomics.validation.stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from npc_radiomics.modelling.settings import TuningSettings
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
            ("boot000", "mrmr", "a;b;c"), ("boot000", "lasso", "a;b"),
            ("boot001", "mrmr", "a;c;d"), ("boot001", "lasso", "a"),
            ("boot002", "mrmr", "a;b;c"), ("boot002", "lasso", "a;c"),
            ("final", "mrmr", "a;b;c"), ("final", "lasso", "a;c"),
        ],
        columns=["fit", "stage", "features"],
    )  # fmt: skip
    freq, summary = st.stability_tables(sets)
    f = freq.set_index("feature")
    # frequencies over the bootstrap fits only; the final fit is a flag
    assert f.loc["a", "lasso_count"] == 3 and f.loc["a", "lasso_frequency"] == 1.0
    assert f.loc["c", "lasso_count"] == 1 and f.loc["c", "in_final_lasso"]
    assert f.loc["d", "mrmr_count"] == 1 and not f.loc["d", "in_final_mrmr"]
    assert list(freq["feature"])[0] == "a"
    s = summary.set_index(["stage", "scope"])
    # bootstrap fits, lasso: {a,b},{a},{a,c}: 1/2, 1/2, 1/3
    assert s.loc[("lasso", "bootstrap"), "mean_jaccard"] == pytest.approx((0.5 + 1 / 3 + 0.5) / 3)
    # each against the final {a,c}: 1/3, 1/2, 1
    assert s.loc[("lasso", "bootstrap_vs_final"), "mean_jaccard"] == pytest.approx(
        (1 / 3 + 0.5 + 1) / 3
    )
    assert s.loc[("lasso", "bootstrap"), "n_fits"] == 3
    assert st.jaccard(set(), set()) == 1.0


def test_stability_comes_from_at_least_100_bootstrap_refits():
    X, y = _table()
    sets = st.selection_sets(X, y, SETTINGS, 4)  # the default count
    fits = list(dict.fromkeys(sets["fit"]))
    assert len(fits) == 101 and fits[-1] == "final" and fits[0] == "boot000"
    # stratified, seeded resamples of the training rows: class counts kept, all different
    rows = [st.bootstrap_rows(y, 4, b) for b in range(100)]
    assert all(np.bincount(y.to_numpy()[r]).tolist() == [30, 30] for r in rows)
    assert len({tuple(r) for r in rows}) == 100
    assert all(len(np.unique(r)) < len(y) for r in rows)  # with replacement
    assert (st.bootstrap_rows(y, 4, 7) == rows[7]).all()
    # the final fit is the selection of the whole training set
    from sklearn.base import clone

    final = clone(SETTINGS.selection(4)).fit(X, y.to_numpy())
    lasso = sets[(sets["fit"] == "final") & (sets["stage"] == "lasso")]["features"].iloc[0]
    assert st.fitted_sets(final, list(X.columns))[1] == lasso.split(";")
    freq, summary = st.stability_tables(sets)
    top = set(freq.head(3)["feature"])
    assert top == {"T2__f00", "T2__f01", "T2__f02"}  # the planted features are the stable ones
    assert freq.set_index("feature").loc["T2__f00", "lasso_frequency"] > 0.9
    noise = freq[~freq["feature"].isin(top)]
    assert (noise["lasso_frequency"] < 0.5).all()
    mrmr = sets[sets["stage"] == "mrmr"]["features"].str.split(";").map(len)
    assert (mrmr == SETTINGS.mrmr_k).all()
    assert set(summary["scope"]) == {"bootstrap", "bootstrap_vs_final"}


def test_the_bootstrap_count_is_a_config_key():
    from npc_radiomics.base.config import load_yaml, validate_config

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    assert cfg["stability"]["n_bootstrap"] >= 100
    cfg["stability"]["n_bootstrap"] = 1
    with pytest.raises(Exception, match="n_bootstrap"):
        validate_config(cfg, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    X, y = _table()
    sets = st.selection_sets(X, y, SETTINGS, 4, n_bootstrap=3)
    assert list(dict.fromkeys(sets["fit"])) == ["boot000", "boot001", "boot002", "final"]


def test_frequency_figure(tmp_path):
    X, y = _table()
    freq, _ = st.stability_tables(st.selection_sets(X, y, SETTINGS, 4, n_bootstrap=5))
    st.plot_selection_frequency(freq, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
