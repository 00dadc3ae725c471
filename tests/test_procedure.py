"""The headline: the procedure as run, model choice inside each outer fold, with a 95% CI
(evaluation.procedure; Table 3's first row and the first screen)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from npc_radiomics.evaluation import performance as evaluation
from npc_radiomics.evaluation.procedure import (
    PROCEDURE,
    procedure_auc,
    procedure_estimate,
)
from npc_radiomics.metrics import delong_ci


def _folds(rng, n_folds=5, n=24, signal=0.0):
    out = []
    for _ in range(n_folds):
        y = np.tile([0, 1], n // 2)
        out.append((y, signal * y + rng.normal(size=n)))
    return out


def test_the_ci_is_the_folds_delong_variances_on_the_logit_scale():
    parts = _folds(np.random.default_rng(0), signal=1.0)
    a, low, high, note = procedure_auc(parts)
    fold = [delong_ci(y, p) for y, p in parts]
    mean = np.mean([r.auc for r in fold])
    se = math.sqrt(sum(r.variance for r in fold)) / len(fold)
    half = stats.norm.ppf(0.975) * se / (mean * (1 - mean))
    logit = math.log(mean / (1 - mean))
    assert a == pytest.approx(mean) and note == ""
    assert low == pytest.approx(1 / (1 + math.exp(-(logit - half))))
    assert high == pytest.approx(1 / (1 + math.exp(-(logit + half))))
    assert high - a < a - low  # asymmetric towards 1, never clipped
    # near-perfect folds: the interval stays below 1
    strong = _folds(np.random.default_rng(1), signal=4.0)
    a, low, high, _ = procedure_auc(strong)
    assert a < high < 1
    # a fold with one class: no AUC, a note, no crash
    y, p = parts[0]
    a, low, high, note = procedure_auc([(np.zeros_like(y), p), *parts[1:]])
    assert math.isnan(a) and math.isnan(low) and "one class" in note


def test_the_ci_covers_one_half_at_the_nominal_rate_without_signal():
    """Fold models with no signal have a true AUC of exactly 0.5: the CI must cover it in
    about 95% of runs (2,000 runs of 5 folds x 24 held-out patients)."""
    rng = np.random.default_rng(2)
    runs = 2000
    covered = 0
    for _ in range(runs):
        _, low, high, _ = procedure_auc(_folds(rng))
        covered += low <= 0.5 <= high
    rate = covered / runs
    assert 0.93 <= rate <= 0.97, rate


def _infos(inner):
    return [
        {"model": m, "outer_fold": k, "inner_cv_auc": inner[(m, k)]}
        for m in ("noise", "signal")
        for k in range(3)
    ]


def _nested(rng, n=60):
    y = np.tile([0, 1], n // 2)
    frames = []
    for model, signal in (("noise", 0.0), ("signal", 2.5)):
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": [f"P{i:03d}" for i in range(n)],
                    "model": model,
                    "outer_fold": np.arange(n) % 3,
                    "probability": 1 / (1 + np.exp(-(signal * (y - 0.5) + rng.normal(size=n)))),
                    "label": y,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_the_headline_is_the_fold_winners_not_the_best_model():
    nested = _nested(np.random.default_rng(3))
    # the noise model wins the inner CV of every fold: the procedure as run chose it
    inner = {(m, k): 0.9 if m == "noise" else 0.7 for m in ("noise", "signal") for k in range(3)}
    record = procedure_estimate(_infos(inner), nested)
    assert [f["model"] for f in record["folds"]] == ["noise"] * 3
    assert record["auc_ci_low"] < 0.5 < record["auc_ci_high"]
    inner = {(m, k): 0.9 if m == "signal" else 0.7 for m in ("noise", "signal") for k in range(3)}
    record = procedure_estimate(_infos(inner), nested)
    assert record["auc_ci_low"] > 0.5 and record["n"] == 60 and record["n_folds"] == 3


def test_table3_first_row_is_the_procedure_and_the_chosen_row_is_optimistic():
    nested = _nested(np.random.default_rng(4))
    inner = {(m, k): 0.9 if m == "noise" else 0.7 for m in ("noise", "signal") for k in range(3)}
    y = np.tile([0, 1], 20)
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient_id": [f"{c}{i}" for i in range(40)],
                    "cohort": c,
                    "model": m,
                    "probability": np.random.default_rng(5).random(40),
                    "label": y,
                }
            )
            for m in ("noise", "signal")
            for c in ("train", "test")
        ],
        ignore_index=True,
    )
    tables = evaluation.evaluation_tables(
        predictions,
        nested,
        ["noise", "signal"],
        threshold_method="youden_nested_cv",
        fold_infos=_infos(inner),
        n_bootstrap=50,
    )
    first = tables.metrics.iloc[0]
    assert first["model"] == PROCEDURE and first["cohort"] == evaluation.NESTED_CV
    record = tables.chosen["nested_choice"]
    assert first["auc"] == pytest.approx(record["auc"])
    assert first["auc_ci_low"] == pytest.approx(record["auc_ci_low"]) and first["auc_ci_low"] < 0.5
    chosen = tables.chosen["model"]
    assert chosen == "signal"  # the best mean nested-CV AUC, yet not what the folds chose
    row = tables.metrics[
        (tables.metrics["model"] == chosen) & (tables.metrics["cohort"] == evaluation.NESTED_CV)
    ].iloc[0]
    assert row["note"].startswith("optimistic: best of 2 models")
    assert (tables.metrics["model"] == PROCEDURE).sum() == 1


def test_table3_text_has_no_unbiased_claim(tmp_path):
    from npc_radiomics.report.sections import table3_section

    nested = _nested(np.random.default_rng(6))
    inner = {(m, k): 0.8 for m in ("noise", "signal") for k in range(3)}
    predictions = nested.drop(columns="outer_fold").assign(cohort="train")
    tables = evaluation.evaluation_tables(
        predictions,
        nested,
        ["noise", "signal"],
        threshold_method="youden_nested_cv",
        fold_infos=_infos(inner),
        n_bootstrap=50,
    )
    tables.metrics.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    body = "".join(table3_section({"metrics": str(tmp_path / "m.tsv")}, {}).blocks)
    assert "unbiased" not in body
    assert PROCEDURE in body and "optimistic" in body
    first = tables.metrics.iloc[0]
    assert f"{first['auc']:.3f} ({first['auc_ci_low']:.3f}-{first['auc_ci_high']:.3f})" in body
