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


def _cohorts(rng, names=("train", "test", "ND"), n=60, models=("svm",)):
    frames = []
    for cohort in names:
        y = rng.integers(0, 2, n)
        p = np.clip(0.4 * y + rng.uniform(0, 0.6, n), 0, 1)
        for model in models:
            frames.append(
                pd.DataFrame(
                    {
                        "patient_id": [f"{cohort}{i:03d}" for i in range(n)],
                        "cohort": cohort,
                        "model": model,
                        "probability": p,
                        "label": y,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_identical_models_get_identical_net_benefit_cis():
    """One set of resamples per cohort: two identical models can only differ if the
    resamples were redrawn per model (0.157-0.431 vs 0.126-0.436 before issue 27)."""
    from npc_radiomics.evaluation.dca import net_benefit_bootstrap

    preds = _cohorts(np.random.default_rng(1), models=("lr", "twin"))
    ci, diff = net_benefit_bootstrap(preds, [0.2, 0.3, 0.5], n_bootstrap=200, seed=9)
    lr = ci[ci["strategy"] == "lr"].reset_index(drop=True)
    twin = ci[ci["strategy"] == "twin"].reset_index(drop=True)
    pd.testing.assert_frame_equal(lr.drop(columns="strategy"), twin.drop(columns="strategy"))
    assert (lr["ci_high"] > lr["ci_low"]).all()
    d = diff[diff["comparator"] == "treat_all"]
    pd.testing.assert_frame_equal(
        d[d["model"] == "lr"].drop(columns="model").reset_index(drop=True),
        d[d["model"] == "twin"].drop(columns="model").reset_index(drop=True),
    )


def test_net_benefit_difference_ci_is_paired_and_brackets_the_point():
    from npc_radiomics.base.layout import TREAT_ALL
    from npc_radiomics.evaluation.dca import (
        net_benefit,
        net_benefit_bootstrap,
        net_benefit_treat_all,
    )

    rng = np.random.default_rng(2)
    preds = _cohorts(rng, names=("test",), n=120)
    y = preds["label"].to_numpy()
    # a clinical model: weaker, on the same patients (one without a prediction)
    clinical = preds.assign(
        model="clinical",
        probability=np.clip(0.15 * y + rng.uniform(0, 0.85, y.size), 0, 1),
    )
    clinical.loc[0, "probability"] = np.nan
    t = [0.2, 0.4]
    ci, diff = net_benefit_bootstrap(preds, t, n_bootstrap=400, seed=1, clinical=clinical)
    p = preds["probability"].to_numpy()
    vs_all = diff[diff["comparator"] == TREAT_ALL]
    expected = net_benefit(y, p, t) - net_benefit_treat_all(y, t)
    assert vs_all["difference"].to_numpy() == pytest.approx(expected)
    vs_clin = diff[diff["comparator"] == "clinical"]
    keep = np.arange(y.size) > 0
    expected = net_benefit(y[keep], p[keep], t) - net_benefit(
        y[keep], clinical["probability"].to_numpy()[keep], t
    )
    assert vs_clin["difference"].to_numpy() == pytest.approx(expected)
    assert (vs_clin["n"] == y.size - 1).all()
    assert ((diff["ci_low"] <= diff["difference"]) & (diff["difference"] <= diff["ci_high"])).all()
    # paired: the difference's CI is narrower than the two strategies' CIs side by side
    model = ci[ci["strategy"] == "svm"].set_index("threshold")
    clin = ci[ci["strategy"] == "clinical"].set_index("threshold")
    width = vs_clin.set_index("threshold")["ci_high"] - vs_clin.set_index("threshold")["ci_low"]
    assert (width < (model["ci_high"] - model["ci_low"]) + (clin["ci_high"] - clin["ci_low"])).all()
    # without clinical predictions: NaN rows that say why
    _, none = net_benefit_bootstrap(preds, t, n_bootstrap=50, seed=1)
    missing = none[none["comparator"] == "clinical"]
    assert missing["difference"].isna().all() and missing["note"].str.contains("clinical").all()


def test_adding_a_centre_leaves_other_cohorts_cis_unchanged():
    """The seed per cohort comes from its name, not its position: a new centre "AA"
    sorts before "ND" and used to shift ND's resamples."""
    from npc_radiomics.evaluation.dca import net_benefit_ci

    rng = np.random.default_rng(3)
    base = _cohorts(rng)
    extra = _cohorts(np.random.default_rng(4), names=("AA",))
    one = net_benefit_ci(base, [0.3, 0.5], n_bootstrap=200, seed=5)
    two = net_benefit_ci(pd.concat([base, extra]), [0.3, 0.5], n_bootstrap=200, seed=5)
    nd_one = one[one["cohort"] == "ND"].reset_index(drop=True)
    nd_two = two[two["cohort"] == "ND"].reset_index(drop=True)
    pd.testing.assert_frame_equal(nd_one, nd_two)
    assert set(two["cohort"]) == {"train", "test", "AA", "ND"}


def test_train_is_labelled_in_sample(tmp_path):
    from types import SimpleNamespace

    from npc_radiomics.base.layout import cohort_label
    from npc_radiomics.evaluation.dca import dca_rule
    from npc_radiomics.report.sections import decision_curves_section

    assert cohort_label("train") == "train (in-sample)" and cohort_label("test") == "test"
    preds = _cohorts(np.random.default_rng(6))
    preds.to_csv(tmp_path / "predictions.tsv", sep="\t", index=False)
    out = SimpleNamespace(
        **{k: str(tmp_path / f"{k}.tsv") for k in ("curves", "ranges", "ci", "difference")},
        figure=str(tmp_path / "dca.png"),
    )
    dca_rule(tmp_path / "predictions.tsv", out, (0.05, 0.95, 0.05), (0.3,), 100, seed=1)
    for name in ("ranges", "ci", "difference"):
        table = pd.read_csv(getattr(out, name), sep="\t")
        assert table.groupby("cohort")["in_sample"].all().to_dict() == {
            "ND": False,
            "test": False,
            "train": True,
        }
    (tmp_path / "chosen.json").write_text('{"model": "svm"}')
    inputs = {
        "dca_ranges": out.ranges,
        "net_benefit_ci": out.ci,
        "net_benefit_difference": out.difference,
        "chosen": str(tmp_path / "chosen.json"),
        "dca": out.figure,
    }
    html = "".join(decision_curves_section(inputs, {}).blocks)
    assert "train (in-sample)" in html and "Net-benefit difference of the chosen model" in html
