"""Centres as data: start-up checks of the centre set-up (one clear line each, before any
job), per-centre counts and flags."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import run_workflow, write_config

from npc_radiomics.base.errors import InputError
from npc_radiomics.checks import centre_class_warnings, check_centre_config
from npc_radiomics.validation.centres import centre_table


def _cfg(train, external, loco=False):
    return {
        "cohorts": {"train_centers": list(train), "external_centers": list(external)},
        "validation": {"leave_one_centre_out": loco},
    }


@pytest.mark.parametrize(
    "train, external, words",
    [
        (["A", "B"], ["B"], ["centre 'B' is listed both", "train_centers", "external_centers"]),
        (["A", "A"], ["B"], ["cohorts.train_centers: centre 'A' is listed twice"]),
        (["A"], ["external"], ["cohorts.external_centers: 'external' is a cohort name"]),
        (["test"], ["B"], ["cohorts.train_centers: 'test' is a cohort name"]),
    ],
)
def test_centre_config_errors(train, external, words):
    with pytest.raises(InputError) as err:
        check_centre_config(_cfg(train, external))
    for word in words:
        assert word in str(err.value)
    assert "\n" not in str(err.value)


def test_centre_config_ok():
    check_centre_config(_cfg(["A", "B"], ["C", "D"]))


def _patients():
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(12)],
            "center": ["A"] * 4 + ["B"] * 4 + ["C"] * 4,
            "label": [0, 1, 0, 1] + [1, 1, 1, 1] + [0, 0, 0, 0],
        }
    )


def test_one_class_centres_warn_and_stop_loco():
    lines = centre_class_warnings(_cfg(["A", "B"], ["C"]), _patients())
    assert len(lines) == 2
    assert lines[0].startswith("training centre B: all 4 patients have outcome 1")
    assert lines[1].startswith("external centre C: all 4 patients have outcome 0")
    with pytest.raises(InputError, match="training centre 'B' has only outcome 1"):
        centre_class_warnings(_cfg(["A", "B"], ["C"], loco=True), _patients())


def test_centre_table_counts_and_flags():
    split = _patients().assign(cohort=["train", "test"] * 4 + ["C"] * 4)
    split.loc[split["center"] == "A", "label"] = [0, 1, 0, 1]
    big = pd.DataFrame(
        {
            "patient_id": [f"Q{i}" for i in range(30)],
            "center": "D",
            "label": [i % 2 for i in range(30)],
            "cohort": "D",
        }
    )
    table = centre_table(pd.concat([split, big]), ["A", "B"]).set_index("center")
    assert table.loc["A", ["n", "events", "non_events"]].tolist() == [4, 2, 2]
    assert table.loc["A", "role"] == "training" and table.loc["D", "role"] == "external"
    assert table.loc["A", "cohorts"] == "test, train"
    assert "AUC unstable" in table.loc["A", "note"]
    assert table.loc["B", "note"] == "one outcome class only: no AUC"
    assert table.loc["D", "note"] == ""


# ------------------------------------------------------------------ through the workflow
def _startup(tmp_path, config):
    cfg = write_config(tmp_path / "config.yaml", config)
    return run_workflow(tmp_path, cfg, "-n")


def _fails_with_one_line(proc, tmp_path, words):
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [x for x in proc.stderr.splitlines() if "npc-radiomics input error" in x]
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "results").exists()
    assert "qc_batch" not in proc.stdout


@pytest.mark.snakemake
def test_centre_both_training_and_external_stops(tmp_path, user_cohort):
    user_cohort["config"]["cohorts"] = {"train_centers": ["A", "B"], "external_centers": ["B"]}
    proc = _startup(tmp_path, user_cohort["config"])
    # validate_config (npc_radiomics.base.config) says it first, in its own words
    _fails_with_one_line(
        proc, tmp_path, ["config key cohorts", "'B'", "both training and external"]
    )


@pytest.mark.snakemake
def test_centre_of_the_sheet_listed_nowhere_stops(tmp_path, user_cohort):
    user_cohort["config"]["cohorts"] = {"train_centers": ["A"], "external_centers": []}
    proc = _startup(tmp_path, user_cohort["config"])
    _fails_with_one_line(
        proc,
        tmp_path,
        ["sample sheet", "samples.tsv line", "centre 'B'", "neither a training nor an external"],
    )


@pytest.mark.snakemake
def test_combat_with_one_training_centre_stops(tmp_path, user_cohort):
    user_cohort["config"]["harmonization"] = {"combat": True}
    proc = _startup(tmp_path, user_cohort["config"])
    _fails_with_one_line(
        proc, tmp_path, ["harmonization.combat", "two or more training centres", "has 1 (A)"]
    )


@pytest.mark.snakemake
def test_one_class_external_centre_warns_and_goes_on(tmp_path, user_cohort):
    clinical = pd.read_csv(user_cohort["clinical"], sep="\t")
    clinical.loc[clinical["patient_id"].str.startswith("B"), "response"] = 1
    clinical.to_csv(user_cohort["clinical"], sep="\t", index=False)
    proc = _startup(tmp_path, user_cohort["config"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [x for x in proc.stderr.splitlines() if "npc-radiomics warning" in x]
    assert any("external centre B: all 4 patients have outcome 1" in w for w in warnings)


def test_pooled_external_cohort_only_with_two_or_more_external_centres():
    import numpy as np

    from npc_radiomics.base.layout import cohort_order
    from npc_radiomics.modelling.design import Design

    ids = [f"P{i}" for i in range(8)]
    X = pd.DataFrame({"f": np.arange(8.0)}, index=ids)
    y = pd.Series([0, 1] * 4, index=ids)
    two = Design(X, y, pd.Series(["train", "train", "test", "test", "C", "C", "D", "D"], ids))
    assert two.cohorts() == ["train", "test", "C", "D", "external"]
    Xe, ye = two.subset("external")
    assert list(Xe.index) == ids[4:] and list(ye) == [0, 1, 0, 1]
    one = Design(X, y, pd.Series(["train"] * 4 + ["test"] * 2 + ["C"] * 2, ids))
    assert one.cohorts() == ["train", "test", "C"]
    assert cohort_order(["external", "B", "test", "A", "train"]) == [
        "train",
        "test",
        "A",
        "B",
        "external",
    ]


def _multicentre_config():
    import yaml

    from npc_radiomics.base.config import with_defaults

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "config" / "multicentre.yaml").read_text())
    with_defaults(cfg, root / "config" / "config.yaml")
    return root, cfg


def test_multicentre_demo_preset_matches_its_config():
    from npc_radiomics.checks import check_harmonization_config
    from npc_radiomics.inputs import demo

    root, cfg = _multicentre_config()
    settings = demo.load_settings(root / "resources" / "demo_cohort.yaml")
    patients = demo.demo_patients(settings, "multicentre")
    assert set(patients["center"]) == set(
        cfg["cohorts"]["train_centers"] + cfg["cohorts"]["external_centers"]
    )
    assert len(cfg["cohorts"]["train_centers"]) == 2 == len(cfg["cohorts"]["external_centers"])
    check_centre_config(cfg)
    check_harmonization_config(cfg)
    scanners = [settings["centers"][c]["gain"]["T1"] for c in sorted(set(patients["center"]))]
    assert len(set(scanners)) == 4  # every centre its own scanner
    # The other presets keep one training centre and their cohorts unchanged.
    assert set(demo.demo_patients(settings, "small")["center"]) == {"QZ", "ND"}


@pytest.mark.snakemake
def test_loco_fans_out_one_job_per_training_centre_and_model(tmp_path):
    root, _ = _multicentre_config()
    proc = run_workflow(
        tmp_path,
        None,
        "-n",
        "--configfile",
        str(root / "config" / "demo.yaml"),
        str(root / "config" / "multicentre.yaml"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["loco_fold"] == 2 * 8 and counts["loco"] == 1
    assert counts["centre_diagnostics"] == 1


def test_report_section_shows_counts_flags_pool_loco_and_gaps(tmp_path):
    from npc_radiomics.report.sections import centres_section

    split = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(40)],
            "center": ["A"] * 20 + ["C"] * 10 + ["D"] * 10,
            "cohort": ["train"] * 14 + ["test"] * 6 + ["C"] * 10 + ["D"] * 10,
            "label": [i % 2 for i in range(30)] + [1] * 10,
        }
    )
    centre_table(split, ["A"]).to_csv(tmp_path / "centres.tsv", sep="\t", index=False)
    loco = pd.DataFrame(
        {"model": ["m"], "held_out_center": ["A"], "n": [20], "events": [10], "auc": [0.7]}
    )
    loco.to_csv(tmp_path / "loco.tsv", sep="\t", index=False)
    inputs = {
        "centres": str(tmp_path / "centres.tsv"),
        "loco": str(tmp_path / "loco.tsv"),
        "loco_forest": str(tmp_path / "missing.png"),
        "centre_diagnostics": str(tmp_path / "absent.tsv"),
        "centre_pca": str(tmp_path / "absent.png"),
    }
    html = "".join(centres_section(inputs, {"positive_label": "CR"}).blocks)
    assert "Patients and events (label 1 = CR) per centre" in html
    assert "Centre D</b>: one outcome class only: no AUC" in html
    assert "Centre A</b>" not in html and "nan" not in html  # no gap without a note
    assert "Centre C</b>: fewer than 10 events" in html
    assert "their pool (cohort &#x27;external&#x27;, 20 patients, 15 events)" in html
    assert "Leave-one-centre-out (AUC with 95% DeLong CI)" in html
    assert "Centre-effect diagnostics</b>: not produced by this run" in html
