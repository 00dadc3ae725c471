"""Negative control: the whole procedure on permuted training labels (step 22).

A permuted run repeats what the real run did on the real labels (:func:`procedure_run`):
for every outer fold, the selection fitted once on the fold's training part (shared by
every model, as rule ``cv_selection`` does), then selection-cached tuning and the fold
refit of *every configured model* (``fits.nested_cv_fold``, the real run's tuning
settings), the model with the best inner-CV AUC chosen inside the fold
(``evaluation.procedure.choose_per_fold``), and the same statistic as the headline: the
procedure's nested-CV AUC (the mean over outer folds of the chosen models' held-out AUCs,
``evaluation.procedure``). Labels are shuffled over the training patients (seeded:
``derived_seed(seed, "permutation", k)``); the outer folds are stratified on the permuted
labels, as the real run's are on the real ones; the permuted runs only ever receive the
permuted labels. The permutation p-value of the real statistic is (1 + #null >= real) /
(1 + n), never below 1 / (1 + n). Each model's own nested-CV AUC on the same permuted runs
is kept too (descriptive rows of null.tsv and permutation.tsv).
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
from npc_radiomics.evaluation.procedure import PROCEDURE

log = logging.getLogger(__name__)

#: Columns of permutation/null.tsv (one row per permutation for the procedure, row model
#: ``nested_cv_procedure``, and one per configured model x permutation).
NULL_COLUMNS = ["model", "permutation", "auc_mean", "n_folds", "fold_aucs", "fold_models"]
#: Columns of permutation/permutation.tsv (the procedure first, then one row per model).
SUMMARY_COLUMNS = [
    "model",
    "real_auc",
    "n_permutations",
    "null_mean",
    "null_sd",
    "null_q95",
    "n_null_at_least_real",
    "p_value",
    "p_value_min",
]


def permuted_labels(y: pd.Series, seed: int, permutation: int) -> pd.Series:
    """The training labels shuffled over the patients (same index, same class counts)."""
    rng = np.random.default_rng(derived_seed(seed, "permutation", permutation))
    return pd.Series(rng.permutation(y.to_numpy()), index=y.index, name=y.name)


def procedure_run(
    models: list[str],
    spaces: dict,
    X: pd.DataFrame,
    y: pd.Series,
    settings,
    seed: int,
    n_jobs: int = 1,
    fold_fn: Callable | None = None,
    caches: dict | None = None,
) -> tuple[pd.DataFrame, list[dict], dict]:
    """The real run's nested CV of every model in ``models`` on (X, y), and the procedure's
    estimate. Per outer fold, one selection fit (:func:`fit_context_selection`) shared by
    every model, then ``fold_fn`` (default ``fits.nested_cv_fold``) per model; a model's
    numerical failure in a fold is recorded (``failed``), as rule nested_cv_fold does.
    Returns (nested-CV predictions, fold records, :func:`procedure_estimate` record);
    ``caches``, when given, receives each outer fold's selection cache by context name."""
    from npc_radiomics.evaluation.procedure import procedure_estimate
    from npc_radiomics.modelling.fits import nested_cv_fold
    from npc_radiomics.modelling.folds import check_fold_sizes, fit_context_selection
    from npc_radiomics.modelling.studies import NUMERICAL_FAILURES

    fold_fn = fold_fn or nested_cv_fold
    check_fold_sizes(y, settings, nested=True)
    preds, infos = [], []
    for fold in range(settings.outer_folds):
        cache = fit_context_selection(X, y, settings, seed, f"outer{fold}")
        if caches is not None:
            caches[cache.context] = cache
        for model in models:
            try:
                pred, info = fold_fn(
                    model, spaces[model], X, y, fold, settings, seed, n_jobs=n_jobs, cache=cache
                )
            except NUMERICAL_FAILURES as err:
                log.warning("%s outer fold %d failed: %s", model, fold, err)
                pred = None
                info = {"model": model, "outer_fold": fold, "failed": True, "reason": str(err)}
            if pred is not None:
                preds.append(pred)
            infos.append(info)
    columns = ["patient_id", "model", "outer_fold", "probability", "label"]
    nested = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=columns)
    return nested, infos, procedure_estimate(infos, nested)


def _model_rows(nested: pd.DataFrame, models: list[str], permutation: int) -> list[dict]:
    from npc_radiomics.metrics import auc

    rows = []
    for model in models:
        g = nested[nested["model"] == model]
        aucs = [
            auc(f["label"].to_numpy(), f["probability"].to_numpy())
            for _, f in g.groupby("outer_fold", sort=True)
        ]
        finite = [a for a in aucs if np.isfinite(a)]
        rows.append(
            {
                "model": model,
                "permutation": int(permutation),
                "auc_mean": float(np.mean(finite)) if finite else float("nan"),
                "n_folds": len(finite),
                "fold_aucs": ";".join(f"{a:.4f}" for a in aucs),
                "fold_models": model,
            }
        )
    return rows


def permuted_procedure(
    models: list[str],
    spaces: dict,
    X: pd.DataFrame,
    y: pd.Series,
    permutation: int,
    settings,
    seed: int,
    n_jobs: int = 1,
    fold_fn: Callable | None = None,
) -> list[dict]:
    """One permutation: :func:`procedure_run` with the labels ``y`` permuted; returns the
    null.tsv rows, the procedure's first. Only the permuted labels are passed on."""
    y_perm = permuted_labels(y, seed, permutation)
    nested, _, record = procedure_run(models, spaces, X, y_perm, settings, seed, n_jobs, fold_fn)
    folds = record["folds"]
    procedure = {
        "model": PROCEDURE,
        "permutation": int(permutation),
        "auc_mean": float("nan") if record["auc"] is None else record["auc"],
        "n_folds": sum(f["outer_auc"] is not None for f in folds),
        "fold_aucs": ";".join(
            "nan" if f["outer_auc"] is None else f"{f['outer_auc']:.4f}" for f in folds
        ),
        "fold_models": ";".join(str(f["model"]) for f in folds),
    }
    return [procedure, *_model_rows(nested, models, permutation)]


def permutation_summary(null: pd.DataFrame, real: dict[str, float]) -> pd.DataFrame:
    """Per statistic (the procedure's, row :data:`PROCEDURE`, first; then each model's
    own): the real nested-CV AUC, the null distribution's mean / SD / 95th percentile, the
    permutation p-value (1 + #null >= real) / (1 + n) and its floor 1 / (1 + n)."""
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
                "p_value_min": 1 / (1 + len(values)),
            }
        )
    rows.sort(key=lambda r: (r["model"] != PROCEDURE, r["model"]))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def permutation_run_rule(inputs, params, permutation: int, n_jobs: int = 1) -> dict:
    """Rule ``permutation_run``: one permutation of the whole procedure (every configured
    model, the choice inside each outer fold); returns the JSON record (``rows``: null.tsv
    rows)."""
    from npc_radiomics.modelling.design import load_rule_design
    from npc_radiomics.modelling.settings import TuningSettings
    from npc_radiomics.modelling.zoo import parse_search_spaces

    models = sorted(params.models)
    design = load_rule_design(inputs, params)
    X, y = design.train()
    settings = TuningSettings(**params.settings)
    spaces = parse_search_spaces(params.search_spaces, models)
    rows = permuted_procedure(models, spaces, X, y, permutation, settings, params.seed, n_jobs)
    log.info("permutation %d: procedure's nested-CV AUC %.4f", permutation, rows[0]["auc_mean"])
    return {"permutation": int(permutation), "models": models, "rows": rows}


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
    # the procedure's row of metrics.tsv (model nested_cv_procedure) is the real statistic
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
        or "no permutation rows"
    )


def plot_null_distribution(null: pd.DataFrame, summary: pd.DataFrame, path) -> Path:
    """Histogram of the permuted runs' statistic (the procedure's nested-CV AUC, the first
    row of ``summary``), the real one as a red line."""
    import matplotlib.pyplot as plt

    from npc_radiomics.figures import PALETTE, STYLE, panels, save_figure

    models = list(summary["model"])[:1]  # the procedure's statistic, the one tested
    if not models:
        raise InputError("no permutation results")
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
