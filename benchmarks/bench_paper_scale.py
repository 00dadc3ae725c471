"""The paper's tuning configuration, before vs after the tuning-cost changes, in one run.

A synthetic feature table of the paper's shape (173 training + 55 external patients x
3,600 radiomics-like features with a planted signal, benchmarks/bench_mrmr.py) goes
through nested CV as the workflow's ``nested_cv_fold`` jobs do it: per outer fold, the
selection fitted once per inner fold, ``n_trials`` trials of inner CV, the refit of the
best trial on the outer-training rows and its out-of-fold predictions. Each model is
tuned twice on the same cached selections and seeds:

  before  today's code path: no pruning, one thread, the former search spaces
          (forests' n_estimators 100-500)
  after   config/config.yaml as it is: tuning.pruning, tuning.threads_per_job and its
          search spaces, and the selection of each CV context fitted once for every
          model (rule cv_selection): its CPU is shared by the models, the refit fits only
          the classifier behind the context's fitted selection

and CPU-seconds (process time, every thread counted) are reported per model and stage
(selection, tuning, refit), with the nested-CV AUC of both. The full configuration
(every outer fold, all models, plus the whole-training-set study, the final fit and the
final-CV threshold's refits) costs CPU-hours before; ``--outer-folds-run``, ``--trials``
and ``--models`` measure a subset, and the script prints what it measured and its linear
extrapolation to the full configuration.

    .venv/bin/python benchmarks/bench_paper_scale.py [--outer-folds-run 1] [--trials 100]
        [--models random_forest,svm] [--threads 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "workflow" / "scripts"), str(HERE)]

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

#: The search spaces' entries that this change narrowed: what "before" tunes.
BEFORE_SPACES = {
    "random_forest": {"n_estimators": {"type": "int", "low": 100, "high": 500, "step": 50}},
    "extra_trees": {"n_estimators": {"type": "int", "low": 100, "high": 500, "step": 50}},
}


def cpu() -> float:
    return time.process_time()


def variant_settings(cfg: dict, args, after: bool):
    """(TuningSettings, search spaces, threads) of one variant."""
    from npc_radiomics.modelling.settings import TuningSettings, model_threads

    cfg = copy.deepcopy(cfg)
    cfg["tuning"]["n_trials"] = args.trials or cfg["tuning"]["n_trials"]
    cfg["tuning"]["inner_folds"] = args.inner_folds or cfg["tuning"]["inner_folds"]
    if args.threads:
        cfg["tuning"]["threads_per_job"] = args.threads
    spaces = cfg["search_spaces"]
    if not after:
        cfg["tuning"]["pruning"] = {"enabled": False}
        for model, params in BEFORE_SPACES.items():
            spaces[model] = {**spaces[model], **params}
    settings = TuningSettings.from_config(cfg)
    threads = {m: model_threads(cfg, m) if after else 1 for m in cfg["models"]}
    return settings, spaces, threads


#: Each outer fold's data, shared with the forked workers: {fold: context}.
_CTX: dict = {}


#: The models whose studies cost most (dispatched first with --jobs).
_COSTLY = {"random_forest", "extra_trees", "mlp", "xgboost"}


def _keyed_task(task: tuple[int, str, str]):
    return task, _task(task)


def _task(task: tuple[int, str, str]):
    """Tune one model in one variant on one outer fold; (row, predictions, line)."""
    from npc_radiomics.modelling.folds import pipeline_on_selection
    from npc_radiomics.modelling.studies import (
        best_params,
        finished_slots,
        model_pipeline,
        model_seed,
        open_study,
        run_slots,
    )
    from npc_radiomics.modelling.zoo import parse_search_spaces

    k, model, name = task
    c = _CTX[k]
    settings, spaces, threads = c["variants"][name]
    X_tr, y_tr, seed, context = c["X_tr"], c["y_tr"], c["seed"], c["context"]
    space = parse_search_spaces(spaces, [model])[model]
    study = open_study(None, f"{model}-{context}-{name}")
    t0 = cpu()
    run_slots(model, space, c["cache"], settings, seed, context, study, n_jobs=threads[model])
    t_tune = cpu() - t0
    best = best_params(study, model, settings.n_trials)
    t0 = cpu()
    mseed = model_seed(seed, model)
    if name == "before":
        pipe = model_pipeline(model, best["params"], c["selection"], mseed, threads[model])
        pipe.fit(X_tr, y_tr.to_numpy())
    else:
        pipe = pipeline_on_selection(
            model, best["params"], c["refit_selection"], X_tr, y_tr.to_numpy(), mseed,
            threads[model],
        )  # fmt: skip
    prob = pipe.predict_proba(c["X_va"])[:, 1]
    t_refit = cpu() - t0
    done = finished_slots(study)
    folds_run = sum(len(t.user_attrs.get("fold_aucs") or []) for t in done.values())
    row = {
        "model": model,
        "variant": name,
        "fold": k,
        "selection": c["t_sel"] if name == "before" else c["shared_sel"],
        "tuning": t_tune,
        "refit": t_refit,
        "pruned": best["n_pruned"],
        "fold_fits": folds_run,
        "inner_auc": best["inner_cv_auc"],
    }
    pred = pd.DataFrame({"model": model, "variant": name, "label": c["y_va"].to_numpy(), "p": prob})
    line = (
        f"  {model:20s} {name:6s} tuning {t_tune:7.1f} refit {t_refit:5.1f} CPU-s, "
        f"{best['n_pruned']:3d} pruned, inner AUC {best['inner_cv_auc']:.4f}, "
        f"outer AUC {roc_auc_score(c['y_va'], prob):.4f}"
    )
    return row, pred, line


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outer-folds-run", type=int, default=None, help="first k outer folds")
    ap.add_argument("--trials", type=int, default=None, help="trials per study (config)")
    ap.add_argument("--inner-folds", type=int, default=None, help="inner folds (config)")
    ap.add_argument("--models", default=None, help="comma-separated (config: all)")
    ap.add_argument("--features", type=int, default=3600)
    ap.add_argument("--threads", type=int, default=None, help="after: threads_per_job")
    ap.add_argument(
        "--jobs", type=int, default=1,
        help="(model, variant) studies run at once in forked processes, each timing its own "
        "CPU (results identical; 2 halves the wall time on 2 cores)",
    )  # fmt: skip
    args = ap.parse_args()
    from bench_mrmr import radiomics_like

    from npc_radiomics.base.config import derived_seed
    from npc_radiomics.modelling.folds import (
        fit_fold_selections,
        outer_folds,
        stratified_folds,
    )

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    models = args.models.split(",") if args.models else list(cfg["search_spaces"])
    cfg["models"] = models
    seed = cfg["seed"]
    full = {k: cfg["tuning"][k] for k in ("n_trials", "inner_folds", "outer_folds")}
    variants = {
        "before": variant_settings(cfg, args, False),
        "after": variant_settings(cfg, args, True),
    }
    s_before = variants["before"][0]
    n_outer = s_before.outer_folds
    k_run = min(args.outer_folds_run or n_outer, n_outer)

    X, y = radiomics_like(n=173 + 55, p=args.features)
    X.index = y.index = [f"P{i:03d}" for i in range(len(X))]
    X, y = X.iloc[:173], y.iloc[:173]  # the training set; the 55 external are never fitted
    print(
        f"table: {len(X)} training (+55 external, not used by nested CV) x {X.shape[1]} "
        f"features, {int(y.sum())} positive\nmeasured: outer folds {k_run} of {n_outer}, "
        f"{s_before.n_trials} trials (full {full['n_trials']}), {s_before.inner_folds} inner "
        f"folds (full {full['inner_folds']}), models {', '.join(models)}"
    )
    after = variants["after"][0]
    print(
        f"after: pruning={after.pruning} (warm-up {after.pruning_warmup_folds} folds, start-up "
        f"{after.pruning_startup_trials} trials, percentile {after.pruning_percentile}), "
        f"threads {variants['after'][2]}, batch {after.batch_size}"
    )
    selection = s_before.selection(seed)
    folds = outer_folds(y, s_before, seed)
    rows, preds = [], []
    for k in range(k_run):
        tr, va = folds[k]
        X_tr, y_tr = X.iloc[tr], y.iloc[tr]
        context = f"outer{k}"
        inner = stratified_folds(
            y_tr, s_before.inner_folds, derived_seed(seed, "inner_folds", context)
        )
        t0 = cpu()
        cache = fit_fold_selections(X_tr, y_tr, inner, selection)
        t_sel = cpu() - t0  # before: each model's job fits it (counted once per model)
        t0 = cpu()
        refit_selection = clone(selection).fit(X_tr, y_tr.to_numpy())
        t_refit_sel = cpu() - t0  # after: rule cv_selection fits both once for all models
        shared_sel = (t_sel + t_refit_sel) / len(models)
        print(
            f"outer fold {k}: selection {t_sel:.1f} CPU-s for {len(inner)} inner folds, "
            f"{t_refit_sel:.1f} CPU-s on the outer-training rows",
            flush=True,
        )
        _CTX[k] = {
            "X_tr": X_tr, "y_tr": y_tr, "X_va": X.iloc[va], "y_va": y.iloc[va],
            "context": context, "cache": cache, "selection": selection,
            "refit_selection": refit_selection, "t_sel": t_sel, "shared_sel": shared_sel,
            "variants": variants, "seed": seed,
        }  # fmt: skip
    tasks = [(k, model, name) for k in range(k_run) for model in models for name in variants]
    done = {}
    with contextlib.ExitStack() as stack:
        if args.jobs > 1:
            # Forked workers inherit every fold's context; each times its own process. The
            # costliest studies first (the before variants of _COSTLY), so no worker idles
            # at the end; results are keyed by task, whatever order they finish in.
            order = sorted(tasks, key=lambda t: (t[2] != "before", t[1] not in _COSTLY))
            pool = stack.enter_context(
                multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=1)
            )
            results = pool.imap_unordered(_keyed_task, order, chunksize=1)
        else:
            results = map(_keyed_task, tasks)
        for task, result in results:
            done[task] = result
            print(f"fold {task[0]}: {result[2]}", flush=True)
    for task in tasks:  # the order of the tasks, whatever order they finished in
        rows.append(done[task][0])
        preds.append(done[task][1])
    report(pd.DataFrame(rows), pd.concat(preds), k_run, n_outer)


def report(rows: pd.DataFrame, preds: pd.DataFrame, k_run: int, n_outer: int) -> None:
    per = rows.groupby(["model", "variant"], sort=False)[["selection", "tuning", "refit"]].sum()
    per["total"] = per.sum(axis=1)
    # Full configuration, per model: n_outer nested-CV folds + the whole-training-set study
    # (each: selection + tuning), and n_outer nested refits + 1 final fit + n_outer
    # final-CV-threshold refits; measured per outer fold, scaled linearly.
    scale_ctx = (n_outer + 1) / k_run
    scale_refit = (2 * n_outer + 1) / k_run
    per["full_est"] = (per["selection"] + per["tuning"]) * scale_ctx + per["refit"] * scale_refit
    auc = preds.groupby(["model", "variant"], sort=False).apply(
        lambda d: roc_auc_score(d["label"], d["p"]), include_groups=False
    )
    inner = rows.groupby(["model", "variant"], sort=False)["inner_auc"].mean()
    pruned = rows.groupby(["model", "variant"], sort=False)[["pruned", "fold_fits"]].sum()
    out = []
    for model in rows["model"].unique():
        b, a = per.loc[(model, "before")], per.loc[(model, "after")]
        out.append(
            {
                "model": model,
                "sel_before_s": b["selection"],
                "sel_after_s": a["selection"],
                "tune_before_s": b["tuning"],
                "tune_after_s": a["tuning"],
                "refit_before_s": b["refit"],
                "refit_after_s": a["refit"],
                "total_before_s": b["total"],
                "total_after_s": a["total"],
                "cpu_ratio": b["total"] / a["total"],
                "pruned": int(pruned.loc[(model, "after"), "pruned"]),
                "fits_before": int(pruned.loc[(model, "before"), "fold_fits"]),
                "fits_after": int(pruned.loc[(model, "after"), "fold_fits"]),
                "nested_auc_before": auc[(model, "before")],
                "nested_auc_after": auc[(model, "after")],
                "auc_diff": auc[(model, "after")] - auc[(model, "before")],
                "inner_auc_before": inner[(model, "before")],
                "inner_auc_after": inner[(model, "after")],
            }
        )
    table = pd.DataFrame(out)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(
            "\nCPU-seconds measured (selection: before, each model's own; after, the shared "
            "fits divided by the models):"
        )
        print(table.round(3).to_string(index=False))
    tb, ta = table["total_before_s"].sum(), table["total_after_s"].sum()
    fb = per.xs("before", level="variant")["full_est"].sum()
    fa = per.xs("after", level="variant")["full_est"].sum()
    print(
        f"\nmeasured total: before {tb:.0f} CPU-s, after {ta:.0f} CPU-s, ratio {tb / ta:.2f}x"
        f"\ntuning stage only: ratio "
        f"{table['tune_before_s'].sum() / table['tune_after_s'].sum():.2f}x"
        f"\nextrapolated to the full configuration ({n_outer} outer folds + the final study, "
        f"refits; these models): before {fb / 3600:.2f} CPU-h, after {fa / 3600:.2f} CPU-h, "
        f"ratio {fb / fa:.2f}x"
        f"\nnested-CV AUC (pooled over the {k_run} measured outer fold(s)): max |after - before| "
        f"= {table['auc_diff'].abs().max():.4f}"
    )
    print("not scaled: the extrapolation is at the measured trial and inner-fold counts")


if __name__ == "__main__":
    main()
