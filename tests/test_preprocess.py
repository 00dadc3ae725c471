"""Preprocessing: N4, 1 mm resampling (masks stay aligned), pooled z-score statistics."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from conftest import ROOT, head_phantom, mask_centroid_mm, mask_volume_mm3

from npc_radiomics.base.errors import InputError
from npc_radiomics.imaging.preprocess import (
    crop_margin_setting,
    head_mask_otsu,
    isotropic_grid,
    n4_correct,
    n4_log_bias_field,
    n4_shrink_factors,
    pool_moments,
    preprocess_case,
    preprocess_mask,
    read_moments,
    reader2_mask,
    reference_patient_ids,
    resample_isotropic,
    roi_box,
    roi_margin_mm,
    slice_axis,
    tumour_moments,
    write_moments,
    zscore_apply,
    zscore_params,
    zscore_table,
)
from npc_radiomics.inputs import demo


@pytest.fixture(scope="module")
def phantom():
    """Head with a linear log-bias ramp and an ellipsoidal tumour, 0.9 x 0.9 x 3.5 mm."""
    return head_phantom((72, 72, 18), (0.9, 0.9, 3.5), bias_strength=0.4)


def _grid(image):
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def test_isotropic_grid_keeps_field_of_view():
    image = sitk.Image([100, 80, 20], sitk.sitkFloat32)
    image.SetSpacing([0.9, 0.9, 3.5])
    image.SetOrigin([-10.0, 5.0, 2.0])
    grid = isotropic_grid(image, (1.0, 1.0, 1.0))
    assert grid.size == (90, 72, 70)
    old_centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([49.5, 39.5, 9.5]))
    new_centre = np.asarray(grid.origin) + (np.asarray(grid.size) - 1) / 2 * grid.spacing
    np.testing.assert_allclose(new_centre, old_centre, atol=1e-9)


def test_isotropic_grid_follows_direction():
    image = sitk.Image([40, 40, 10], sitk.sitkFloat32)
    image.SetSpacing([0.5, 0.5, 4.0])
    image.SetDirection([0, 1, 0, -1, 0, 0, 0, 0, 1])  # rotated 90 degrees about z
    resampled = resample_isotropic(image)
    assert resampled.GetDirection() == image.GetDirection()
    centre = image.TransformContinuousIndexToPhysicalPoint([19.5, 19.5, 4.5])
    new_centre = resampled.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in resampled.GetSize()]
    )
    np.testing.assert_allclose(new_centre, centre, atol=1e-9)


def test_resampling_keeps_mask_volume_and_centroid_within_a_voxel(phantom):
    image, mask, _ = phantom
    image_1mm, mask_1mm = preprocess_case(image, mask, n4=None)
    assert mask_1mm.GetSpacing() == (1.0, 1.0, 1.0)
    assert mask_1mm.GetPixelID() == sitk.sitkUInt8
    assert image_1mm.GetPixelID() == sitk.sitkFloat32
    # Masks stay aligned: identical grid for image and mask.
    assert _grid(image_1mm) == _grid(mask_1mm)
    # Volume within a voxel: between the mask shrunk and grown by one original voxel ...
    volume = mask_volume_mm3(mask_1mm)
    eroded = sitk.BinaryErode(mask, [1, 1, 1], sitk.sitkBox)
    dilated = sitk.BinaryDilate(mask, [1, 1, 1], sitk.sitkBox)
    assert mask_volume_mm3(eroded) < volume < mask_volume_mm3(dilated)
    # ... and in fact within 3% of the original volume.
    assert volume == pytest.approx(mask_volume_mm3(mask), rel=0.03)
    # Centroid within a voxel of the 1 mm grid on every axis.
    shift = np.abs(mask_centroid_mm(mask_1mm) - mask_centroid_mm(mask))
    assert np.all(shift < 1.0), shift


def test_reader2_mask_lands_on_the_preprocessed_grid(phantom):
    image, mask, _ = phantom
    image_1mm, mask_1mm = preprocess_case(image, mask, n4=None)
    # Reader-2 masks are resampled onto the already preprocessed image: same grid, and the
    # same mask gives the same voxels.
    again = preprocess_mask(mask, image_1mm)
    assert _grid(again) == _grid(image_1mm)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(again), sitk.GetArrayViewFromImage(mask_1mm)
    )


def test_mask_label_is_binarised(phantom):
    image, mask, _ = phantom
    labelled = sitk.Cast(mask, sitk.sitkUInt8) * 2 + sitk.Cast(mask == 0, sitk.sitkUInt8) * 0
    out = preprocess_mask(labelled, image, label=2)
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) == {0, 1}


def test_bspline_resampling_preserves_smooth_intensities():
    # A linear ramp is reproduced exactly by cubic B-splines away from the borders.
    z, y, x = np.mgrid[:12, :40, :40].astype(np.float32)
    image = sitk.GetImageFromArray(100 + 2 * x + 3 * y + 0.5 * z)
    image.SetSpacing([0.8, 0.8, 3.0])
    out = resample_isotropic(image)
    arr = sitk.GetArrayFromImage(out)[8:-8, 5:-5, 5:-5]
    idx = np.argwhere(np.ones_like(arr, dtype=bool)) + [8, 5, 5]
    phys = np.array(
        [
            out.TransformIndexToPhysicalPoint([int(i), int(j), int(k)])
            for k, j, i in idx[:: max(1, len(idx) // 500)]
        ]
    )
    expected = 100 + 2 * phys[:, 0] / 0.8 + 3 * phys[:, 1] / 0.8 + 0.5 * phys[:, 2] / 3.0
    got = arr.ravel()[:: max(1, len(idx) // 500)][: len(expected)]
    np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_n4_removes_the_bias_field(phantom):
    image, _, true_log_bias = phantom
    head = head_mask_otsu(image)
    inside = sitk.GetArrayViewFromImage(head) > 0
    # Head-mask sanity: Otsu finds the head, not the background.
    assert 0.2 < inside.mean() < 0.6
    log_bias = n4_log_bias_field(image, head, shrink_factor=4, iterations=[50, 50])
    assert log_bias.GetSize() == image.GetSize()  # evaluated at full resolution
    estimate = sitk.GetArrayViewFromImage(log_bias)[inside]
    truth = sitk.GetArrayViewFromImage(true_log_bias)[inside]
    assert np.corrcoef(estimate, truth)[0, 1] > 0.9
    corrected = n4_correct(image, shrink_factor=4, iterations=[50, 50], head_mask=head)
    assert corrected.GetPixelID() == sitk.sitkFloat32
    # Healthy tissue (head minus tumour, away from the edge) becomes more uniform.
    tissue = inside & (sitk.GetArrayViewFromImage(image) < 130)

    def cv(img):
        values = sitk.GetArrayViewFromImage(img)[tissue]
        return values.std() / values.mean()

    assert cv(corrected) < 0.7 * cv(image)


def test_n4_shrink_keeps_shrunken_voxels_near_isotropic():
    image = sitk.Image([256, 256, 36], sitk.sitkFloat32)
    image.SetSpacing([0.94, 0.94, 3.5])
    assert n4_shrink_factors(image, 4) == [4, 4, 2]  # 3.76 x 3.76 x 7.0 mm
    image.SetSpacing([0.47, 0.47, 5.0])
    assert n4_shrink_factors(image, 4) == [4, 4, 1]
    image.SetSpacing([1.0, 1.0, 1.0])
    assert n4_shrink_factors(image, 4) == [4, 4, 4]
    assert n4_shrink_factors(image, 1) == [1, 1, 1]
    small = sitk.Image([256, 256, 10], sitk.sitkFloat32)
    assert n4_shrink_factors(small, 4) == [4, 4, 2]  # never below 4 voxels


def test_n4_fit_spacing_sets_the_fit_grid_whatever_the_resolution():
    image = sitk.Image([256, 256, 36], sitk.sitkFloat32)
    image.SetSpacing([0.94, 0.94, 3.5])
    assert n4_shrink_factors(image, 1, 5.0) == [6, 6, 2]  # 5.64 x 5.64 x 7.0 mm
    large = sitk.Image([512, 512, 100], sitk.sitkFloat32)
    large.SetSpacing([0.47, 0.47, 2.0])
    assert n4_shrink_factors(large, 1, 5.0) == [11, 11, 3]  # 5.17 x 5.17 x 6.0 mm
    assert n4_shrink_factors(large, 4, None) == [4, 4, 1]  # the factor alone (before)
    # Both are lower bounds: the larger wins.
    assert n4_shrink_factors(large, 16, 5.0) == [16, 16, 4]
    assert n4_shrink_factors(image, 1, None) == [1, 1, 1]  # full resolution
    small = sitk.Image([20, 20, 8], sitk.sitkFloat32)
    small.SetSpacing([1.0, 1.0, 1.0])
    assert n4_shrink_factors(small, 1, 5.0) == [5, 5, 2]  # never below 4 voxels


def test_slice_axis_is_the_thickest():
    image = sitk.Image([20, 30, 10], sitk.sitkUInt8)
    image.SetSpacing([0.9, 0.9, 3.5])
    assert slice_axis(image) == 2
    image.SetSpacing([4.0, 0.9, 0.9])  # sagittal slices
    assert slice_axis(image) == 0
    image.SetSpacing([1.0, 1.0, 1.0])
    assert slice_axis(image) == 2


@pytest.fixture(scope="module")
def demo_t1():
    """The demo's first T1 ('small' preset) with its true head and planted log bias field."""
    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    scan = demo.simulate_patient(demo.resolve_preset(settings, "small"), 1, "QZ001", "QZ", 1, False)
    image = sitk.GetImageFromArray(scan.images["T1"].astype(np.float32))
    image.SetSpacing(scan.spacing)
    image.SetOrigin(scan.origin)
    return image, scan.head, scan.log_bias["T1"]


def test_head_mask_covers_the_head_where_dark_tissue_fills_it(demo_t1):
    # On T1 the muscle inside the scalp fat is below Otsu's threshold; a 3-D fill cannot
    # close the open tube of the neck, the per-slice fill does.
    image, true_head, _ = demo_t1
    head = sitk.GetArrayViewFromImage(head_mask_otsu(image)) > 0
    dice = 2 * (head & true_head).sum() / (head.sum() + true_head.sum())
    assert dice > 0.97


def test_n4_defaults_recover_the_demo_bias_field(demo_t1):
    image, _, true_log_bias = demo_t1
    head = head_mask_otsu(image)
    inside = sitk.GetArrayViewFromImage(head) > 0
    n4 = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["preprocessing"]["n4"]
    log_bias = n4_log_bias_field(image, head, **{k: v for k, v in n4.items() if k != "enabled"})
    estimate = sitk.GetArrayViewFromImage(log_bias)[inside]
    assert np.corrcoef(estimate, true_log_bias[inside])[0, 1] > 0.95


def _random_cases(rng, n, size=(20, 18, 6)):
    cases = []
    for i in range(n):
        arr = rng.normal(1000 + 40 * i, 50 + 5 * i, size[::-1]).astype(np.float32)
        keep = rng.random(size[::-1]) < 0.2 + 0.05 * i
        image = sitk.GetImageFromArray(arr)
        mask = sitk.GetImageFromArray(keep.astype(np.uint8))
        cases.append((image, mask, arr[keep]))
    return cases


def test_zscore_params_equal_numpy_on_pooled_voxels():
    rng = np.random.default_rng(3)
    cases = _random_cases(rng, 5)
    stats = zscore_params((image, mask) for image, mask, _ in cases)
    pooled = np.concatenate([voxels.astype(np.float64) for *_, voxels in cases])
    assert stats.n_voxels == pooled.size
    assert stats.n_patients == 5
    assert stats.mean == pytest.approx(pooled.mean(), rel=1e-13)
    assert stats.sd == pytest.approx(pooled.std(), rel=1e-12)


def test_pooled_moments_have_no_cancellation():
    # Large offset, tiny spread: sums of squares in float64 would lose most digits here.
    rng = np.random.default_rng(4)
    parts = [1e8 + rng.normal(0, 1e-2, (1, 1, 1000 + 10 * i)) for i in range(4)]
    pooled = pool_moments(
        tumour_moments(sitk.GetImageFromArray(p), sitk.GetImageFromArray(np.ones_like(p, np.uint8)))
        for p in parts
    )
    allv = np.concatenate([p.ravel() for p in parts])
    assert pooled.mean == pytest.approx(allv.mean(), rel=1e-15)
    assert np.sqrt(pooled.m2 / pooled.n) == pytest.approx(allv.std(), rel=1e-6)


def test_moments_file_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(6)
    image, mask, _ = _random_cases(rng, 1)[0]
    moments = tumour_moments(image, mask)
    write_moments(moments, tmp_path / "m.json")
    assert read_moments(tmp_path / "m.json") == moments


def test_batch_moment_tables_pool_exactly_the_reference_patients(tmp_path):
    """rule zscore_params from the batches' moment tables (TSV): the floats come back to
    the bit, only the split's training patients are pooled, in sorted patient order
    whatever the batches' order, as zscore_stats pools them."""
    import pandas as pd

    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.imaging.preprocess import (
        MOMENT_COLUMNS,
        zscore_batch_rule,
        zscore_stats,
    )

    rng = np.random.default_rng(7)
    cases = _random_cases(rng, 6)
    patients = ["P3", "P1", "P5", "P2", "P4", "P6"]
    pairs = zip(patients, cases, strict=True)
    moments = {p: tumour_moments(image, mask) for p, (image, mask, _) in pairs}
    rows = [{"patient_id": p, "sequence": "T2", **vars(m)} for p, m in moments.items()]
    for name, part in (("b0", rows[:3]), ("b1", rows[3:])):
        write_tsv(pd.DataFrame(part, columns=MOMENT_COLUMNS), tmp_path / f"{name}.tsv")
    split = pd.DataFrame(
        {"patient_id": patients, "cohort": ["train", "train", "test", "train", "ND", "train"]}
    )
    paths = [tmp_path / "b0.tsv", tmp_path / "b1.tsv"]
    table = zscore_batch_rule(paths, split, "train", ["T2"])
    train = ["P1", "P2", "P3", "P6"]
    expected = zscore_stats(moments[p] for p in train)
    assert table.loc[0, "mean"] == expected.mean and table.loc[0, "sd"] == expected.sd
    assert table.loc[0, "n_patients"] == 4
    again = zscore_batch_rule(paths[::-1], split, "train", ["T2"])
    pd.testing.assert_frame_equal(table, again)


def test_zscore_params_rejects_empty_reference():
    image = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    mask = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    with pytest.raises(ValueError, match="no tumour voxels"):
        zscore_params([(image, mask)])


def test_zscore_table_and_apply():
    rng = np.random.default_rng(5)
    cases = _random_cases(rng, 3)
    table = zscore_table(
        {
            "T1": (tumour_moments(i, m) for i, m, _ in cases),
            "T2": (tumour_moments(i, m) for i, m, _ in cases[:2]),
        },
        "train",
    )
    assert list(table.columns) == ["sequence", "mean", "sd", "n_voxels", "n_patients", "reference"]
    assert table["n_patients"].tolist() == [3, 2]
    row = table.iloc[0]
    normalised = [
        sitk.GetArrayFromImage(zscore_apply(image, row["mean"], row["sd"]))[
            sitk.GetArrayViewFromImage(mask) > 0
        ]
        for image, mask, _ in cases
    ]
    pooled = np.concatenate(normalised).astype(np.float64)
    assert pooled.mean() == pytest.approx(0.0, abs=1e-5)
    assert pooled.std() == pytest.approx(1.0, rel=1e-5)


def test_reference_patients_are_training_patients_by_default():
    import pandas as pd

    split = pd.DataFrame(
        {"patient_id": ["B1", "A2", "A1", "C1"], "cohort": ["train", "test", "train", "ND"]}
    )
    assert reference_patient_ids(split, "train") == ["A1", "B1"]
    assert reference_patient_ids(split, "all") == ["A1", "A2", "B1", "C1"]
    with pytest.raises(ValueError, match="reference"):
        reference_patient_ids(split, "test")


# ------------------------------------------------------------------ ROI crop (issue 18)
DEFAULT_PARAMS = yaml.safe_load((ROOT / "resources" / "pyradiomics_params.yaml").read_text())
FAST_PARAMS = yaml.safe_load((ROOT / "resources" / "pyradiomics_params_fast.yaml").read_text())


def test_roi_margin_follows_the_filters_and_the_extraction_crop():
    margin, terms = roi_margin_mm(DEFAULT_PARAMS, (1.0, 1.0, 1.0), 10.0)
    # LoG sigma 4 mm -> 10 mm; coif1 (length 6), one pass -> 5 voxels; extraction crop 10.
    assert terms == {"features.crop_margin_mm": 10.0, "LoG": 10.0, "Wavelet": 5.0}
    assert margin == 10.0
    assert roi_margin_mm(FAST_PARAMS, (1.0, 1.0, 1.0), 5.0)[0] == 5.0
    wide = {
        "imageType": {"LoG": {"sigma": [1.0, 6.0]}, "Wavelet": {"level": 2}},
        "setting": {"start_level": 1, "wavelet": "db2"},  # db2: length 4
    }
    margin, terms = roi_margin_mm(wide, (2.0, 2.0, 2.0), 5.0)
    assert terms["LoG"] == 15.0 and terms["Wavelet"] == 3 * 3 * 2.0
    assert margin == 18.0
    own = {"imageType": {"Original": {}}, "setting": {"preCrop": True, "padDistance": 7}}
    assert roi_margin_mm(own, (1.5, 1.5, 1.5), 3.0)[1]["padDistance"] == 7 * 1.5
    # pyradiomics resampling itself: its padding is in its own spacing.
    resampling = {"imageType": {"Original": {}}, "setting": {"resampledPixelSpacing": [2, 2, 2]}}
    assert roi_margin_mm(resampling, (1.0, 1.0, 1.0), 3.0)[0] == 10.0


def test_crop_margin_setting_values():
    assert crop_margin_setting(None, DEFAULT_PARAMS, (1, 1, 1), 10.0) is None
    assert crop_margin_setting("auto", DEFAULT_PARAMS, (1, 1, 1), 10.0) == 10.0
    assert crop_margin_setting(12, DEFAULT_PARAMS, (1, 1, 1), 10.0) == 12.0
    with pytest.raises(InputError, match="preprocessing.crop_margin_mm"):
        crop_margin_setting(8.0, DEFAULT_PARAMS, (1, 1, 1), 10.0)


@pytest.fixture(scope="module")
def crop_phantom():
    """A small head (N4 on) with the tumour off-centre, and a reader-2 mask that reaches
    beyond reader 1's box on one side."""
    image, mask, _ = head_phantom(
        (64, 64, 16), (0.9, 0.9, 3.5), tumour_radii_mm=(9.0, 8.0, 9.0), bias_strength=0.3
    )
    arr = sitk.GetArrayFromImage(mask)
    reader2 = np.roll(arr, 4, axis=2) | arr  # 4 voxels (3.6 mm) further along +x
    mask2 = sitk.GetImageFromArray(reader2.astype(np.uint8))
    mask2.CopyInformation(mask)
    return image, mask, mask2


N4_FAST = {"enabled": True, "shrink_factor": 4, "iterations": [10], "convergence_threshold": 1e-4}


def _box_index(full, cropped):
    """Index of ``cropped``'s origin on ``full``'s grid (asserted to be a whole voxel)."""
    index = np.asarray(full.TransformPhysicalPointToContinuousIndex(cropped.GetOrigin()))
    np.testing.assert_allclose(index, np.round(index), atol=1e-4)  # float32 headers
    return [int(v) for v in np.round(index)]


def test_cropped_preprocessing_is_the_uncropped_grid_within_the_box(crop_phantom):
    image, mask, mask2 = crop_phantom
    full_image, full_mask = preprocess_case(image, mask, n4=N4_FAST)
    image_c, mask_c = preprocess_case(
        image, mask, n4=N4_FAST, crop_margin_mm=6.0, extra_masks=[mask2]
    )
    # Same grid: spacing and direction, origin on a voxel of the uncropped grid; smaller.
    assert _grid(image_c) == _grid(mask_c)
    assert image_c.GetSpacing() == full_image.GetSpacing()
    assert image_c.GetDirection() == full_image.GetDirection()
    index = _box_index(full_image, image_c)
    assert np.prod(image_c.GetSize()) < 0.5 * np.prod(full_image.GetSize())
    # Inside the box: the uncropped values (in fact bit for bit) and the same mask.
    expected = sitk.RegionOfInterest(full_image, image_c.GetSize(), index)
    got, want = sitk.GetArrayFromImage(image_c), sitk.GetArrayFromImage(expected)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-6)) <= 1e-6
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(mask_c),
        sitk.GetArrayFromImage(sitk.RegionOfInterest(full_mask, image_c.GetSize(), index)),
    )
    # The whole tumour, reader 2's too, is inside with the margin (6 voxels at 1 mm, + 1) on
    # every side, unless the box reached the edge of the uncropped grid.
    full_r2 = preprocess_mask(mask2, full_image)
    union = sitk.GetArrayFromImage(full_mask) | sitk.GetArrayFromImage(full_r2)
    assert sitk.GetArrayViewFromImage(mask_c).sum() == sitk.GetArrayViewFromImage(full_mask).sum()
    nz = np.argwhere(union)[:, ::-1]  # (x, y, z) indices
    lo, hi = index, np.asarray(index) + image_c.GetSize()
    size = np.asarray(full_image.GetSize())
    assert np.all((nz.min(axis=0) - lo >= 7) | (np.asarray(lo) == 0))
    assert np.all((hi - 1 - nz.max(axis=0) >= 7) | (hi == size))
    # Reader 2 extends the box: reader 1 alone gives a smaller one.
    alone, _ = preprocess_case(image, mask, n4=N4_FAST, crop_margin_mm=6.0)
    assert alone.GetSize()[0] < image_c.GetSize()[0]
    # z-score parameters: the tumour moments are the uncropped ones.
    assert tumour_moments(image_c, mask_c) == tumour_moments(full_image, full_mask)


def test_reader2_mask_lands_on_the_cropped_grid(crop_phantom, tmp_path):
    from npc_radiomics.base.io import read_image, write_image

    image, mask, mask2 = crop_phantom
    full_image, _ = preprocess_case(image, mask, n4=None)
    image_c, _ = preprocess_case(image, mask, n4=None, crop_margin_mm=6.0, extra_masks=[mask2])
    # As the workflow does: the reader-2 rule reads the preprocessed image from disk.
    for name, img in (("full", full_image), ("crop", image_c)):
        write_image(img, tmp_path / f"{name}.nii.gz")
    on_disk = read_image(tmp_path / "crop.nii.gz")
    r2 = reader2_mask(mask2, on_disk)
    assert _grid(r2) == _grid(on_disk)
    # The uncropped rule's mask (onto the whole image from disk), cut to the box: the same
    # voxels, though 3.5 mm slices onto 1 mm put every 7th slice on a nearest-neighbour tie.
    today = reader2_mask(mask2, read_image(tmp_path / "full.nii.gz"))
    index = _box_index(full_image, image_c)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(r2),
        sitk.GetArrayFromImage(sitk.RegionOfInterest(today, image_c.GetSize(), index)),
    )
    assert sitk.GetArrayViewFromImage(r2).sum() == sitk.GetArrayViewFromImage(today).sum()


def test_crop_margin_null_reproduces_the_uncropped_output_byte_for_byte(crop_phantom, tmp_path):
    from npc_radiomics.base.io import write_image

    image, mask, mask2 = crop_phantom
    got = preprocess_case(image, mask, n4=N4_FAST, crop_margin_mm=None, extra_masks=[mask2])
    # The previous preprocess_case, step by step: N4, resampling of the whole field of view.
    corrected = n4_correct(image, shrink_factor=4, iterations=[10], convergence_threshold=1e-4)
    want = (resample_isotropic(corrected), preprocess_mask(mask, corrected))
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        write_image(a, tmp_path / f"got{k}.nii.gz")
        write_image(b, tmp_path / f"want{k}.nii.gz")
        assert (tmp_path / f"got{k}.nii.gz").read_bytes() == (
            tmp_path / f"want{k}.nii.gz"
        ).read_bytes()


def test_features_of_cropped_and_uncropped_images_agree(crop_phantom):
    from npc_radiomics.imaging.features import extract_case, make_extractor

    image, mask, _ = crop_phantom
    params = {
        "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0]}, "Wavelet": {}},
        "featureClass": {"firstorder": None, "glcm": None, "shape": None},
        "setting": {**FAST_PARAMS["setting"]},
    }
    margin = crop_margin_setting("auto", params, (1.0, 1.0, 1.0), 5.0)
    assert margin == 5.0  # wavelet 5 voxels, LoG 2.5 x 2 mm, extraction crop 5 mm
    cases = [preprocess_case(image, mask, n4=None, crop_margin_mm=m) for m in (None, margin)]
    moments = tumour_moments(*cases[0])
    zscore = (moments.mean, (moments.m2 / moments.n) ** 0.5)
    extractor = make_extractor(params)
    full, cropped = (
        extract_case(img, msk, extractor, crop_margin_mm=5.0, zscore=zscore).features
        for img, msk in cases
    )
    assert full.keys() == cropped.keys()
    assert any(k.startswith("log-sigma-2") for k in full)
    assert any(k.startswith("wavelet-HHH") for k in full)
    for name, value in full.items():
        assert cropped[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_roi_box_needs_a_tumour():
    empty = sitk.Image([8, 8, 8], sitk.sitkUInt8)
    with pytest.raises(ValueError, match="no tumour voxel"):
        roi_box([empty], 5.0)


def test_reader2_mask_on_the_box_keeps_the_ties_of_the_demo_grid(tmp_path):
    """On the demo's grid (0.94 x 0.94 x 3.5 mm) the box's own float32 origin breaks
    nearest-neighbour ties differently (929 voxels of a 12,800-voxel mask): reader2_mask
    keeps the uncropped rule's voxels."""
    from npc_radiomics.base.io import read_image, write_image

    settings = demo.load_settings(ROOT / "resources" / "demo_cohort.yaml")
    scan = demo.simulate_patient(demo.resolve_preset(settings, "small"), 1, "QZ001", "QZ", 1, True)
    images = []
    for array in (scan.images["T1"].astype(np.float32), scan.mask, scan.mask_reader2):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing(scan.spacing)
        img.SetOrigin(scan.origin)
        images.append(img)
    image, mask, mask2 = images
    for name, margin in (("full", None), ("crop", 10.0)):
        out, _ = preprocess_case(image, mask, n4=None, crop_margin_mm=margin, extra_masks=[mask2])
        write_image(out, tmp_path / f"{name}.nii.gz")
    full, crop = (read_image(tmp_path / f"{name}.nii.gz") for name in ("full", "crop"))
    today, got = reader2_mask(mask2, full), reader2_mask(mask2, crop)
    index = _box_index(full, crop)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(got),
        sitk.GetArrayFromImage(sitk.RegionOfInterest(today, crop.GetSize(), index)),
    )
