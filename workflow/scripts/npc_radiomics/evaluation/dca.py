"""Decision-curve analysis (Vickers & Elkin 2006): net benefit over threshold probabilities.

Net benefit at threshold probability t (unitless, per patient):

    NB(t) = TP / n - FP / n * t / (1 - t)

with positive = ``p >= t`` (the convention of the ``dcurves`` package). "Treat all"
calls every patient positive, "treat none" has NB = 0 everywhere. A model is useful at
t only where its NB exceeds both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.layout import TREAT_ALL, TREAT_NONE, cohort_order
from npc_radiomics.metrics import check_predictions, check_probabilities

# NB differences below this are float noise, not a benefit
_TOLERANCE = 1e-12


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    """Threshold probabilities start, start + step, ..., stop (inclusive), e.g. config
    ``evaluation.dca_thresholds: [0.01, 0.99, 0.01]``. Rounded to 10 decimals so that
    0.29 is 0.29 and not 0.29000000000000004."""
    if not 0 < start <= stop < 1 or step <= 0:
        raise InputError(
            "dca thresholds: need 0 < start <= stop < 1 and step > 0, "
            f"got [{start}, {stop}, {step}]"
        )
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), 10)


def _check_thresholds(thresholds) -> np.ndarray:
    t = np.asarray(thresholds, dtype=float)
    if t.ndim != 1 or t.size == 0 or not ((t > 0) & (t < 1)).all():
        raise InputError("dca: threshold probabilities must be a non-empty list within (0, 1)")
    return t


def net_benefit(y, p, thresholds) -> np.ndarray:
    """Net benefit of treating patients with ``p >= t``, for each threshold t."""
    y, p = check_probabilities(y, p, "dca")
    t = _check_thresholds(thresholds)
    if y.size == 0:
        raise InputError("dca: no patients")
    n = y.size
    # count patients at or above each threshold with one sort instead of a loop
    pos = np.sort(p[y == 1])
    neg = np.sort(p[y == 0])
    tp = pos.size - np.searchsorted(pos, t, side="left")
    fp = neg.size - np.searchsorted(neg, t, side="left")
    return tp / n - fp / n * t / (1 - t)


def net_benefit_treat_all(y, thresholds) -> np.ndarray:
    """Net benefit of treating every patient: prevalence - (1 - prevalence) t / (1 - t)."""
    y = np.asarray(y)
    t = _check_thresholds(thresholds)
    if y.size == 0:
        raise InputError("dca: no patients")
    prevalence = float(np.mean(y))
    return prevalence - (1 - prevalence) * t / (1 - t)


def decision_curve(y, p, thresholds, model: str = "model") -> pd.DataFrame:
    """Tidy decision curve of one model: columns threshold, strategy, net_benefit.

    ``strategy`` is the model's name, "treat_all" or "treat_none".
    """
    t = _check_thresholds(thresholds)
    curves = {
        model: net_benefit(y, p, t),
        TREAT_ALL: net_benefit_treat_all(y, t),
        TREAT_NONE: np.zeros(t.size),
    }
    return pd.concat(
        [
            pd.DataFrame({"threshold": t, "strategy": k, "net_benefit": v})
            for k, v in curves.items()
        ],
        ignore_index=True,
    )


def decision_curves(
    predictions: pd.DataFrame, thresholds, models: list[str] | None = None
) -> pd.DataFrame:
    """Decision curves of every model (or ``models``) on every cohort.

    ``predictions``: the predictions table (patient_id, cohort, model, probability,
    label). Returns columns cohort, strategy, threshold, net_benefit, n, prevalence;
    treat-all / treat-none appear once per cohort (computed on the patients of the
    first model: all models are scored on the same patients of a cohort).
    Rows with a missing probability are left out.
    """
    df = check_predictions(predictions)
    df = df[df["probability"].notna()]
    t = _check_thresholds(thresholds)
    wanted = sorted(df["model"].unique()) if models is None else list(models)
    parts = []
    for cohort in cohort_order(df["cohort"]):
        c = df[df["cohort"] == cohort]
        reference_done = False
        for model in wanted:
            g = c[c["model"] == model]
            if g.empty:
                continue
            y, p = g["label"].to_numpy(), g["probability"].to_numpy()
            curve = decision_curve(y, p, t, model)
            if reference_done:
                curve = curve[curve["strategy"] == model]
            reference_done = True
            parts.append(curve.assign(cohort=cohort, n=len(g), prevalence=float(y.mean())))
    columns = ["cohort", "strategy", "threshold", "net_benefit", "n", "prevalence"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in a boolean array."""
    padded = np.r_[False, mask, False].astype(int)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def beneficial_ranges(curves: pd.DataFrame) -> pd.DataFrame:
    """Threshold ranges where a model's net benefit beats both treat-all and treat-none.

    ``curves``: output of :func:`decision_curves`. Returns columns cohort, model,
    threshold_low, threshold_high (inclusive ends of each contiguous run on the grid)
    and max_net_benefit within the run. A model that never beats both has one row with
    NaN ends, so the report can say so.
    """
    rows = []
    for cohort in cohort_order(curves["cohort"]):
        c = curves[curves["cohort"] == cohort]
        everyone = c[c["strategy"] == TREAT_ALL].set_index("threshold")["net_benefit"]
        for model in sorted(set(c["strategy"]) - {TREAT_ALL, TREAT_NONE}):
            m = c[c["strategy"] == model].set_index("threshold")["net_benefit"].sort_index()
            baseline = np.maximum(everyone.reindex(m.index).to_numpy(), 0.0)
            beats = m.to_numpy() > baseline + _TOLERANCE
            runs = _runs(beats)
            if not runs:
                rows.append((cohort, model, np.nan, np.nan, np.nan))
            for lo, hi in runs:
                nb = m.to_numpy()[lo : hi + 1]
                rows.append((cohort, model, m.index[lo], m.index[hi], float(nb.max())))
    return pd.DataFrame(
        rows, columns=["cohort", "model", "threshold_low", "threshold_high", "max_net_benefit"]
    )


def format_ranges(ranges: pd.DataFrame, cohort: str, model: str) -> str:
    """Human-readable ranges, e.g. "0.05-0.62, 0.70-0.80", or "none"."""
    r = ranges[(ranges["cohort"] == cohort) & (ranges["model"] == model)].dropna()
    if r.empty:
        return "none"
    return ", ".join(
        f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(r.threshold_low, r.threshold_high, strict=True)
    )


def net_benefit_ci(
    predictions: pd.DataFrame,
    thresholds,
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Net benefit with a percentile bootstrap CI at a few thresholds, per model, cohort
    and the treat-all strategy (patients resampled with replacement; seeded, the same
    resamples for every strategy of a cohort, so their CIs are comparable).

    Returns cohort, strategy, threshold, net_benefit, ci_low, ci_high, n.
    """
    df = check_predictions(predictions)
    df = df[df["probability"].notna()]
    t = _check_thresholds(thresholds)
    rows = []
    for k, cohort in enumerate(cohort_order(df["cohort"])):
        c = df[df["cohort"] == cohort]
        rng = np.random.default_rng([int(seed), k])
        for model in sorted(c["model"].unique()):
            g = c[c["model"] == model].sort_values("patient_id", kind="mergesort")
            y, p = g["label"].to_numpy(), g["probability"].to_numpy()
            idx = rng.integers(0, y.size, (n_bootstrap, y.size))
            strategies = [(model, lambda yy, pp: net_benefit(yy, pp, t))]
            if model == sorted(c["model"].unique())[0]:
                strategies.append((TREAT_ALL, lambda yy, pp: net_benefit_treat_all(yy, t)))
            for name, fn in strategies:
                point = fn(y, p)
                boots = np.array([fn(y[i], p[i]) for i in idx])
                low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
                for j, tj in enumerate(t):
                    rows.append((cohort, name, float(tj), point[j], low[j], high[j], y.size))
    columns = ["cohort", "strategy", "threshold", "net_benefit", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=columns)


def dca_rule(
    predictions_path,
    out,
    thresholds,
    ci_thresholds=(0.2, 0.3, 0.4, 0.5, 0.6),
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> str:
    """Rule ``decision_curves``: net-benefit curves, beneficial ranges, net benefit with
    bootstrap CIs at ``ci_thresholds`` and the figure, written to ``out`` (curves, ranges,
    ci, figure). ``thresholds``: (start, stop, step)."""
    from npc_radiomics.base.io import read_table, write_tsv
    from npc_radiomics.figures import figure_or_placeholder, plot_decision_curves

    predictions = read_table(predictions_path, dtype={"patient_id": str})
    curves = decision_curves(predictions, threshold_grid(*thresholds))
    ranges = beneficial_ranges(curves)
    write_tsv(curves, out.curves)
    write_tsv(ranges, out.ranges)
    write_tsv(net_benefit_ci(predictions, ci_thresholds, n_bootstrap, seed=seed), out.ci)
    figure_or_placeholder(plot_decision_curves, out.figure, curves)
    return f"decision curves: {curves['cohort'].nunique()} cohorts, {len(ranges)} range rows"
