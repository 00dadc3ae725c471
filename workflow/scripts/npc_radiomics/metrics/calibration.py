"""Calibration: Brier score, Hosmer-Lemeshow, binned and smoothed calibration curves,
calibration intercept and slope, observed/expected, logistic recalibration (updated
models)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.lazy import lazy_module
from npc_radiomics.metrics.inputs import (
    ROW_TYPES,
    both_classes,
    check_probabilities,
    class_counts_note,
)

stats = lazy_module("scipy.stats")  # only the confidence intervals and tests need it


def brier_score(y, p) -> float:
    """Mean squared difference between probability and label (0 = perfect). NaN if empty."""
    y, p = check_probabilities(y, p)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def _risk_groups(p: np.ndarray, groups: int) -> np.ndarray:
    """Group index per patient from quantile cut points of the predicted risk.

    Cut points are the ``groups``-quantiles of ``p``; duplicated cut points and empty
    groups (many tied probabilities) are merged away, so fewer groups can come out, as
    in R's ``ResourceSelection::hoslem.test``. Groups are numbered 0.. by risk.
    """
    edges = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    if edges.size < 2:
        return np.zeros(p.size, dtype=int)
    # right-closed intervals, lowest one closed on the left too
    group = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, edges.size - 2)
    # interpolated cut points can leave a group empty when probabilities tie: renumber
    return np.unique(group, return_inverse=True)[1]


@dataclass(frozen=True)
class HosmerLemeshow:
    """Hosmer-Lemeshow goodness-of-fit test (small p = poor calibration)."""

    chi2: float
    df: float  # g - 2 or g; NaN when the test cannot be made (then ``note`` says why)
    p_value: float
    table: pd.DataFrame  # group, n, observed, expected, mean_predicted
    note: str = ""


def hosmer_lemeshow(y, p, groups: int = 10, development: bool = True) -> HosmerLemeshow:
    """Hosmer-Lemeshow test over ``groups`` groups of predicted risk (deciles by default).

    chi2 = sum over groups and both outcomes of (observed - expected)^2 / expected,
    expected events = sum of p in the group; with g the groups actually formed, df = g - 2
    on the development data (the model was fitted on these patients) and df = g on a
    validation cohort (Hosmer & Lemeshow 2013: no parameter was estimated on it). With
    fewer than 3 groups (ties: constant or two-valued predictions) chi2, df and p are NaN
    and ``note`` says why; a df below 1 is never reported.
    """
    y, p = check_probabilities(y, p)
    nan = float("nan")
    if y.size == 0:
        return HosmerLemeshow(nan, nan, nan, pd.DataFrame(), "no patients")
    group = _risk_groups(p, groups)
    g = int(group.max()) + 1
    n_g = np.bincount(group, minlength=g).astype(float)
    observed = np.bincount(group, weights=y, minlength=g)
    expected = np.bincount(group, weights=p, minlength=g)
    table = pd.DataFrame(
        {
            "group": np.arange(1, g + 1),
            "n": n_g.astype(int),
            "observed": observed,
            "expected": expected,
            "mean_predicted": expected / n_g,
        }
    )
    df = g - 2 if development else g
    if df < 1 or g < 3:
        why = (
            "constant predictions: one risk group"
            if np.ptp(p) == 0
            else f"{g} risk group{'s' if g > 1 else ''} (tied predictions)"
        )
        return HosmerLemeshow(
            nan, nan, nan, table, f"Hosmer-Lemeshow needs >= 3 risk groups: {why}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        events = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0)
        non_events = np.where(
            n_g - expected > 0, (observed - expected) ** 2 / (n_g - expected), 0.0
        )
    # an observed event where none was expected (p == 0 or 1 exactly) is infinitely unlikely
    impossible = ((expected == 0) & (observed > 0)) | ((n_g - expected == 0) & (observed < n_g))
    chi2 = float("inf") if impossible.any() else float(np.sum(events + non_events))
    return HosmerLemeshow(chi2, float(df), float(stats.chi2.sf(chi2, df)), table)


def calibration_curve(y, p, bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Calibration curve data: one row per bin of predicted risk.

    ``strategy`` "quantile" (equal-count bins, as in the HL test) or "uniform" (equal
    width on [0, 1]). Columns: bin, n, mean_predicted, observed_fraction, ci_low,
    ci_high (Wilson 95% interval of the observed fraction). Empty bins are dropped.
    """
    y, p = check_probabilities(y, p)
    columns = ["bin", "n", "mean_predicted", "observed_fraction", "ci_low", "ci_high"]
    if y.size == 0:
        return pd.DataFrame(columns=columns)
    if strategy == "quantile":
        group = _risk_groups(p, bins)
    elif strategy == "uniform":
        group = np.clip((p * bins).astype(int), 0, bins - 1)
    else:
        raise InputError(
            f"calibration_curve: strategy must be quantile or uniform, not {strategy!r}"
        )
    g = int(group.max()) + 1
    n_g = np.bincount(group, minlength=g)
    keep = n_g > 0
    n_g = n_g[keep]
    events = np.bincount(group, weights=y, minlength=g)[keep]
    mean_p = np.bincount(group, weights=p, minlength=g)[keep] / n_g
    frac = events / n_g
    z = stats.norm.ppf(0.975)
    centre = (frac + z**2 / (2 * n_g)) / (1 + z**2 / n_g)
    half = z * np.sqrt(frac * (1 - frac) / n_g + z**2 / (4 * n_g**2)) / (1 + z**2 / n_g)
    return pd.DataFrame(
        {
            "bin": np.arange(1, n_g.size + 1),
            "n": n_g,
            "mean_predicted": mean_p,
            "observed_fraction": frac,
            "ci_low": np.clip(centre - half, 0, 1),
            "ci_high": np.clip(centre + half, 0, 1),
        },
        columns=columns,
    )


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    q = np.clip(p, eps, 1 - eps)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Recalibration:
    """Logistic recalibration of predicted probabilities (Cox 1958; Van Calster 2016).

    ``note`` says why a NaN is NaN (one class, constant predictions, separation).
    """

    intercept: float  # calibration-in-the-large: a in logit(P(y)) = a + logit(p); ideal 0
    intercept_ci: tuple[float, float]
    slope: float  # b in logit(P(y)) = a' + b logit(p); ideal 1
    slope_ci: tuple[float, float]
    slope_model_intercept: float = float("nan")  # a' of the intercept + slope model
    note: str = ""


#: Wald SE (logit units) above which a recalibration coefficient is not reported: its
#: 95% CI would span odds ratios beyond e^+-19.6, i.e. the likelihood is flat (predictions
#: at 0 / 1, near-separation); such a "CI of +-58,000" is noise, not an estimate.
FLAT_SE = 10.0


def _separates(y: np.ndarray, lp: np.ndarray) -> bool:
    """True when a threshold on ``lp`` splits the classes (ties at the boundary allowed:
    quasi-complete separation). The logistic slope's MLE is then infinite."""
    pos, neg = lp[y == 1], lp[y == 0]
    return bool(neg.max() <= pos.min() or pos.max() <= neg.min())


def logistic_recalibration(y, p, level: float = 0.95) -> Recalibration:
    """Calibration intercept (slope fixed at 1, logit(p) as offset) and slope, with Wald
    CIs from a binomial GLM (statsmodels); probabilities are clipped to [1e-6, 1 - 1e-6].

    Degenerate input gives NaN and a ``note``, never an exception or an absurd number:
    one class or fewer than 3 patients (both NaN); constant predictions (slope undefined,
    intercept still estimated); predictions that separate the classes, completely or
    with ties at the boundary (slope infinite: NaN; the intercept, whose MLE exists
    whenever both classes are present, is kept); a fit that fails or does not converge;
    a coefficient whose Wald SE exceeds :data:`FLAT_SE` (flat likelihood).
    """
    import warnings

    import statsmodels.api as sm

    y, p = check_probabilities(y, p)
    nan, nan2 = float("nan"), (float("nan"), float("nan"))
    if y.size < 3 or not both_classes(y):
        why = class_counts_note(y) if not both_classes(y) else f"only {y.size} patients"
        return Recalibration(nan, nan2, nan, nan2, nan, f"{why}: no recalibration")
    lp = logit(p)
    alpha = 1 - level
    binomial = sm.families.Binomial()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_a = sm.GLM(y, np.ones((y.size, 1)), family=binomial, offset=lp).fit()
        a, a_ci = float(fit_a.params[0]), tuple(map(float, fit_a.conf_int(alpha)[0]))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        return Recalibration(nan, nan2, nan, nan2, nan, f"recalibration fit failed: {err}")
    if not np.isfinite(a):
        return Recalibration(nan, nan2, nan, nan2, nan, "calibration intercept not finite")
    if float(fit_a.bse[0]) > FLAT_SE:
        why = (
            f"predictions at (or next to) 0 and 1 carry no information on calibration: "
            f"intercept SE {float(fit_a.bse[0]):.0f} on the logit scale, no estimate"
        )
        return Recalibration(nan, nan2, nan, nan2, nan, why)
    if np.ptp(lp) == 0:
        why = "constant predictions: calibration slope undefined"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    if _separates(y, lp):
        why = "the predictions separate the classes: calibration slope infinite (no estimate)"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_b = sm.GLM(y, np.column_stack([np.ones(y.size), lp]), family=binomial).fit()
        a0, b = float(fit_b.params[0]), float(fit_b.params[1])
        b_ci = tuple(map(float, fit_b.conf_int(alpha)[1]))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        return Recalibration(a, a_ci, nan, nan2, nan, f"calibration slope fit failed: {err}")
    if not (np.isfinite(b) and np.isfinite(a0) and fit_b.converged):
        return Recalibration(a, a_ci, nan, nan2, nan, "calibration slope fit did not converge")
    if float(fit_b.bse[1]) > FLAT_SE:
        why = f"calibration slope SE {float(fit_b.bse[1]):.0f}: likelihood flat, no estimate"
        return Recalibration(a, a_ci, nan, nan2, nan, why)
    return Recalibration(a, a_ci, b, b_ci, a0)


def lowess_calibration(y, p, frac: float = 2 / 3) -> np.ndarray:
    """Smoothed observed probability at each patient's predicted probability: LOWESS of
    the label on the prediction (statsmodels, no robustness iterations, as suits a 0/1
    outcome), clipped to [0, 1]; in the input order."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    y, p = check_probabilities(y, p)
    if y.size < 3:
        return np.full(y.size, np.nan)
    if np.ptp(p) == 0:  # one x value: the smooth is the observed fraction
        return np.full(y.size, float(y.mean()))
    smoothed = lowess(y, p, frac=frac, it=0, return_sorted=False)
    return np.clip(smoothed, 0, 1)


def integrated_calibration_index(y, p, frac: float = 2 / 3) -> float:
    """ICI (Austin & Steyerberg 2019): mean |LOWESS-smoothed observed - predicted| over the
    patients. 0 = perfect calibration; NaN with fewer than 3 patients or one class."""
    y, p = check_probabilities(y, p)
    if y.size < 3 or not both_classes(y):
        return float("nan")
    return float(np.nanmean(np.abs(lowess_calibration(y, p, frac) - p)))


def smoothed_calibration(
    y, p, n_bootstrap: int = 200, level: float = 0.95, seed: int = 0, n_grid: int = 50
) -> pd.DataFrame:
    """LOWESS calibration curve on a grid of predicted probabilities, with a percentile
    bootstrap band (patients resampled with replacement, seeded).

    Columns predicted, observed, ci_low, ci_high; the grid spans the observed range of
    ``p``. Empty with fewer than 3 patients or one class.
    """
    y, p = check_probabilities(y, p)
    columns = ["predicted", "observed", "ci_low", "ci_high"]
    if y.size < 3 or not both_classes(y) or np.ptp(p) == 0:
        return pd.DataFrame(columns=columns)
    grid = np.linspace(p.min(), p.max(), n_grid)

    def curve(yy, pp):
        order = np.argsort(pp, kind="mergesort")
        fitted = lowess_calibration(yy, pp)[order]
        xs, first = np.unique(pp[order], return_index=True)
        return np.interp(grid, xs, fitted[first]) if xs.size > 1 else np.full(grid.size, np.nan)

    rng = np.random.default_rng(seed)
    boots = np.array([curve(y[i], p[i]) for i in rng.integers(0, y.size, (n_bootstrap, y.size))])
    with np.errstate(all="ignore"):
        low, high = np.nanquantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return pd.DataFrame(
        {"predicted": grid, "observed": curve(y, p), "ci_low": low, "ci_high": high},
        columns=columns,
    )


def observed_expected(y, p, level: float = 0.95) -> tuple[float, float, float]:
    """Observed / expected events, O/E = sum(y) / sum(p) (1 = calibrated in the large;
    > 1: the model under-predicts), with a CI on the log scale: ln(O/E) +- z SE, SE =
    sqrt(sum q (1 - q)) / O, where q are the predictions corrected in the large (logit q
    = a + logit p with sum q = O), the variance of O under those risks, E taken as fixed.

    Debray et al. (2017)'s sqrt((1 - O/N) / O) treats every patient as having the same
    risk and over-covers when risks vary (97-98% for a nominal 95% in 150-patient cohorts
    with spread-out risks; this one 94-95%, tests/test_updated_models.py). NaN without
    events, without expected events or with every patient an event.
    """
    from scipy.optimize import brentq

    y, p = check_probabilities(y, p)
    nan = float("nan")
    observed, expected = float(y.sum()), float(p.sum())
    if y.size == 0 or observed == 0 or expected == 0 or observed == y.size:
        return nan, nan, nan
    ratio = observed / expected
    lp = logit(p)
    a = brentq(lambda a: float(np.sum(1 / (1 + np.exp(-(a + lp))))) - observed, -50, 50)
    q = 1 / (1 + np.exp(-(a + lp)))
    se = np.sqrt(np.sum(q * (1 - q))) / observed
    z = stats.norm.ppf(0.5 + level / 2)
    return ratio, float(ratio * np.exp(-z * se)), float(ratio * np.exp(z * se))


def recalibrate(y, p, kind: str, level: float = 0.95) -> tuple[np.ndarray | None, object, str]:
    """The model updated on (y, p) by logistic recalibration (TRIPOD+AI 12f).

    ``kind`` ``recalibrated_intercept``: logit(p') = a + logit(p) (calibration-in-the-
    large corrected, ranking and slope kept); ``recalibrated_logistic``: logit(p') = a' +
    b logit(p). Returns (p', the map p -> p' for thresholds, note); p' is None with the
    reason in the note when the fit has no estimate (one class, constant predictions,
    separation, a slope <= 0 that would reverse the ranking).
    """
    rec = logistic_recalibration(y, p, level)
    if kind == "recalibrated_intercept":
        if not np.isfinite(rec.intercept):
            return None, None, rec.note or "no calibration intercept"

        def shift(q, a=rec.intercept):
            return 1 / (1 + np.exp(-(a + logit(np.asarray(q, dtype=float)))))

        return shift(p), shift, f"intercept a = {rec.intercept:.3f}"
    if kind != "recalibrated_logistic":
        raise InputError(f"recalibrate: kind must be one of {ROW_TYPES[1:]}, not {kind!r}")
    if not np.isfinite(rec.slope):
        return None, None, rec.note or "no calibration slope"
    if rec.slope <= 0:
        return (
            None,
            None,
            f"calibration slope {rec.slope:.3f} <= 0: updating would reverse the ranking",
        )

    def linear(q, a=rec.slope_model_intercept, b=rec.slope):
        return 1 / (1 + np.exp(-(a + b * logit(np.asarray(q, dtype=float)))))

    return linear(p), linear, f"a = {rec.slope_model_intercept:.3f}, b = {rec.slope:.3f}"
