"""Decision curves checked against the dcurves package and by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.base import layout
from npc_radiomics.base.errors import InputError
from npc_radiomics.evaluation import dca


def cohort(n: int, seed: int, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(1.5 * (y - 0.5) + rng.normal(0, 1, n))))
    return y, np.round(p, decimals)  # rounding puts patients exactly on thresholds


@pytest.mark.parametrize("seed", [0, 1])
def test_net_benefit_matches_dcurves(seed):
    import dcurves

    y, p = cohort(150, seed)
    thresholds = dca.threshold_grid(0.01, 0.99, 0.01)
    ours = dca.decision_curve(y, p, thresholds, model="svm")
    theirs = dcurves.dca(
        data=pd.DataFrame({"response": y, "svm": p}),
        outcome="response",
        modelnames=["svm"],
        thresholds=thresholds,
    )
    names = {"svm": "svm", "all": layout.TREAT_ALL, "none": layout.TREAT_NONE}
    for their_name, our_name in names.items():
        t = theirs[theirs["model"] == their_name].sort_values("threshold")
        o = ours[ours["strategy"] == our_name].sort_values("threshold")
        np.testing.assert_allclose(o["threshold"], t["threshold"])
        np.testing.assert_allclose(o["net_benefit"], t["net_benefit"], atol=1e-12)


def test_threshold_grid_matches_config_convention():
    grid = dca.threshold_grid(0.01, 0.99, 0.01)
    assert grid.size == 99 and grid[0] == 0.01 and grid[-1] == 0.99
    assert 0.29 in grid  # exact decimals, no 0.29000000000000004
    with pytest.raises(InputError, match="0 < start"):
        dca.threshold_grid(0.0, 1.0, 0.01)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.6, 0.2, 0.3])
    # t = 0.5: treat 0.9, 0.6, 0.6 -> TP 2, FP 1: 2/5 - 1/5 * 0.5/0.5 = 0.2
    # t = 0.25: treat all but 0.2 -> TP 3, FP 1: 3/5 - 1/5 * 1/3
    nb = dca.net_benefit(y, p, [0.5, 0.25])
    np.testing.assert_allclose(nb, [0.2, 3 / 5 - 1 / 15])
    np.testing.assert_allclose(dca.net_benefit_treat_all(y, [0.5]), [0.6 - 0.4])


def test_beneficial_ranges_beat_both_references():
    y, p = cohort(200, 3)
    preds = pd.DataFrame(
        {"patient_id": range(200), "cohort": "test", "model": "svm", "probability": p, "label": y}
    )
    curves = dca.decision_curves(preds, dca.threshold_grid(0.01, 0.99, 0.01))
    ranges = dca.beneficial_ranges(curves)
    assert len(ranges) >= 1 and ranges["threshold_low"].notna().all()
    wide = curves.pivot(index="threshold", columns="strategy", values="net_benefit")
    beats = (wide["svm"] > wide[layout.TREAT_ALL]) & (wide["svm"] > 0)
    inside = np.zeros(len(wide), dtype=bool)
    for r in ranges.itertuples():
        inside |= (wide.index >= r.threshold_low) & (wide.index <= r.threshold_high)
    np.testing.assert_array_equal(inside, beats.to_numpy())
    text = dca.format_ranges(ranges, "test", "svm")
    assert text.count("-") == len(ranges)


def test_useless_model_has_no_range():
    y = np.array([0, 1] * 20)
    preds = pd.DataFrame(
        {"patient_id": range(40), "cohort": "ND", "model": "knn", "probability": 0.5, "label": y}
    )
    curves = dca.decision_curves(preds, [0.1, 0.3, 0.6])
    ranges = dca.beneficial_ranges(curves)
    assert len(ranges) == 1 and np.isnan(ranges["threshold_low"].iloc[0])
    assert dca.format_ranges(ranges, "ND", "knn") == "none"


def test_decision_curves_tidy_per_cohort():
    frames = []
    for c, seed in (("train", 1), ("test", 2)):
        y, p = cohort(60, seed)
        for model in ("svm", "lr"):
            frames.append(
                pd.DataFrame(
                    {
                        "patient_id": range(60),
                        "cohort": c,
                        "model": model,
                        "probability": p,
                        "label": y,
                    }
                )
            )
    curves = dca.decision_curves(pd.concat(frames), [0.2, 0.4])
    assert list(curves.columns) == [
        "cohort",
        "strategy",
        "threshold",
        "net_benefit",
        "n",
        "prevalence",
    ]
    # per cohort: 2 models + treat all + treat none, 2 thresholds each
    assert curves.groupby("cohort").size().to_dict() == {"test": 8, "train": 8}


def test_bad_thresholds_raise():
    with pytest.raises(InputError, match="within"):
        dca.net_benefit([0, 1], [0.2, 0.8], [0.5, 1.0])


def test_net_benefit_ci_brackets_the_point_and_is_seeded():
    from npc_radiomics.base.layout import TREAT_ALL
    from npc_radiomics.evaluation.dca import net_benefit, net_benefit_ci

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    p = np.clip(0.5 * y + rng.uniform(0, 0.5, 80), 0, 1)
    predictions = pd.DataFrame(
        {"patient_id": range(80), "cohort": "test", "model": "svm", "probability": p, "label": y}
    )
    table = net_benefit_ci(predictions, [0.2, 0.5], n_bootstrap=300, seed=4)
    assert set(table["strategy"]) == {"svm", TREAT_ALL}
    svm = table[table["strategy"] == "svm"]
    assert svm["net_benefit"].to_numpy() == pytest.approx(net_benefit(y, p, [0.2, 0.5]))
    assert (
        (table["ci_low"] <= table["net_benefit"]) & (table["net_benefit"] <= table["ci_high"])
    ).all()
    assert (table["ci_high"] > table["ci_low"]).all()
    pd.testing.assert_frame_equal(table, net_benefit_ci(predictions, [0.2, 0.5], 300, seed=4))
