"""Predict = training, end to end on DICOM: a multi-modality cohort handed over as
hospitals do (a CT series in HU and an MR series per patient, written with pydicom, GTV
contours as RTSTRUCT), trained with a CT that skips N4 and z-score and has its own params
file, then the external centre's patients scored in predict mode from a fresh directory
that holds only the bundle and their DICOM folders: the same probabilities, exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import CLINICAL_VARS, prepare_workdir, run_workflow
from dicom_fixtures import sphere_contours, write_rtstruct, write_series

SIZE = (28, 28, 10)  # columns, rows, slices
SPACING = (1.0, 1.0, 3.0)
ORIGIN = (-14.0, -14.0, -15.0)
CENTRE_UVK = (14.0, 14.0, 4.5)  # the tumour's in-plane centre (mm) and slice position
RADIUS_MM = 7.0
CT_PARAMS = {
    "setting": {"binWidth": 10, "label": 1, "force2D": False},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "glcm": [], "shape": []},
}


def _centre_mm() -> np.ndarray:
    u, v, k = CENTRE_UVK
    return np.asarray(ORIGIN) + np.array([u, v, k * SPACING[2]])


def _values(background: float, tumour: float, sd: float, rng):
    """Intensity at patient points: a ball of ``tumour`` in ``background``, plus noise."""
    centre = _centre_mm()

    def values(points: np.ndarray) -> np.ndarray:
        inside = np.linalg.norm(points - centre, axis=1) < RADIUS_MM
        return np.where(inside, tumour, background) + rng.normal(0, sd, len(points))

    return values


def _label_mask(series_folder: Path, out: Path) -> None:
    """A NIfTI label mask of the analytic ball on the series' own grid."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series_folder)))
    image = reader.Execute()
    size = image.GetSize()
    index = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).reshape(-1, 3)
    points = np.array([image.TransformIndexToPhysicalPoint([int(i) for i in p]) for p in index])
    inside = (np.linalg.norm(points - _centre_mm(), axis=1) < RADIUS_MM).reshape(size)
    mask = sitk.GetImageFromArray(inside.transpose(2, 1, 0).astype(np.uint8))
    mask.CopyInformation(image)
    sitk.WriteImage(mask, str(out))


def make_dicom_cohort(root: Path, n_train=24, n_external=4, rtstruct_train=4) -> pd.DataFrame:
    """Per patient a CT series (HU) and an MR series; the external patients' and the first
    ``rtstruct_train`` training patients' GTVs as RTSTRUCT (ROI 'GTV_<modality>'), the
    other training patients' as NIfTI label masks. Response = k % 2, carried by the
    tumour's intensity. Returns the sample sheet (absolute paths)."""
    rows = []
    patients = [(f"A{i:03d}", "A") for i in range(n_train)]
    patients += [(f"B{i:03d}", "B") for i in range(n_external)]
    for k, (pid, centre) in enumerate(patients):
        label = k % 2
        rng = np.random.default_rng(1000 + k)
        contour = centre == "B" or k < rtstruct_train
        for sequence, modality, background, tumour, sd in (
            ("CT", "CT", 40.0, 60.0 + 12.0 * label, 12.0),
            ("MR", "MR", 300.0, 420.0 + 40.0 * label, 25.0),
        ):
            folder = root / pid / sequence
            series = write_series(
                folder,
                SIZE,
                SPACING,
                origin=ORIGIN,
                modality=modality,
                values=_values(background, tumour, sd, rng),
                patient=pid,
            )
            if contour:
                mask = root / pid / f"{sequence}_rtstruct.dcm"
                contours = sphere_contours(series, CENTRE_UVK, RADIUS_MM)
                write_rtstruct(mask, series, {f"GTV_{modality}": contours, "BODY": contours[:1]})
            else:
                mask = root / pid / f"{sequence}_mask.nii.gz"
                _label_mask(folder, mask)
            rows.append(
                {
                    "patient_id": pid,
                    "center": centre,
                    "sequence": sequence,
                    "image": str(folder),
                    "mask": str(mask),
                    "label": label,
                }
            )
    return pd.DataFrame(rows)


def _clinical(sheet: pd.DataFrame, path: Path) -> None:
    rng = np.random.default_rng(5)
    records = []
    for pid, label in sheet.groupby("patient_id", sort=True)["label"].first().items():
        record = {"patient_id": pid, "response": int(label)}
        for var in CLINICAL_VARS["continuous"]:
            record[var] = round(float(rng.normal(10, 2)), 3)
        for var in CLINICAL_VARS["categorical"]:
            record[var] = int(rng.integers(0, 3))
        records.append(record)
    pd.DataFrame(records).to_csv(path, sep="\t", index=False)


def _training_config(work: Path, sheet: Path, clinical: Path) -> Path:
    params = work / "ct_params.yaml"
    params.write_text(yaml.safe_dump(CT_PARAMS))
    config = {
        "samples": str(sheet),
        "clinical": str(clinical),
        "demo": {"enabled": False},
        "sequences": ["CT", "MR"],
        "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
        "models": ["logistic_regression"],
        "masks": {"roi": {"CT": "GTV_CT", "MR": "gtv_mr"}, "components": "largest"},
        "preprocessing": {
            "n4": {"iterations": [10, 10]},
            "per_sequence": {
                "CT": {
                    "n4": {"enabled": False},
                    "resample": {"interpolator": "linear"},
                    "normalization": {"method": "none"},
                }
            },
        },
        "features": {
            "params": "resources/pyradiomics_params_fast.yaml",
            "params_per_sequence": {"CT": str(params)},
            "crop_margin_mm": 5.0,
        },
        "robustness": {"enabled": False},
        "selection": {"mrmr_k": 10, "lasso": {"cv_folds": 2, "n_lambdas": 10}},
        "tuning": {"n_trials": 2, "inner_folds": 2, "outer_folds": 2},
        "evaluation": {"n_bootstrap": 100},
    }
    path = work / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.e2e
@pytest.mark.snakemake
def test_a_dicom_rtstruct_ct_mr_bundle_scores_its_external_patients_exactly(tmp_path):
    work = prepare_workdir(tmp_path / "train")
    cohort = make_dicom_cohort(tmp_path / "dicom")
    sheet = work / "samples.tsv"
    cohort.drop(columns="label").to_csv(sheet, sep="\t", index=False)
    _clinical(cohort, work / "clinical.tsv")
    configfile = _training_config(work, sheet, work / "clinical.tsv")
    targets = (
        "results/bundle",
        "results/predictions/external/B.tsv",
        "results/qc/qc.tsv",
        "results/report/provenance.json",
    )
    proc = run_workflow(work, configfile, *targets, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    manifest = json.loads((work / "results" / "bundle" / "manifest.json").read_text())
    prep = manifest["preprocessing"]
    assert prep["masks"] == {
        "roi": {"CT": "GTV_CT", "MR": "gtv_mr"},
        "structures": "merge",
        "components": "largest",
    }
    assert prep["pyradiomics_params_by_sequence"]["CT"] == "pyradiomics_params_CT.yaml"
    assert prep["pyradiomics_params_by_sequence"]["MR"] == "pyradiomics_params.yaml"

    # DICOM provenance: each series' and RTSTRUCT's UIDs in the QC table and provenance.
    qc = pd.read_csv(work / "results" / "qc" / "qc.tsv", sep="\t", dtype=str,
                     keep_default_na=False)  # fmt: skip
    rtstruct = qc["mask"].str.endswith("_rtstruct.dcm")
    assert rtstruct.sum() == 16 and (qc["image_series_instance_uid"] != "").all()
    assert (qc.loc[rtstruct, "mask_frame_of_reference_uid"] != "").all()
    assert (qc.loc[~rtstruct, "mask_series_instance_uid"] == "").all()  # NIfTI masks
    same_frame = qc["image_frame_of_reference_uid"] == qc["mask_frame_of_reference_uid"]
    assert same_frame[rtstruct].all()
    provenance = json.loads((work / "results" / "report" / "provenance.json").read_text())
    for row in qc[rtstruct].itertuples(index=False):
        assert provenance["dicom"][row.image]["series_instance_uid"] == (
            row.image_series_instance_uid
        )
        assert provenance["dicom"][row.mask]["series_instance_uid"] == row.mask_series_instance_uid

    # A fresh site: the bundle and the external patients' DICOM folders, nothing else.
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(work / "results" / "bundle", site / "model_bundle")
    rows = []
    external = cohort[cohort["center"] == "B"]
    for row in external.itertuples(index=False):
        shutil.copytree(tmp_path / "dicom" / row.patient_id, site / "dicom" / row.patient_id,
                        dirs_exist_ok=True)  # fmt: skip
        rel = Path("dicom") / row.patient_id
        rows.append(
            {
                "patient_id": row.patient_id,
                "center": "B",
                "sequence": row.sequence,
                "image": str(rel / row.sequence),
                "mask": str(rel / Path(row.mask).name),
            }
        )
    pd.DataFrame(rows).to_csv(site / "new.tsv", sep="\t", index=False)
    predict_yaml = site / "predict.yaml"
    predict_yaml.write_text(
        yaml.safe_dump({"predict": {"samples": "new.tsv", "bundle": "model_bundle"}})
    )
    scored = run_workflow(site, predict_yaml, "--cores", "2")
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-5000:]
    assert "predict: 4 of 4 patients scored" in scored.stdout + scored.stderr
    got = pd.read_csv(site / "results" / "predict" / "predictions.tsv", sep="\t", dtype=str)
    # The training run's own predictions of the external centre (rule predict_external),
    # both tables parsed exactly (pandas' default float parser may be one ulp off; the
    # gathered results/predictions/predictions.tsv was parsed that way once).
    training = pd.read_csv(work / "results" / "predictions" / "external" / "B.tsv", sep="\t",
                           dtype={"patient_id": str}, float_precision="round_trip")  # fmt: skip
    expected = training[(training["model"] == manifest["model"]) & (training["cohort"] == "B")]
    assert (
        sorted(got["patient_id"])
        == sorted(expected["patient_id"])
        == sorted(external["patient_id"].unique())
    )
    merged = got.merge(expected, on="patient_id", suffixes=("", "_training"))
    difference = np.abs(merged["probability"].map(float) - merged["probability_training"])
    shown = merged[["patient_id", "probability", "probability_training"]]
    assert float(difference.max()) == 0.0, shown
    # Each patient's novelty against the training patients, and the page says how decided.
    assert got["novelty_score"].astype(float).gt(0).all()
    assert set(got["novelty_flag"]) <= {"0", "1"}
    assert "Novelty:" in (site / "results" / "predict" / "index.html").read_text()
    # The RTSTRUCTs were rasterised in the site's own predict folder, with the bundle's ROI.
    qc = pd.read_csv(site / "results" / "predict" / "qc" / "qc.tsv", sep="\t", dtype=str)
    assert set(qc["mask_kind"]) == {"rtstruct"}
    assert set(qc.loc[qc["sequence"] == "MR", "mask_roi"]) == {"gtv_mr"}
    assert (site / "results" / "predict" / "masks" / "B000" / "CT_mask.nii.gz").is_file()
