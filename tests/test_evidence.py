"""The report's first screen: events per variable, Riley et al.'s sample size, verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.evaluation.procedure import PROCEDURE
from npc_radiomics.validation import evidence as ev


def test_riley_criteria_match_pmsampsize_worked_example():
    # pmsampsize(type = "b", csrsquared = 0.288, parameters = 24, prevalence = 0.174):
    # criteria 623, 662, 221; final 662 with 116 events, EPP 4.8 (Riley et al. BMJ 2020).
    r = ev.riley_sample_size(24, 0.174, r2_cs=0.288)
    assert (r["n_criterion1"], r["n_criterion2"], r["n_criterion3"]) == (623, 662, 221)
    assert r["n_required"] == 662 and r["events_required"] == 116
    assert r["max_r2_cs"] == pytest.approx(0.603, abs=5e-4)
    assert r["epp_required"] == pytest.approx(4.8, abs=0.01)


def test_c_statistic_gives_the_anticipated_r2():
    # pmsampsize's documented example: C = 0.89 at prevalence 0.174 is R2cs about 0.288
    assert ev.cstatistic_to_r2_cs(0.89, 0.174) == pytest.approx(0.288, abs=0.004)
    assert ev.cstatistic_to_r2_cs(0.6, 0.5) < ev.cstatistic_to_r2_cs(0.7, 0.5)


def _chosen(auc_signal: float, n=60, seed=0, noise_wins=False):
    """chosen_model.json of a run with two models, ``m`` carrying ``auc_signal`` and
    ``noise`` none; ``noise_wins``: the noise model has the best inner-CV AUC in every
    outer fold (so the procedure as run chose it), yet ``m`` has the best mean."""
    from npc_radiomics.evaluation.performance import chosen_model

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    frames = []
    for model, signal in (("m", auc_signal), ("noise", 0.0)):
        p = 1 / (1 + np.exp(-(signal * (y - 0.5) + rng.normal(size=n))))
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": [f"P{k}" for k in range(n)],
                    "model": model,
                    "outer_fold": np.arange(n) % 3,
                    "probability": p,
                    "label": y,
                }
            )
        )
    nested = pd.concat(frames, ignore_index=True)
    infos = [
        {"model": m, "outer_fold": k, "inner_cv_auc": 0.9 if (m == "noise") == noise_wins else 0.6}
        for m in ("m", "noise")
        for k in range(3)
    ]
    return chosen_model(nested, ["m", "noise"], 3, infos, ["m", "noise"]), pd.Series(y)


def _perm(p, n):
    return pd.DataFrame({"model": [PROCEDURE], "p_value": [p], "n_permutations": [n]})


def test_no_signal_gives_the_plain_verdict():
    chosen, y = _chosen(0.0)
    r = ev.evidence_summary(y, 120, 5, chosen, None, 0.7)
    assert r["verdict"].startswith(ev.NO_EVIDENCE) and "includes 0.5" in r["verdict"]
    assert r["events_per_candidate"] == pytest.approx(30 / 120)
    assert "fewer than" in r["sample_size_note"]


def test_the_riley_rows_count_the_candidates_not_the_selected_features():
    """Selection spent the candidates' degrees of freedom: Riley et al.'s criteria for the
    selected count would justify the sample size after the fact."""
    chosen, y = _chosen(0.0)
    r = ev.evidence_summary(y, 120, 5, chosen, None, 0.7)
    assert set(r["riley"]) == {"candidates"}
    assert r["n_selected_features"] == 5  # shown as a count


def test_evidence_needs_the_ci_and_the_permutation_p_to_agree():
    chosen, y = _chosen(2.5)
    r = ev.evidence_summary(y, 10, 3, chosen, _perm(0.01, 99), 0.7)
    assert r["evidence"] and r["status"] == ev.EVIDENCE and r["verdict"].startswith("evidence")
    assert (
        r["permutation_p_min"] == pytest.approx(0.01)
        and "smallest possible is 0.010" in (r["verdict"])
    )
    r = ev.evidence_summary(y, 10, 3, chosen, _perm(0.3, 99), 0.7)
    assert not r["evidence"] and "permutation p-value (0.300" in r["verdict"]
    # the CI above 0.5 but no permutation test: not evidence, inconclusive
    r = ev.evidence_summary(y, 10, 3, chosen, None, 0.7)
    assert not r["evidence"] and r["status"] == ev.INCONCLUSIVE
    # 5 permutations: the smallest possible p, 1/6, is above alpha: inconclusive, stated
    for p in (1 / 6, 2 / 6):
        r = ev.evidence_summary(y, 10, 3, chosen, _perm(p, 5), 0.7)
        assert not r["evidence"] and r["verdict"].startswith("inconclusive")
        assert "1/6 = 0.167" in r["verdict"] and "permutation.n to at least 20" in r["verdict"]
    # 19 permutations: the floor 1/20 equals alpha, p < alpha is impossible
    r = ev.evidence_summary(y, 10, 3, chosen, _perm(1 / 20, 19), 0.7)
    assert r["status"] == ev.INCONCLUSIVE
    r = ev.evidence_summary(y, 10, 3, chosen, _perm(1 / 21, 20), 0.7)
    assert r["status"] == ev.EVIDENCE


def test_the_verdict_rests_on_the_procedure_not_on_the_best_of_the_models():
    """The chosen model ``m`` has a strong nested-CV AUC, but the procedure as run picked the
    noise model in every outer fold: its headline CI includes 0.5, so no evidence, however
    small a permutation p-value."""
    chosen, y = _chosen(2.5, noise_wins=True)
    assert chosen["model"] == "m" and chosen["ranking"][0]["auc_mean"] > 0.8
    r = ev.evidence_summary(y, 10, 3, chosen, _perm(0.001, 999), 0.7)
    assert not r["evidence"] and r["verdict"].startswith(ev.NO_EVIDENCE)
    assert "procedure's nested-CV AUC 95% CI" in r["verdict"]
    assert r["headline_ci_low"] < 0.5 < r["headline_ci_high"]
    assert r["chosen_model_note"] == "optimistic: best of 2 models"


def test_no_chosen_model_is_no_evidence():
    r = ev.evidence_summary(pd.Series([0, 1] * 10), 10, None, {"model": None}, None, 0.7)
    assert not r["evidence"] and "no estimate of the procedure" in r["verdict"]


def test_first_screen_section_shows_the_verdict(tmp_path):
    import json

    from npc_radiomics.report import evidence as evidence_report

    chosen, y = _chosen(0.0)
    record = ev.evidence_summary(y, 120, 5, chosen, _perm(0.4, 20), 0.7)
    (tmp_path / "e.json").write_text(json.dumps(record))
    section = evidence_report.evidence_section({"evidence": str(tmp_path / "e.json")}, {})
    body = "".join(section.blocks)
    assert section.key == "evidence" and ev.NO_EVIDENCE in body and "Riley" in body
    assert "procedure" in body and "optimistic: best of 2 models" in body
    assert "smallest possible 0.048" in body
    missing = evidence_report.baselines_section({}, {})
    assert "not produced by this run" in "".join(missing.blocks)


def test_an_auc_interval_below_one_half_is_no_evidence():
    chosen, y = _chosen(-2.5)
    r = ev.evidence_summary(y, 10, 3, chosen, None, 0.7)
    assert not r["evidence"] and "lies below 0.5" in r["verdict"]


def test_a_headline_without_a_ci_is_no_evidence_with_the_reason():
    chosen, y = _chosen(2.5)
    record = dict(chosen["nested_choice"], auc_ci_low=None, auc_ci_high=None)
    record["ci_note"] = "an outer fold has fewer than 2 patients of a class: no CI"
    r = ev.evidence_summary(y, 10, 3, dict(chosen, nested_choice=record), _perm(0.01, 99), 0.7)
    assert r["status"] == ev.NO and "fewer than 2 patients of a class" in r["verdict"]
