"""The imaging stages' batches: a partition of each centre's patients that a new centre
(or patients sorting after the others) cannot reshuffle, and the per-case loop."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npc_radiomics.base.errors import InputError
from npc_radiomics.imaging.batches import CaseError, included, plan_batches, run_cases

ids = st.text("ABCXYZ0123456789_", min_size=1, max_size=6)
cohorts = st.dictionaries(ids, st.sampled_from(["QZ", "ND", "XY-2"]), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(cohorts, st.integers(1, 12))
def test_batches_partition_each_centre_in_sorted_runs(centre_of, k):
    plan = plan_batches(centre_of, k)
    seen = [p for batch in plan.values() for p in batch.patients]
    assert sorted(seen) == sorted(centre_of)  # every patient once
    for (centre, name), batch in plan.items():
        assert batch.centre == centre and batch.batch == name
        assert {centre_of[p] for p in batch.patients} == {centre}
        assert 1 <= len(batch.patients) <= k
        assert list(batch.patients) == sorted(batch.patients)
    for centre in set(centre_of.values()):
        mine = [b for (c, _), b in plan.items() if c == centre]
        assert [b.batch for b in mine] == [f"{i:03d}" for i in range(len(mine))]
        # consecutive runs of the sorted patients, all full but the last
        assert [p for b in mine for p in b.patients] == sorted(
            p for p, c in centre_of.items() if c == centre
        )
        assert all(len(b.patients) == k for b in mine[:-1])


@settings(max_examples=100, deadline=None)
@given(cohorts, st.lists(ids, min_size=1, max_size=20, unique=True), st.integers(1, 12))
def test_a_new_centre_leaves_every_other_batch_as_it_was(centre_of, new, k):
    before = plan_batches(centre_of, k)
    added = {**centre_of, **{f"{p}_new": "NEW" for p in new}}
    after = plan_batches(added, k)
    assert {key: b for key, b in after.items() if key[0] != "NEW"} == before


def test_patients_sorting_last_change_only_their_centres_last_batch():
    centre_of = {f"QZ{i:03d}": "QZ" for i in range(25)}
    before = plan_batches(centre_of, 10)
    after = plan_batches({**centre_of, "QZ025": "QZ", "QZ026": "QZ"}, 10)
    assert after[("QZ", "000")] == before[("QZ", "000")]
    assert after[("QZ", "001")] == before[("QZ", "001")]
    assert after[("QZ", "002")].patients == (*before[("QZ", "002")].patients, "QZ025", "QZ026")
    with pytest.raises(ValueError, match="at least 1"):
        plan_batches(centre_of, 0)


def test_run_cases_names_the_failing_case_and_passes_input_errors(caplog):
    cases = [{"patient_id": "P1", "sequence": "T1"}, {"patient_id": "P2", "sequence": "T2"}]

    def work(case):
        if case["patient_id"] == "P2":
            raise RuntimeError("ITK could not allocate")
        return case["patient_id"]

    with caplog.at_level(logging.INFO, logger="npc_radiomics.imaging.batches"):
        with pytest.raises(CaseError, match="preprocessing: patient P2, sequence T2: Runtime"):
            run_cases(cases, work, "preprocessing")
    assert "preprocessing 1/2: P1 T1 in" in caplog.text  # progress, one line a case
    assert run_cases(cases[:1], work, "x") == ["P1"]

    def bad_input(case):
        raise InputError("QC failed: patient P1 sequence T1: empty mask")

    with pytest.raises(InputError, match="^QC failed"):
        run_cases(cases, bad_input, "QC", passthrough=(InputError,))


def test_included_keeps_the_cases_of_included_patients():
    qc = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2"],
            "patient_status": ["included"] * 2 + ["excluded"] * 2,
        }
    )
    cases = [{"patient_id": p, "sequence": s} for p in ("P1", "P2") for s in ("T1", "T2")]
    assert included(cases, qc) == cases[:2]
