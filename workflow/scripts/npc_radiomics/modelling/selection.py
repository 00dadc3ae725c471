"""Feature selection as scikit-learn transformers: exact fast mRMR and LASSO-CV.

Both selectors are fitted on the rows they are given and nothing else, so inside a
``Pipeline`` that is refitted per cross-validation fold they cannot leak.

``MRMRSelector`` reproduces ``mrmr_selection.mrmr_classif(X, y, K)`` (version 0.2.8,
defaults: F-statistic relevance, mean absolute Pearson redundancy, quotient scheme)
feature for feature and in the same order, including its quirks:

- relevance is sklearn's ``f_classif`` of each column on its non-NaN rows; NaN relevance
  (constant column, one class only) becomes 0 and an all-NaN column gets 0;
- only features with relevance > 0 are candidates, so fewer than K may be returned;
- redundancy is ``|pearson r|`` on pairwise-complete rows, NaN -> 0.001, floored at 0.001;
- a mean redundancy of exactly 1.0 becomes +inf (score 0), a NaN score never wins;
- ties go to the earliest column.

It is vectorised (one matrix-vector product per step instead of one ``np.corrcoef``
per feature per step). The relevance uses the library's exact arithmetic (same
summation order), so it is bit-identical. The redundancy products differ from
``np.corrcoef`` in the last bits, so whenever two candidates' scores are within a
relative 1e-8 of each other, or a mean redundancy is within 1e-8 of 1.0, those few
candidates are rescored with the library's own formulas before choosing.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted, validate_data

log = logging.getLogger(__name__)

# The library's floor for redundancy (mrmr.main.FLOOR).
REDUNDANCY_FLOOR = 0.001
# Relative gap under which two vectorised scores are rescored exactly (the vectorised
# redundancy is accurate to ~1e-13 relative, so 1e-8 leaves a wide margin).
_TIE_RTOL = 1e-8


# ---------------------------------------------------------------------------------
# mRMR
# ---------------------------------------------------------------------------------
def _f_oneway_columns(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-way ANOVA F of every column of a NaN-free ``X`` against classes ``y``.

    Mirrors ``sklearn.feature_selection.f_oneway`` operation by operation. The class
    blocks are Fortran-ordered so each column sum runs over contiguous memory, which
    makes numpy use the same pairwise summation as the library's one-column calls:
    the result is bit-identical to calling ``f_classif`` column by column.
    """
    classes = np.unique(y)
    blocks = [np.asfortranarray(X[y == k], dtype=np.float64) for k in classes]
    n_per_class = np.array([b.shape[0] for b in blocks])
    n_samples = np.sum(n_per_class)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_alldata = sum((b**2).sum(axis=0) for b in blocks)
        sums = [np.asarray(b.sum(axis=0)) for b in blocks]
        square_of_sums_alldata = sum(sums) ** 2
        square_of_sums = [s**2 for s in sums]
        sstot = ss_alldata - square_of_sums_alldata / float(n_samples)
        ssbn = 0.0
        for k in range(len(blocks)):
            ssbn += square_of_sums[k] / n_per_class[k]
        ssbn -= square_of_sums_alldata / float(n_samples)
        sswn = sstot - ssbn
        msb = ssbn / float(len(blocks) - 1)
        msw = sswn / float(n_samples - len(blocks))
        return np.asarray(msb / msw).ravel()


def _f_one_column(x: np.ndarray, y: np.ndarray) -> float:
    """The library's relevance of one column: F on its non-NaN rows, 0 when all NaN."""
    keep = ~np.isnan(x)
    if not keep.any():
        return 0.0
    return float(_f_oneway_columns(x[keep, None], y[keep])[0])


def mrmr_relevance(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """F-statistic relevance of each column as ``mrmr_classif`` computes it (NaN -> 0).

    X: (n_patients, n_features) float; y: (n_patients,) class labels.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    nan_cols = np.isnan(X).any(axis=0)
    f = np.zeros(X.shape[1])
    if (~nan_cols).any():
        f[~nan_cols] = _f_oneway_columns(X[:, ~nan_cols], y)
    for j in np.flatnonzero(nan_cols):
        f[j] = _f_one_column(X[:, j], y)
    return np.nan_to_num(f, nan=0.0, posinf=np.inf, neginf=-np.inf)


def _exact_redundancy(target: np.ndarray, feature: np.ndarray) -> float:
    """The library's redundancy of one pair: |corrcoef| on pairwise-complete rows, floored."""
    valid = ~(np.isnan(target) | np.isnan(feature))
    if not valid.all():
        target, feature = target[valid], feature[valid]
    if len(target) < 1:
        return REDUNDANCY_FLOOR
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = np.corrcoef(target, feature)[0, 1]
    if np.isnan(r):
        r = 0.0
    return max(abs(float(r)), REDUNDANCY_FLOOR)


def _unit_columns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred columns scaled to unit norm, and a flag for (near-)constant columns.

    Columns whose spread is at rounding level get the exact path, because the library's
    ``np.corrcoef`` returns rounding noise for them rather than NaN.
    """
    centred = X - X.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    scale = np.abs(X).max(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    degenerate = norm <= 1e-9 * np.maximum(scale, 1e-300) * np.sqrt(max(X.shape[0], 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        Z = centred / np.where(degenerate, 1.0, norm)
    Z[:, degenerate] = 0.0
    return Z, degenerate


def mrmr_select(X: np.ndarray, y: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    """Greedy mRMR: indices of up to ``k`` columns in selection order, and the relevance.

    Same result as ``mrmr_classif(pd.DataFrame(X), pd.Series(y), k)`` mapped to column
    positions. X: (n_patients, n_features), NaN allowed; y: class labels.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    relevance = mrmr_relevance(X, y)
    candidates = np.flatnonzero(relevance > 0)  # NaN was set to 0 already
    k = min(int(k), len(candidates))
    if k == 0:
        return [], relevance

    Xc = X[:, candidates]
    rel = relevance[candidates]
    nan_rows = np.isnan(Xc)
    nan_cols = nan_rows.any(axis=0)
    Z, degenerate = _unit_columns(np.where(nan_rows, 0.0, Xc))
    ZT = np.ascontiguousarray(Z.T)  # one contiguous row per feature: fast gemv per step
    # Columns scored pair by pair with the library's formula: those with NaN (pairwise-
    # complete rows differ per pair) and (near-)constant ones. Few in practice: inside the
    # workflow's pipeline the imputer runs first, so mRMR never sees NaN.
    exact_cols = nan_cols | degenerate
    # Running sum of floored |r| with the selected features (vectorised approximation).
    red_sum = np.zeros(len(candidates))
    exact_cache: dict[tuple[int, int], float] = {}
    remaining = np.ones(len(candidates), dtype=bool)
    selected: list[int] = []  # positions in `candidates`

    def exact_pair(j: int, s: int) -> float:
        key = (j, s)
        if key not in exact_cache:
            exact_cache[key] = _exact_redundancy(Xc[:, s], Xc[:, j])
        return exact_cache[key]

    def exact_score(j: int) -> float:
        vals = np.array([exact_pair(j, s) for s in selected])
        # pandas' row mean (sum / count); exactly 1.0 becomes +inf like the library.
        denominator = np.sum(vals) / np.float64(len(vals))
        if denominator == 1.0:
            denominator = np.inf
        with np.errstate(invalid="ignore"):
            score = rel[j] / denominator
        return -np.inf if np.isnan(score) else float(score)

    exact_idx = np.flatnonzero(exact_cols)
    scores = rel.astype(float)  # step 0: relevance alone (the library divides by 1)
    for step in range(k):
        if step > 0:
            n_sel = np.float64(len(selected))
            with np.errstate(invalid="ignore", divide="ignore"):
                scores = rel / (red_sum / n_sel)
            scores[np.isnan(scores)] = -np.inf
            # A mean redundancy near 1.0 may be exactly 1.0 for the library (-> score 0).
            for j in np.flatnonzero(red_sum >= (1.0 - _TIE_RTOL) * n_sel):
                if remaining[j]:
                    scores[j] = exact_score(int(j))
        scores[~remaining] = -np.inf
        best = scores.max()
        if step > 0 and np.isfinite(best):
            near = np.flatnonzero((scores >= best - abs(best) * _TIE_RTOL) & remaining)
            if len(near) > 1:  # too close to call with the vectorised values: rescore exactly
                for j in near:
                    scores[j] = exact_score(int(j))
                best = scores.max()
        if np.isneginf(best):
            # every remaining score is NaN: pandas' argmax returns the first remaining one
            winner = int(np.flatnonzero(remaining)[0])
        else:
            # first maximum in column order (ties and +inf scores alike)
            winner = int(np.flatnonzero((scores == best) & remaining)[0])
        selected.append(winner)
        remaining[winner] = False
        if step == k - 1:
            break
        # Redundancy of every candidate with the new feature (selected ones are masked).
        target = Xc[:, winner]
        if degenerate[winner]:
            r = np.full(len(candidates), REDUNDANCY_FLOOR)
            for j in np.flatnonzero(remaining):
                r[j] = exact_pair(int(j), winner)
        else:
            t_rows = ~nan_rows[:, winner]
            if t_rows.all():
                r = np.abs(ZT @ ZT[winner])
            else:
                # Pairwise-complete rows = the target's non-NaN rows for NaN-free columns.
                sub = np.where(nan_rows[t_rows], 0.0, Xc[t_rows])
                Zs, flat_on_rows = _unit_columns(sub)
                zt, _ = _unit_columns(target[t_rows, None])
                r = np.abs(Zs.T @ zt[:, 0])
            pair_by_pair = exact_idx if t_rows.all() else np.flatnonzero(exact_cols | flat_on_rows)
            np.maximum(r, REDUNDANCY_FLOOR, out=r)
            for j in pair_by_pair:
                if remaining[j]:
                    r[j] = exact_pair(int(j), winner)
        red_sum += r
    return [int(candidates[j]) for j in selected], relevance


class NonFiniteFilter(TransformerMixin, BaseEstimator):
    """Drop features non-finite (NaN or +-inf) in more than ``max_share`` of the fit rows;
    turn the remaining +-inf into NaN for the imputer that follows.

    Fitted on the rows it is given (a training fold), so held-out patients never decide
    which feature is dropped. pyradiomics can emit NaN or inf on tiny or flat ROIs.

    Attributes
    ----------
    non_finite_share_ : ndarray of float
        Share of fit rows with a non-finite value, per input column.
    support_ : ndarray of bool
        Kept input columns.
    """

    def __init__(self, max_share: float = 0.1):
        self.max_share = max_share

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite=False, dtype=np.float64)
        if not 0 <= float(self.max_share) <= 1:
            raise ValueError(f"NonFiniteFilter: max_share must be in [0, 1], got {self.max_share}")
        self.non_finite_share_ = (~np.isfinite(X)).mean(axis=0)
        self.support_ = self.non_finite_share_ <= float(self.max_share)
        return self

    def transform(self, X):
        check_is_fitted(self, "support_")
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        X = X[:, self.support_].copy()
        X[np.isinf(X)] = np.nan
        return X

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "support_")
        return _input_names(self, input_features)[self.support_]


def non_finite_tables(X, cohort, max_share: float) -> tuple:
    """What happens to non-finite values: (per feature, per patient) DataFrames.

    ``X``: features indexed by patient_id; ``cohort``: train / test / centre per patient.
    Per feature (only features with a non-finite value anywhere): feature, n_nan_train,
    n_inf_train, share_train, n_nan_other, n_inf_other, action (``dropped``: non-finite
    in more than ``max_share`` of the training patients; ``imputed``: training median
    inside the pipeline; ``held-out only``: non-finite in held-out patients only, imputed).
    Per patient (only patients with one): patient_id, cohort, n_nan, n_inf.
    """
    import pandas as pd

    values = X.to_numpy(dtype=np.float64)
    train = np.asarray(cohort) == "train"
    nan, inf = np.isnan(values), np.isinf(values)
    share = (nan | inf)[train].mean(axis=0) if train.any() else np.zeros(values.shape[1])
    features = pd.DataFrame(
        {
            "feature": list(X.columns),
            "n_nan_train": nan[train].sum(axis=0),
            "n_inf_train": inf[train].sum(axis=0),
            "share_train": share,
            "n_nan_other": nan[~train].sum(axis=0),
            "n_inf_other": inf[~train].sum(axis=0),
        }
    )
    features["action"] = np.where(
        share > max_share, "dropped", np.where(share > 0, "imputed", "held-out only")
    )
    any_bad = (nan | inf).any(axis=0)
    patients = pd.DataFrame(
        {
            "patient_id": list(X.index),
            "cohort": np.asarray(cohort),
            "n_nan": nan.sum(axis=1),
            "n_inf": inf.sum(axis=1),
        }
    )
    patients = patients[(patients["n_nan"] + patients["n_inf"]) > 0]
    return features[any_bad].reset_index(drop=True), patients.reset_index(drop=True)


class MRMRSelector(TransformerMixin, BaseEstimator):
    """Keep the ``k`` features chosen by mRMR, in selection order.

    Parameters
    ----------
    k : int, default 100
        Number of features to keep (fewer when fewer have a positive F-statistic).

    Attributes
    ----------
    ranking_ : ndarray of int
        Input column indices in mRMR selection order.
    relevance_ : ndarray of float
        F-statistic of every input column (0 for constant or all-NaN columns).
    """

    def __init__(self, k: int = 100):
        self.k = k

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        if int(self.k) < 1:
            raise ValueError(f"MRMRSelector: k must be >= 1, got {self.k}")
        ranking, relevance = mrmr_select(X, y, self.k)
        self.ranking_ = np.asarray(ranking, dtype=int)
        self.relevance_ = relevance
        return self

    def transform(self, X):
        check_is_fitted(self, "ranking_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        return X[:, self.ranking_]

    def get_support(self, indices: bool = False):
        """Mask (or sorted indices) of the kept input columns."""
        check_is_fitted(self, "ranking_")
        if indices:
            return np.sort(self.ranking_)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.ranking_] = True
        return mask

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "ranking_")
        names = _input_names(self, input_features)
        return names[self.ranking_]


def _input_names(est, input_features) -> np.ndarray:
    if input_features is not None:
        return np.asarray(input_features, dtype=object)
    if hasattr(est, "feature_names_in_"):
        return np.asarray(est.feature_names_in_, dtype=object)
    return np.asarray([f"x{i}" for i in range(est.n_features_in_)], dtype=object)


# ---------------------------------------------------------------------------------
# LASSO (L1 logistic regression) with cross-validated lambda
# ---------------------------------------------------------------------------------
def binomial_deviance(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binomial deviance, -2/n * sum(y log p + (1-y) log(1-p)) (glmnet's measure)."""
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-2.0 * np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def lambda_grid(
    X: np.ndarray, y: np.ndarray, n_lambdas: int, min_ratio: float | None
) -> np.ndarray:
    """glmnet's decreasing log-spaced lambda grid for a binomial L1 model.

    lambda_max = max_j |x_j' (y - mean y)| / n is the smallest lambda with all
    coefficients zero (X standardised); the grid runs down to lambda_max * min_ratio
    (0.01 when n < p, else 1e-4, as in glmnet).
    """
    n, p = X.shape
    Xc = X - X.mean(axis=0)
    lam_max = float(np.max(np.abs(Xc.T @ (y - y.mean()))) / n)
    if not np.isfinite(lam_max) or lam_max <= 0:
        lam_max = 1.0
    ratio = min_ratio if min_ratio is not None else (0.01 if n < p else 1e-4)
    return np.logspace(np.log10(lam_max), np.log10(lam_max * ratio), n_lambdas)


def _l1_path(
    X: np.ndarray, y: np.ndarray, lambdas: np.ndarray, random_state: int, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (n_lambdas, p) and intercepts of L1 logistic fits along the grid.

    glmnet minimises mean log-loss + lambda |b|_1; liblinear minimises
    C * sum log-loss + |b|_1, hence C = 1 / (n * lambda). liblinear penalises the
    intercept too: a large intercept_scaling makes that penalty negligible.
    """
    n = X.shape[0]
    coefs = np.zeros((len(lambdas), X.shape[1]))
    intercepts = np.zeros(len(lambdas))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at tiny lambda are expected
        for i, lam in enumerate(lambdas):
            model = LogisticRegression(
                C=1.0 / (n * lam),
                l1_ratio=1.0,
                solver="liblinear",
                intercept_scaling=100.0,
                random_state=random_state,
                max_iter=max_iter,
                tol=tol,
            ).fit(X, y)
            coefs[i] = model.coef_[0]
            intercepts[i] = model.intercept_[0]
    return coefs, intercepts


def _predict_path(X, coefs, intercepts) -> np.ndarray:
    """P(y=1) for every lambda: (n_lambdas, n_patients)."""
    from scipy.special import expit

    return expit(coefs @ X.T + intercepts[:, None])


class LassoCVSelector(TransformerMixin, BaseEstimator):
    """Keep the features with non-zero L1 logistic coefficients at the CV-chosen lambda.

    Input should be standardised (the pipeline's scaler does it), as glmnet assumes.

    Parameters
    ----------
    cv_folds : int, default 10
        Stratified folds for choosing lambda.
    n_lambdas : int, default 50
        Size of the log-spaced lambda grid.
    rule : {"min", "1se"}
        ``min``: lambda at minimum mean CV binomial deviance; ``1se``: largest lambda
        whose deviance is within one standard error of that minimum.
    min_ratio : float or None
        Smallest lambda as a fraction of lambda_max (None: glmnet's default).
    random_state : int
        Seed of the fold shuffling and of liblinear.

    Attributes
    ----------
    lambdas_ : ndarray (n_lambdas,), decreasing
    cv_deviance_ : ndarray (cv_folds, n_lambdas), per-fold mean deviance
    cv_mean_deviance_, cv_se_deviance_ : ndarray (n_lambdas,), glmnet's cvm and cvsd
    lambda_min_, lambda_1se_, lambda_ : float, the chosen lambda is ``lambda_``
    coef_path_ : ndarray (n_lambdas, n_features_in_), coefficients on the whole input
    coef_ : ndarray (n_features_in_,), coefficients at ``lambda_``
    support_ : ndarray of bool, the kept features
    fallback_ : bool, True when ``lambda_`` was lowered because it kept no feature
    """

    def __init__(
        self,
        cv_folds: int = 10,
        n_lambdas: int = 50,
        rule: str = "min",
        min_ratio: float | None = None,
        random_state: int = 0,
        max_iter: int = 1000,
        tol: float = 1e-6,
    ):
        self.cv_folds = cv_folds
        self.n_lambdas = n_lambdas
        self.rule = rule
        self.min_ratio = min_ratio
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        if self.rule not in ("min", "1se"):
            raise ValueError(f"LassoCVSelector: rule must be 'min' or '1se', got {self.rule!r}")
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"LassoCVSelector needs two classes, got {len(classes)}")
        y01 = (y == classes[1]).astype(float)
        lambdas = lambda_grid(X, y01, int(self.n_lambdas), self.min_ratio)
        # Inside the inner folds of a nested CV on a small cohort a class may have fewer
        # patients than cv_folds: use as many folds as the smallest class allows (>= 2).
        smallest = int(min(y01.sum(), len(y01) - y01.sum()))
        if smallest < 2:
            raise ValueError(f"LassoCVSelector needs >= 2 patients per class, got {smallest}")
        self.n_folds_ = min(int(self.cv_folds), smallest)
        if self.n_folds_ < int(self.cv_folds):
            log.warning(
                "LASSO CV: %d folds instead of %d (smallest class has %d patients)",
                self.n_folds_,
                self.cv_folds,
                smallest,
            )
        folds = StratifiedKFold(self.n_folds_, shuffle=True, random_state=self.random_state)
        deviance, weights = [], []
        for train, val in folds.split(X, y01):
            coefs, icpt = _l1_path(
                X[train], y01[train], lambdas, self.random_state, self.max_iter, self.tol
            )
            prob = _predict_path(X[val], coefs, icpt)
            deviance.append([binomial_deviance(y01[val], p) for p in prob])
            weights.append(len(val))
        deviance = np.asarray(deviance)
        w = np.asarray(weights, dtype=float)
        cvm = np.average(deviance, axis=0, weights=w)
        # glmnet: cvsd = sqrt(weighted mean of squared deviations / (K - 1))
        cvsd = np.sqrt(np.average((deviance - cvm) ** 2, axis=0, weights=w) / (len(w) - 1))
        i_min = int(np.argmin(cvm))  # first = largest lambda among exact ties
        i_1se = int(np.flatnonzero(cvm <= cvm[i_min] + cvsd[i_min])[0])
        coef_path, icpts = _l1_path(X, y01, lambdas, self.random_state, self.max_iter, self.tol)
        chosen = i_min if self.rule == "min" else i_1se
        self.fallback_ = False
        nonzero = np.flatnonzero((coef_path != 0).any(axis=1))
        if not (coef_path[chosen] != 0).any():
            later = nonzero[nonzero > chosen]
            if len(later):
                # An empty model cannot feed a classifier: take the next lambda that keeps one.
                chosen = int(later[0])
                self.fallback_ = True
                log.warning(
                    "LASSO kept no feature at the CV lambda; using lambda %.4g", lambdas[chosen]
                )
        self.lambdas_ = lambdas
        self.cv_deviance_ = deviance
        self.cv_mean_deviance_ = cvm
        self.cv_se_deviance_ = cvsd
        self.lambda_min_ = float(lambdas[i_min])
        self.lambda_1se_ = float(lambdas[i_1se])
        self.lambda_index_ = chosen
        self.lambda_ = float(lambdas[chosen])
        self.coef_path_ = coef_path
        self.intercept_path_ = icpts
        self.coef_ = coef_path[chosen]
        self.support_ = self.coef_ != 0
        if not self.support_.any():
            # Degenerate data (no feature ever enters): keep the most relevant one.
            self.support_[int(np.argmax(np.abs(X.T @ (y01 - y01.mean()))))] = True
            self.fallback_ = True
        return self

    def transform(self, X):
        check_is_fitted(self, "support_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X[:, self.support_]

    def get_support(self, indices: bool = False):
        check_is_fitted(self, "support_")
        return np.flatnonzero(self.support_) if indices else self.support_.copy()

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "support_")
        return _input_names(self, input_features)[self.support_]


# ---------------------------------------------------------------------------------
# The selection pipeline and its report tables
# ---------------------------------------------------------------------------------
def selection_pipeline(
    mrmr_k: int = 100,
    lasso_folds: int = 10,
    n_lambdas: int = 50,
    lasso_rule: str = "min",
    seed: int = 0,
    max_non_finite_share: float = 0.1,
):
    """Unfitted selection steps, pipeline step 10: drop mostly non-finite features, impute,
    drop constant, standardise, mRMR, LASSO.

    Features non-finite in more than ``max_non_finite_share`` of the fold's training rows
    go first and +-inf becomes NaN; median imputation follows because LASSO cannot take
    NaN; an all-NaN training column is dropped by the imputer, a constant one by the
    variance filter.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("non_finite", NonFiniteFilter(max_share=max_non_finite_share)),
            ("impute", SimpleImputer(strategy="median")),
            ("variance", VarianceThreshold(threshold=0.0)),
            ("scale", StandardScaler()),
            ("mrmr", MRMRSelector(k=mrmr_k)),
            (
                "lasso",
                LassoCVSelector(
                    cv_folds=lasso_folds, n_lambdas=n_lambdas, rule=lasso_rule, random_state=seed
                ),
            ),
        ]
    )


def selection_summary(selection, feature_names) -> dict:
    """Report tables of a fitted selection pipeline (for results/selection/).

    Returns a dict of DataFrames / values: ``mrmr_ranking`` (rank, feature, f_statistic),
    ``lasso_cv`` (lambda, log10_lambda, mean_deviance, se_deviance, n_nonzero),
    ``lasso_path`` (lambda, log10_lambda, feature, coefficient: long format over the
    mRMR features), ``selected`` (feature, coefficient) and ``lambda`` (a dict).
    """
    import pandas as pd

    steps = selection.named_steps
    before_mrmr = selection[: list(steps).index("mrmr")].get_feature_names_out(feature_names)
    mrmr, lasso = steps["mrmr"], steps["lasso"]
    mrmr_names = before_mrmr[mrmr.ranking_]
    ranking = pd.DataFrame(
        {
            "rank": np.arange(1, len(mrmr_names) + 1),
            "feature": mrmr_names,
            "f_statistic": mrmr.relevance_[mrmr.ranking_],
        }
    )
    log_lam = np.log10(lasso.lambdas_)
    cv = pd.DataFrame(
        {
            "lambda": lasso.lambdas_,
            "log10_lambda": log_lam,
            "mean_deviance": lasso.cv_mean_deviance_,
            "se_deviance": lasso.cv_se_deviance_,
            "n_nonzero": (lasso.coef_path_ != 0).sum(axis=1),
        }
    )
    path = pd.DataFrame(lasso.coef_path_, columns=mrmr_names)
    path.insert(0, "lambda", lasso.lambdas_)
    path = path.melt(id_vars="lambda", var_name="feature", value_name="coefficient")
    path.insert(1, "log10_lambda", np.log10(path["lambda"]))
    selected = pd.DataFrame(
        {"feature": mrmr_names[lasso.support_], "coefficient": lasso.coef_[lasso.support_]}
    )
    lam = {
        "rule": lasso.rule,
        "lambda": lasso.lambda_,
        "lambda_min": lasso.lambda_min_,
        "lambda_1se": lasso.lambda_1se_,
        "fallback": bool(lasso.fallback_),
        "n_selected": int(lasso.support_.sum()),
        "n_mrmr": len(mrmr_names),
        "n_input": len(feature_names),
    }
    return {
        "mrmr_ranking": ranking,
        "lasso_cv": cv,
        "lasso_path": path,
        "selected": selected,
        "lambda": lam,
    }


def selection_figures_rule(inputs, design, out, lasso_folds: int) -> str:
    """Rule ``selection_figures``: LASSO path and CV curve from ``select_features``'
    tables (``inputs``: lasso_path, lasso_cv, lambda_json, selected), and the correlation
    of the selected features on the training patients only (raw features), into ``out``."""
    import json
    from pathlib import Path

    from npc_radiomics.base.io import read_table
    from npc_radiomics.figures import (
        figure_or_placeholder,
        plot_correlation_heatmap,
        plot_lasso_cv,
        plot_lasso_path,
    )

    lam = json.loads(Path(inputs.lambda_json).read_text())
    path = read_table(inputs.lasso_path).pivot(
        index="lambda", columns="feature", values="coefficient"
    )
    cv = read_table(inputs.lasso_cv)
    figure_or_placeholder(
        plot_lasso_path, out.lasso_path, path.index.to_numpy(), path.to_numpy(), lam["lambda"]
    )
    figure_or_placeholder(
        plot_lasso_cv,
        out.lasso_cv,
        cv["lambda"],
        cv["mean_deviance"],
        cv["se_deviance"],
        lam["lambda"],
        lambda_1se=lam.get("lambda_1se"),
        folds=lasso_folds,
    )
    selected = [f for f in read_table(inputs.selected)["feature"] if f in design.X.columns]
    X_train, _ = design.train()
    figure_or_placeholder(plot_correlation_heatmap, out.correlation, X_train[selected])
    return f"selection figures: {len(selected)} selected features"
