"""A batch job uses the cores it declares (imaging.threads_per_job): its cases run in
worker processes, each on one thread, and every table it writes is the same, byte for
byte, whatever the worker count (npc_radiomics.imaging.batches.run_cases)."""

from __future__ import annotations

import logging
import os
import time

import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import ROOT, write_case

from npc_radiomics.base.config import load_yaml
from npc_radiomics.base.errors import InputError
from npc_radiomics.imaging.batches import CaseError, run_cases

CASES = [{"patient_id": f"P{k}", "sequence": "T1"} for k in range(6)]


def _slow_first(case):
    # The first cases take longest, so the workers finish them after the later ones.
    k = int(case["patient_id"][1:])
    time.sleep(0.05 * (6 - k))
    return case["patient_id"], os.getpid(), os.environ.get("OMP_NUM_THREADS")


def test_workers_keep_case_order_run_elsewhere_on_one_thread_and_log_progress(caplog):
    with caplog.at_level(logging.INFO, logger="npc_radiomics.imaging.batches"):
        results = run_cases(CASES, _slow_first, "feature extraction", workers=2)
    assert [r[0] for r in results] == [c["patient_id"] for c in CASES]
    pids = {r[1] for r in results}
    assert os.getpid() not in pids and len(pids) == 2  # two worker processes
    assert {r[2] for r in results} == {"1"}  # each limited to one thread
    assert "feature extraction: 6 cases in 2 worker processes" in caplog.text
    for k in range(1, 7):  # cases done / total, in the rule log
        assert f"feature extraction {k}/6: " in caplog.text
    # one worker, or more workers than cases: the same results
    assert [r[0] for r in run_cases(CASES[:1], _slow_first, "x", workers=4)] == ["P0"]
    assert [r[0] for r in run_cases(CASES, _slow_first, "x")] == [r[0] for r in results]


def _fails_on_p3(case):
    if case["patient_id"] == "P3":
        raise RuntimeError("ITK could not allocate")
    return case["patient_id"]


def _bad_input(case):
    raise InputError(f"QC failed: patient {case['patient_id']} sequence T1: empty mask")


def test_a_failing_worker_names_stage_patient_and_sequence():
    with pytest.raises(CaseError, match=r"^preprocessing: patient P3, sequence T1: RuntimeError"):
        run_cases(CASES, _fails_on_p3, "preprocessing", workers=2)
    # an InputError already names the case: raised as it is (the first case's, in order)
    with pytest.raises(InputError, match=r"^QC failed: patient P0 sequence T1"):
        run_cases(CASES, _bad_input, "QC", passthrough=(InputError,), workers=3)


# ---------------------------------------------------- real QC, N4 and pyradiomics, 1 vs 2
def _batch(root):
    import numpy as np

    rng = np.random.default_rng(3)
    cases = []
    for k in range(3):
        for sequence in ("T1", "T2"):
            image, mask = write_case(root / "raw", f"P{k}", sequence, rng)
            cases.append(
                {"patient_id": f"P{k}", "center": "A", "sequence": sequence, "image": image,
                 "mask": mask, "mask_reader2": mask if k == 1 else ""}
            )  # fmt: skip
    return cases


def _run_batch(cases, out, workers):
    """QC, preprocessing (N4 + 1 mm) and extraction of one batch, as the rules run them."""
    from npc_radiomics.imaging.features import extract_batch_rule
    from npc_radiomics.imaging.preprocess import preprocess_batch_rule
    from npc_radiomics.imaging.qc import qc_batch_rule

    config = load_yaml(ROOT / "config" / "config.yaml")
    out.mkdir()
    qc_batch_rule(
        cases, config["qc"], "stop", config["masks"], ["T1", "T2"], str(out / "qc.tsv"),
        workers=workers,
    )  # fmt: skip
    n4 = {**config["preprocessing"]["n4"], "iterations": [5, 5]}
    preprocess_batch_rule(
        [{k: c[k] for k in ("patient_id", "sequence", "image", "mask", "mask_reader2")}
         for c in cases],
        str(out / "qc.tsv"), str(out / "pre"), str(out / "moments.tsv"),
        settings={s: {"n4": n4, "interpolator": "bspline", "crop_margin_mm": 5.0}
                  for s in ("T1", "T2")},
        spacing_mm=[1.0, 1.0, 1.0], mask_label=1, components="merge", workers=workers,
    )  # fmt: skip
    pd.DataFrame({"sequence": ["T1", "T2"], "mean": [120.0, 118.5], "sd": [15.0, 14.0]}).to_csv(
        out / "zscore.tsv", sep="\t", index=False
    )
    params = str(ROOT / "resources" / "pyradiomics_params_fast.yaml")
    extract_batch_rule(
        [{"patient_id": c["patient_id"], "sequence": c["sequence"],
          "mask_reader2": bool(c["mask_reader2"])} for c in cases],
        str(out / "pre"), str(out / "zscore.tsv"),
        params_files={"T1": params, "T2": params},
        normalization={"T1": {"method": "zscore"}, "T2": {"method": "zscore"}},
        crop_margin_mm=None, features_path=str(out / "features.parquet"),
        provenance_path=str(out / "provenance.tsv"), workers=workers,
    )  # fmt: skip


def test_batch_tables_are_byte_identical_at_one_and_two_workers(tmp_path):
    cases = _batch(tmp_path)
    _run_batch(cases, tmp_path / "one", 1)
    _run_batch(cases, tmp_path / "two", 2)
    for name in ("qc.tsv", "moments.tsv", "features.parquet", "provenance.tsv"):
        one, two = (tmp_path / w / name for w in ("one", "two"))
        assert one.read_bytes() == two.read_bytes(), name
    features = pd.read_parquet(tmp_path / "two" / "features.parquet")
    # rows by sorted case (reader 1 then 2), not by completion order
    order = features[["patient_id", "sequence", "reader"]].drop_duplicates()
    assert [tuple(r) for r in order.to_numpy()] == [
        ("P0", "T1", "reader1"), ("P0", "T2", "reader1"), ("P1", "T1", "reader1"),
        ("P1", "T1", "reader2"), ("P1", "T2", "reader1"), ("P1", "T2", "reader2"),
        ("P2", "T1", "reader1"), ("P2", "T2", "reader1"),
    ]  # fmt: skip
    assert features["value"].notna().all() and len(features) > 8 * 100
    images = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.nii.gz"))
    assert len(images) == 3 * 2 * 2 + 2  # image + mask per case, 2 reader-2 masks
    for rel in images:
        one, two = (sitk.ReadImage(str(tmp_path / w / rel)) for w in ("one", "two"))
        assert one.GetOrigin() == two.GetOrigin() and one.GetSize() == two.GetSize(), rel
        assert (sitk.GetArrayFromImage(one) == sitk.GetArrayFromImage(two)).all(), rel
