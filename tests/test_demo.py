"""The synthetic demo cohort: layout, determinism, masks, clinical table, label signal."""

from __future__ import annotations

import copy
import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs import demo

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_PATH = ROOT / "resources" / "demo_cohort.yaml"
SEED = 20251121


@pytest.fixture(scope="module")
def settings() -> dict:
    return demo.load_settings(SETTINGS_PATH)


@pytest.fixture(scope="module")
def tiny(settings, tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("demo") / "tiny"
    demo.generate_cohort(settings, "tiny", SEED, str(outdir))
    return outdir


def read_sheet(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def array(path: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(path))


def all_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_sheet_equals_written_samples(settings, tiny):
    sheet = demo.demo_sample_sheet(settings, "tiny", str(tiny))
    pd.testing.assert_frame_equal(read_sheet(tiny / "samples.tsv"), sheet.astype(str))
    assert list(sheet.columns) == list(demo.SHEET_COLUMNS)
    order = {s: i for i, s in enumerate(settings["sequences"])}
    keys = list(zip(sheet["patient_id"], sheet["sequence"].map(order), strict=True))
    assert keys == sorted(keys)
    assert sheet["patient_id"].str.fullmatch(r"(QZ|ND)\d{3}").all()
    per_patient = sheet.groupby("patient_id")["sequence"].apply(list)
    assert all(seqs == settings["sequences"] for seqs in per_patient)
    for col in ("image", "mask"):
        assert all(Path(p).is_file() for p in sheet[col])
    assert (
        sum(1 for p in sheet["mask_reader2"] if p) == 3 * settings["presets"]["tiny"]["n_reader2"]
    )
    assert all(Path(p).is_file() for p in sheet["mask_reader2"] if p)
    written = {p.as_posix() for p in all_files(tiny)}
    expected = {"samples.tsv", "clinical.tsv"} | {
        Path(p).relative_to(tiny).as_posix()
        for col in ("image", "mask", "mask_reader2")
        for p in sheet[col]
        if p
    }
    assert written == expected


def test_class_counts_per_centre(settings, tiny):
    clinical = pd.read_csv(tiny / "clinical.tsv", sep="\t")
    assert list(clinical.columns) == list(demo.CLINICAL_COLUMNS)
    clinical["center"] = clinical["patient_id"].str[:2]
    for center, counts in settings["presets"]["tiny"]["patients"].items():
        y = clinical.loc[clinical["center"] == center, "response"]
        assert (y == 1).sum() == counts["cr"]
        assert (y == 0).sum() == counts["non_cr"]
    sheet = read_sheet(tiny / "samples.tsv")
    assert sorted(clinical["patient_id"]) == sorted(sheet["patient_id"].unique())


def test_clinical_table_values(tiny):
    clinical = pd.read_csv(tiny / "clinical.tsv", sep="\t")
    assert clinical["gender"].isin([0, 1]).all()
    assert clinical["t_stage"].isin([1, 2, 3, 4]).all()
    assert clinical["n_stage"].isin([0, 1, 2, 3]).all()
    stage = np.maximum(clinical["t_stage"], clinical["n_stage"] + 1)
    assert (clinical["clinical_stage"] == stage).all()
    assert clinical[["age", "ebv_dna", "ldh", "tk1", "lym", "d_dimer"]].gt(0).all().all()
    assert clinical["ki67"].between(0, 1).all()
    assert not clinical.isna().any().any()


def test_paper_sheet_is_fast_and_has_the_paper_counts(settings):
    sheet = demo.demo_sample_sheet(settings, "paper", "results/demo")
    patients = sheet.drop_duplicates("patient_id")
    assert patients["center"].value_counts().to_dict() == {"QZ": 173, "ND": 55}
    readers2 = patients[patients["patient_id"].isin(demo.reader2_patients(settings, "paper"))]
    assert len(readers2) == 30 and set(readers2["center"]) == {"QZ", "ND"}
    assert sheet["image"].iloc[0] == "results/demo/images/ND001/T1.nii.gz"
    labels = demo.response_labels(settings, "paper", SEED)
    by_centre = pd.Series(labels).groupby(lambda pid: pid[:2]).agg(["sum", "size"])
    assert by_centre.loc["QZ"].tolist() == [93, 173]
    assert by_centre.loc["ND"].tolist() == [37, 55]


def test_unknown_preset_is_an_input_error(settings):
    with pytest.raises(InputError, match="preset 'huge'"):
        demo.demo_sample_sheet(settings, "huge", "out")


def test_masks_non_empty_and_on_the_image_grid(tiny):
    sheet = read_sheet(tiny / "samples.tsv")
    for row in sheet.itertuples(index=False):
        image = sitk.ReadImage(row.image)
        assert image.GetPixelID() == sitk.sitkInt16
        assert image.GetSpacing()[2] in (3.5, 4.0)
        for path in (row.mask, row.mask_reader2):
            if not path:
                continue
            mask = sitk.ReadImage(path)
            assert mask.GetSize() == image.GetSize()
            assert mask.GetSpacing() == image.GetSpacing()
            assert mask.GetOrigin() == image.GetOrigin()
            assert mask.GetDirection() == image.GetDirection()
            values = np.unique(sitk.GetArrayViewFromImage(mask))
            assert values.tolist() == [0, 1]
    # one grid per patient: the three sequences share it
    for _, rows in sheet.groupby("patient_id"):
        grids = {
            (img.GetSize(), img.GetSpacing(), img.GetOrigin())
            for img in map(sitk.ReadImage, rows["image"])
        }
        assert len(grids) == 1


def test_reader2_masks_are_boundary_perturbations(tiny):
    sheet = read_sheet(tiny / "samples.tsv")
    rows = sheet[(sheet["mask_reader2"] != "") & (sheet["sequence"] == "T1")]
    scores = [dice(array(r.mask), array(r.mask_reader2)) for r in rows.itertuples()]
    assert len(scores) == 6
    assert all(0.75 < d < 0.97 for d in scores), scores
    assert 0.8 <= np.mean(scores) <= 0.95, scores


def test_same_seed_gives_identical_files_other_seed_differs(settings, tiny, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    demo.generate_cohort(settings, "tiny", SEED, str(again))
    demo.generate_cohort(settings, "tiny", SEED + 1, str(other))
    files = all_files(tiny)
    assert files == all_files(again) == all_files(other)
    for rel in files:
        if rel.name == "samples.tsv":  # holds the output folder itself
            texts = [(d / rel).read_text().replace(str(d), "OUT") for d in (tiny, again)]
            assert texts[0] == texts[1]
        else:
            assert filecmp.cmp(tiny / rel, again / rel, shallow=False), rel
    images = [rel for rel in files if rel.name.endswith(".nii.gz")]
    assert not any(filecmp.cmp(tiny / rel, other / rel, shallow=False) for rel in images)
    assert not filecmp.cmp(tiny / "clinical.tsv", other / "clinical.tsv", shallow=False)


def test_patient_does_not_depend_on_the_rest_of_the_cohort(settings, tiny):
    # the same patient simulated alone, from a cohort with other sizes, is the written one
    cfg = demo.resolve_preset(settings, "tiny")
    cfg["patients"] = {"QZ": {"cr": 40, "non_cr": 1}, "ND": {"cr": 1, "non_cr": 1}}
    response = demo.response_labels(settings, "tiny", SEED)["QZ004"]
    scan = demo.simulate_patient(cfg, SEED, "QZ004", "QZ", response, with_reader2=False)
    np.testing.assert_array_equal(scan.images["T2"], array(str(tiny / "images/QZ004/T2.nii.gz")))
    np.testing.assert_array_equal(scan.mask, array(str(tiny / "images/QZ004/T2_mask.nii.gz")))


def simple_features(scan: demo.PatientScan) -> dict[str, float]:
    """Gain-free per-patient features computed with numpy (no radiomics library)."""
    tumour = scan.mask.astype(bool)
    features = {"log_volume": float(np.log(tumour.sum() * np.prod(scan.spacing)))}
    inner_x = tumour[:, :, 1:] & tumour[:, :, :-1]
    for seq, image in scan.images.items():
        img = image.astype(float)
        head = img > 0.2 * np.percentile(img, 99)
        values = img[tumour]
        features[f"{seq}_mean_to_head"] = values.mean() / np.median(img[head])
        features[f"{seq}_cv"] = values.std() / values.mean()
        features[f"{seq}_gradient"] = np.abs(np.diff(img, axis=2))[inner_x].mean() / values.mean()
    return features


def test_label_signal_present_but_imperfect(settings):
    # many patients on small images: stable AUCs in a few seconds
    settings = copy.deepcopy(settings)
    settings["presets"]["signal"] = {
        "fov_mm": [64, 64, 56],
        "patients": {"QZ": {"cr": 50, "non_cr": 50}, "ND": {"cr": 25, "non_cr": 25}},
        "n_reader2": 0,
        "tumour": {"volume_cm3": {"median": 5.0, "min": 1.0, "max": 20.0}},
    }
    cfg = demo.resolve_preset(settings, "signal")
    labels = demo.response_labels(settings, "signal", SEED)
    rows = []
    for pid, center in demo.demo_patients(settings, "signal").itertuples(index=False):
        scan = demo.simulate_patient(cfg, SEED, pid, center, labels[pid], with_reader2=False)
        rows.append(simple_features(scan) | {"response": labels[pid]})
    table = pd.DataFrame(rows)
    y, X = table.pop("response").to_numpy(), table
    single = {name: roc_auc_score(y, X[name]) for name in X}
    best_single = max(max(auc, 1 - auc) for auc in single.values())
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    oof = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    combined = roc_auc_score(y, oof)
    print(f"best single AUC {best_single:.3f}, cross-validated logistic AUC {combined:.3f}")
    assert 0.6 < best_single < 0.85, single
    assert combined >= 0.75 and combined > best_single + 0.03, (combined, single)
