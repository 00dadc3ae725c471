"""SHAP explanations of the chosen model (pipeline step 18).

The fitted model is a scikit-learn ``Pipeline``: selection steps (impute, variance
filter, scaler, mRMR, LASSO), then the classifier as the last step. SHAP values are
computed in the space of the features that reach the classifier, i.e. after the fitted
selection steps: those are the features the model actually uses, on the scale it sees
them (standardised with the training mean and SD).

The explainer follows the classifier's kind:

- trees (random forest, extra trees, XGBoost, LightGBM): ``shap.TreeExplainer``,
  interventional, with a training background, explaining the probability of CR;
- logistic regression: ``shap.LinearExplainer`` with a training background, explaining
  the log-odds of CR (exact for a linear model);
- anything else (SVM with Platt scaling, KNN, MLP): ``shap.PermutationExplainer``,
  seeded, on the probability of CR, with a training background.

Background = a seeded random sample of at most :data:`BACKGROUND_SIZE` training
patients; explained patients = the test cohort (the training cohort only when there is
no test patient, with a note). In every case base value + sum of a patient's SHAP
values = the explained model output for that patient (``max_additivity_error`` checks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.metrics import shap_importance

log = logging.getLogger(__name__)


#: Training patients in the background sample (all of them when fewer).
BACKGROUND_SIZE = 100


#: Model evaluations per explained patient for the permutation explainer; must exceed
#: 2 x the number of features (one forward and one backward pass per permutation).
PERMUTATION_EVALS = 1000


TREE_MODELS = (
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "XGBClassifier",
    "LGBMClassifier",
)


LINEAR_MODELS = ("LogisticRegression",)


@dataclass
class ShapResult:
    """SHAP values of the explained patients, with what was explained and how.

    values: (n_patients, n_features) in ``output`` units (probability or log-odds);
    base_value: the expected model output over the background (same units);
    feature_values: the explained patients' features as the classifier sees them;
    model_output: the model's own output for them (what base + sum(values) reproduces).
    """

    values: np.ndarray
    base_value: float
    feature_values: pd.DataFrame  # index patient_id, one column per classifier feature
    model_output: np.ndarray
    explainer: str
    output: str  # "probability of CR" | "log-odds of CR"
    explained_cohort: str
    n_background: int
    note: str = ""

    @property
    def features(self) -> list[str]:
        return list(self.feature_values.columns)

    @property
    def max_additivity_error(self) -> float:
        """max |base + sum(SHAP) - model output| over patients (0 up to float error)."""
        if self.values.size == 0:
            return 0.0
        return float(np.max(np.abs(self.base_value + self.values.sum(axis=1) - self.model_output)))

    def values_table(self) -> pd.DataFrame:
        """patient_id, then one column of SHAP values per feature (classifier order)."""
        out = pd.DataFrame(self.values, columns=self.features, index=self.feature_values.index)
        return out.reset_index()

    def summary(self, model: str) -> dict:
        """JSON-ready description for results/shap/shap.json and the report."""
        return {
            "model": model,
            "explainer": self.explainer,
            "output": self.output,
            "base_value": float(self.base_value),
            "explained_cohort": self.explained_cohort,
            "n_explained": int(self.values.shape[0]),
            "n_background": int(self.n_background),
            "n_features": len(self.features),
            "max_additivity_error": self.max_additivity_error,
            "note": self.note,
        }


def explainer_kind(classifier) -> str:
    """``tree``, ``linear`` or ``permutation``: the SHAP explainer suited to a classifier.

    Decided by the estimator's class name, so that xgboost / lightgbm need not be
    importable to explain another model.
    """
    name = type(classifier).__name__
    if name in TREE_MODELS:
        return "tree"
    if name in LINEAR_MODELS:
        return "linear"
    return "permutation"


def split_pipeline(pipeline):
    """(selection steps, classifier) of a fitted Pipeline whose last step is the model."""
    steps = getattr(pipeline, "steps", None)
    if not steps:
        raise InputError("SHAP: the fitted model must be a scikit-learn Pipeline")
    if len(steps) == 1:
        return None, steps[0][1]
    return pipeline[:-1], steps[-1][1]


def classifier_inputs(selection, X: pd.DataFrame) -> pd.DataFrame:
    """The features that reach the classifier: ``X`` through the fitted selection steps."""
    if selection is None:
        return X.astype(float)
    names = [str(n) for n in selection.get_feature_names_out(list(X.columns))]
    return pd.DataFrame(selection.transform(X), columns=names, index=X.index)


def background_sample(X: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded random sample of ``size`` rows of ``X`` (all rows, in order, if fewer)."""
    if len(X) <= size:
        return X
    rows = np.sort(np.random.default_rng(seed).choice(len(X), size=size, replace=False))
    return X.iloc[rows]


def _positive_column(values: np.ndarray) -> np.ndarray:
    """SHAP values of class 1 when an explainer returns one set per class."""
    values = np.asarray(values, dtype=float)
    return values[..., 1] if values.ndim == 3 else values


def _positive_base(base) -> float:
    base = np.asarray(base, dtype=float).ravel()
    return float(base[1] if base.size == 2 else base[0])


def _explain_tree(clf, background: np.ndarray, X: np.ndarray):
    import shap

    # Interventional with model_output="probability": every tree model is explained on
    # the probability scale against the training background, so units agree across kinds.
    explainer = shap.TreeExplainer(
        clf, data=background, feature_perturbation="interventional", model_output="probability"
    )
    values = _positive_column(explainer.shap_values(X, check_additivity=False))
    return values, _positive_base(explainer.expected_value), clf.predict_proba(X)[:, 1]


def _explain_linear(clf, background: np.ndarray, X: np.ndarray):
    import shap

    explainer = shap.LinearExplainer(clf, shap.maskers.Independent(background, len(background)))
    values = np.asarray(explainer.shap_values(X), dtype=float)
    return values, _positive_base(explainer.expected_value), clf.decision_function(X)


def _explain_permutation(clf, background: np.ndarray, X: np.ndarray, seed: int):
    import shap

    def probability(rows: np.ndarray) -> np.ndarray:
        return clf.predict_proba(rows)[:, 1]

    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.PermutationExplainer(probability, masker, seed=seed)
    max_evals = max(PERMUTATION_EVALS, 2 * X.shape[1] + 1)
    explanation = explainer(X, max_evals=max_evals, silent=True)
    base = np.asarray(explanation.base_values, dtype=float).ravel()
    # the base value is the same for every patient: the mean output over the background
    return np.asarray(explanation.values, dtype=float), float(base[0]), probability(X)


def explain_model(
    pipeline,
    X_train: pd.DataFrame,
    X_explain: pd.DataFrame,
    seed: int,
    explained_cohort: str = "test",
    background_size: int = BACKGROUND_SIZE,
) -> ShapResult:
    """SHAP values of a fitted pipeline's classifier for the patients of ``X_explain``.

    X_train: the training patients' raw features (rows = patients, index patient_id),
    from which the background is sampled; X_explain: the patients to explain (raw
    features, same columns). seed: fixes the background sample and the permutations.
    """
    if X_explain.empty:
        raise InputError("SHAP: no patient to explain")
    if X_train.empty:
        raise InputError("SHAP: no training patient for the background")
    selection, clf = split_pipeline(pipeline)
    train = classifier_inputs(selection, X_train)
    explain = classifier_inputs(selection, X_explain)
    background = background_sample(train, background_size, seed)
    kind = explainer_kind(clf)
    bg, x = background.to_numpy(dtype=float), explain.to_numpy(dtype=float)
    log.info(
        "SHAP: %s explainer for %s, %d patients x %d features, background %d",
        kind,
        type(clf).__name__,
        len(x),
        x.shape[1],
        len(bg),
    )
    if kind == "tree":
        values, base, output = _explain_tree(clf, bg, x)
        name, units = "TreeExplainer (interventional)", "probability of CR"
    elif kind == "linear":
        values, base, output = _explain_linear(clf, bg, x)
        name, units = "LinearExplainer", "log-odds of CR"
    else:
        values, base, output = _explain_permutation(clf, bg, x, seed)
        name, units = "PermutationExplainer", "probability of CR"
    if values.shape != x.shape:
        raise InputError(f"SHAP: {name} returned shape {values.shape}, expected {x.shape}")
    return ShapResult(
        values=values,
        base_value=base,
        feature_values=explain,
        model_output=np.asarray(output, dtype=float),
        explainer=name,
        output=units,
        explained_cohort=explained_cohort,
        n_background=len(bg),
    )


def explain_chosen_model(
    pipeline, X: pd.DataFrame, cohort: pd.Series, seed: int, background_size: int = BACKGROUND_SIZE
) -> ShapResult:
    """SHAP for the test cohort with a training background (pipeline step 18).

    X: raw features of every patient (index patient_id); cohort: ``train``, ``test`` or a
    centre per patient. Without test patients the training cohort is explained instead,
    and ``note`` says so (in-sample explanations flatter nothing but are less telling).
    """
    train = X[cohort.reindex(X.index).to_numpy() == "train"]
    test = X[cohort.reindex(X.index).to_numpy() == "test"]
    if test.empty:
        result = explain_model(pipeline, train, train, seed, "train", background_size)
        result.note = "no test patient: the training patients are explained"
        return result
    return explain_model(pipeline, train, test, seed, "test", background_size)


def importance_table(result: ShapResult) -> pd.DataFrame:
    """rank, feature, mean_abs_shap, mean_shap (in ``result.output`` units), largest first."""
    table = shap_importance(result.values, result.features)
    signed = pd.Series(result.values.mean(axis=0), index=result.features)
    table["mean_shap"] = signed.reindex(table["feature"]).to_numpy()
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def shap_rule(model: str | None, pipeline_paths: dict[str, str], design, seed: int, out) -> str:
    """Rule ``shap_analysis``: explain the chosen ``model`` and write every output of
    ``out`` (summary, values, importance, beeswarm, bar).

    ``pipeline_paths`` maps each model to its fitted pipeline (checked against its
    SHA-256 before loading). With no chosen model every output says so instead of
    failing the run. Returns the line to log.
    """
    from npc_radiomics.base.io import write_json, write_tsv
    from npc_radiomics.figures import placeholder_figure, plot_shap_bar, plot_shap_beeswarm
    from npc_radiomics.modelling.persistence import load_pipeline

    if model is None:
        reason = "no chosen model (no model has a nested-CV AUC)"
        write_json({"status": "unavailable", "model": None, "note": reason}, out.summary)
        write_tsv(pd.DataFrame(columns=["patient_id"]), out.values)
        write_tsv(
            pd.DataFrame(columns=["rank", "feature", "mean_abs_shap", "mean_shap"]),
            out.importance,
        )
        placeholder_figure(out.beeswarm, reason)
        placeholder_figure(out.bar, reason)
        return reason
    if model not in pipeline_paths:
        raise InputError(f"chosen model {model}: no fitted pipeline among {sorted(pipeline_paths)}")
    pipeline = load_pipeline(pipeline_paths[model])
    result = explain_chosen_model(pipeline, design.model_X, design.cohort, seed)
    write_json({"status": "ok", **result.summary(model)}, out.summary)
    write_tsv(result.values_table(), out.values)
    write_tsv(importance_table(result), out.importance)
    plot_shap_beeswarm(result.values, result.feature_values, result.features, out.beeswarm)
    plot_shap_bar(result.values, result.features, out.bar)
    return f"SHAP of {model}: max additivity error {result.max_additivity_error:.2e}"
