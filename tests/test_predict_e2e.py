"""End-to-end: the bundle of a tiny training run, and `predict` from a fresh directory.

One training run (module fixture) makes results/bundle/; the predict runs happen in other
directories that hold only a copy of the bundle and the external centre's images, so
predict cannot read training data (the training run's results/ is not there).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_workflow

from npc_radiomics.evaluation.procedure import PROCEDURE

pytestmark = [pytest.mark.e2e, pytest.mark.snakemake]

EXTERNAL = "ND"
SEQUENCES = ["T1", "T2", "CET1"]


@pytest.fixture(scope="module")
def training_run(tiny_run) -> Path:
    """The shared tiny run (conftest), which bundles every model."""
    return tiny_run


def _external_workdir(training: Path, target: Path, outcomes: bool = True) -> Path:
    """A fresh working directory: the bundle, the external centre's images, a sheet."""
    target.mkdir(parents=True)
    shutil.copytree(training / "results" / "bundle", target / "model_bundle")
    sheet = pd.read_csv(training / "results" / "demo" / "samples.tsv", sep="\t", dtype=str)
    clinical = pd.read_csv(training / "results" / "demo" / "clinical.tsv", sep="\t", dtype=str)
    sheet = sheet[sheet["center"] == EXTERNAL]
    rows = []
    for row in sheet.itertuples(index=False):
        folder = target / "images" / row.patient_id
        folder.mkdir(parents=True, exist_ok=True)
        image = folder / f"{row.sequence}.nii.gz"
        mask = folder / f"{row.sequence}_mask.nii.gz"
        shutil.copyfile(training / row.image, image)
        shutil.copyfile(training / row.mask, mask)
        rows.append(
            {
                "patient_id": row.patient_id,
                "sequence": row.sequence,
                "image": str(image.relative_to(target)),
                "mask": str(mask.relative_to(target)),
            }
        )
    pd.DataFrame(rows).to_csv(target / "new.tsv", sep="\t", index=False)
    if outcomes:
        keep = clinical[clinical["patient_id"].isin(sheet["patient_id"])]
        keep[["patient_id", "response"]].to_csv(target / "outcomes.tsv", sep="\t", index=False)
    return target


def _predict(work: Path, *, outcomes: bool = True, bundle: str = "model_bundle", extra=()):
    predict = {"samples": "new.tsv", "bundle": bundle, "outcomes": None}
    if outcomes:
        predict["outcomes"] = "outcomes.tsv"
    configfile = work / "predict.yaml"
    configfile.write_text(yaml.safe_dump({"predict": predict}))
    return run_workflow(work, configfile, "--cores", "2", *extra)


def test_the_bundle_holds_the_chosen_model_and_its_threshold(training_run):
    results = training_run / "results"
    chosen = json.loads((results / "evaluation" / "chosen_model.json").read_text())
    manifest = json.loads((results / "bundle" / "manifest.json").read_text())
    assert manifest["model"] == chosen["model"]
    thresholds = pd.read_csv(results / "evaluation" / "thresholds.tsv", sep="\t")
    row = thresholds.set_index("model").loc[chosen["model"]]
    assert manifest["threshold"] == {"value": row["threshold"], "source": row["source"]}
    zscore = pd.read_csv(results / "normalization" / "zscore.tsv", sep="\t").set_index("sequence")
    for sequence, stats in manifest["preprocessing"]["zscore"]["sequences"].items():
        assert stats["mean"] == zscore.loc[sequence, "mean"]
        assert stats["sd"] == zscore.loc[sequence, "sd"]
    assert manifest["preprocessing"]["n4"]["iterations"] == [20, 20]  # tiny.yaml's, not default
    split = pd.read_csv(results / "split" / "split.tsv", sep="\t")
    train = split[split["cohort"] == "train"]
    assert manifest["training"]["n"] == len(train)
    assert manifest["training"]["events"] == int(train["label"].sum())
    metrics = pd.read_csv(results / "evaluation" / "metrics.tsv", sep="\t")
    mine = metrics[metrics["model"] == chosen["model"]].set_index("cohort")
    assert manifest["performance"]["nested_cv_auc"] == pytest.approx(mine.loc["nested_cv", "auc"])
    assert manifest["performance"]["test_auc"] == pytest.approx(mine.loc["test", "auc"])
    # bundle.models: all made one bundle per model too.
    for model in metrics.loc[metrics["model"] != PROCEDURE, "model"].unique():
        other = json.loads((results / "bundles" / model / "manifest.json").read_text())
        assert other["model"] == model


def test_predict_reproduces_the_external_centre_from_a_fresh_directory(training_run, tmp_path):
    work = _external_workdir(training_run, tmp_path / "site")
    proc = _predict(work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    # Nothing of training was there to read, and nothing was refitted: only predict's jobs.
    ran = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", proc.stderr))
    assert ran == {
        "predict_qc_batch",
        "predict_qc",
        "predict_preprocess_batch",
        "predict_extract_batch",
        "predict",
        "all",
    }, ran
    made = {p.name for p in (work / "results").iterdir()}
    assert made == {"predict", "logs", "benchmarks"}
    manifest = json.loads((work / "model_bundle" / "manifest.json").read_text())
    got = pd.read_csv(
        work / "results" / "predict" / "predictions.tsv", sep="\t", dtype={"patient_id": str}
    )
    assert list(got.columns) == [
        "patient_id",
        "probability",
        "predicted_class",
        "novelty_score",
        "novelty_flag",
        "model",
        "bundle_hash",
        "status",
        "reason",
    ]
    assert (got["status"] == "scored").all()
    training = pd.read_csv(
        training_run / "results" / "predictions" / "predictions.tsv",
        sep="\t",
        dtype={"patient_id": str},
    )
    expected = training[(training["model"] == manifest["model"]) & (training["cohort"] == EXTERNAL)]
    assert sorted(got["patient_id"]) == sorted(expected["patient_id"])
    merged = got.merge(expected, on="patient_id", suffixes=("", "_training"))
    np.testing.assert_allclose(
        merged["probability"], merged["probability_training"], rtol=0, atol=1e-12
    )
    threshold = manifest["threshold"]["value"]
    assert (merged["predicted_class"] == (merged["probability"] >= threshold).astype(int)).all()
    assert (got["model"] == manifest["model"]).all()
    assert got["bundle_hash"].nunique() == 1 and len(got["bundle_hash"].iloc[0]) == 64
    # With outcomes: an external validation that agrees with the training run's ND row.
    mine = pd.read_csv(work / "results" / "predict" / "metrics.tsv", sep="\t").iloc[0]
    metrics = pd.read_csv(training_run / "results" / "evaluation" / "metrics.tsv", sep="\t")
    nd = metrics[(metrics["model"] == manifest["model"]) & (metrics["cohort"] == EXTERNAL)].iloc[0]
    for column in ("n", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity"):
        assert mine[column] == pytest.approx(nd[column], abs=1e-12), column
    assert (work / "results" / "predict" / "decision_curve.tsv").exists()
    html = (work / "results" / "predict" / "index.html").read_text()
    assert manifest["model"] in html and "External validation" in html


def _assert_refused(proc, work: Path, pattern: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "npc-radiomics input error" in line]
    assert len(lines) == 1 and re.search(pattern, lines[0]), proc.stderr[-3000:]
    assert not (work / "results" / "predict").exists()


@pytest.fixture(scope="module")
def external_site(training_run, tmp_path_factory):
    # A site without outcomes, copied by each bad-input test (no Snakemake run here).
    return _external_workdir(training_run, tmp_path_factory.mktemp("bad") / "site", False)


def _variant(site: Path, tmp_path: Path) -> Path:
    work = tmp_path / "variant"
    shutil.copytree(site, work, symlinks=False)
    return work


def test_predict_refuses_a_sheet_missing_a_sequence(external_site, tmp_path):
    work = _variant(external_site, tmp_path)
    sheet = pd.read_csv(work / "new.tsv", sep="\t")
    first = sheet["patient_id"].iloc[0]
    sheet = sheet[~((sheet["patient_id"] == first) & (sheet["sequence"] == "T2"))]
    sheet.to_csv(work / "new.tsv", sep="\t", index=False)
    _assert_refused(_predict(work, outcomes=False), work, rf"patient {first} has no row.*'T2'")


def test_predict_refuses_an_unknown_sequence(external_site, tmp_path):
    work = _variant(external_site, tmp_path)
    sheet = pd.read_csv(work / "new.tsv", sep="\t")
    sheet.loc[0, "sequence"] = "FLAIR"
    sheet.to_csv(work / "new.tsv", sep="\t", index=False)
    _assert_refused(_predict(work, outcomes=False), work, "'FLAIR'.*unknown to the bundle")


@pytest.mark.parametrize("change", ["altered", "missing"])
def test_predict_refuses_a_changed_bundle(external_site, tmp_path, change):
    work = _variant(external_site, tmp_path)
    target = work / "model_bundle" / "zscore.tsv"
    if change == "missing":
        target.unlink()
        pattern = "zscore.tsv is missing"
    else:
        target.write_text(target.read_text().replace("train", "trail"))
        pattern = "zscore.tsv was changed"
    _assert_refused(_predict(work, outcomes=False), work, pattern)


def test_predict_refuses_a_features_in_bundle_on_images(external_site, tmp_path):
    from npc_radiomics.deploy.bundle import MANIFEST, seal

    work = _variant(external_site, tmp_path)
    manifest_path = work / "model_bundle" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["input"] = "features_table"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    seal(work / "model_bundle")
    _assert_refused(_predict(work, outcomes=False), work, "trained on a ready feature table")


def test_predict_takes_dicom_series_with_seg_masks(training_run, tmp_path):
    """Two new patients' T1 as a DICOM series (the same voxels as their NIfTI) with the
    tumour as a DICOM SEG: the batch's QC job rasterises them (no job per case) onto the
    mask the NIfTI gave, voxel for voxel, and their predictions are the NIfTI's."""
    import SimpleITK as sitk
    from dicom_fixtures import write_seg, write_series

    work = _external_workdir(training_run, tmp_path / "site")
    sheet = pd.read_csv(work / "new.tsv", sep="\t", dtype=str)
    patients = sorted(sheet["patient_id"].unique())[:2]
    for pid in patients:
        image = sitk.ReadImage(str(work / "images" / pid / "T1.nii.gz"))
        assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        voxels = sitk.GetArrayFromImage(image)
        origin, spacing = np.asarray(image.GetOrigin()), np.asarray(image.GetSpacing())

        def values(points, voxels=voxels, origin=origin, spacing=spacing):
            i, j, k = np.rint((points - origin) / spacing).astype(int).T
            return voxels[k, j, i].astype(float)

        series = write_series(
            work / "images" / pid / "T1_dicom", size=image.GetSize(),
            spacing=tuple(spacing), origin=tuple(origin), values=values, patient=pid,
        )  # fmt: skip
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "images" / pid / "T1_mask.nii.gz")))
        seg = write_seg(work / "images" / pid / "T1_seg.dcm", series, {"GTV": mask > 0})
        row = (sheet["patient_id"] == pid) & (sheet["sequence"] == "T1")
        sheet.loc[row, ["image", "mask"]] = [
            str(series.folder.relative_to(work)),
            str(seg.relative_to(work)),
        ]
    sheet.to_csv(work / "new.tsv", sep="\t", index=False)
    configfile = work / "predict.yaml"
    predict = {"samples": "new.tsv", "bundle": "model_bundle", "outcomes": "outcomes.tsv"}
    configfile.write_text(yaml.safe_dump({"predict": predict, "masks": {"roi": {"T1": "GTV"}}}))
    proc = run_workflow(work, configfile, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    ran = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", proc.stderr))
    assert ran == {
        "predict_qc_batch", "predict_qc", "predict_preprocess_batch", "predict_extract_batch",
        "predict", "all",
    }, ran  # fmt: skip
    qc = pd.read_csv(work / "results" / "predict" / "qc" / "qc.tsv", sep="\t", dtype=str)
    t1 = qc[qc["sequence"] == "T1"].set_index("patient_id")
    for pid in patients:
        assert t1.loc[pid, "status"] == "pass" and t1.loc[pid, "mask_kind"] == "seg"
        assert t1.loc[pid, "mask"].endswith(f"{pid}/T1_seg.dcm")
        raster = work / "results" / "predict" / "masks" / pid / "T1_mask.nii.gz"
        original = sitk.ReadImage(str(work / "images" / pid / "T1_mask.nii.gz"))
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(raster))) > 0,
            sitk.GetArrayFromImage(original) > 0,
        )
    got = pd.read_csv(work / "results" / "predict" / "predictions.tsv", sep="\t", dtype=str)
    training = pd.read_csv(
        training_run / "results" / "predictions" / "predictions.tsv", sep="\t", dtype=str
    )
    manifest = json.loads((work / "model_bundle" / "manifest.json").read_text())
    expected = training[(training["model"] == manifest["model"]) & (training["cohort"] == EXTERNAL)]
    merged = got.merge(expected, on="patient_id", suffixes=("", "_training"))
    assert sorted(merged["patient_id"]) == sorted(expected["patient_id"])
    np.testing.assert_allclose(
        merged["probability"].astype(float), merged["probability_training"].astype(float),
        rtol=0, atol=1e-6,
    )  # fmt: skip
