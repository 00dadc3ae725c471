"""The model zoo: every model gives probabilities; search spaces are validated up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.zoo import (
    MODEL_NAMES,
    build_model,
    fit_for_prediction,
    parse_search_spaces,
    suggest_params,
)

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())


@pytest.fixture(scope="module")
def spaces():
    return parse_search_spaces(CONFIG["search_spaces"], list(MODEL_NAMES))


def test_default_config_covers_every_model(spaces):
    assert set(spaces) == set(MODEL_NAMES)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_gives_probabilities(model, spaces):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + rng.normal(scale=0.5, size=60) > 0).astype(int)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    params = suggest_params(study.ask(), spaces[model])
    clf = build_model(model, params, seed=3, n_jobs=1).fit(X, y)
    prob = clf.predict_proba(X)
    assert prob.shape == (60, 2)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    again = build_model(model, params, seed=3, n_jobs=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(prob, again)  # seeded: same probabilities


def test_fixed_values_and_virtual_mlp_params():
    spaces = parse_search_spaces(
        {"mlp": {"n_layers": 2, "n_units": {"type": "int", "low": 4, "high": 8}}}, ["mlp"]
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = suggest_params(study.ask(), spaces["mlp"])
    assert params["n_layers"] == 2
    clf = build_model("mlp", params, seed=0)
    assert len(clf.hidden_layer_sizes) == 2


@pytest.mark.parametrize(
    "spaces,models,message",
    [
        ({"svm": {"C": 1.0}}, ["catboost"], "unknown model 'catboost'"),
        ({"svmm": {"C": 1.0}}, [], "unknown model 'svmm'"),
        ({}, ["svm"], "search_spaces.svm: missing"),
        ({"svm": {"Cee": 1.0}}, ["svm"], "search_spaces.svm.Cee: not a parameter"),
        ({"svm": {"random_state": 1}}, ["svm"], "not tunable"),
        ({"svm": {"C": {"type": "float", "low": 5, "high": 1}}}, ["svm"], "must be smaller"),
        ({"svm": {"C": {"type": "float", "low": 0, "high": 1, "log": True}}}, ["svm"], "log"),
        ({"svm": {"C": {"type": "float", "high": 1}}}, ["svm"], "'low' must be a number"),
        ({"svm": {"C": {"type": "double", "low": 0, "high": 1}}}, ["svm"], "'type' must be"),
        ({"svm": {"kernel": {"type": "categorical", "choices": []}}}, ["svm"], "non-empty"),
        ({"svm": {"kernel": {"type": "categorical", "choices": ["rbff"]}}}, ["svm"], "rejected"),
        ({"svm": {"kernel": ["rbf", "linear"]}}, ["svm"], "a list is not a spec"),
        ({"knn": {"n_neighbors": {"type": "int", "low": 1.5, "high": 4}}}, ["knn"], "integers"),
        (
            {"knn": {"n_neighbors": {"type": "int", "low": 1, "high": 4, "lo": 2}}},
            ["knn"],
            "unknown field",
        ),
        ("nope", ["svm"], "must be a mapping"),
    ],
)
def test_malformed_search_spaces_are_input_errors(spaces, models, message):
    with pytest.raises(InputError, match=message):
        parse_search_spaces(spaces, models)


@pytest.mark.parametrize("model", ["random_forest", "extra_trees", "xgboost", "lightgbm", "knn"])
def test_thread_count_does_not_change_predictions(model, spaces):
    """tuning.threads_per_job reaches the estimator and changes no probability (forests
    predict on one thread: their threaded sum is order-dependent in the last bit)."""
    from npc_radiomics.modelling.settings import THREADED_MODELS, model_threads

    assert model in THREADED_MODELS
    cfg = {"tuning": {"threads_per_job": 2}}
    assert model_threads(cfg, model) == 2 and model_threads(cfg, "svm") == 1
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 20))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=150) > 0).astype(int)
    Xv = rng.normal(size=(400, 20))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    params = suggest_params(study.ask(), spaces[model])
    probs = []
    for n_jobs in (1, 2):
        clf = build_model(model, params, seed=5, n_jobs=n_jobs)
        assert clf.get_params()["n_jobs"] == n_jobs
        probs.append(fit_for_prediction(clf, X, y).predict_proba(Xv)[:, 1])
    np.testing.assert_array_equal(probs[0], probs[1])
