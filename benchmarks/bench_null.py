"""Error rates of the first screen, by simulation (issue 27; SPEC step 22).

The workflow's own modelling code, package level (no Snakemake): the selection (mRMR +
LASSO, ``TuningSettings.selection``) fitted once per CV context, Optuna tuning on the
fold-cached selection and nested CV (``fits.nested_cv_fold``), the model chosen inside
each outer fold (``evaluation.procedure``, the headline with its CI), the whole procedure
rerun on permuted labels (``validation.permutation.permuted_procedure``, the permutation
p-value) and the verdict (``validation.evidence.verdict``). The final model (the model
with the best mean nested-CV AUC, ``performance.choose_model``, tuned and refitted on the
whole training set) scores a test set, with the DeLong CI that Table 3 prints
(``metrics.delong_ci``).

Datasets have the paper's shape: 121 training patients, 52 test patients, prevalence
0.4, ``--features`` candidate features (default 1,000) from a latent-factor generator
(correlated feature families, as radiomics features are). Each dataset draws its own
population (the mixing of 40 latent factors into the features); patients are sampled
from it. Under **no signal** the label is independent of the features, so every fitted
model's true AUC is exactly 0.5. Under a **planted signal** the label is a noisy
threshold of three latent factors; the truth of an AUC is the fitted model's AUC on a
large independent sample (``--truth-n``, default 20,000) of the same population: for the
headline, the mean over outer folds of the fold models' true AUCs (the CI's stated
target, ``evaluation.procedure``); for the test set, the final model's true AUC.

Reduced for a laptop (stated in the output): ``--models`` (default knn, logistic
regression, SVM), ``--trials`` Optuna trials (default 3), ``--inner-folds`` (default 3),
5 outer folds, mRMR k ``--mrmr-k`` (default 20), LASSO with 3-fold CV over 10 lambdas,
``--permutations`` per dataset (default 20: the smallest p-value is 1/21 < 0.05, so the
verdict can say "evidence"; the uniformity test uses the randomised p-values
p - U / (n + 1), continuous uniform under the null).

Prints: the verdict's false-evidence rate under no signal (Wilson 95% CI), the
headline CI's exclusion rate of 0.5 under no signal, the KS test of the permutation
p-values, the coverage of the headline CI and of the test-set AUC CI under the planted
signal (Wilson CIs), and the power of the verdict at the planted signal.

    nice .venv/bin/python benchmarks/bench_null.py --quick          # a smoke run, ~2 min
    nice .venv/bin/python benchmarks/bench_null.py --null 100 --signal 100
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
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST, PREVALENCE, N_LATENT = 121, 52, 0.4, 40


class Population:
    """One dataset's population: features = latent factors x a sparse mixing + noise; the
    label a noisy threshold of the first three factors (``signal`` > 0) or independent of
    everything (``signal`` = 0)."""

    def __init__(self, n_features: int, signal: float, seed: int):
        rng = np.random.default_rng(seed)
        self.mixing = rng.normal(size=(N_LATENT, n_features)) * (
            rng.random((N_LATENT, n_features)) < 0.05
        )
        self.signal = signal
        self.rng = rng
        # threshold for the prevalence: the score is signal * sum(3 factors) + N(0, 1)
        self.cut = float(
            np.quantile(
                signal * np.sqrt(3) * rng.normal(size=200_000) + rng.normal(size=200_000),
                1 - PREVALENCE,
            )
        )

    def sample(self, n: int, prefix: str):
        rng = self.rng
        latent = rng.normal(size=(n, N_LATENT))
        X = latent @ self.mixing + rng.normal(size=(n, self.mixing.shape[1]))
        score = self.signal * latent[:, :3].sum(axis=1) + rng.normal(size=n)
        y = (score > self.cut).astype(int)
        index = [f"{prefix}{i:05d}" for i in range(n)]
        cols = [f"T2__f{j:04d}" for j in range(X.shape[1])]
        return pd.DataFrame(X, index=index, columns=cols), pd.Series(y, index=index, name="label")


def wilson(k: int, n: int) -> str:
    from npc_radiomics.metrics import wilson_ci

    low, high = wilson_ci(k, n)
    return f"{k}/{n} = {k / n:.3f} (95% CI {low:.3f}-{high:.3f})"


def one_dataset(i: int, signal: float, args, settings, spaces) -> dict:
    from npc_radiomics.evaluation.performance import choose_model, nested_cv_summary
    from npc_radiomics.metrics import auc, delong_ci
    from npc_radiomics.modelling.fits import fit_final
    from npc_radiomics.modelling.studies import best_params, tune
    from npc_radiomics.validation.evidence import EVIDENCE, verdict
    from npc_radiomics.validation.permutation import permuted_procedure, procedure_run

    seed = 1000 + i
    pop = Population(args.features, signal, seed)
    X, y = pop.sample(N_TRAIN, "T")
    models = sorted(args.models)
    caches: dict = {}
    nested, infos, head = procedure_run(models, spaces, X, y, settings, seed, caches=caches)
    n_perm = args.permutations if signal == 0 else args.signal_permutations
    null = [
        permuted_procedure(models, spaces, X, y, k, settings, seed)[0]["auc_mean"]
        for k in range(n_perm)
    ]
    real = head["auc"]
    n_ge = sum(v >= real for v in null) if real is not None else None
    p = None if n_ge is None or not null else (1 + n_ge) / (1 + len(null))
    status, _ = verdict(head, p, len(null) or None, args.alpha)
    u = np.random.default_rng(seed).random()
    p_rand = None if p is None else p - u / (1 + len(null))
    ci_above = head["auc_ci_low"] is not None and head["auc_ci_low"] > 0.5
    out = {
        "dataset": i,
        "signal": signal,
        "auc": real,
        "ci_low": head["auc_ci_low"],
        "ci_high": head["auc_ci_high"],
        "p": p,
        "p_randomised": p_rand,
        "evidence": status == EVIDENCE,
        "ci_above": ci_above,
        "evidence_randomised": bool(ci_above and p_rand is not None and p_rand < args.alpha),
        "status": status,
    }
    if signal == 0:
        out["truth"] = 0.5
        return out
    # truths on a large independent sample of the same population
    big_X, big_y = pop.sample(args.truth_n, "B")
    fold_truths = [
        _fold_model_truth(f, infos, caches, nested, X, y, settings, seed, big_X, big_y)
        for f in head["folds"]
    ]
    out["truth"] = float(np.mean(fold_truths))
    # the final model: best mean nested-CV AUC, tuned and refitted on all training patients
    chosen = choose_model(nested_cv_summary(nested.assign(cohort="nested_cv")), models)["model"]
    test_X, test_y = pop.sample(N_TEST, "S")
    study, _ = tune(chosen, spaces[chosen], X, y, settings, seed, "full")
    params = best_params(study, chosen, settings.n_trials)["params"]
    design = _Design(X, y, test_X, test_y)
    pipe, _ = fit_final(chosen, params, design, settings, seed)
    t = delong_ci(test_y.to_numpy(), pipe.predict_proba(test_X)[:, 1])
    out.update(
        test_auc=t.auc,
        test_ci_low=t.ci_low,
        test_ci_high=t.ci_high,
        test_truth=auc(big_y.to_numpy(), pipe.predict_proba(big_X)[:, 1]),
    )
    return out


class _Design:
    """The two cohorts fit_final scores (train, test)."""

    def __init__(self, X, y, test_X, test_y):
        self.parts = {"train": (X, y), "test": (test_X, test_y)}

    def train(self):
        return self.parts["train"]

    def cohorts(self):
        return ["train", "test"]

    def subset(self, cohort):
        return self.parts[cohort]


def _fold_model_truth(fold, infos, caches, nested, X, y, settings, seed, big_X, big_y):
    """The true AUC of outer fold k's chosen model: the fold pipeline rebuilt from its
    tuned parameters on the fold's cached selection (what nested_cv_fold fitted: checked
    on the held-out predictions), scored on the large sample."""
    from npc_radiomics.metrics import auc
    from npc_radiomics.modelling.folds import outer_folds, pipeline_on_selection
    from npc_radiomics.modelling.studies import model_seed

    k, model = fold["outer_fold"], fold["model"]
    info = next(f for f in infos if f["model"] == model and f["outer_fold"] == k)
    tr, _ = outer_folds(y, settings, seed)[k]
    pipe = pipeline_on_selection(
        model,
        info["params"],
        caches[f"outer{k}"].refit,
        X.iloc[tr],
        y.iloc[tr].to_numpy(),
        model_seed(seed, model),
    )
    pred = nested[(nested["model"] == model) & (nested["outer_fold"] == k)]
    check = pipe.predict_proba(X.loc[pred["patient_id"]])[:, 1]
    if not np.allclose(check, pred["probability"].to_numpy()):
        raise RuntimeError("the rebuilt fold model differs from nested_cv_fold's")
    return auc(big_y.to_numpy(), pipe.predict_proba(big_X)[:, 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--null", type=int, default=100, help="datasets without signal")
    ap.add_argument("--signal", type=int, default=100, help="datasets with a planted signal")
    ap.add_argument("--strength", type=float, default=0.45, help="planted signal per factor")
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=3, help="per dataset without signal")
    ap.add_argument("--signal-permutations", type=int, default=0, help="per dataset with signal")
    ap.add_argument("--jobs", type=int, default=2, help="datasets in parallel (processes)")
    ap.add_argument("--models", nargs="+", default=["knn", "logistic_regression", "svm"])
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--inner-folds", type=int, default=2)
    ap.add_argument("--mrmr-k", type=int, default=10)
    ap.add_argument("--truth-n", type=int, default=20_000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--out", default=None, help="per-dataset TSV")
    ap.add_argument("--quick", action="store_true", help="2 + 2 datasets, 200 features")
    ap.add_argument("--summarise", default=None, help="only print the summary of a --out TSV")
    args = ap.parse_args()
    if args.summarise:
        _summary(pd.read_csv(args.summarise, sep="\t"), args, time.perf_counter())
        return
    if args.quick:
        args.null, args.signal, args.features, args.truth_n = 2, 2, 200, 5000

    from npc_radiomics.modelling.settings import TuningSettings
    from npc_radiomics.modelling.zoo import parse_search_spaces

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    spaces = parse_search_spaces(cfg["search_spaces"], sorted(args.models))
    settings = TuningSettings.defaults(
        n_trials=args.trials,
        inner_folds=args.inner_folds,
        outer_folds=5,
        mrmr_k=args.mrmr_k,
        lasso_folds=2,
        n_lambdas=6,
        pruning=False,
        combat=False,
        batch_size=args.trials,
    )
    print(
        f"bench_null: {args.null} datasets without signal + {args.signal} with a planted "
        f"signal ({args.strength} per latent factor); {N_TRAIN} training / {N_TEST} test "
        f"patients, prevalence {PREVALENCE}, {args.features} candidate features; models "
        f"{sorted(args.models)}, {args.trials} Optuna trials, {args.inner_folds} inner / 5 "
        f"outer folds, mRMR k {args.mrmr_k}, LASSO 2-fold CV over 6 lambdas; "
        f"{args.permutations} / {args.signal_permutations} permutations per dataset without / "
        f"with signal; truth from {args.truth_n} patients",
        flush=True,
    )
    rows = []
    t0 = time.perf_counter()
    # interleaved, so that an interrupted run has both kinds (--out is written as it goes)
    jobs = sorted(
        [(2 * i, 0.0) for i in range(args.null)]
        + [(2 * i + 1, args.strength) for i in range(args.signal)]
    )
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_dataset, i, sig, args, settings, spaces) for i, sig in jobs]
        done = (f.result() for f in futures)
        for r in done:
            rows.append(r)
            _report(r, t0)
            if args.out:
                pd.DataFrame(rows).to_csv(args.out, sep="\t", index=False)
    _summary(pd.DataFrame(rows), args, t0)


def _fmt(x):
    return "nan" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _report(r, t0):
    print(
        f"  dataset {r['dataset']} signal {r['signal']}: AUC {_fmt(r['auc'])} "
        f"({_fmt(r['ci_low'])}-{_fmt(r['ci_high'])}) truth {_fmt(r['truth'])} "
        f"p {_fmt(r['p'])} {r['status']}"
        + (
            f"; test {_fmt(r['test_auc'])} ({_fmt(r['test_ci_low'])}-"
            f"{_fmt(r['test_ci_high'])}) truth {_fmt(r['test_truth'])}"
            if "test_auc" in r
            else ""
        )
        + f" [{time.perf_counter() - t0:.0f} s]",
        flush=True,
    )


def _summary(table: pd.DataFrame, args, t0) -> None:
    from scipy import stats

    if args.out:
        table.to_csv(args.out, sep="\t", index=False)
    null, sig = table[table["signal"] == 0], table[table["signal"] > 0]
    a = args.alpha
    print(f"\nresults ({time.perf_counter() - t0:.0f} s, {len(table)} datasets)")
    if len(null):
        n = len(null)
        print(
            f"no signal: verdict (as the workflow computes it, {args.permutations} permutations):",
            null["status"].value_counts().to_dict(),
            "- false evidence:",
            wilson(int(null["evidence"].sum()), n),
        )
        print(
            "no signal: headline CI above 0.5 (an upper bound of the false-evidence rate "
            "at any permutation count, as the verdict needs it):",
            wilson(int(null["ci_above"].sum()), n),
        )
        cover = int(((null["ci_low"] <= 0.5) & (null["ci_high"] >= 0.5)).sum())
        print("no signal: headline CI covers the truth 0.5:", wilson(cover, n))
        print(
            f"no signal: CI above 0.5 AND randomised permutation p < {a} (the verdict with an "
            "exact randomised p-value):",
            wilson(int(null["evidence_randomised"].sum()), n),
        )
        ks = stats.kstest(null["p_randomised"].astype(float), "uniform")
        print(
            f"no signal: randomised permutation p-values ({args.permutations} permutations "
            f"per dataset) vs uniform(0, 1): KS D {ks.statistic:.3f}, p {ks.pvalue:.3f}; "
            f"share below {a}: " + wilson(int((null["p_randomised"] < a).sum()), n)
        )
    if len(sig):
        n = len(sig)
        cover = int(((sig["ci_low"] <= sig["truth"]) & (sig["truth"] <= sig["ci_high"])).sum())
        print(
            f"signal: mean headline AUC {sig['auc'].mean():.3f}, mean truth (fold models on "
            f"{args.truth_n} new patients) {sig['truth'].mean():.3f}; headline CI coverage:",
            wilson(cover, n),
        )
        tc = int(
            (
                (sig["test_ci_low"] <= sig["test_truth"])
                & (sig["test_truth"] <= sig["test_ci_high"])
            ).sum()
        )
        print(
            f"signal: mean test AUC ({N_TEST} patients) {sig['test_auc'].mean():.3f}, mean "
            f"truth (final model) {sig['test_truth'].mean():.3f}; test-set AUC CI (Table 3's "
            "metrics.delong_ci) coverage:",
            wilson(tc, n),
        )
        print(
            "signal: power of the headline CI (above 0.5):", wilson(int(sig["ci_above"].sum()), n)
        )
        if args.signal_permutations:
            print("signal: power of the verdict:", wilson(int(sig["evidence"].sum()), n))
        else:
            print(
                "signal: the verdict's power is at most the CI's (no permutations run on the "
                "signal datasets: --signal-permutations 0)"
            )


if __name__ == "__main__":
    main()
