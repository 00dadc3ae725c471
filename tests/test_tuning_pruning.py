"""Pruning of hopeless trials: it prunes, keeps the best trial, and stays deterministic
whatever the number of worker jobs (the prune decision sees earlier batches only)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from test_tuning import SEED, SETTINGS, make_design

from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import (
    best_params,
    finished_slots,
    make_pruner,
    running_means,
    trials_table,
    tune,
)
from npc_radiomics.modelling.zoo import parse_search_spaces

# An RBF SVM whose gamma's upper decades are hopeless: with gamma >> 1 on ~8 scaled
# features the kernel is the identity, every validation patient gets the same score and
# the fold AUC is 0.5.
SPACE = parse_search_spaces(
    {
        "svm": {
            "C": 1.0,
            "kernel": "rbf",
            "gamma": {"type": "float", "low": 1e-3, "high": 1e3, "log": True},
        }
    },
    ["svm"],
)["svm"]
# 10 slots: within TPE's 10 random start-up trials, so every slot draws the same
# parameters with or without pruning and the two runs compare trial by trial.
BASE = TuningSettings.defaults(
    **{
        **SETTINGS.__dict__,
        "n_trials": 10,
        "inner_folds": 5,
        "batch_size": 2,
        "pruning_warmup_folds": 2,
        "pruning_startup_trials": 2,
        "pruning_percentile": 50.0,
        "pruning": False,
    }
)
PRUNED = TuningSettings.defaults(**{**BASE.__dict__, "pruning": True})


@pytest.fixture(scope="module")
def xy():
    return make_design().train()


def _table(study):
    return trials_table(finished_slots(study), "svm")


@pytest.fixture(scope="module")
def runs(xy):
    X, y = xy
    plain, _ = tune("svm", SPACE, X, y, BASE, SEED)
    pruned, _ = tune("svm", SPACE, X, y, PRUNED, SEED)
    return plain, pruned


def test_pruning_stops_hopeless_trials_and_keeps_the_best(runs):
    plain, pruned = (_table(s).set_index("slot") for s in runs)
    assert (plain["state"] == "COMPLETE").all() and (plain["folds"] == 5).all()
    assert plain["params"].tolist() == pruned["params"].tolist()  # same draws, slot by slot
    gamma = plain["params"].map(lambda p: json.loads(p)["gamma"])
    hopeless = plain["auc"] <= 0.55
    assert (gamma[hopeless] > 1).all() and hopeless.sum() >= 3  # the planted region
    is_pruned = pruned["state"] == "PRUNED"
    # every hopeless trial after the pruner's start-up (two earlier-batch trials) is pruned
    startup = plain.index >= 2
    assert is_pruned[hopeless & startup].all() and is_pruned.sum() >= 2
    # pruned trials stop at the warm-up folds or soon after, and have no AUC
    assert (pruned.loc[is_pruned, "folds"] < 5).all()
    assert pruned.loc[is_pruned, "folds"].min() >= 2
    assert pruned.loc[is_pruned, "auc"].isna().all()
    # a trial that was not pruned evaluated exactly as without pruning
    kept = ~is_pruned
    pd.testing.assert_series_equal(pruned.loc[kept, "auc"], plain.loc[kept, "auc"])
    pd.testing.assert_series_equal(pruned.loc[kept, "fold_aucs"], plain.loc[kept, "fold_aucs"])
    # and the best trial is the same
    a, b = best_params(runs[0], "svm", 10), best_params(runs[1], "svm", 10)
    assert (a["slot"], a["params"], a["inner_cv_auc"]) == (
        b["slot"],
        b["params"],
        b["inner_cv_auc"],
    )
    assert a["n_pruned"] == 0 and b["n_pruned"] == is_pruned.sum() and b["n_failed"] == 0


def test_pruned_trials_report_running_means_from_the_warm_up_on(runs):
    for t in finished_slots(runs[1]).values():
        folds = t.user_attrs["fold_aucs"]
        assert t.intermediate_values == running_means(folds, 2)
        assert min(t.intermediate_values) == 2


def test_pruning_settings_name_a_different_study(xy):
    X, y = xy
    small = TuningSettings.defaults(**{**BASE.__dict__, "n_trials": 1})
    names = {
        tune("svm", SPACE, X, y, s, SEED)[1]
        for s in (
            small,
            TuningSettings.defaults(**{**small.__dict__, "pruning": True}),
            TuningSettings.defaults(
                **{**small.__dict__, "pruning": True, "pruning_percentile": 60.0}
            ),
        )
    }
    assert len(names) == 3  # a journal tuned with other pruning is never resumed
    assert make_pruner(BASE) is None and make_pruner(PRUNED) is not None


def test_pruned_parallel_workers_reproduce_a_single_worker(xy, tmp_path):
    """Two concurrent workers on one journal: the same pruned and completed trials."""
    X, y = xy

    def run(journal, worker):
        return tune(
            "svm", SPACE, X, y, PRUNED, SEED, storage_path=journal, worker=worker, poll_s=0.05
        )[0]

    cols = ["slot", "state", "auc", "folds", "fold_aucs", "params"]
    single = _table(run(tmp_path / "a" / "study.journal", "0"))[cols]
    with ThreadPoolExecutor(2) as pool:
        studies = list(pool.map(lambda w: run(tmp_path / "b" / "study.journal", w), ["0", "1"]))
    parallel = _table(studies[0])
    assert (single["state"] == "PRUNED").any()
    pd.testing.assert_frame_equal(single, parallel[cols])
    pd.testing.assert_frame_equal(single, _table(studies[1])[cols])


def test_config_pruning_section_reaches_the_settings():
    from npc_radiomics.base.config import load_yaml, with_defaults
    from npc_radiomics.modelling.settings import DEFAULT_CONFIG

    user = {
        "tuning": {
            "n_trials": 5,
            "inner_folds": 4,
            "outer_folds": 3,
            "pruning": {
                "enabled": True,
                "n_warmup_folds": 2,
                "n_startup_trials": 7,
                "percentile": 60,
            },
        },
        "selection": {"mrmr_k": 10, "lasso": {"cv_folds": 3}},
    }
    s = TuningSettings.from_config(with_defaults(user, DEFAULT_CONFIG))
    assert (s.pruning, s.pruning_warmup_folds, s.pruning_startup_trials, s.pruning_percentile) == (
        True,
        2,
        7,
        60.0,
    )
    # A key the user leaves out takes the config file's default: defaults are stated once,
    # there, and the settings keep no fallback of their own (a missing key is an error).
    defaults = load_yaml(DEFAULT_CONFIG)
    cfg = with_defaults({"tuning": {"n_trials": 5}}, DEFAULT_CONFIG)
    s = TuningSettings.from_config(cfg)
    assert s.pruning_percentile == defaults["tuning"]["pruning"]["percentile"]
    assert s.batch_size == defaults["tuning"]["batch_size"]
    assert TuningSettings.defaults() == s.__class__(**{**s.__dict__, "n_trials": 100})
    del cfg["tuning"]["pruning"]
    with pytest.raises(KeyError):
        TuningSettings.from_config(cfg)


@pytest.mark.parametrize(("percentile", "pruned"), [(25.0, True), (50.0, False), (75.0, False)])
def test_percentile_keeps_the_top_per_cent(percentile, pruned):
    """``pruning.percentile`` P lets a trial go on only while it is among the top P per cent
    of the completed trials at that fold: a lower P prunes more (a trial at the 60th
    percentile survives median pruning and is stopped when only the top 25% go on)."""
    import optuna

    settings = TuningSettings.defaults(
        **{**PRUNED.__dict__, "pruning_percentile": percentile, "pruning_warmup_folds": 2}
    )
    study = optuna.create_study(direction="maximize", pruner=make_pruner(settings))
    for value in [0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00]:
        study.add_trial(
            optuna.trial.create_trial(
                params={}, distributions={}, value=value, intermediate_values={2: value}
            )
        )
    trial = study.ask()
    trial.report(0.80, 2)  # the 60th percentile of the completed trials
    assert bool(trial.should_prune()) is pruned
