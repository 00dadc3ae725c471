"""SHAP of the chosen model: the explainer per model kind, additivity, feature space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.base.errors import InputError
from npc_radiomics.evaluation import shap_analysis as sa
from npc_radiomics.modelling.selection import selection_pipeline
from npc_radiomics.modelling.studies import model_pipeline
from npc_radiomics.modelling.zoo import MODEL_NAMES, build_model

SMALL_PARAMS = {
    "svm": {"C": 1.0, "gamma": 0.1, "kernel": "rbf"},
    "knn": {"n_neighbors": 5},
    "random_forest": {"n_estimators": 60, "max_depth": 4},
    "extra_trees": {"n_estimators": 60, "max_depth": 4},
    "xgboost": {"n_estimators": 40, "max_depth": 3},
    "lightgbm": {"n_estimators": 40, "num_leaves": 8},
    "mlp": {"n_layers": 1, "n_units": 8},
    "logistic_regression": {"C": 1.0},
}
EXPECTED_KIND = {
    "svm": "permutation",
    "knn": "permutation",
    "mlp": "permutation",
    "random_forest": "tree",
    "extra_trees": "tree",
    "xgboost": "tree",
    "lightgbm": "tree",
    "logistic_regression": "linear",
}


@pytest.fixture(scope="module")
def cohort():
    """70 patients x 25 raw features, 2 of them informative; 50 train, 20 test."""
    rng = np.random.default_rng(7)
    n, m = 70, 25
    X = pd.DataFrame(
        rng.normal(size=(n, m)),
        columns=[f"T2__feature{j:02d}" for j in range(m)],
        index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"),
    )
    y = pd.Series(
        (X.iloc[:, 0] - 0.8 * X.iloc[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(int),
        index=X.index,
    )
    cohort = pd.Series(["train"] * 50 + ["test"] * 20, index=X.index)
    return X, y, cohort


_FITTED: dict[str, object] = {}


def fitted(model: str, cohort):
    """The model's pipeline (selection + classifier) fitted on the training patients; cached
    because the selection's LASSO CV is the slow part and the tests only read the fit."""
    if model not in _FITTED:
        X, y, groups = cohort
        train = (groups == "train").to_numpy()
        selection = selection_pipeline(8, 3, 10, "min", 0)
        pipe = model_pipeline(model, SMALL_PARAMS[model], selection, 1)
        _FITTED[model] = pipe.fit(X[train], y[train].to_numpy())
    return _FITTED[model]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_explainer_kind_follows_the_model(model):
    clf = build_model(model, SMALL_PARAMS[model], seed=0)
    assert sa.explainer_kind(clf) == EXPECTED_KIND[model]


@pytest.mark.parametrize(
    "model", ["random_forest", "extra_trees", "xgboost", "lightgbm", "logistic_regression"]
)
def test_additivity_reproduces_the_model_output(model, cohort):
    X, _, groups = cohort
    pipe = fitted(model, cohort)
    result = sa.explain_chosen_model(pipe, X, groups, seed=1)
    test = X[(groups == "test").to_numpy()]
    # the model's own output, computed here independently of the explainer
    if model == "logistic_regression":
        expected = pipe.decision_function(test)
        assert result.output == "log-odds of CR"
        assert result.explainer == "LinearExplainer"
    else:
        expected = pipe.predict_proba(test)[:, 1]
        assert result.output == "probability of CR"
        assert result.explainer.startswith("TreeExplainer")
    reconstructed = result.base_value + result.values.sum(axis=1)
    np.testing.assert_allclose(reconstructed, expected, atol=1e-6)
    assert result.max_additivity_error < 1e-6


def test_explained_on_test_set_in_the_classifier_feature_space(cohort):
    X, _, groups = cohort
    pipe = fitted("logistic_regression", cohort)
    result = sa.explain_chosen_model(pipe, X, groups, seed=1)
    selected = list(pipe[:-1].get_feature_names_out(list(X.columns)))
    assert result.features == selected
    assert 0 < len(selected) < X.shape[1]
    assert list(result.feature_values.index) == list(X.index[(groups == "test").to_numpy()])
    assert result.explained_cohort == "test"
    assert result.n_background == 50  # all training patients: fewer than BACKGROUND_SIZE
    # the classifier sees standardised features: training mean 0
    train_inputs = sa.classifier_inputs(pipe[:-1], X[(groups == "train").to_numpy()])
    np.testing.assert_allclose(train_inputs.mean(), 0, atol=1e-10)


def test_linear_shap_is_coefficient_times_distance_to_background_mean(cohort):
    X, _, groups = cohort
    pipe = fitted("logistic_regression", cohort)
    result = sa.explain_chosen_model(pipe, X, groups, seed=1)
    background = sa.classifier_inputs(pipe[:-1], X[(groups == "train").to_numpy()])
    coef = pipe[-1].coef_.ravel()
    expected = (result.feature_values.to_numpy() - background.to_numpy().mean(axis=0)) * coef
    np.testing.assert_allclose(result.values, expected, atol=1e-10)


def test_model_agnostic_explainer_is_seeded_and_additive(cohort):
    X, _, groups = cohort
    pipe = fitted("knn", cohort)
    first = sa.explain_chosen_model(pipe, X, groups, seed=3, background_size=20)
    again = sa.explain_chosen_model(pipe, X, groups, seed=3, background_size=20)
    assert first.explainer == "PermutationExplainer"
    assert first.n_background == 20
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_allclose(
        first.base_value + first.values.sum(axis=1),
        pipe.predict_proba(X[(groups == "test").to_numpy()])[:, 1],
        atol=1e-9,
    )


def test_background_sample_is_seeded_and_bounded():
    X = pd.DataFrame({"a": np.arange(300.0)})
    one = sa.background_sample(X, 100, seed=5)
    assert len(one) == 100 and one.index.is_monotonic_increasing
    assert one.equals(sa.background_sample(X, 100, seed=5))
    assert not one.equals(sa.background_sample(X, 100, seed=6))
    assert sa.background_sample(X.head(40), 100, seed=5).equals(X.head(40))


def test_without_test_patients_the_training_set_is_explained_with_a_note(cohort):
    X, _, groups = cohort
    pipe = fitted("logistic_regression", cohort)
    only_train = groups.replace({"test": "ND"})
    result = sa.explain_chosen_model(pipe, X, only_train, seed=1)
    assert result.explained_cohort == "train"
    assert "no test patient" in result.note
    assert result.values.shape[0] == 50


def test_importance_table_and_summary(cohort):
    X, _, groups = cohort
    result = sa.explain_chosen_model(fitted("random_forest", cohort), X, groups, seed=1)
    table = sa.importance_table(result)
    assert list(table.columns) == ["rank", "feature", "mean_abs_shap", "mean_shap"]
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    np.testing.assert_allclose(
        table.set_index("feature")["mean_abs_shap"],
        np.abs(result.values).mean(axis=0)[[result.features.index(f) for f in table["feature"]]],
    )
    summary = result.summary("random_forest")
    assert summary["n_explained"] == 20 and summary["model"] == "random_forest"
    assert list(result.values_table().columns) == ["patient_id", *result.features]


def test_not_a_pipeline_is_a_clear_error(cohort):
    X, _, groups = cohort
    with pytest.raises(InputError, match="Pipeline"):
        sa.explain_chosen_model(build_model("logistic_regression", {}, 0), X, groups, seed=1)
