"""A whole run on a cohort folder handed over the way clinics keep it: the sample sheet a
comma-separated file with paths relative to its own folder, the clinical table an .xlsx
workbook (a named sheet) with text-coded gender and T stage, the run started from another
directory. Table 1 counts each level, Table 2 and the clinical baselines use level
dummies, and the coding is in the provenance record and the bundle manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from conftest import TINY_CONFIG, make_user_cohort, prepare_workdir, run_workflow, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clinic") / "cohort"
    cohort = make_user_cohort(root)
    samples = pd.read_csv(cohort["samples"], sep="\t", dtype=str, keep_default_na=False)
    for column in ("image", "mask"):
        samples[column] = [str(Path(p).relative_to(root)) for p in samples[column]]
    samples.to_csv(root / "samples.csv", index=False)
    clinical = pd.read_csv(cohort["clinical"], sep="\t", dtype=str)
    clinical["gender"] = np.where(clinical["gender"] == "1", "Male", "Female")
    clinical["t_stage"] = "T" + (clinical["t_stage"].astype(int) + 1).astype(str)
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active["A1"] = "exported from the hospital system"
    sheet = book.create_sheet("Clinical")
    sheet.append(list(clinical.columns))
    for record in clinical.itertuples(index=False):
        sheet.append([v if k in ("patient_id", "gender", "t_stage") else float(v)
                      for k, v in zip(clinical.columns, record, strict=True)])  # fmt: skip
    book.save(root / "clinical.xlsx")
    tiny = yaml.safe_load(TINY_CONFIG.read_text())
    config = {
        **cohort["config"],
        "samples": str(root / "samples.csv"),
        "clinical": str(root / "clinical.xlsx"),
        "sheets": {"samples": None, "clinical": "Clinical", "features_table": None},
        "features": tiny["features"],
        "preprocessing": {**tiny["preprocessing"], "n4": {"enabled": False}},
        "models": ["logistic_regression"],
        "robustness": {"enabled": False},  # no second reader in this cohort
        "tuning": {**tiny["tuning"]},
        "selection": tiny["selection"],
        "evaluation": tiny["evaluation"],
        "permutation": {"n": 2},
    }
    work = prepare_workdir(tmp_path_factory.mktemp("run"))
    proc = run_workflow(work, write_config(work / "clinic.yaml", config), "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work, clinical


def test_table1_counts_each_text_level(run):
    work, clinical = run
    t1 = pd.read_csv(work / "results/clinical/table1.tsv", sep="\t", keep_default_na=False)
    gender = t1[t1["variable"] == "gender"]
    assert gender["level"].tolist() == ["", "Female", "Male"]
    stages = t1.loc[t1["variable"] == "t_stage", "level"].tolist()[1:]
    assert stages == sorted(set(clinical["t_stage"]))


def test_regressions_use_level_dummies(run):
    work, _ = run
    t2 = pd.read_csv(work / "results/clinical/table2.tsv", sep="\t")
    assert "gender=Male" in set(t2["variable"]) and "gender" not in set(t2["variable"])
    assert {"t_stage=T2", "t_stage=T3"} <= set(t2["variable"])
    summary = json.loads((work / "results/baselines/baselines.json").read_text())
    assert summary  # the clinical baseline ran on the dummy-coded variables


def test_coding_recorded_in_provenance_and_bundle(run):
    work, _ = run
    provenance = json.loads((work / "results/report/provenance.json").read_text())
    coding = provenance["clinical_coding"]
    assert coding["gender"]["reference"] == "Female"
    assert coding["gender"]["columns"] == ["gender=Male"]
    assert coding["t_stage"]["levels"] == ["T1", "T2", "T3"]
    assert coding["n_stage"]["kind"] == "numeric"  # codes 0-2 stay numbers, used as coded
    manifest = json.loads((work / "results/bundle/manifest.json").read_text())
    assert manifest["clinical_coding"] == coding
