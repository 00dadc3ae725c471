"""Claims follow the configuration: what the report says about which patients the fitted
steps saw (report.sections.fitted_claims, the cohort and centres sections)."""

from __future__ import annotations

import pandas as pd
import pytest

from npc_radiomics.report import sections

ONLY_TRAIN = "The training cohort is the only one any fitted step"


def _split(tmp_path):
    pd.DataFrame(
        {
            "patient_id": [f"P{k}" for k in range(12)],
            "center": ["A"] * 6 + ["B"] * 6,
            "cohort": ["train"] * 8 + ["test"] * 4,
            "label": [0, 1] * 6,
        }
    ).to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    return {"split": str(tmp_path / "split.tsv")}


def _body(section):
    return "".join(section.blocks)


@pytest.mark.parametrize(
    "outside, claimed",
    [
        ({"zscore": "train", "icc": "train"}, True),
        ({"zscore": None, "icc": None}, True),
        ({"zscore": "all", "icc": "train"}, False),
        ({"zscore": "train", "icc": "all"}, False),
    ],
)
def test_the_training_only_claim_follows_the_references(tmp_path, outside, claimed):
    body = _body(sections.cohort_section(_split(tmp_path), {"fitted_outside_models": outside}))
    assert (ONLY_TRAIN in body) is claimed
    if not claimed:
        key = "normalization.reference" if outside["zscore"] == "all" else "robustness.reference"
        assert f"{key}: all" in body and "test and external included" in body


def _loco(tmp_path):
    inputs = _split(tmp_path)
    pd.DataFrame(
        {"model": ["m", "m"], "held_out_center": ["A", "B"], "n": [6, 6], "auc": [0.6, 0.7]}
    ).to_csv(tmp_path / "loco.tsv", sep="\t", index=False)
    inputs["loco"] = str(tmp_path / "loco.tsv")
    return inputs


def test_the_loco_text_says_when_steps_outside_the_loop_saw_the_held_out_centre(tmp_path):
    outside = {"zscore": "train", "icc": "train"}
    body = _body(sections.centres_section(_loco(tmp_path), {"fitted_outside_models": outside}))
    assert "outside the leave-one-centre-out loop" in body
    assert "z-score normalisation statistics and the ICC robustness filter are" in body
    assert "training patients of every training centre" in body
    body = _body(
        sections.centres_section(
            _loco(tmp_path), {"fitted_outside_models": {"zscore": "all", "icc": None}}
        )
    )
    assert "on the patients of every cohort" in body
    # a ready feature table with no ICC filter and no z-scoring: nothing outside the loop
    body = _body(
        sections.centres_section(
            _loco(tmp_path), {"fitted_outside_models": {"zscore": None, "icc": None}}
        )
    )
    assert "outside the leave-one-centre-out loop" not in body


def test_the_report_rule_passes_the_references():
    """The standalone report's params carry both references (the claims read them)."""
    from conftest import ROOT

    text = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    rule = text[text.index("rule standalone_report:") :]
    assert "fitted_outside_models=" in rule
    assert 'config["preprocessing"]["normalization"]["reference"]' in rule
    assert 'config["robustness"]["reference"]' in rule
