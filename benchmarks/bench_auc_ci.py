"""Coverage of the AUC confidence intervals (issue 27, pipeline step 15).

Binormal scores (negatives N(0, 1), positives N(d, 1), true AUC = Phi(d / sqrt 2)), a
fresh cohort per replicate. For each scenario it prints how often each 95% interval
contains the true AUC (with the Monte Carlo 95% Wilson interval of that rate), and how
often the cohort's AUC was exactly 1 (perfect separation: the DeLong variance is 0 and
the interval is Newcombe's score-type one, [low, 1]; a NaN interval would count as not
covering):

- ``clipped normal``: AUC -+ 1.96 DeLong SE clipped to [0, 1] (the rule before issue 27);
- ``DeLong logit``: the same DeLong variance on the logit scale (metrics.delong_ci;
  Newcombe's score interval when the AUC is exactly 1);
- ``BCa bootstrap``: metrics.bootstrap_ci (stratified, BCa; fewer replicates: costlier).

    .venv/bin/python benchmarks/bench_auc_ci.py [--reps 2000] [--bca-reps 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from npc_radiomics import metrics  # noqa: E402

#: (label, true AUC, positives, negatives): the paper's test set (31 CR / 21 non-CR) at
#: its reported AUC and at a middling one, and a smaller external centre.
SCENARIOS = [
    ("paper test set, AUC 0.935", 0.935, 31, 21),
    ("paper test set, AUC 0.75", 0.75, 31, 21),
    ("small centre 15 / 10, AUC 0.90", 0.90, 15, 10),
]


def cohort(rng, auc, n_pos, n_neg):
    d = np.sqrt(2) * stats.norm.ppf(auc)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, np.r_[rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg)]


def clipped_normal(res, level=0.95):
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(res.variance)
    return max(res.auc - half, 0.0), min(res.auc + half, 1.0)


def rate(hits: np.ndarray) -> str:
    k, n = int(hits.sum()), hits.size
    low, high = metrics.wilson_ci(k, n)
    return f"{100 * k / n:5.1f}% ({100 * low:.1f}-{100 * high:.1f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000, help="cohorts per scenario (DeLong)")
    ap.add_argument("--bca-reps", type=int, default=400, help="cohorts per scenario (BCa)")
    ap.add_argument("--n-bootstrap", type=int, default=1000, help="resamples per BCa CI")
    ap.add_argument("--seed", type=int, default=2027)
    args = ap.parse_args()
    print(
        f"95% AUC CI coverage; {args.reps} cohorts per scenario (BCa: {args.bca_reps} "
        f"cohorts x {args.n_bootstrap} resamples); Monte Carlo 95% CI in brackets"
    )
    for k, (label, true_auc, n_pos, n_neg) in enumerate(SCENARIOS):
        rng = np.random.default_rng([args.seed, k])
        start = time.perf_counter()
        old, logit, nan_ci, clipped_at_1 = [], [], [], []
        bca, bca_nan = [], []
        for rep in range(args.reps):
            y, p = cohort(rng, true_auc, n_pos, n_neg)
            res = metrics.delong_ci(y, p)
            lo, hi = clipped_normal(res) if res.variance > 0 else (np.nan, np.nan)
            old.append(lo <= true_auc <= hi)
            clipped_at_1.append(hi == 1.0)
            logit.append(res.ci_low <= true_auc <= res.ci_high)
            nan_ci.append(res.auc == 1.0)
            if rep < args.bca_reps:
                b = metrics.bootstrap_ci(y, p, args.n_bootstrap, seed=rep)
                bca.append(b.ci_low <= true_auc <= b.ci_high)
                bca_nan.append(b.auc == 1.0)
        seconds = time.perf_counter() - start
        print(f"\n{label} ({n_pos} positive / {n_neg} negative), {seconds:.0f} s")
        print(
            f"  clipped normal : {rate(np.array(old))}   upper end at exactly 1: "
            f"{100 * np.mean(clipped_at_1):.1f}% of cohorts"
        )
        print(
            f"  DeLong logit   : {rate(np.array(logit))}   AUC exactly 1 (boundary CI): "
            f"{100 * np.mean(nan_ci):.1f}%"
        )
        print(
            f"  BCa bootstrap  : {rate(np.array(bca))}   AUC exactly 1: "
            f"{100 * np.mean(bca_nan):.1f}%"
        )


if __name__ == "__main__":
    main()
