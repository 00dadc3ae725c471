"""mRMR identical to mrmr_selection.mrmr_classif; LASSO-CV selector; sklearn contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mrmr import mrmr_classif
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from npc_radiomics.modelling.selection import (
    LassoCVSelector,
    MRMRSelector,
    mrmr_relevance,
    mrmr_select,
    selection_pipeline,
    selection_summary,
)

# The reference library warns about the very constant / NaN columns the tests plant.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")


def make_table(n, p, seed, kind):
    """Synthetic radiomics-like table: informative base signals, near-copies, quirks."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 5))
    X = rng.normal(size=(n, p))
    y = (base[:, 0] + rng.normal(size=n) > 0).astype(int)
    if kind in ("correlated", "all"):
        # Strongly correlated families, as in LoG / wavelet features of one image.
        for j in range(0, p, 3):
            X[:, j] = base[:, j % 5] * rng.uniform(0.5, 3) + rng.normal(scale=0.05, size=n)
        X[:, p - 1] = X[:, 0]  # exact duplicate
        X[:, p - 2] = 2 * X[:, 3] + 1  # exact linear copy: same F, |r| = 1
    if kind in ("constant", "all"):
        X[:, 1] = 0.1  # constant with rounding noise in its sums
        X[:, 4] = 3.0
    if kind == "few_nan":
        # NaN in a few strong columns only: clean columns meet a NaN target (subset rows).
        X[:, 0] = base[:, 0] + rng.normal(scale=0.3, size=n)
        X[:10, 0] = np.nan
        X[5:8, 3] = np.nan
    if kind in ("nan", "all"):
        X[rng.random((n, p)) < 0.05] = np.nan
        X[:, 6] = np.nan
    return X, y


def library(X, y, k):
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return mrmr_classif(df, pd.Series(y), k, show_progress=False, n_jobs=1)


@pytest.mark.parametrize(
    "n,p,k,seed,kind",
    [
        (40, 30, 10, 0, "plain"),
        (60, 80, 25, 1, "correlated"),
        (60, 80, 25, 2, "constant"),
        (60, 80, 25, 3, "nan"),
        (70, 90, 30, 9, "few_nan"),
        (80, 120, 40, 4, "all"),
        (121, 150, 60, 5, "correlated"),
        (50, 20, 30, 6, "all"),  # k larger than the number of relevant features
    ],
)
def test_mrmr_matches_mrmr_classif(n, p, k, seed, kind):
    X, y = make_table(n, p, seed, kind)
    expected = library(X, y, k)
    ranking, _ = mrmr_select(X, y, k)
    assert [f"f{i}" for i in ranking] == expected


def test_mrmr_ties_infinite_and_degenerate_columns():
    """Duplicates, sign-flipped copies, perfect separators (F = inf), one-class columns."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n, p = 60, 40
        X = rng.normal(size=(n, p))
        y = (X[:, 0] + rng.normal(size=n) > 0).astype(int)
        X[:, 5] = X[:, 0]
        X[:, 9] = X[:, 0]
        X[:, 10] = 3 * X[:, 2]
        X[:, 11] = -X[:, 2] + 7
        X[:, 12] = y.astype(float)  # perfectly separating: infinite F
        X[:, 13] = y * 2.0 + 1
        X[:, 14] = np.where(y == 1, np.nan, X[:, 14])  # one class only: NaN F -> 0
        X[:3, 15] = np.nan
        X[3:, 16] = np.nan
        X[:, 17] = 1e-12 * rng.normal(size=n) + 5.0
        X[:, 18] = np.round(X[:, 18])
        for k in (5, 40):
            assert [f"f{i}" for i in mrmr_select(X, y, k)[0]] == library(X, y, k)


def test_mrmr_relevance_bit_identical():
    from mrmr.pandas import f_classif

    X, y = make_table(70, 50, 7, "all")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(50)])
    expected = f_classif(df, pd.Series(y), n_jobs=1).to_numpy()
    np.testing.assert_array_equal(mrmr_relevance(X, y), expected)


def test_mrmr_selector_is_a_transformer():
    X, y = make_table(60, 30, 8, "correlated")
    df = pd.DataFrame(X, columns=[f"T1__f{i}" for i in range(30)])
    sel = clone(MRMRSelector(k=7)).fit(df, y)
    assert sel.transform(df).shape == (60, 7)
    expected = library(X, y, 7)
    assert [n.replace("T1__", "") for n in sel.get_feature_names_out()] == expected
    np.testing.assert_array_equal(sel.transform(df)[:, 0], df[sel.get_feature_names_out()[0]])
    assert sel.get_support().sum() == 7


def informative_table(n=120, p=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    logit = 1.5 * X[:, 0] - 1.2 * X[:, 1] + 0.8 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_lasso_cv_selector_finds_the_signal_and_exposes_the_curve():
    X, y = informative_table()
    lasso = LassoCVSelector(cv_folds=5, n_lambdas=20, random_state=0).fit(X, y)
    kept = set(lasso.get_support(indices=True))
    assert {0, 1} <= kept
    assert lasso.lambdas_.shape == (20,) and np.all(np.diff(lasso.lambdas_) < 0)
    assert lasso.cv_deviance_.shape == (5, 20)
    assert lasso.coef_path_.shape == (20, 60)
    assert lasso.lambda_ == lasso.lambda_min_
    i = int(np.argmin(lasso.cv_mean_deviance_))
    assert lasso.lambda_min_ == lasso.lambdas_[i]
    assert lasso.lambda_1se_ >= lasso.lambda_min_
    assert not (lasso.coef_path_[0] != 0).any()  # lambda_max zeros every coefficient
    one_se = LassoCVSelector(cv_folds=5, n_lambdas=20, rule="1se", random_state=0).fit(X, y)
    assert one_se.lambda_ == one_se.lambda_1se_
    assert one_se.support_.sum() <= lasso.support_.sum()
    assert lasso.transform(X).shape == (120, len(kept))


def test_lasso_cv_selector_is_deterministic_and_clonable():
    X, y = informative_table(seed=3)
    a = LassoCVSelector(cv_folds=4, n_lambdas=15, random_state=5).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.coef_path_, b.coef_path_)
    np.testing.assert_array_equal(a.support_, b.support_)


def test_selection_pipeline_names_and_summary():
    X, y = informative_table(p=40, seed=1)
    X[:, 5] = 1.0  # constant: dropped by the variance filter
    X[:, 6] = np.nan  # all-NaN: dropped by the imputer
    df = pd.DataFrame(X, columns=[f"CET1__f{i}" for i in range(40)])
    pipe = selection_pipeline(mrmr_k=10, lasso_folds=4, n_lambdas=10, seed=0).fit(df, y)
    names = list(pipe.get_feature_names_out())
    assert "CET1__f5" not in names and "CET1__f6" not in names
    assert pipe.transform(df).shape == (120, len(names))
    summary = selection_summary(pipe, list(df.columns))
    assert list(summary["selected"]["feature"]) == names
    assert len(summary["mrmr_ranking"]) == 10
    assert summary["lambda"]["n_selected"] == len(names)
    assert set(summary["lasso_path"].columns) == {
        "lambda",
        "log10_lambda",
        "feature",
        "coefficient",
    }
    # usable inside a bigger Pipeline and after clone()
    from sklearn.linear_model import LogisticRegression

    full = Pipeline(list(clone(pipe).steps) + [("model", LogisticRegression())]).fit(df, y)
    assert full.predict_proba(df).shape == (120, 2)


def test_lasso_cv_adapts_folds_to_a_small_class():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6))
    y = np.array([1] * 4 + [0] * 26)
    X[y == 1, 0] += 2.0
    lasso = LassoCVSelector(cv_folds=10, n_lambdas=10, random_state=0).fit(X, y)
    assert lasso.n_folds_ == 4
    with pytest.raises(ValueError, match=">= 2 patients per class"):
        LassoCVSelector(cv_folds=10, n_lambdas=10).fit(X, np.r_[1, np.zeros(29)])
