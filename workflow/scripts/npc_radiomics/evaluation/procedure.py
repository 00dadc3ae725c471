"""The headline: the estimate of the whole modelling procedure, model choice included
(pipeline step 13; Table 3's first row, the report's first screen, the permutation
statistic).

The procedure as run is "tune every configured model by inner CV, keep the one with the
best inner-CV AUC". Nested CV repeats it inside each outer fold: the model with the best
inner-CV AUC *on the fold's training part* (ties to the name) is scored on the fold's
held-out patients. The chosen model's own nested-CV AUC is not an estimate of this
procedure: it is the largest of several noisy estimates, hence optimistic.

**Estimate.** The mean over outer folds of the chosen fold models' held-out AUCs.

**95% CI** (:func:`procedure_auc`): conditional on the fold models, the outer folds'
held-out patients are disjoint, so the fold AUCs are independent; each has a DeLong
variance, the mean has their sum / K^2. The interval is built on the logit scale
(delta method, back-transformed), so it stays inside (0, 1) and is asymmetric near 1
without clipping. Target of the interval: the mean true AUC (on new patients of the same
population) of the models the procedure produced in the outer folds, i.e. what the
procedure delivers from (K-1)/K of this cohort. Why this method and not a bootstrap of
the outer loop: a bootstrap of the outer loop refits selection and tuning of every model
per replicate (hundreds of times the run's cost), and DeLong on pooled out-of-fold
predictions would pool probabilities of different models on different scales. The
coverage of this interval is measured by ``benchmarks/bench_null.py`` (a planted signal,
truth from a large independent sample of the same generator; under no signal the true
AUC of every fold model is exactly 0.5).

Measured (bench_null, 100 + 100 datasets of the paper's shape, reduced model set): 87%
coverage of 0.5 under no signal (5% of the intervals above 0.5) and 88% coverage of the
truth under a planted signal, below the nominal 95%. The estimate itself is unbiased
(mean 0.500 under no signal) but its SD over datasets (0.069) exceeds the SE the
interval implies (0.054): the fold AUCs are positively correlated, because each fold
model is trained on the other folds' held-out labels, and the per-fold DeLong sum leaves
that covariance out (Bates, Hastie and Tibshirani 2023, "Cross-validation: what does it
estimate and how well does it do it?", JASA). The verdict therefore never rests on this
interval alone: it also needs the permutation p-value of the same statistic, exact under
no signal whatever the interval's coverage. A corrected interval (their nested-CV
estimate of the MSE) is open work.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: ``model`` of the procedure's row in metrics.tsv (cohort ``nested_cv``): Table 3's first row.
PROCEDURE = "nested_cv_procedure"
#: How the procedure's CI is computed (metrics.tsv ``ci_method``).
PROCEDURE_CI_METHOD = "delong_per_fold_logit"


def choose_per_fold(fold_infos: list[dict]) -> dict[int, dict | None]:
    """The procedure's choice in each outer fold: among the fold's models that did not fail
    and have an inner-CV AUC, the highest inner-CV AUC (ties to the model name); None for a
    fold where no model qualifies. ``fold_infos``: records with model, outer_fold,
    inner_cv_auc (and ``failed`` for a failed fold)."""
    folds = sorted({int(f["outer_fold"]) for f in fold_infos})
    choice: dict[int, dict | None] = {}
    for k in folds:
        candidates = [
            f
            for f in fold_infos
            if int(f["outer_fold"]) == k
            and not f.get("failed")
            and f.get("inner_cv_auc") is not None
            and np.isfinite(float(f["inner_cv_auc"]))
        ]
        if not candidates:
            choice[k] = None
            continue
        candidates.sort(key=lambda f: f["model"])  # max keeps the first: ties to the name
        choice[k] = max(candidates, key=lambda f: float(f["inner_cv_auc"]))
    return choice


def procedure_auc(fold_predictions: list[tuple[np.ndarray, np.ndarray]], level: float = 0.95):
    """Mean of the fold AUCs with its logit-scale CI (see the module docstring).

    ``fold_predictions``: per outer fold, (labels, probabilities) of the fold's chosen
    model on its held-out patients. Returns (auc, ci_low, ci_high, note): NaN CI with a
    note when a fold has one class or fewer than 2 patients of a class (no DeLong
    variance), or when every fold AUC is 0 or 1 (the logit is infinite).
    """
    from scipy import stats

    from npc_radiomics.metrics import delong_ci

    nan = float("nan")
    if not fold_predictions:
        return nan, nan, nan, "no outer fold has predictions"
    results = [delong_ci(y, p, level) for y, p in fold_predictions]
    aucs = np.array([r.auc for r in results])
    variances = np.array([r.variance for r in results])
    if not np.all(np.isfinite(aucs)):
        return nan, nan, nan, "an outer fold's held-out patients have one class: no AUC"
    estimate = float(aucs.mean())
    if not np.all(np.isfinite(variances)):
        return estimate, nan, nan, "an outer fold has fewer than 2 patients of a class: no CI"
    if not 0 < estimate < 1:
        return estimate, nan, nan, f"every outer-fold AUC is {estimate:g}: no logit-scale CI"
    se = math.sqrt(float(variances.sum())) / len(aucs)
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = math.log(estimate / (1 - estimate))
    half = z * se / (estimate * (1 - estimate))
    low, high = (1 / (1 + math.exp(-(centre + s * half))) for s in (-1, 1))
    return estimate, float(low), float(high), ""


def procedure_estimate(fold_infos: list[dict], nested: pd.DataFrame, level: float = 0.95) -> dict:
    """The headline record: per outer fold the chosen model, its inner-CV AUC and held-out
    AUC; the procedure's AUC (mean over folds) with its 95% CI; n patients. ``nested``:
    nested-CV predictions (patient_id, model, outer_fold, probability, label). The
    estimate is None unless every outer fold has a chosen model with predictions."""
    from npc_radiomics.metrics import auc

    choice = choose_per_fold(fold_infos)
    rows, parts = [], []
    for k, best in choice.items():
        if best is None:
            rows.append({"outer_fold": k, "model": None, "inner_cv_auc": None, "outer_auc": None})
            continue
        g = nested[
            (nested["model"] == best["model"])
            & (nested["outer_fold"].astype(int) == k)
            & nested["probability"].notna()
        ]
        y, p = g["label"].to_numpy(dtype=int), g["probability"].to_numpy(dtype=float)
        a = auc(y, p) if len(g) else float("nan")
        if len(g):
            parts.append((y, p))
        rows.append(
            {
                "outer_fold": k,
                "model": best["model"],
                "inner_cv_auc": float(best["inner_cv_auc"]),
                "outer_auc": None if not np.isfinite(a) else float(a),
                "n": len(g),
            }
        )
    complete = bool(rows) and len(parts) == len(rows)
    estimate, low, high, note = procedure_auc(parts, level) if complete else (None,) * 3 + ("",)
    aucs = [r["outer_auc"] for r in rows if r["outer_auc"] is not None]

    def _num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    return {
        "auc": _num(estimate),
        "auc_ci_low": _num(low),
        "auc_ci_high": _num(high),
        "ci_level": level,
        "ci_method": PROCEDURE_CI_METHOD,
        "auc_sd": float(np.std(aucs, ddof=1)) if complete and len(aucs) > 1 else None,
        "n": int(sum(len(y) for y, _ in parts)),
        "n_folds": len(rows),
        "folds": rows,
        "note": (
            "model chosen inside each outer fold by inner-CV AUC, scored on the fold's "
            "held-out patients: the estimate of the whole procedure, model choice "
            "included; 95% CI from the folds' DeLong variances on the logit scale"
        ),
        # why the estimate or its CI is missing (empty when both are there)
        "ci_note": note if complete else "an outer fold has no chosen model with predictions",
    }


def procedure_metrics_row(record: dict) -> dict:
    """metrics.tsv's row of the procedure (model :data:`PROCEDURE`, cohort ``nested_cv``):
    AUC and CI; the threshold metrics are left empty (the fold models' probabilities are
    on different scales, so no pooled threshold means anything)."""

    def _f(x):
        return float("nan") if x is None else float(x)

    return {
        "model": PROCEDURE,
        "n": record["n"],
        "auc": _f(record["auc"]),
        "auc_ci_low": _f(record["auc_ci_low"]),
        "auc_ci_high": _f(record["auc_ci_high"]),
        "auc_sd": _f(record["auc_sd"]),
        "n_folds": record["n_folds"],
        "ci_method": record["ci_method"],
        "note": (
            "the procedure as run: in each outer fold the model with the best inner-CV AUC "
            "(" + ", ".join(f"{r['model']}" for r in record["folds"]) + "), scored on the "
            "fold's held-out patients; auc = mean over outer folds; threshold metrics not "
            "defined (fold models on different probability scales)"
            + (f"; {record['ci_note']}" if record.get("ci_note") else "")
        ),
    }
