"""The report's first screen: events per variable, Riley et al.'s sample size, verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def _nested(auc_signal: float, n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    p = 1 / (1 + np.exp(-(auc_signal * (y - 0.5) + rng.normal(size=n))))
    return pd.DataFrame(
        {
            "patient_id": [f"P{k}" for k in range(n)],
            "model": "m",
            "outer_fold": np.arange(n) % 3,
            "probability": p,
            "label": y,
        }
    ), pd.Series(y)


def test_no_signal_gives_the_plain_verdict():
    nested, y = _nested(0.0)
    r = ev.evidence_summary(y, 120, 5, "m", nested, None, 0.7)
    assert r["verdict"].startswith(ev.NO_EVIDENCE) and "includes 0.5" in r["verdict"]
    assert r["events_per_candidate"] == pytest.approx(30 / 120)
    assert r["riley"]["candidates"]["n_required"] > r["riley"]["selected"]["n_required"]
    assert "fewer than" in r["sample_size_note"]


def test_signal_with_small_permutation_p_is_evidence_and_large_p_is_not():
    nested, y = _nested(4.0)
    small = pd.DataFrame({"model": ["m"], "p_value": [0.01], "n_permutations": [99]})
    r = ev.evidence_summary(y, 10, 3, "m", nested, small, 0.7)
    assert r["evidence"] and not r["verdict"].startswith(ev.NO_EVIDENCE)
    large = small.assign(p_value=0.3)
    r = ev.evidence_summary(y, 10, 3, "m", nested, large, 0.7)
    assert not r["evidence"] and "permutation p-value (0.300" in r["verdict"]
    # 5 permutations all below the real AUC: p = 1/6 cannot reach 0.05, too few to decide
    few = pd.DataFrame({"model": ["m"], "p_value": [1 / 6], "n_permutations": [5]})
    r = ev.evidence_summary(y, 10, 3, "m", nested, few, 0.7)
    assert not r["evidence"] and r["verdict"].startswith("inconclusive")
    assert "permutation.n to at least 19" in r["verdict"]
    # the same p from 5 permutations where one permuted run beat the real one is rejected
    some = pd.DataFrame({"model": ["m"], "p_value": [2 / 6], "n_permutations": [5]})
    r = ev.evidence_summary(y, 10, 3, "m", nested, some, 0.7)
    assert r["verdict"].startswith(ev.NO_EVIDENCE)


def test_no_chosen_model_is_no_evidence():
    nested, y = _nested(4.0)
    r = ev.evidence_summary(y, 10, None, None, nested, None, 0.7)
    assert not r["evidence"] and "no model could be chosen" in r["verdict"]


def test_first_screen_section_shows_the_verdict(tmp_path):
    import json

    from npc_radiomics.report import evidence as evidence_report

    nested, y = _nested(0.0)
    record = ev.evidence_summary(y, 120, 5, "m", nested, None, 0.7)
    (tmp_path / "e.json").write_text(json.dumps(record))
    section = evidence_report.evidence_section({"evidence": str(tmp_path / "e.json")}, {})
    body = "".join(section.blocks)
    assert section.key == "evidence" and ev.NO_EVIDENCE in body and "Riley" in body
    missing = evidence_report.baselines_section({}, {})
    assert "not produced by this run" in "".join(missing.blocks)


def test_an_auc_interval_below_one_half_is_no_evidence():
    nested, y = _nested(-4.0)
    r = ev.evidence_summary(y, 10, 3, "m", nested, None, 0.7)
    assert not r["evidence"] and "lies below 0.5" in r["verdict"]
