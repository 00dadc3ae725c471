"""Baselines on the same footing as the radiomics models (rule ``baselines``, step 22).

Three procedures, each scored like the radiomics models: the same split, the same outer
folds of nested CV on the training set (``tuning.outer_folds``), the same threshold rule
(Youden J on cross-validated predictions of the procedure on the training set, applied
unchanged elsewhere), Table 3 rows (``evaluation.evaluation_tables``) and paired DeLong
tests against the chosen radiomics model:

- ``baseline_volume``: logistic regression on log tumour volume (pyradiomics shape
  ``MeshVolume`` of one configured sequence), standardised on the training rows;
- ``baseline_clinical``: the stepwise clinical model (univariate screen p < entry_p, then
  bidirectional stepwise LR, ``clinical.stepwise_logistic``), redone in each outer fold;
- ``baseline_combined``: an unpenalised logistic regression (a nomogram) on the logit of
  the radiomics score plus the clinical variables the stepwise model keeps (stepwise
  redone in each outer fold); with NRI and IDI against the radiomics score alone. The
  score is stacked without leakage: in outer fold k the training rows carry the chosen
  model's *inner* out-of-fold scores within fold k's training part (rule
  ``inner_scores``: fold k's tuned configuration refitted on each inner fold's cached
  selection, :func:`inner_oof_scores`), so no score of a training row came from a model
  that saw fold k's held-out patients; the held-out rows carry fold k's own nested-CV
  prediction. The final fit uses the nested-CV out-of-fold scores of the whole training
  set, and test / external rows the final model's prediction.

Each procedure is a ``fit(rows) -> predict(rows)`` function of training rows only; the
nested-CV rows fit it on an outer fold's training part and score its held-out part.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.layout import (
    NESTED_PREDICTION_COLUMNS,
    POOLED_EXTERNAL,
    PREDICTION_COLUMNS,
    cohort_order,
)

log = logging.getLogger(__name__)

VOLUME = "baseline_volume"
CLINICAL = "baseline_clinical"
COMBINED = "baseline_combined"
BASELINES = (VOLUME, CLINICAL, COMBINED)
TRAIN = "train"
#: Columns of reclassification.tsv (combined versus radiomics score alone).
RECLASSIFICATION_COLUMNS = [
    "model",
    "reference",
    "cohort",
    "n",
    "n_events",
    "nri",
    "nri_ci_low",
    "nri_ci_high",
    "nri_events",
    "nri_non_events",
    "idi",
    "idi_ci_low",
    "idi_ci_high",
    "predictions",
]

Predictor = Callable[[pd.DataFrame], np.ndarray]
Procedure = Callable[[pd.DataFrame], Predictor]


# ---------------------------------------------------------------------------- procedures
def _logistic(columns: list[str], transform: Callable[[pd.DataFrame], pd.DataFrame]) -> Procedure:
    """Unpenalised logistic regression (maximum likelihood, as a nomogram's; standardised
    inputs for the solver) on ``columns`` after ``transform``; rows missing a column are
    left out of the fit and predicted NaN."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(rows: pd.DataFrame) -> Predictor:
        x = transform(rows[columns])
        ok = x.notna().all(axis=1).to_numpy()
        y = rows["label"].to_numpy()[ok]
        if len(np.unique(y)) < 2:
            prevalence = float(rows["label"].mean())
            return lambda new: np.full(len(new), prevalence)
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=np.inf, max_iter=1000))
        pipe.fit(x[ok].to_numpy(), y)

        def predict(new: pd.DataFrame) -> np.ndarray:
            xn = transform(new[columns])
            out = np.full(len(new), np.nan)
            good = xn.notna().all(axis=1).to_numpy()
            if good.any():
                out[good] = pipe.predict_proba(xn[good].to_numpy())[:, 1]
            return out

        return predict

    return fit


def log_volume(x: pd.DataFrame) -> pd.DataFrame:
    """Natural log of the volume (mm^3); a volume <= 0 or non-finite becomes NaN."""
    v = x.astype(float)
    return np.log(v.where(v > 0))


def volume_procedure(column: str = "volume") -> Procedure:
    """Logistic regression on log volume (``column`` of the rows)."""
    return _logistic([column], log_volume)


def stepwise_variables(rows: pd.DataFrame, variables: list[str], entry_p: float, stay_p: float):
    """The clinical model of ``rows``: univariate screen at ``entry_p``, then stepwise
    (``clinical.stepwise_logistic``); the rows' outcome is their ``label`` column."""
    from npc_radiomics.evaluation.clinical import stepwise_logistic, univariate_logistic

    data = rows.reset_index()
    t2 = univariate_logistic(data, "label", variables)
    candidates = t2.loc[t2["p_value"] < entry_p, "variable"].tolist()
    return stepwise_logistic(data, "label", candidates, entry_p, stay_p)


def clinical_procedure(variables: list[str], entry_p: float, stay_p: float) -> Procedure:
    """The stepwise clinical model, selection redone on the rows it is fitted on; no
    variable entering gives the rows' prevalence (the intercept-only model)."""

    def fit(rows: pd.DataFrame) -> Predictor:
        step = stepwise_variables(rows, variables, entry_p, stay_p)
        if step.model is None:
            prevalence = float(rows["label"].mean())
            return lambda new: np.full(len(new), prevalence)
        import statsmodels.api as sm

        def predict(new: pd.DataFrame) -> np.ndarray:
            x = sm.add_constant(new[step.selected].astype(float), has_constant="add")
            out = np.full(len(new), np.nan)
            ok = x.notna().all(axis=1).to_numpy()
            if ok.any():
                out[ok] = np.asarray(step.model.predict(x[ok]))
            return out

        return predict

    return fit


def _logit(p: pd.Series) -> pd.Series:
    p = p.astype(float).clip(1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def combined_procedure(variables: list[str], entry_p: float, stay_p: float) -> Procedure:
    """Logistic regression on the logit of the radiomics score (column ``score``) plus the
    clinical variables the stepwise model keeps on the rows it is fitted on."""

    def fit(rows: pd.DataFrame) -> Predictor:
        kept = stepwise_variables(rows, variables, entry_p, stay_p).selected if variables else []

        def transform(x: pd.DataFrame) -> pd.DataFrame:
            return x.assign(score=_logit(x["score"]))

        return _logistic(["score", *kept], transform)(rows)

    return fit


# ---------------------------------------------------------------------------- scoring
def procedure_predictions(
    name: str,
    procedure: Procedure,
    rows: pd.DataFrame,
    folds,
    fold_rows: Callable[[int, pd.DataFrame], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Final predictions, nested-CV out-of-fold predictions and the threshold record of
    one procedure.

    ``rows``: indexed by patient_id (sorted), with ``cohort``, ``label`` and the
    procedure's columns; ``folds``: (train, validation) positions into the training rows,
    the radiomics models' outer folds. The final fit uses the training rows only; the
    threshold is Youden's J on the out-of-fold predictions (the procedure has no tuning,
    so its nested CV is also the cross-validation of its final configuration).
    ``fold_rows(k, training_rows)``: the rows outer fold k's fit sees (the combined
    baseline swaps in the inner out-of-fold scores); default the rows themselves.
    """
    from npc_radiomics.metrics import youden_threshold

    train = rows[rows["cohort"] == TRAIN]
    parts = []
    for k, (tr, va) in enumerate(folds):
        fit_rows = train.iloc[tr]
        predict = procedure(fit_rows if fold_rows is None else fold_rows(k, fit_rows))
        held = train.iloc[va]
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": held.index,
                    "model": name,
                    "outer_fold": k,
                    "probability": predict(held),
                    "label": held["label"].to_numpy(),
                }
            )
        )
    nested = pd.concat(parts, ignore_index=True)
    nested = nested.sort_values(["outer_fold", "patient_id"], kind="mergesort")
    predict = procedure(train)
    final = pd.DataFrame(
        {
            "patient_id": rows.index,
            "cohort": rows["cohort"].to_numpy(),
            "model": name,
            "probability": predict(rows),
            "label": rows["label"].to_numpy(),
        }
    )
    rank = {c: i for i, c in enumerate(cohort_order(final["cohort"]))}
    final = final.sort_values(
        ["cohort", "patient_id"], key=lambda s: s.map(rank) if s.name == "cohort" else s
    )
    ok = nested["probability"].notna()
    threshold = youden_threshold(
        nested.loc[ok, "label"].to_numpy(), nested.loc[ok, "probability"].to_numpy()
    )
    record = {
        "model": name,
        "threshold": None if not np.isfinite(threshold) else float(threshold),
        "source": f"Youden J on {len(folds)}-fold cross-validated predictions of the baseline "
        "procedure (the radiomics models' outer folds; training set)",
    }
    return (
        final[PREDICTION_COLUMNS].reset_index(drop=True),
        nested[NESTED_PREDICTION_COLUMNS].reset_index(drop=True),
        record,
    )


def reclassification(
    y, p_new, p_old, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """Category-free (continuous) NRI and IDI of ``p_new`` over ``p_old``, with percentile
    bootstrap CIs (patients resampled, ``n_bootstrap`` times, seeded).

    NRI = [P(up | event) - P(down | event)] + [P(down | non-event) - P(up | non-event)];
    IDI = (mean p_new - mean p_old among events) - (same among non-events). NaN with
    fewer than one patient per class.
    """
    y = np.asarray(y, dtype=int)
    p_new, p_old = np.asarray(p_new, float), np.asarray(p_old, float)

    def stats(idx):
        yy, d = y[idx], p_new[idx] - p_old[idx]
        ev, ne = yy == 1, yy == 0
        if not ev.any() or not ne.any():
            return np.nan, np.nan, np.nan, np.nan
        nri_e = np.mean(d[ev] > 0) - np.mean(d[ev] < 0)
        nri_n = np.mean(d[ne] < 0) - np.mean(d[ne] > 0)
        return nri_e + nri_n, nri_e, nri_n, d[ev].mean() - d[ne].mean()

    nri, nri_e, nri_n, idi = stats(np.arange(len(y)))
    rng = np.random.default_rng(seed)
    boot = np.array([stats(rng.integers(0, len(y), len(y))) for _ in range(n_bootstrap)])
    alpha = (1 - level) / 2

    def ci(column):
        values = boot[:, column] if len(boot) else np.array([])
        values = values[np.isfinite(values)]
        if not len(values) or not np.isfinite(nri):
            return np.nan, np.nan
        return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))

    (nri_lo, nri_hi), (idi_lo, idi_hi) = ci(0), ci(3)
    return {
        "n": len(y),
        "n_events": int(y.sum()),
        "nri": nri,
        "nri_ci_low": nri_lo,
        "nri_ci_high": nri_hi,
        "nri_events": nri_e,
        "nri_non_events": nri_n,
        "idi": idi,
        "idi_ci_low": idi_lo,
        "idi_ci_high": idi_hi,
    }


def honest_scores(final: pd.DataFrame, nested: pd.DataFrame) -> pd.DataFrame:
    """One probability per patient and cohort, never in-sample: out-of-fold on the
    training cohort (from ``nested``), the final model's elsewhere. Columns patient_id,
    cohort, model, probability, label."""
    oof = nested[["patient_id", "model", "probability", "label"]].assign(cohort=TRAIN)
    rest = final[final["cohort"] != TRAIN]
    return pd.concat([oof, rest[oof.columns]], ignore_index=True)[PREDICTION_COLUMNS]


# ---------------------------------------------------------------------------- stacking
#: Columns of baselines/inner_scores.tsv (rule inner_scores).
INNER_SCORE_COLUMNS = ["outer_fold", "patient_id", "model", "inner_fold", "probability", "label"]


def inner_oof_scores(
    model: str, params: dict, cache, X_k: pd.DataFrame, y_k: pd.Series, settings, seed: int
) -> pd.DataFrame:
    """The inner out-of-fold scores of one outer fold's tuned configuration: ``model``
    with ``params`` refitted on each inner fold's training part of the fold's cached
    selection (``cache``: the context's :class:`SelectionCache`, fitted on the outer
    fold's training part only, checked against ``X_k, y_k``) and scored on the inner
    fold's validation part. Every training patient of the outer fold gets one score from a
    model that never saw it, nor any patient outside the outer fold's training part."""
    from npc_radiomics.modelling.folds import check_cache, inner_folds
    from npc_radiomics.modelling.studies import model_seed
    from npc_radiomics.modelling.zoo import build_model, fit_for_prediction

    folds = inner_folds(y_k, settings, seed, cache.context)
    check_cache(cache, X_k, y_k, folds, settings, seed, cache.context)
    parts = []
    for j, (fold, (_, va)) in enumerate(zip(cache.folds, folds, strict=True)):
        clf = fit_for_prediction(
            build_model(model, params, model_seed(seed, model)), fold.X_train, fold.y_train
        )
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": y_k.index[va],
                    "model": model,
                    "inner_fold": j,
                    "probability": clf.predict_proba(fold.X_val)[:, 1],
                    "label": fold.y_val,
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("patient_id", kind="mergesort")


def stacked_rows(inner_scores: pd.DataFrame | None):
    """``fold_rows`` hook of the combined baseline: outer fold k's training rows with
    ``score`` replaced by their inner out-of-fold scores within fold k's training part.
    InputError naming the patient when one has none."""

    def swap(k: int, rows: pd.DataFrame) -> pd.DataFrame:
        g = inner_scores[inner_scores["outer_fold"].astype(int) == k]
        scores = g.set_index("patient_id")["probability"].reindex(rows.index)
        if scores.isna().any():
            raise InputError(
                f"outer fold {k}: no inner out-of-fold radiomics score for patient "
                f"{scores.index[scores.isna()][0]}"
            )
        return rows.assign(score=scores.to_numpy())

    return swap


def inner_scores_rule(inputs, params, out) -> str:
    """Rule ``inner_scores``: the chosen model's inner out-of-fold scores in every outer
    fold (:func:`inner_oof_scores`, from the fold's tuned parameters and selection
    cache); empty without a chosen model."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.modelling.design import load_rule_design
    from npc_radiomics.modelling.folds import context_rows, load_selection_cache
    from npc_radiomics.modelling.settings import TuningSettings

    chosen = json.loads(Path(inputs.chosen).read_text())["model"]
    parts = [pd.DataFrame(columns=INNER_SCORE_COLUMNS)]
    if chosen:
        design = load_rule_design(inputs, params)
        X, y = design.train()
        settings = TuningSettings(**params.settings)
        infos = [json.loads(Path(p).read_text()) for p in inputs.fold_params]
        for k in range(settings.outer_folds):
            info = next(
                (i for i in infos if i["model"] == chosen and int(i["outer_fold"]) == k), None
            )
            if info is None or info.get("failed"):
                raise InputError(f"chosen model {chosen}: no tuned parameters for outer fold {k}")
            cache = load_selection_cache(
                next(p for p in inputs.selection if Path(p).stem == f"outer{k}")
            )
            X_k, y_k = context_rows(X, y, settings, params.seed, f"outer{k}")
            scores = inner_oof_scores(
                chosen, info["params"], cache, X_k, y_k, settings, params.seed
            )
            parts.append(scores.assign(outer_fold=k))
    table = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    write_tsv(table[INNER_SCORE_COLUMNS], out[0])
    return f"inner out-of-fold scores of {chosen}: {len(table)} rows"


# ---------------------------------------------------------------------------- the rule
def baseline_rows(
    design,
    chosen: str | None,
    predictions: pd.DataFrame,
    nested: pd.DataFrame,
    volume_column: str,
    clinical: pd.DataFrame | None = None,
    variables: tuple[list[str], list[str]] = ([], []),
) -> pd.DataFrame:
    """The baselines' inputs, indexed by patient_id (the design's sorted order): cohort,
    label, volume (when the table has ``volume_column``), the clinical variables and
    ``score`` (the chosen model's honest radiomics score). InputError (naming the patient)
    on a non-finite or non-positive training volume or a patient without a score."""
    rows = pd.DataFrame({"cohort": design.cohort, "label": design.y})
    if volume_column in design.X.columns:  # else no volume baseline (a gap with its reason)
        rows["volume"] = design.X[volume_column]
        bad = rows[(rows["cohort"] == TRAIN) & ~(rows["volume"] > 0)]
        if len(bad):
            raise InputError(
                f"patient {bad.index[0]}: {volume_column} = {bad['volume'].iloc[0]!r}, a "
                "positive volume is needed for the volume baseline"
            )
    if clinical is not None:
        columns = [*variables[0], *variables[1]]
        table = clinical.set_index("patient_id")
        absent = [p for p in rows.index if p not in table.index]
        if absent:
            raise InputError(f"clinical table: no row for patient {absent[0]}")
        rows = rows.join(table[columns])
    if chosen:
        # the pooled external cohort repeats every external patient: one row per patient
        own = predictions[
            (predictions["model"] == chosen) & (predictions["cohort"] != POOLED_EXTERNAL)
        ]
        scores = honest_scores(own, nested[nested["model"] == chosen]).set_index("patient_id")[
            "probability"
        ]
        rows["score"] = scores.reindex(rows.index)
        missing = rows.index[rows["score"].isna()]
        if len(missing):
            raise InputError(f"chosen model {chosen}: no score for patient {missing[0]}")
    rows.index.name = "patient_id"
    return rows


def run_baselines(
    rows: pd.DataFrame,
    folds,
    variables: list[str] | None,
    entry_p: float,
    stay_p: float,
    inner_scores: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict], dict[str, str]]:
    """Every baseline that this run can make: (final predictions, nested-CV predictions,
    threshold records, notes {baseline: why it is missing}). ``inner_scores``: the chosen
    model's inner out-of-fold scores (outer_fold, patient_id, probability), the combined
    baseline's training scores in each outer fold (:func:`stacked_rows`)."""
    procedures: dict[str, Procedure] = {}
    notes = {}
    if "volume" in rows:
        procedures[VOLUME] = volume_procedure()
    else:
        notes[VOLUME] = "no volume column in the feature table (baselines.volume_feature)"
    if variables is None:
        notes[CLINICAL] = notes[COMBINED] = "no clinical table in this run"
    else:
        procedures[CLINICAL] = clinical_procedure(variables, entry_p, stay_p)
        if "score" not in rows:
            notes[COMBINED] = "no chosen radiomics model"
        elif inner_scores is None:
            notes[COMBINED] = "no inner out-of-fold radiomics scores to stack"
        else:
            procedures[COMBINED] = combined_procedure(variables, entry_p, stay_p)
    finals = [pd.DataFrame(columns=PREDICTION_COLUMNS)]
    nesteds = [pd.DataFrame(columns=NESTED_PREDICTION_COLUMNS)]
    records = []
    for name, procedure in procedures.items():
        hook = stacked_rows(inner_scores) if name == COMBINED else None
        final, nested, record = procedure_predictions(name, procedure, rows, folds, hook)
        finals.append(final)
        nesteds.append(nested)
        records.append(record)
    final = pd.concat([f for f in finals if len(f)] or finals[:1], ignore_index=True)
    nested = pd.concat([n for n in nesteds if len(n)] or nesteds[:1], ignore_index=True)
    return final, nested, records, notes


def comparisons(
    final: pd.DataFrame,
    nested: pd.DataFrame,
    chosen: str | None,
    predictions: pd.DataFrame,
    radiomics_nested: pd.DataFrame,
    n_bootstrap: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DeLong tests of the chosen radiomics model against each baseline, and NRI / IDI of
    the combined model over the radiomics score alone, per cohort; on the training cohort
    both sides are out-of-fold predictions."""
    from npc_radiomics.evaluation.clinical import DELONG_COLUMNS, delong_versus

    if not chosen:
        return pd.DataFrame(columns=DELONG_COLUMNS), pd.DataFrame(columns=RECLASSIFICATION_COLUMNS)
    reference = honest_scores(
        predictions[predictions["model"] == chosen],
        radiomics_nested[radiomics_nested["model"] == chosen],
    )
    baselines = honest_scores(final, nested)
    scores = baselines.rename(columns={"model": "comparator", "probability": "score"})
    tests = delong_versus(reference, scores, chosen)
    tests["predictions"] = np.where(
        tests["cohort"] == TRAIN, "out-of-fold (nested CV, same outer folds)", "final models"
    )
    rows = []
    combined = baselines[baselines["model"] == COMBINED]
    both = combined.merge(reference, on=["patient_id", "cohort"], suffixes=("_new", "_old"))
    both = both.dropna(subset=["probability_new", "probability_old"])
    for cohort in cohort_order(both["cohort"]):
        g = both[both["cohort"] == cohort]
        row = reclassification(
            g["label_new"], g["probability_new"], g["probability_old"], n_bootstrap, seed
        )
        row.update(
            model=COMBINED,
            reference=chosen,
            cohort=cohort,
            predictions="out-of-fold" if cohort == TRAIN else "final models",
        )
        rows.append(row)
    return tests, pd.DataFrame(rows, columns=RECLASSIFICATION_COLUMNS)


def baselines_rule(inputs, params, out) -> str:
    """Rule ``baselines``: read the design (no robust-feature filter: volume may fail the
    ICC), the chosen model's predictions and, when there is one, the clinical table;
    write every output of ``out``. Returns the line to log."""
    from npc_radiomics.base.io import read_table, write_json, write_tsv
    from npc_radiomics.evaluation.performance import evaluation_tables
    from npc_radiomics.metrics import METRICS_COLUMNS
    from npc_radiomics.modelling.design import load_design
    from npc_radiomics.modelling.folds import outer_folds
    from npc_radiomics.modelling.settings import TuningSettings

    design = load_design(
        inputs.features,
        inputs.split,
        None,
        params.id_column,
        params.outcome,
        extra_excluded=tuple(params.exclude or ()),
    )
    settings = TuningSettings(**params.settings)
    chosen = json.loads(Path(inputs.chosen).read_text())["model"]
    predictions = read_table(inputs.predictions, dtype={"patient_id": str})
    radiomics_nested = read_table(inputs.nested, dtype={"patient_id": str})
    variables = None
    clinical = None
    if inputs.get("clinical"):
        from npc_radiomics.evaluation.clinical import merge_split
        from npc_radiomics.inputs.sheets import dummy_code, read_clinical

        continuous, categorical = list(params.continuous), list(params.categorical)
        table = read_clinical(
            inputs.clinical,
            params.outcome,
            continuous,
            categorical,
            [],
            sheet=params.get("clinical_sheet"),
        )
        # Text-coded categorical variables enter the clinical model as level dummies.
        table, variables = dummy_code(table, [*continuous, *categorical], categorical)
        clinical = merge_split(table, read_table(inputs.split, dtype={"patient_id": str}))
    volume_column = f"{params.volume_sequence}__{params.volume_feature}"
    rows = baseline_rows(
        design,
        chosen,
        predictions,
        radiomics_nested,
        volume_column,
        clinical,
        (variables or [], []),
    )
    y_train = design.y[design.cohort == TRAIN]
    folds = outer_folds(y_train, settings, params.seed)
    inner = read_table(inputs.inner_scores, dtype={"patient_id": str}) if chosen else None
    final, nested, records, notes = run_baselines(
        rows, folds, variables, params.entry_p, params.stay_p, inner
    )
    models = sorted(final["model"].unique())
    if models:
        tables = evaluation_tables(
            final,
            nested,
            models,
            ci_method=params.ci_method,
            n_bootstrap=params.n_bootstrap,
            calibration_bins=params.calibration_bins,
            seed=params.evaluation_seed,
            threshold_records=records,
            outer_folds=settings.outer_folds,
        )
        metrics, thresholds = tables.metrics, tables.thresholds
    else:
        metrics = pd.DataFrame(columns=METRICS_COLUMNS)
        thresholds = pd.DataFrame(columns=["model", "threshold", "source", "nested_cv_threshold"])
    tests, reclass = comparisons(
        final,
        nested,
        chosen,
        predictions,
        radiomics_nested,
        params.n_bootstrap,
        params.evaluation_seed,
    )
    write_tsv(final, out.predictions)
    write_tsv(nested, out.nested)
    write_tsv(metrics, out.metrics)
    write_tsv(thresholds, out.thresholds)
    write_tsv(tests, out.delong_tests)
    write_tsv(reclass, out.reclassification)
    write_json(
        {
            "chosen_model": chosen,
            "baselines": models,
            "missing": notes,
            "volume_column": volume_column,
            "outer_folds": len(folds),
        },
        out.summary,
    )
    return f"baselines {models} against {chosen}; missing: {notes or 'none'}"


def table_has_column(path: str | Path, column: str, sheet: str | None = None) -> bool:
    """Whether a feature table (any format :func:`npc_radiomics.base.io.read_features_table`
    reads) has ``column`` (header or schema only)."""
    from npc_radiomics.base.io import table_header

    return column in table_header(path, "features table", sheet)
