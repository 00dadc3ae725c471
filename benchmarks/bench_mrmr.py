"""mRMR: npc_radiomics MRMRSelector vs mrmr_selection.mrmr_classif on 173 x 3,600.

Prints both run times, the speed-up ratio (target >= 500x) and whether the selections
are identical (same features, same order). BLAS is limited to one thread for both.

    .venv/bin/python benchmarks/bench_mrmr.py [--k 100] [--n-jobs 1] [--repeats 5]
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
import pandas as pd  # noqa: E402


def radiomics_like(n=173, p=3600, seed=0):
    """Standardised table with correlated feature families and a modest signal."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 60))
    mixing = rng.normal(size=(60, p)) * (rng.random((60, p)) < 0.05)
    X = latent @ mixing + rng.normal(size=(n, p))
    y = (latent[:, :3].sum(axis=1) + rng.normal(scale=1.5, size=n) > 0).astype(int)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return pd.DataFrame(X, columns=[f"T1__f{j:04d}" for j in range(p)]), pd.Series(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--n-jobs", type=int, default=1, help="mrmr_classif workers")
    ap.add_argument("--repeats", type=int, default=5, help="runs of ours (best is kept)")
    args = ap.parse_args()
    from mrmr import mrmr_classif

    from npc_radiomics.modelling.selection import MRMRSelector

    X, y = radiomics_like()
    ours = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        sel = MRMRSelector(k=args.k).fit(X, y)
        ours.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    expected = mrmr_classif(X, y, args.k, show_progress=False, n_jobs=args.n_jobs)
    t_lib = time.perf_counter() - t0
    identical = list(sel.get_feature_names_out()) == list(expected)
    t_ours = min(ours)
    print(f"table: {X.shape[0]} x {X.shape[1]}, k = {args.k}")
    print(f"mrmr_classif (n_jobs={args.n_jobs}): {t_lib:.2f} s")
    print(f"MRMRSelector: best {t_ours * 1000:.1f} ms, median {np.median(ours) * 1000:.1f} ms")
    print(f"speed-up: {t_lib / t_ours:.0f}x (median {t_lib / np.median(ours):.0f}x)")
    print(f"identical selection and order: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
