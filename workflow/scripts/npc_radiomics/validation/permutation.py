"""Negative control: the whole modelling pipeline on permuted training labels (step 22).

Each permutation shuffles the training patients' labels (seeded: ``derived_seed(seed,
"permutation", k)``) and reruns selection + Optuna tuning + nested CV of a model on them,
exactly as the real run does (``tuning.nested_cv_fold`` for every outer fold, the outer
folds stratified on the permuted labels). The permuted runs only ever receive the
permuted labels. Their mean outer-fold AUCs form the null distribution of the nested-CV
AUC; the permutation p-value of the real one is (1 + #null >= real) / (1 + n).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.config import derived_seed
from npc_radiomics.base.errors import InputError

log = logging.getLogger(__name__)

#: Columns of permutation/null.tsv (one row per model x permutation).
NULL_COLUMNS = ["model", "permutation", "auc_mean", "n_folds", "fold_aucs"]
#: Columns of permutation/permutation.tsv (one row per model).
SUMMARY_COLUMNS = [
    "model",
    "real_auc",
    "n_permutations",
    "null_mean",
    "null_sd",
    "null_q95",
    "n_null_at_least_real",
    "p_value",
]


def permuted_labels(y: pd.Series, seed: int, permutation: int) -> pd.Series:
    """The training labels shuffled over the patients (same index, same class counts)."""
    rng = np.random.default_rng(derived_seed(seed, "permutation", permutation))
    return pd.Series(rng.permutation(y.to_numpy()), index=y.index, name=y.name)


def permuted_nested_cv(
    model: str,
    space: dict,
    X: pd.DataFrame,
    y: pd.Series,
    permutation: int,
    settings,
    seed: int,
    n_jobs: int = 1,
    fold_fn: Callable | None = None,
) -> dict:
    """Nested CV of ``model`` (selection + tuning in every outer fold) on ``X`` with the
    labels ``y`` permuted; returns one null.tsv row. ``fold_fn``: the outer-fold function
    (default ``tuning.nested_cv_fold``; tests pass a spy). Only the permuted labels are
    passed on."""
    from npc_radiomics.metrics import auc
    from npc_radiomics.modelling.fits import nested_cv_fold

    fold_fn = fold_fn or nested_cv_fold
    y_perm = permuted_labels(y, seed, permutation)
    aucs = []
    for fold in range(settings.outer_folds):
        pred, _ = fold_fn(model, space, X, y_perm, fold, settings, seed, n_jobs=n_jobs)
        aucs.append(auc(pred["label"].to_numpy(), pred["probability"].to_numpy()))
    finite = [a for a in aucs if np.isfinite(a)]
    return {
        "model": model,
        "permutation": int(permutation),
        "auc_mean": float(np.mean(finite)) if finite else float("nan"),
        "n_folds": len(finite),
        "fold_aucs": ";".join(f"{a:.4f}" for a in aucs),
    }


def permutation_summary(null: pd.DataFrame, real: dict[str, float]) -> pd.DataFrame:
    """Per model: the real nested-CV AUC, the null distribution's mean / SD / 95th
    percentile and the permutation p-value (1 + #null >= real) / (1 + n)."""
    rows = []
    for model, g in null.groupby("model", sort=True):
        values = g["auc_mean"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        r = real.get(model, np.nan)
        n_ge = int(np.sum(values >= r)) if np.isfinite(r) else None
        rows.append(
            {
                "model": model,
                "real_auc": r,
                "n_permutations": len(values),
                "null_mean": float(values.mean()) if len(values) else np.nan,
                "null_sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                "null_q95": float(np.quantile(values, 0.95)) if len(values) else np.nan,
                "n_null_at_least_real": n_ge,
                "p_value": (1 + n_ge) / (1 + len(values)) if n_ge is not None else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def permutation_models(target: str, chosen_path: str | None, models: list[str]) -> list[str]:
    """The model of one permutation job: ``target`` itself, or for ``chosen`` the chosen
    model of the real run (none when the run has no chosen model)."""
    if target != "chosen":
        if target not in models:
            raise InputError(f"permutation target {target!r} is not a configured model")
        return [target]
    chosen = json.loads(Path(chosen_path).read_text())["model"]
    return [chosen] if chosen else []


def permutation_run_rule(inputs, params, target: str, permutation: int, n_jobs: int = 1) -> dict:
    """Rule ``permutation_run``: one permutation of one model (or of the chosen one);
    returns the JSON record (``rows``: null.tsv rows, empty without a chosen model)."""
    from npc_radiomics.modelling.design import load_rule_design
    from npc_radiomics.modelling.settings import TuningSettings
    from npc_radiomics.modelling.zoo import parse_search_spaces

    models = permutation_models(target, inputs.get("chosen"), list(params.models))
    design = load_rule_design(inputs, params)
    X, y = design.train()
    settings = TuningSettings(**params.settings)
    rows = []
    for model in models:
        space = parse_search_spaces(params.search_spaces, [model])[model]
        row = permuted_nested_cv(model, space, X, y, permutation, settings, params.seed, n_jobs)
        log.info("%s permutation %d: nested-CV AUC %.4f", model, permutation, row["auc_mean"])
        rows.append(row)
    return {"target": target, "permutation": int(permutation), "rows": rows}


def permutation_test_rule(inputs, params, out) -> str:
    """Rule ``permutation_test``: gather the permutation records, compare with the real
    nested-CV AUCs of metrics.tsv, write null.tsv, permutation.tsv and the figure."""
    from npc_radiomics.base.io import read_table, write_tsv
    from npc_radiomics.evaluation.performance import NESTED_CV

    rows = [r for p in inputs.runs for r in json.loads(Path(p).read_text())["rows"]]
    null = pd.DataFrame(rows, columns=NULL_COLUMNS).sort_values(
        ["model", "permutation"], kind="mergesort"
    )
    metrics = read_table(inputs.metrics)
    nested = metrics[metrics["cohort"] == NESTED_CV]
    real = dict(zip(nested["model"], nested["auc"].astype(float), strict=True))
    summary = permutation_summary(null, real)
    write_tsv(null.reset_index(drop=True), out.null)
    write_tsv(summary, out.summary)
    from npc_radiomics.figures import figure_or_placeholder

    figure_or_placeholder(plot_null_distribution, out.figure, null, summary)
    return (
        "; ".join(
            f"{r.model}: real {r.real_auc:.3f}, null mean {r.null_mean:.3f}, p {r.p_value:.3f}"
            for r in summary.itertuples()
        )
        or "no permutation rows (no chosen model)"
    )


def plot_null_distribution(null: pd.DataFrame, summary: pd.DataFrame, path) -> Path:
    """Histogram of the permuted nested-CV AUCs per model, the real AUC as a red line."""
    import matplotlib.pyplot as plt

    from npc_radiomics.figures import PALETTE, STYLE, panels, save_figure

    models = list(summary["model"])
    if not models:
        raise InputError("no permutation results (no chosen model)")
    with plt.rc_context(STYLE):
        fig, axes = panels(len(models))
        for ax, model in zip(axes, models, strict=True):
            values = null.loc[null["model"] == model, "auc_mean"].dropna()
            ax.hist(values, bins=np.linspace(0, 1, 21), color=PALETTE[0], edgecolor="white")
            s = summary.set_index("model").loc[model]
            ax.axvline(s["real_auc"], color="#d62728", lw=2, label=f"real {s['real_auc']:.3f}")
            ax.axvline(0.5, color="black", ls=":", lw=0.8)
            ax.set(
                xlabel="nested-CV AUC, permuted labels",
                ylabel="Permutations",
                title=f"{model}: p = {s['p_value']:.3f} ({int(s['n_permutations'])} perm.)",
            )
            ax.legend(loc="upper left")
    return save_figure(fig, path)
