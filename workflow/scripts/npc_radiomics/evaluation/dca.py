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


#: Name of the clinical model's strategy in the net-benefit tables.
CLINICAL = "clinical"
#: Columns of results/evaluation/net_benefit_ci.tsv.
NB_CI_COLUMNS = [
    "cohort",
    "strategy",
    "threshold",
    "net_benefit",
    "ci_low",
    "ci_high",
    "n",
    "in_sample",
]
#: Columns of results/evaluation/net_benefit_difference.tsv.
NB_DIFF_COLUMNS = [
    "cohort",
    "model",
    "comparator",
    "threshold",
    "difference",
    "ci_low",
    "ci_high",
    "n",
    "in_sample",
    "note",
]


def cohort_seed(seed: int, cohort: str) -> int:
    """The bootstrap seed of one cohort, derived from the master ``seed`` and the cohort's
    NAME (CRC32, :func:`~npc_radiomics.base.config.derived_seed`): adding or removing a
    centre leaves every other cohort's resamples, and so its CIs, unchanged."""
    from npc_radiomics.base.config import derived_seed

    return derived_seed(int(seed), "net_benefit", cohort)


def _cohort_matrix(c: pd.DataFrame) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """A cohort's patients (sorted ids), their labels and each model's probabilities
    aligned to them (NaN where the model has no prediction for a patient)."""
    c = c.assign(patient_id=c["patient_id"].astype(str))
    patients = sorted(c["patient_id"].unique())
    labels = c.drop_duplicates("patient_id").set_index("patient_id")["label"]
    y = labels.reindex(patients).to_numpy(dtype=int)
    probs = {
        model: g.set_index("patient_id")["probability"].reindex(patients).to_numpy(float)
        for model, g in c.groupby("model", sort=True)
    }
    return patients, y, probs


def _resampled_net_benefit(
    y: np.ndarray, p: np.ndarray, rows: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Net benefit (rows.shape[0], t.size) of treating ``p >= t`` on each row of patient
    indices; a NaN probability leaves the patient out of that row (NaN with none left)."""
    yy, pp = y[rows], p[rows]
    valid = ~np.isnan(pp)
    n = valid.sum(axis=1)
    out = np.full((rows.shape[0], t.size), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, tj in enumerate(t):
            treated = valid & (pp >= tj)
            tp = (treated & (yy == 1)).sum(axis=1)
            fp = (treated & (yy == 0)).sum(axis=1)
            out[:, j] = np.where(n > 0, tp / n - fp / n * tj / (1 - tj), np.nan)
    return out


def _interval(boots: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        low, high = np.nanquantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def net_benefit_bootstrap(
    predictions: pd.DataFrame,
    thresholds,
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    clinical: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Net benefit with percentile bootstrap CIs, and CIs of net-benefit differences, at a
    few thresholds per cohort, all from ONE set of resamples per cohort.

    In each cohort the patients (sorted ids) are resampled with replacement
    ``n_bootstrap`` times, seeded by :func:`cohort_seed` (the cohort's name), and every
    strategy is scored on those same resamples: each model, treat-all, the clinical model
    (``clinical``: its predictions, same columns as ``predictions``, optional) and the
    differences model - treat-all and model - clinical (paired; a difference uses the
    patients both strategies scored). Two identical models get identical intervals.

    Returns (ci, differences): ``ci`` with :data:`NB_CI_COLUMNS`, ``differences`` with
    :data:`NB_DIFF_COLUMNS`. ``in_sample`` marks the cohort the final models were fitted
    on (train): optimistic. A clinical model without predictions in a cohort gives
    difference rows with NaN and a note.
    """
    from npc_radiomics.base.layout import in_sample

    df = check_predictions(predictions)
    df = df[df["probability"].notna()]
    t = _check_thresholds(thresholds)
    clin = None
    if clinical is not None and len(clinical):
        clin = check_predictions(clinical.assign(model=CLINICAL))
    ci_rows, diff_rows = [], []
    for cohort in cohort_order(df["cohort"]):
        c = df[df["cohort"] == cohort]
        patients, y, probs = _cohort_matrix(c)
        rng = np.random.default_rng(cohort_seed(seed, cohort))
        rows = np.vstack(
            [np.arange(len(patients)), rng.integers(0, len(patients), (n_bootstrap, len(patients)))]
        )
        flag = in_sample(cohort)
        everyone = np.ones(len(patients))
        strategies = dict(probs)
        clin_p = None
        clin_note = "no clinical model predictions"
        if clin is not None:
            k = clin[clin["cohort"] == cohort].copy()
            k["patient_id"] = k["patient_id"].astype(str)
            clin_p = k.set_index("patient_id")["probability"].reindex(patients).to_numpy(float)
            if np.isnan(clin_p).all():
                clin_p = None
                clin_note = "the clinical model has no prediction in this cohort"
            else:
                strategies[CLINICAL] = clin_p
        strategies[TREAT_ALL] = everyone
        for name, p in strategies.items():
            nb = _resampled_net_benefit(y, p, rows, t)
            low, high = _interval(nb[1:], level)
            n = int((~np.isnan(p)).sum())
            for j, tj in enumerate(t):
                ci_rows.append((cohort, name, float(tj), nb[0, j], low[j], high[j], n, flag))
        for model, p in probs.items():
            comparators = [(TREAT_ALL, everyone), (CLINICAL, clin_p)]
            for comp, q in comparators:
                if q is None:
                    for tj in t:
                        row = (cohort, model, comp, float(tj), np.nan, np.nan, np.nan, 0)
                        diff_rows.append((*row, flag, clin_note))
                    continue
                both = ~np.isnan(p) & ~np.isnan(q)
                pm, qm = np.where(both, p, np.nan), np.where(both, q, np.nan)
                d = _resampled_net_benefit(y, pm, rows, t) - _resampled_net_benefit(y, qm, rows, t)
                low, high = _interval(d[1:], level)
                for j, tj in enumerate(t):
                    diff_rows.append(
                        (
                            cohort,
                            model,
                            comp,
                            float(tj),
                            d[0, j],
                            low[j],
                            high[j],
                            int(both.sum()),
                            flag,
                            "",
                        )
                    )
    return (
        pd.DataFrame(ci_rows, columns=NB_CI_COLUMNS),
        pd.DataFrame(diff_rows, columns=NB_DIFF_COLUMNS),
    )


def net_benefit_ci(
    predictions: pd.DataFrame,
    thresholds,
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    clinical: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Net benefit with a percentile bootstrap CI at a few thresholds, per model, cohort
    and the treat-all strategy (and the clinical model, if given): the first table of
    :func:`net_benefit_bootstrap` (one set of resamples per cohort, seeded by its name).

    Returns :data:`NB_CI_COLUMNS` (cohort, strategy, threshold, net_benefit, ci_low,
    ci_high, n, in_sample).
    """
    return net_benefit_bootstrap(predictions, thresholds, n_bootstrap, level, seed, clinical)[0]


def dca_rule(
    predictions_path,
    out,
    thresholds,
    ci_thresholds=(0.2, 0.3, 0.4, 0.5, 0.6),
    n_bootstrap: int = 2000,
    seed: int = 0,
    clinical_path=None,
) -> str:
    """Rule ``decision_curves``: net-benefit curves, beneficial ranges, net benefit with
    bootstrap CIs at ``ci_thresholds``, the CIs of the net-benefit differences (model -
    treat-all, model - clinical model when ``clinical_path``, the clinical analysis's
    predictions, is given) and the figure, written to ``out`` (curves, ranges, ci,
    difference, figure). ``thresholds``: (start, stop, step)."""
    from npc_radiomics.base.io import read_table, write_tsv
    from npc_radiomics.base.layout import in_sample
    from npc_radiomics.figures import figure_or_placeholder, plot_decision_curves

    predictions = read_table(predictions_path, dtype={"patient_id": str})
    clinical = None
    if clinical_path:
        clinical = read_table(clinical_path, dtype={"patient_id": str})
    curves = decision_curves(predictions, threshold_grid(*thresholds))
    ranges = beneficial_ranges(curves)
    ranges["in_sample"] = ranges["cohort"].map(in_sample).astype(bool)
    write_tsv(curves, out.curves)
    write_tsv(ranges, out.ranges)
    ci, difference = net_benefit_bootstrap(
        predictions, ci_thresholds, n_bootstrap, seed=seed, clinical=clinical
    )
    write_tsv(ci, out.ci)
    write_tsv(difference, out.difference)
    figure_or_placeholder(plot_decision_curves, out.figure, curves)
    return f"decision curves: {curves['cohort'].nunique()} cohorts, {len(ranges)} range rows"
