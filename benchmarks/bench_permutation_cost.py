"""CPU cost of one permutation of the whole procedure (rule permutation_run).

A permutation job runs every configured model's nested CV on permuted labels, the
selection fitted once per outer fold and shared by the models
(``validation.permutation.permuted_procedure``). ``--preset demo`` times one whole
permutation at config/demo.yaml's tuning settings on a table of the small demo cohort's
training shape (``--n`` patients x ``--features``). ``--preset paper`` cannot be run on a
laptop (100 trials x 10 inner folds x 5 outer folds x 8 models): it times, on a table of
the paper's training shape, one outer fold's selection context and ``--trials`` tuning
trials of each model on it, then extrapolates linearly in the trial count:

    per permutation = outer_folds x (selection context + sum over models of
                      (100 / trials) x tuning time of the model's trials + refit)

    .venv/bin/python benchmarks/bench_permutation_cost.py --preset demo
    .venv/bin/python benchmarks/bench_permutation_cost.py --preset paper --trials 4
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    return time.process_time()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=["demo", "paper"], default="demo")
    ap.add_argument("--n", type=int, default=None, help="training patients")
    ap.add_argument("--features", type=int, default=None)
    ap.add_argument("--trials", type=int, default=4, help="paper: trials timed per model")
    args = ap.parse_args()
    from bench_mrmr import radiomics_like

    from npc_radiomics.base.config import load_yaml
    from npc_radiomics.modelling.fits import nested_cv_fold
    from npc_radiomics.modelling.folds import fit_context_selection
    from npc_radiomics.modelling.settings import TuningSettings
    from npc_radiomics.modelling.zoo import parse_search_spaces
    from npc_radiomics.validation.permutation import permuted_procedure

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    models = sorted(cfg["models"])
    spaces = parse_search_spaces(cfg["search_spaces"], models)
    if args.preset == "demo":
        demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
        for key in ("tuning", "selection"):
            cfg[key] = {**cfg[key], **demo[key]}
            if key == "selection":
                cfg[key]["lasso"] = {**cfg["selection"]["lasso"], **demo[key]["lasso"]}
        n, p = args.n or 28, args.features or 300
    else:
        n, p = args.n or 121, args.features or 1000
    settings = TuningSettings.from_config(cfg)
    X, y = radiomics_like(n=n, p=p)
    X.index = [f"P{i:03d}" for i in range(n)]
    y.index = X.index
    print(
        f"{args.preset}: {n} training patients x {p} features, {len(models)} models, "
        f"{settings.n_trials} trials, {settings.inner_folds} inner / {settings.outer_folds} "
        f"outer folds, mRMR k {settings.mrmr_k}; CPU seconds (process time, 1 thread)"
    )
    if args.preset == "demo":
        t0 = _cpu()
        rows = permuted_procedure(models, spaces, X, y, 0, settings, cfg["seed"])
        cpu = _cpu() - t0
        print(f"one permutation: {cpu:.0f} CPU s (procedure's AUC {rows[0]['auc_mean']:.3f})")
        return
    from dataclasses import replace

    timed = replace(settings, n_trials=args.trials, pruning=False)
    t0 = _cpu()
    cache = fit_context_selection(X, y, timed, cfg["seed"], "outer0")
    t_sel = _cpu() - t0
    print(
        f"selection context (outer fold 0: {timed.inner_folds} inner fits + refit): {t_sel:.1f} s"
    )
    total = 0.0
    for model in models:
        t0 = _cpu()
        nested_cv_fold(model, spaces[model], X, y, 0, timed, cfg["seed"], cache=cache)
        t = _cpu() - t0
        per_fold = t * settings.n_trials / args.trials
        total += per_fold
        print(
            f"  {model}: {args.trials} trials + refit {t:.1f} s -> {settings.n_trials} trials "
            f"~{per_fold:.0f} s per outer fold"
        )
    estimate = settings.outer_folds * (t_sel + total)
    print(
        f"estimate per permutation: {settings.outer_folds} x ({t_sel:.0f} + {total:.0f}) = "
        f"{estimate:.0f} CPU s = {estimate / 3600:.1f} CPU h (without pruning, which the real "
        "run's settings enable and which only lowers it)"
    )


if __name__ == "__main__":
    main()
