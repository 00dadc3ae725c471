"""Nested cross-validation folds and the final fit of one model (pipeline steps 13-14):
selection and tuning redone inside each outer fold, then on the whole training set; the
final configuration's Youden threshold from its own cross-validated predictions.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.folds import (
    SelectionCache,
    check_cache,
    check_fold_sizes,
    inner_folds,
    outer_folds,
    pipeline_on_selection,
)
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import best_params, model_pipeline, model_seed, tune
from npc_radiomics.modelling.zoo import (
    ParamSpec,
    fit_for_prediction,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------
# Nested CV and the final model
# ---------------------------------------------------------------------------------
def nested_cv_fold(
    model: str,
    space: dict[str, ParamSpec],
    X: pd.DataFrame,
    y: pd.Series,
    fold: int,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One outer fold: selection + tuning on its training part, predictions on the rest.

    X, y: the training set only (indexed by patient_id). Returns the out-of-fold
    predictions (patient_id, model, outer_fold, probability, label) and the fold's best
    parameters. cache: the fold's selection fitted once for every model (context
    ``outer<fold>``).
    """
    selection = selection if selection is not None else settings.selection(seed)
    check_fold_sizes(y, settings, nested=True)
    folds = outer_folds(y, settings, seed)
    if not 0 <= fold < len(folds):
        raise InputError(f"outer fold {fold} does not exist ({len(folds)} outer folds)")
    tr, va = folds[fold]
    X_tr, y_tr = X.iloc[tr], y.iloc[tr]
    context = f"outer{fold}"
    study, _ = tune(
        model, space, X_tr, y_tr, settings, seed, context, selection, n_jobs=n_jobs, cache=cache
    )
    best = best_params(study, model, settings.n_trials)
    mseed = model_seed(seed, model)
    if cache is not None:
        pipe = pipeline_on_selection(
            model, best["params"], cache.refit, X_tr, y_tr.to_numpy(), mseed, n_jobs
        )
    else:
        pipe = model_pipeline(model, best["params"], selection, mseed, n_jobs)
        fit_for_prediction(pipe, X_tr, y_tr.to_numpy())
    prob = pipe.predict_proba(X.iloc[va])[:, 1]
    pred = pd.DataFrame(
        {
            "patient_id": X.index[va],
            "model": model,
            "outer_fold": fold,
            "probability": prob,
            "label": y.iloc[va].to_numpy(),
        }
    ).sort_values("patient_id", kind="mergesort")
    best["outer_fold"] = fold
    best["selected_features"] = list(pipe[:-1].get_feature_names_out(list(X.columns)))
    best["outer_auc"] = (
        float(roc_auc_score(pred["label"], pred["probability"]))
        if pred["label"].nunique() == 2
        else None
    )
    return pred.reset_index(drop=True), best


def fit_final(
    model: str,
    params: dict,
    design,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[Pipeline, pd.DataFrame]:
    """Fit selection + classifier on the whole training set; predict every cohort.

    Returns the fitted pipeline and a tidy table (patient_id, cohort, model,
    probability, label), cohorts in the order train, test, external centres. cache: the
    ``full`` context's selection fitted once for every model.
    """
    selection = selection if selection is not None else settings.selection(seed)
    X, y = design.train()
    mseed = model_seed(seed, model)
    if cache is not None:
        check_cache(cache, X, y, inner_folds(y, settings, seed, "full"), settings, seed, "full")
        pipe = pipeline_on_selection(model, params, cache.refit, X, y.to_numpy(), mseed, n_jobs)
    else:
        pipe = model_pipeline(model, params, selection, mseed, n_jobs)
        fit_for_prediction(pipe, X, y.to_numpy())
    rows = []
    for cohort in design.cohorts():
        Xc, yc = design.subset(cohort)
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": Xc.index,
                    "cohort": cohort,
                    "model": model,
                    "probability": pipe.predict_proba(Xc)[:, 1],
                    "label": yc.to_numpy(),
                }
            )
        )
    return pipe, pd.concat(rows, ignore_index=True)


#: thresholds.tsv ``source`` of a threshold from :func:`final_cv_threshold`.
FINAL_CV_SOURCE = (
    "Youden J on {k}-fold cross-validated predictions of the final configuration "
    "(tuned parameters, selection refitted in each fold; training set)"
)


def final_cv_threshold(
    model: str,
    params: dict,
    X: pd.DataFrame,
    y: pd.Series,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    caches: dict[str, SelectionCache] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """The decision threshold on the final model's own probability scale.

    The final configuration (``params`` and the selection, refitted on each fold's
    training rows) is cross-validated on the training set over the outer folds of nested
    CV; Youden's J on the pooled out-of-fold probabilities gives the cut-off. Only the
    training patients ``X, y`` are used. Returns (threshold record, out-of-fold
    predictions patient_id, model, fold, probability, label). caches: context name ->
    the selection fitted once for every model; fold k's is ``outer<k>``'s refit (the
    same rows).
    """
    from npc_radiomics.metrics import youden_threshold

    selection = selection if selection is not None else settings.selection(seed)
    folds = outer_folds(y, settings, seed)
    rows = []
    mseed = model_seed(seed, model)
    for k, (tr, va) in enumerate(folds):
        cache = (caches or {}).get(f"outer{k}")
        if cache is not None:
            X_k, y_k = X.iloc[tr], y.iloc[tr]
            context = f"outer{k}"
            folds_k = inner_folds(y_k, settings, seed, context)
            check_cache(cache, X_k, y_k, folds_k, settings, seed, context)
            pipe = pipeline_on_selection(
                model, params, cache.refit, X_k, y_k.to_numpy(), mseed, n_jobs
            )
        else:
            pipe = model_pipeline(model, params, selection, mseed, n_jobs)
            fit_for_prediction(pipe, X.iloc[tr], y.iloc[tr].to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": X.index[va],
                    "model": model,
                    "fold": k,
                    "probability": pipe.predict_proba(X.iloc[va])[:, 1],
                    "label": y.iloc[va].to_numpy(),
                }
            )
        )
    oof = pd.concat(rows, ignore_index=True).sort_values("patient_id", kind="mergesort")
    threshold = youden_threshold(oof["label"].to_numpy(), oof["probability"].to_numpy())
    record = {
        "model": model,
        "threshold": None if not np.isfinite(threshold) else float(threshold),
        "source": FINAL_CV_SOURCE.format(k=len(folds)),
        "n_folds": len(folds),
        "n": len(oof),
        "cv_auc": float(roc_auc_score(oof["label"], oof["probability"]))
        if oof["label"].nunique() == 2
        else None,
    }
    return record, oof.reset_index(drop=True)
