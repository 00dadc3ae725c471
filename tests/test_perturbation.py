"""Robustness without a second reader (robustness.method perturbation / both): seeded image
and contour perturbations of the training patients, real pyradiomics, ICC(2,1) across the
perturbations; a planted fragile feature is dropped, a stable one kept."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest
import SimpleITK as sitk
import yaml

from npc_radiomics.base.errors import InputError
from npc_radiomics.imaging.batches import preprocessed_paths
from npc_radiomics.imaging.perturbation import (
    Perturbation,
    PerturbationSettings,
    draw_perturbation,
    estimate_noise_sd,
    perturb_batch_rule,
    perturb_case,
    perturbation_icc,
    perturbed_features,
)
from npc_radiomics.imaging.robustness import robustness_table

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "shape": []},
    "setting": {"binWidth": 25, "label": 1, "additionalInfo": False},
}
FRAGILE = "T1__original_firstorder_Maximum"
STABLE = "T1__original_firstorder_Median"


def rim_case(radius: float, level: float, seed: int, size: int = 40):
    """A noisy sphere of intensity ``level`` with a bright one-voxel rim (2000) just
    outside its mask: the maximum inside the mask is the tumour's own until a perturbed
    contour reaches the rim (fragile); the median stays the tumour's (stable)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:size, :size, :size] - size / 2
    distance = np.sqrt(x**2 + y**2 + z**2)
    mask = (distance <= radius).astype(np.uint8)
    image = rng.normal(50.0, 5.0, mask.shape)
    image[mask == 1] += level
    image[(distance > radius) & (distance <= radius + 1.0)] = 2000.0
    img = sitk.GetImageFromArray(image.astype(np.float32))
    msk = sitk.GetImageFromArray(mask)
    return img, msk


def cohort_long_table(settings, seed=11, n=6):
    rows = []
    for i in range(n):
        image, mask = rim_case(9 + i, 100 + 100 * i, i)
        case_rows, _ = perturbed_features(
            image, mask, PARAMS, settings, seed, patient=f"P{i}", sequence="T1", crop_margin_mm=5
        )
        rows += case_rows
    return pd.DataFrame(
        rows, columns=["patient_id", "sequence", "perturbation", "feature", "value"]
    )


def train_split(patients, test=()):
    return pd.DataFrame(
        {
            "patient_id": list(patients),
            "cohort": ["test" if p in test else "train" for p in patients],
        }
    )


def test_planted_fragile_feature_is_dropped_and_stable_one_kept():
    settings = PerturbationSettings(n=3)
    table = cohort_long_table(settings)
    icc = perturbation_icc(table, train_split([f"P{i}" for i in range(6)]), threshold=0.85)
    icc = icc.set_index("feature")
    assert not icc.loc[FRAGILE, "robust"], icc.loc[FRAGILE]
    assert icc.loc[FRAGILE, "icc"] < 0.6
    assert icc.loc[STABLE, "robust"] and icc.loc[STABLE, "icc"] > 0.95
    assert (icc["n_patients"] == 6).all() and (icc["n_perturbations"] == 3).all()
    # Without contour changes the rim stays outside: the planted fragility is the contour's.
    still = cohort_long_table(PerturbationSettings(n=3, contour="none"))
    icc_still = perturbation_icc(still, train_split([f"P{i}" for i in range(6)]), threshold=0.85)
    assert icc_still.set_index("feature").loc[FRAGILE, "icc"] > icc.loc[FRAGILE, "icc"] + 0.3


def test_perturbation_icc_is_icc2_1_of_the_perturbations_as_raters(monkeypatch):
    monkeypatch.setitem(pingouin.options, "round.column.CI95", None)
    rng = np.random.default_rng(3)
    rows = []
    truth = rng.normal(size=5)
    for i, t in enumerate(truth):
        for k in range(4):
            rows.append((f"P{i}", "T2", k, "x", t + rng.normal(0, 0.3)))
            rows.append((f"P{i}", "T1", k, "y", rng.normal()))
    table = pd.DataFrame(
        rows, columns=["patient_id", "sequence", "perturbation", "feature", "value"]
    )
    table = table.sample(frac=1.0, random_state=1)  # row order must not matter
    result = perturbation_icc(
        table,
        train_split([f"P{i}" for i in range(5)]),
        threshold=0.5,
        features=["T2__x", "T1__y", "T1__z"],
    ).set_index("feature")
    long = table[table["feature"] == "x"]
    expected = pingouin.intraclass_corr(
        long, targets="patient_id", raters="perturbation", ratings="value"
    )
    row = expected.set_index("Type").loc["ICC(A,1)"]
    assert result.loc["T2__x", "icc"] == pytest.approx(row["ICC"], rel=1e-10)
    assert result.loc["T2__x", "ci_low"] == pytest.approx(row["CI95"][0], rel=1e-8)
    assert np.isnan(result.loc["T1__z", "icc"]) and not result.loc["T1__z", "robust"]
    assert list(result.index) == ["T2__x", "T1__y", "T1__z"]


def test_noise_estimate_recovers_the_noise_sd():
    rng = np.random.default_rng(5)
    image = sitk.GetImageFromArray((100 + rng.normal(0, 7.0, (30, 40, 40))).astype(np.float32))
    assert estimate_noise_sd(image) == pytest.approx(7.0, rel=0.05)


def test_identity_perturbation_leaves_the_case_and_contour_changes_move_the_boundary():
    image, mask = rim_case(6, 300, 0)
    still = Perturbation(
        seed=1, rotation_deg=0.0, translation_mm=(0.0, 0.0, 0.0), contour_voxels=0, noise=False
    )
    moved, moved_mask, info = perturb_case(image, mask, still, margin_mm=3)
    n = int(sitk.GetArrayViewFromImage(mask).sum())
    assert info["n_voxels"] == n and info["noise_sd"] == 0.0
    # Same voxels at the same physical places (the box is a crop of the original grid).
    index = mask.TransformPhysicalPointToIndex(moved.GetOrigin())
    size = moved.GetSize()
    crop = sitk.GetArrayFromImage(sitk.RegionOfInterest(image, size, index))
    np.testing.assert_allclose(sitk.GetArrayFromImage(moved), crop, atol=1e-3)
    grown = perturb_case(image, mask, Perturbation(1, 0.0, (0.0, 0.0, 0.0), 1, False), margin_mm=3)[
        2
    ]
    shrunk = perturb_case(
        image, mask, Perturbation(1, 0.0, (0.0, 0.0, 0.0), -1, False), margin_mm=3
    )[2]
    assert shrunk["n_voxels"] < n < grown["n_voxels"]
    noisy = perturb_case(image, mask, Perturbation(1, 0.0, (0.0, 0.0, 0.0), 0, True), margin_mm=3)
    residual = sitk.GetArrayFromImage(noisy[0]) - crop
    assert residual.std() == pytest.approx(noisy[2]["noise_sd"], rel=0.05)
    assert noisy[2]["noise_sd"] > 0


def test_an_erosion_that_would_empty_the_mask_is_not_applied():
    image, mask = rim_case(1.0, 300, 0, size=16)  # 7 voxels: a ball erosion removes them all
    _, moved_mask, info = perturb_case(
        image, mask, Perturbation(1, 0.0, (0.0, 0.0, 0.0), -1, False), margin_mm=2
    )
    assert info["contour_voxels"] == 0 and info["n_voxels"] == 7


def test_draws_depend_on_seed_patient_sequence_and_index_only():
    settings = PerturbationSettings(n=4, rotation_deg=5, translation_mm=1, contour_voxels=1)
    a = draw_perturbation(settings, 7, "P1", "T1", 2)
    assert a == draw_perturbation(settings, 7, "P1", "T1", 2)
    others = [
        draw_perturbation(settings, 8, "P1", "T1", 2),
        draw_perturbation(settings, 7, "P2", "T1", 2),
        draw_perturbation(settings, 7, "P1", "T2", 2),
        draw_perturbation(settings, 7, "P1", "T1", 3),
    ]
    assert all(o.seed != a.seed and o.rotation_deg != a.rotation_deg for o in others)
    draws = [draw_perturbation(settings, 7, f"P{i}", "T1", k) for i in range(20) for k in range(4)]
    assert max(abs(d.rotation_deg) for d in draws) <= 5
    assert max(max(map(abs, d.translation_mm)) for d in draws) <= 1
    assert {d.contour_voxels for d in draws} == {-1, 0, 1}


def _write_batch(folder: Path, patients):
    for i, patient in enumerate(patients):
        image, mask = rim_case(5 + i, 100 + 50 * i, i)
        paths = preprocessed_paths(str(folder), patient, "T1")
        Path(paths["image"]).parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, paths["image"])
        sitk.WriteImage(mask, paths["mask"])


def _run_batch(tmp_path, name, patients, split, seed=11):
    folder = tmp_path / name
    _write_batch(folder, patients)
    cases = [{"patient_id": p, "sequence": "T1", "mask_reader2": False} for p in patients]
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(PARAMS))
    return perturb_batch_rule(
        cases,
        str(folder),
        None,
        split,
        params_files={"T1": str(params_file)},
        normalization={"T1": {"method": "none"}},
        crop_margin_mm=5.0,
        settings={
            "n": 3,
            "noise": True,
            "rotation_deg": 4.0,
            "translation_mm": 1.0,
            "contour": "morphology",
            "contour_voxels": 1,
        },
        seed=seed,
        features_path=str(tmp_path / f"{name}.parquet"),
        params_path=str(tmp_path / f"{name}_params.tsv"),
    )


def test_batch_perturbs_training_patients_only_deterministically_whatever_the_batch(tmp_path):
    split = train_split(["A1", "A2", "A3"], test=("A2",))
    big = _run_batch(tmp_path, "big", ["A1", "A2", "A3"], split)
    # The test patient A2 is never perturbed; the file says so too.
    assert set(big["patient_id"]) == {"A1", "A3"}
    assert set(pd.read_parquet(tmp_path / "big.parquet")["patient_id"]) == {"A1", "A3"}
    drawn = pd.read_csv(tmp_path / "big_params.tsv", sep="\t")
    assert set(drawn["patient_id"]) == {"A1", "A3"} and len(drawn) == 6
    # A batch of A1 alone (its own files, same content) gives A1 the same values, bit for bit.
    small = _run_batch(tmp_path, "small", ["A1"], split)
    pd.testing.assert_frame_equal(big[big["patient_id"] == "A1"].reset_index(drop=True), small)
    again = _run_batch(tmp_path, "again", ["A1"], split)
    pd.testing.assert_frame_equal(small, again)
    other_seed = _run_batch(tmp_path, "seed", ["A1"], split, seed=12)
    assert not np.allclose(other_seed["value"], small["value"])


def test_icc_ignores_rows_of_patients_outside_the_training_cohort():
    settings = PerturbationSettings(n=3)
    table = cohort_long_table(settings)
    patients = [f"P{i}" for i in range(6)]
    split = train_split(patients, test=("P5",))
    base = perturbation_icc(table, split, threshold=0.85)
    wild = table.copy()
    wild.loc[wild["patient_id"] == "P5", "value"] = np.random.default_rng(0).normal(
        size=(wild["patient_id"] == "P5").sum()
    )
    pd.testing.assert_frame_equal(base, perturbation_icc(wild, split, threshold=0.85))
    assert (base["n_patients"] == 5).all()
    with pytest.raises(ValueError, match="need >= 3 patients"):
        perturbation_icc(table, train_split(patients, test=patients[2:]), threshold=0.85)


def _wide(long: pd.DataFrame, k: int) -> pd.DataFrame:
    one = long[long["perturbation"] == k]
    wide = one.assign(name="T1__" + one["feature"]).pivot(
        index="patient_id", columns="name", values="value"
    )
    return wide.reset_index()


def test_both_needs_a_feature_to_pass_readers_and_perturbations():
    settings = PerturbationSettings(n=3)
    table = cohort_long_table(settings)
    patients = [f"P{i}" for i in range(6)]
    reader1 = _wide(table, 0)
    reader2 = reader1.copy()
    # Reader 2 disagrees on the (perturbation-stable) median only.
    reader2[STABLE] = np.random.default_rng(1).permutation(reader2[STABLE].to_numpy())
    split = train_split(patients)
    common = {
        "features": reader1,
        "features_reader2": reader2,
        "split": split,
        "threshold": 0.85,
        "enabled": True,
    }
    readers = robustness_table("readers", **common).set_index("feature")
    pert = robustness_table("perturbation", perturbed=table, **common).set_index("feature")
    both = robustness_table("both", perturbed=table, **common).set_index("feature")
    assert not readers.loc[STABLE, "robust"] and pert.loc[STABLE, "robust"]
    assert readers.loc[FRAGILE, "robust"] and not pert.loc[FRAGILE, "robust"]
    assert not both.loc[STABLE, "robust"] and not both.loc[FRAGILE, "robust"]
    np.testing.assert_array_equal(both["robust"], readers["robust"] & pert["robust"])
    assert both["robust"].any()
    assert (both["icc"].equals(readers["icc"])) and both["icc_perturbation"].equals(pert["icc"])
    assert list(readers.reset_index().columns) == [
        "feature",
        "icc",
        "ci_low",
        "ci_high",
        "robust",
        "n_patients",
        "reference",
    ]
    assert set(pert["method"]) == {"perturbation"} and set(pert["reference"]) == {"train"}
    off = robustness_table("perturbation", perturbed=table, **{**common, "enabled": False})
    assert off["robust"].all()


def _config(**robustness):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["cohorts"] = {"train_centers": ["A"], "external_centers": []}
    cfg["robustness"].update(robustness)
    cfg["tuning"].update({"inner_folds": 2, "outer_folds": 2})
    cfg["selection"]["lasso"]["cv_folds"] = 2
    return cfg


def _sheet(n_reader2):
    ids = [f"A{i:03d}" for i in range(24)]
    return pd.DataFrame(
        {
            "patient_id": ids,
            "center": "A",
            "sequence": "T1",
            "mask_reader2": ["r2.nii.gz" if i < n_reader2 else "" for i in range(24)],
        }
    ), {p: i % 2 for i, p in enumerate(ids)}


def test_startup_checks_of_the_method():
    from npc_radiomics.checks import design_checks

    design_checks(_config(method="perturbation"), *_sheet(0))  # no second reader needed
    design_checks(_config(method="perturbation"), *_sheet(1))  # a lone reader-2 mask is fine
    with pytest.raises(InputError, match="perturbation"):
        design_checks(_config(method="readers"), *_sheet(1))
    with pytest.raises(InputError, match="robustness.method: both needs reader-2 masks"):
        design_checks(_config(method="both"), *_sheet(0))
    with pytest.raises(InputError, match="robustness.reference: all applies to the readers"):
        design_checks(_config(method="perturbation", reference="all"), *_sheet(0))
    design_checks(_config(method="both", reference="all"), *_sheet(10))


def test_schema_default_is_readers_and_bad_methods_stop():
    from npc_radiomics.base.config import validate_config

    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert cfg["robustness"]["method"] == "readers"
    validate_config(copy.deepcopy(cfg), schema)
    for key, value in (
        ("method", "noise"),
        ("perturbation", {**cfg["robustness"]["perturbation"], "n": 1}),
    ):
        bad = copy.deepcopy(cfg)
        bad["robustness"][key] = value
        with pytest.raises(InputError, match="robustness"):
            validate_config(bad, schema)


def test_report_sentence_names_the_method():
    from npc_radiomics.report.sections import icc_basis

    settings = PerturbationSettings(n=3)
    table = cohort_long_table(settings)
    pert = robustness_table(
        "perturbation",
        features=_wide(table, 0),
        perturbed=table,
        split=train_split([f"P{i}" for i in range(6)]),
        threshold=0.85,
        enabled=True,
    )
    text = icc_basis(pert)
    assert "3 seeded image and contour perturbations of each of 6 training" in text
    assert "second reader" not in text


@pytest.mark.parametrize("method,filled", [("perturbation", False), ("both", True)])
def test_checklist_claims_inter_reader_robustness_only_with_readers(tmp_path, method, filled):
    from npc_radiomics.report import checklist as cl
    from npc_radiomics.report import kit

    icc = tmp_path / "icc.tsv"
    pd.DataFrame({"feature": ["T1__a"], "icc": [0.9], "robust": [True], "method": [method]}).to_csv(
        icc, sep="\t", index=False
    )
    table = cl.checklist_table({"icc": str(icc)}, kit.SECTION_IDS).set_index(["guideline", "item"])
    assert (table.loc[("CLEAR", "reader-robustness"), "status"] == "filled") is filled
    assert table.loc[("METRICS", "segmentation"), "status"] == "filled"
    if filled:
        assert table.loc[("CLEAR", "reader-robustness"), "evidence"] == "icc.tsv"


def _soft_sphere(seed=0, n=40, radius=10):
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:n, :n, :n] - n / 2
    distance = np.sqrt(x**2 + y**2 + z**2)
    mask = sitk.GetImageFromArray((distance <= radius).astype(np.uint8))
    array = 100 + 200 / (1 + np.exp((distance - radius) / 2.0)) + rng.normal(0, 10, distance.shape)
    return sitk.GetImageFromArray(array.astype(np.float32)), mask


def test_supervoxel_contours_are_seeded_random_and_overlap_the_original():
    image, mask = _soft_sphere()
    masks = []
    for seed in range(4):
        p = Perturbation(seed, 0.0, (0.0, 0.0, 0.0), 0, False, "supervoxel")
        _, moved_mask, info = perturb_case(image, mask, p, margin_mm=5)
        assert info["contour"] == "supervoxel"
        again = perturb_case(image, mask, p, margin_mm=5)[1]
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(moved_mask)
        )
        new = sitk.GetArrayFromImage(moved_mask).astype(bool)
        old = sitk.GetArrayFromImage(
            sitk.Resample(mask, moved_mask, sitk.Transform(), sitk.sitkNearestNeighbor)
        ).astype(bool)
        dice = 2 * (new & old).sum() / (new.sum() + old.sum())
        assert 0.5 < dice < 1.0, dice
        masks.append(new.sum())
    assert len(set(masks)) > 1  # the seed changes the contour
