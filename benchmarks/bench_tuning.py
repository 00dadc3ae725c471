"""Tuning one model: fold-cached selection vs a naive pipeline refitting selection per trial.

Both evaluate the same hyper-parameters on the same inner folds (the naive loop replays
the parameters the cached run drew), so the AUCs must agree; prints both times and the
ratio.

    .venv/bin/python benchmarks/bench_tuning.py [--trials 10] [--folds 5] [--model knn]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--features", type=int, default=600)
    ap.add_argument("--model", default="logistic_regression")
    args = ap.parse_args()
    from bench_mrmr import radiomics_like

    from npc_radiomics.base.config import derived_seed
    from npc_radiomics.modelling.folds import stratified_folds
    from npc_radiomics.modelling.settings import TuningSettings
    from npc_radiomics.modelling.studies import (
        finished_slots,
        model_pipeline,
        model_seed,
        trials_table,
        tune,
    )
    from npc_radiomics.modelling.zoo import parse_search_spaces

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    space = parse_search_spaces(cfg["search_spaces"], [args.model])[args.model]
    X, y = radiomics_like(n=121, p=args.features)
    X.index = [f"P{i:03d}" for i in range(len(X))]
    y.index = X.index
    settings = TuningSettings.from_config(cfg)
    settings = TuningSettings.defaults(
        **{**settings.__dict__, "n_trials": args.trials, "inner_folds": args.folds}
    )
    seed = cfg["seed"]

    t0 = time.perf_counter()
    study, _ = tune(args.model, space, X, y, settings, seed)
    t_cached = time.perf_counter() - t0
    table = trials_table(finished_slots(study), args.model)

    # Naive: the whole pipeline (selection + classifier) refitted for every trial x fold.
    folds = stratified_folds(y, settings.inner_folds, derived_seed(seed, "inner_folds", "full"))
    selection = settings.selection(seed)
    t0 = time.perf_counter()
    naive = []
    for params in table["params"].map(json.loads):
        aucs = []
        for tr, va in folds:
            pipe = model_pipeline(args.model, params, selection, model_seed(seed, args.model))
            pipe.fit(X.iloc[tr], y.iloc[tr].to_numpy())
            aucs.append(roc_auc_score(y.iloc[va], pipe.predict_proba(X.iloc[va])[:, 1]))
        naive.append(float(np.mean(aucs)))
    t_naive = time.perf_counter() - t0
    same = np.allclose(naive, table["auc"].to_numpy(), rtol=0, atol=1e-12)
    print(f"{args.model}: {args.trials} trials x {args.folds} inner folds on 121 x {args.features}")
    print(f"fold-cached selection: {t_cached:.1f} s")
    print(f"naive (selection refitted every trial): {t_naive:.1f} s")
    print(f"speed-up: {t_naive / t_cached:.1f}x; same AUCs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
