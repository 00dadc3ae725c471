"""The selection of each CV context, fitted once for every model (rule cv_selection):
the same results as fitting it inside every model's job, training rows only, and a stale
cache is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_harmonize import SETTINGS as COMBAT_SETTINGS
from test_harmonize import combat_design
from test_tuning import SEED, SETTINGS, SPACES, make_design

from npc_radiomics.modelling.fits import nested_cv_fold
from npc_radiomics.modelling.folds import (
    context_rows,
    fit_context_selection,
    load_selection_cache,
    save_selection_cache,
)
from npc_radiomics.modelling.rules import final_model
from npc_radiomics.modelling.studies import best_params, finished_slots, trials_table, tune

CONTEXTS = ["full", *[f"outer{k}" for k in range(SETTINGS.outer_folds)]]


def caches_of(design, settings, tmp_path):
    """Every context's cache, through a file as the rule writes it."""
    X, y = design.train()
    caches = {}
    for context in CONTEXTS:
        path = tmp_path / f"{context}.joblib"
        save_selection_cache(fit_context_selection(X, y, settings, SEED, context), path)
        caches[context] = load_selection_cache(path)
    return caches


@pytest.mark.parametrize("model", ["logistic_regression", "knn"])
@pytest.mark.parametrize("combat", [False, True], ids=["plain", "combat"])
def test_shared_selection_gives_identical_results(model, combat, tmp_path):
    design = combat_design() if combat else make_design()
    settings = COMBAT_SETTINGS if combat else SETTINGS
    caches = caches_of(design, settings, tmp_path)
    X, y = design.train()
    space = SPACES[model]
    for k in range(settings.outer_folds):
        own = nested_cv_fold(model, space, X, y, k, settings, SEED)
        shared = nested_cv_fold(model, space, X, y, k, settings, SEED, cache=caches[f"outer{k}"])
        pd.testing.assert_frame_equal(own[0], shared[0], check_exact=True)
        assert own[1] == shared[1]
    study, _ = tune(model, space, X, y, settings, SEED, "full")
    study_shared, _ = tune(model, space, X, y, settings, SEED, "full", cache=caches["full"])
    pd.testing.assert_frame_equal(
        trials_table(finished_slots(study), model),
        trials_table(finished_slots(study_shared), model),
        check_exact=True,
    )
    best = best_params(study, model, settings.n_trials)
    pipe, pred, record = final_model(model, best, design, settings, SEED)
    pipe2, pred2, record2 = final_model(model, best, design, settings, SEED, caches=caches)
    pd.testing.assert_frame_equal(pred, pred2, check_exact=True)
    assert record == record2
    assert list(pipe[:-1].get_feature_names_out(design.features)) == list(
        pipe2[:-1].get_feature_names_out(design.features)
    )


def test_contexts_fit_on_training_rows_only():
    design = make_design()
    X, y = design.train()
    train = set(X.index)
    for context in CONTEXTS:
        rows = context_rows(X, y, SETTINGS, SEED, context)[0]
        cache = fit_context_selection(X, y, SETTINGS, SEED, context)
        assert set(rows.index) <= train
        if context != "full":
            assert len(rows) < len(X)
        assert len(cache.folds) == SETTINGS.inner_folds
        # each inner fold splits exactly the context's rows
        assert {len(f.y_train) + len(f.y_val) for f in cache.folds} == {len(rows)}
        assert sum(len(f.y_val) for f in cache.folds) == len(rows)


def test_a_stale_or_foreign_cache_is_refused():
    design = make_design()
    X, y = design.train()
    outer0 = fit_context_selection(X, y, SETTINGS, SEED, "outer0")
    space = SPACES["logistic_regression"]
    with pytest.raises(RuntimeError, match="does not match"):
        nested_cv_fold("logistic_regression", space, X, y, 1, SETTINGS, SEED, cache=outer0)
    other = make_design(seed=1)
    X2, y2 = other.train()
    with pytest.raises(RuntimeError, match="does not match"):
        nested_cv_fold("logistic_regression", space, X2, y2, 0, SETTINGS, SEED, cache=outer0)
    assert np.isfinite(outer0.folds[0].X_train).all()
