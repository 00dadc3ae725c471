"""Entry points of the modelling rules (select_features, tune_model_part, tune_model,
nested_cv_fold, fit_final): read a rule's design and settings, call the studies and fits,
write the rule's files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from npc_radiomics.base.errors import InputError, ModelFitError
from npc_radiomics.base.layout import NESTED_PREDICTION_COLUMNS, PREDICTION_COLUMNS
from npc_radiomics.modelling.fits import final_cv_threshold, fit_final, nested_cv_fold
from npc_radiomics.modelling.folds import SelectionCache, check_fold_sizes
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import (
    NUMERICAL_FAILURES,
    best_params,
    failure_summary,
    finished_slots,
    open_study,
    trials_table,
    tune,
)
from npc_radiomics.modelling.zoo import (
    parse_search_spaces,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------
# The modelling rules' entry points (one call per rule script)
# ---------------------------------------------------------------------------------
def tune_part(
    model: str,
    search_spaces: dict,
    design,
    settings: TuningSettings,
    seed: int,
    journal: str | Path,
    worker: str,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> dict:
    """Rule ``tune_model_part``: one worker of a model's study on the whole training set.

    Returns the part record (study name, journal, part) that rule ``tune_model`` gathers.
    cache: the ``full`` context's selection (rule ``cv_selection``).
    """
    space = parse_search_spaces(search_spaces, [model])[model]
    X, y = design.train()
    check_fold_sizes(y, settings, nested=True)
    _, name = tune(
        model,
        space,
        X,
        y,
        settings,
        seed,
        "full",
        storage_path=journal,
        worker=worker,
        n_jobs=n_jobs,
        cache=cache,
    )
    return {"study_name": name, "journal": str(journal), "part": worker}


def gather_tuning(parts: list[dict], model: str, n_trials: int) -> tuple[dict, pd.DataFrame]:
    """Rule ``tune_model``: the best parameters and the trials table of a finished study.

    A model whose every trial failed numerically is recorded (``failed: true`` and the
    reason), so the other models go on and the report shows the gap. Either way the
    record counts the failed trials and their reasons, and the table lists every trial.
    """
    names = {part["study_name"] for part in parts}
    if len(names) != 1:
        raise RuntimeError(f"{model}: tuning parts disagree on the study: {sorted(names)}")
    study = open_study(parts[0]["journal"], names.pop())
    done = {s: t for s, t in finished_slots(study).items() if s < n_trials}
    try:
        best = best_params(study, model, n_trials)
    except ModelFitError as err:
        log.error("%s failed: %s", model, err)
        failed = {"model": model, "failed": True, "reason": str(err), **failure_summary(done)}
        return failed, trials_table(done, model)
    log.info(
        "%s: best inner-CV AUC %.4f at slot %d (%d of %d trials failed): %s",
        model,
        best["inner_cv_auc"],
        best["slot"],
        best["n_failed"],
        len(done),
        best["params"],
    )
    return best, trials_table(done, model)


def nested_cv_rule(
    model: str,
    search_spaces: dict,
    design,
    fold: int,
    settings: TuningSettings,
    seed: int,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Rule ``nested_cv_fold``: :func:`nested_cv_fold` on the design's training set.

    A numerical failure of the model (:data:`NUMERICAL_FAILURES`: every trial failed, or
    the fold's refit did) is recorded, not raised: empty predictions and ``failed: true``
    with the reason; such a model cannot be chosen. Bad input and programming errors stop
    the run.
    """
    space = parse_search_spaces(search_spaces, [model])[model]
    X, y = design.train()
    try:
        pred, info = nested_cv_fold(
            model, space, X, y, fold, settings, seed, n_jobs=n_jobs, cache=cache
        )
        log.info("%s outer fold %s: AUC %s", model, fold, info["outer_auc"])
    except InputError:
        raise
    except NUMERICAL_FAILURES as err:
        log.error("%s outer fold %s failed: %s", model, fold, err)
        pred = pd.DataFrame(columns=NESTED_PREDICTION_COLUMNS)
        info = {"model": model, "outer_fold": fold, "failed": True, "reason": str(err)}
    return pred, info


def final_model(
    model: str,
    best: dict,
    design,
    settings: TuningSettings,
    seed: int,
    n_jobs: int = 1,
    caches: dict[str, SelectionCache] | None = None,
) -> tuple[Pipeline | None, pd.DataFrame, dict]:
    """Rule ``fit_final``: :func:`fit_final` with the tuned parameters ``best``, and the
    model's threshold from :func:`final_cv_threshold` (training set only).

    A model whose tuning failed has no pipeline (None), an empty predictions table and a
    threshold record with ``failed: true``.
    """
    if best.get("failed"):
        log.error("%s: not fitted, tuning failed: %s", model, best["reason"])
        record = {"model": model, "threshold": None, "failed": True, "reason": best["reason"]}
        return None, pd.DataFrame(columns=PREDICTION_COLUMNS), record
    caches = caches or {}
    pipe, pred = fit_final(
        model, best["params"], design, settings, seed, n_jobs=n_jobs, cache=caches.get("full")
    )
    X, y = design.train()
    record, _ = final_cv_threshold(
        model, best["params"], X, y, settings, seed, n_jobs=n_jobs, caches=caches
    )
    log.info(
        "%s: %d selected features; predictions for %s; threshold %s (CV AUC %s)",
        model,
        len(pipe[:-1].get_feature_names_out(design.features)),
        design.cohorts(),
        record["threshold"],
        record["cv_auc"],
    )
    return pipe, pred, record


def selection_rule(design, settings: TuningSettings, seed: int, out) -> str:
    """Rule ``select_features``: the selection fitted on the whole training set, for the
    report (mRMR ranking, LASSO CV curve and path, lambda, selected features in ``out``).
    The model rules refit the same selection inside every CV fold."""
    from npc_radiomics.base.io import write_json, write_tsv
    from npc_radiomics.modelling.selection import non_finite_tables, selection_summary

    X, y = design.train()
    check_fold_sizes(y, settings, nested=True)
    features, patients = non_finite_tables(design.X, design.cohort, settings.max_non_finite_share)
    write_tsv(features, out.non_finite)
    write_tsv(patients, out.non_finite_patients)
    selection = settings.selection(seed).fit(X, y.to_numpy())
    summary = selection_summary(selection, list(X.columns))
    write_tsv(summary["mrmr_ranking"], out.mrmr_ranking)
    write_tsv(summary["lasso_cv"], out.lasso_cv)
    write_tsv(summary["lasso_path"], out.lasso_path)
    write_tsv(summary["selected"], out.selected)
    write_json(summary["lambda"], out.lambda_json)
    dropped = int((features["action"] == "dropped").sum())
    return (
        f"{len(features)} feature(s) with non-finite values ({dropped} dropped); "
        f"selected {len(summary['selected'])} features at lambda {summary['lambda']['lambda']:.4g}"
    )
