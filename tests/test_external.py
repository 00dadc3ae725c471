"""External centres scored apart from the training pool (rule predict_external): the same
probabilities as a final fit that saw every cohort at once, with and without ComBat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.evaluation.performance import external_predictions
from npc_radiomics.modelling.design import load_design
from npc_radiomics.modelling.fits import fit_final
from npc_radiomics.modelling.persistence import save_pipeline
from npc_radiomics.modelling.settings import TuningSettings

CENTRE = {"train": "A", "test": "B", "C": "C", "D": "D"}


def _write(tmp_path, name, feat, split):
    feat.to_parquet(tmp_path / f"{name}.parquet", index=False)
    split.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False)
    return tmp_path / f"{name}.parquet", tmp_path / f"{name}.tsv"


@pytest.mark.parametrize("combat", [False, True])
def test_external_predictions_equal_the_joint_fit(tmp_path, combat):
    rng = np.random.default_rng(3)
    cohorts = ["train"] * 40 + ["test"] * 12 + ["C"] * 10 + ["D"] * 10
    ids = [f"P{i:03d}" for i in range(len(cohorts))]
    y = np.arange(len(ids)) % 2
    centre = [CENTRE[c] if c != "train" else "AB"[i % 2] for i, c in enumerate(cohorts)]
    X = rng.normal(size=(len(ids), 8)) + 1.5 * y[:, None] * (np.arange(8) < 2)
    X *= 1 + 0.3 * np.array([ord(c[0]) % 4 for c in centre])[:, None]  # a scanner per centre
    feat = pd.DataFrame(X, columns=[f"T2__f{j}" for j in range(8)])
    feat.insert(0, "patient_id", ids)
    split = pd.DataFrame({"patient_id": ids, "center": centre, "cohort": cohorts, "label": y})
    pool = split["cohort"].isin(["train", "test"]).to_numpy()
    joint = _write(tmp_path, "all", feat, split)
    pool_paths = _write(tmp_path, "pool", feat[pool], split[pool])
    settings = TuningSettings.defaults(
        mrmr_k=4,
        lasso_folds=2,
        n_lambdas=5,
        inner_folds=2,
        outer_folds=2,
        n_trials=1,
        combat=combat,
    )
    covariates = [] if combat else None
    params = {"C": 1.0}
    # The old way: one design holding every cohort.
    _, expected = fit_final(
        "logistic_regression",
        params,
        load_design(*joint, combat_covariates=covariates),
        settings,
        seed=1,
    )
    # The new way: the pool alone, then each external centre with the saved pipeline.
    pipe, pooled = fit_final(
        "logistic_regression",
        params,
        load_design(*pool_paths, combat_covariates=covariates),
        settings,
        seed=1,
    )
    save_pipeline(pipe, tmp_path / "pipe.joblib", tmp_path / "pipe.joblib.sha256")
    got = [pooled]
    for c in ("C", "D"):
        part = (split["cohort"] == c).to_numpy()
        f, s = _write(tmp_path, c, feat[part], split[part])
        design = load_design([pool_paths[0], f], [pool_paths[1], s], combat_covariates=covariates)
        got.append(
            external_predictions(design, [tmp_path / "pipe.joblib"], ["logistic_regression"], c)
        )
    got = pd.concat(got, ignore_index=True)
    want = expected[expected["cohort"] != "external"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert set(got["cohort"]) == {"train", "test", "C", "D"}
