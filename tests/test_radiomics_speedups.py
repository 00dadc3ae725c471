"""The pyradiomics speed-ups (issue 30) change no feature value.

Real pyradiomics, patched and unpatched in one process, on synthetic tumours (an ellipsoid
with a lobulated border, smooth texture and noise, 1 mm voxels, the image cut to the tumour's
box plus 10 mm as the workflow crops it): every feature must agree to 1e-12 relative (they
are in fact bit-identical). Plus the adapter's contract: version check, opt-out variable,
exact restoration of the originals, degenerate masks, the validated triangle table.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from scipy import ndimage

radiomics = pytest.importorskip("radiomics")

from radiomics import base, featureextractor, glcm, imageoperations, shape  # noqa: E402

from npc_radiomics.imaging import radiomics_speedups as rs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FULL_PARAMS = ROOT / "resources" / "pyradiomics_params.yaml"
FAST_PARAMS = ROOT / "resources" / "pyradiomics_params_fast.yaml"
RTOL = 1e-12


def load(path: Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def tumour_case(
    semi_axes_mm: tuple[float, float, float], seed: int = 0, margin_mm: int = 10
) -> tuple[sitk.Image, sitk.Image]:
    """A z-scored image and 0/1 mask: a lobulated ellipsoid, 1 mm voxels, ROI box + margin."""
    rng = np.random.default_rng(seed)
    axes = np.asarray(semi_axes_mm, dtype=float)  # z, y, x
    shape_ = tuple(int(math.ceil(2 * a * 1.15)) + 2 * margin_mm + 1 for a in axes)
    grid = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape_], indexing="ij", sparse=True)
    radius = np.sqrt(sum((g / a) ** 2 for g, a in zip(grid, axes, strict=True)))
    bumps = ndimage.gaussian_filter(rng.standard_normal(shape_), 5)
    radius = radius + 0.12 * bumps / np.abs(bumps).max()
    mask = radius <= 1.0
    texture = ndimage.gaussian_filter(rng.standard_normal(shape_), 2.0)
    values = 0.8 * texture / texture.std() + 0.5 * rng.standard_normal(shape_) - 0.6 * radius
    values = (values - values[mask].mean()) / values[mask].std()
    # Cut to the mask's bounding box plus the margin, as features.crop_to_roi does.
    box = tuple(
        slice(max(int(idx.min()) - margin_mm, 0), int(idx.max()) + margin_mm + 1)
        for idx in np.nonzero(mask)
    )
    image = sitk.GetImageFromArray(values[box].astype(np.float32))
    label = sitk.GetImageFromArray(mask[box].astype(np.uint8))
    for item in (image, label):
        item.SetSpacing((1.0, 1.0, 1.0))
    return image, label


def extract(params: dict, image: sitk.Image, mask: sitk.Image, patched: bool) -> dict:
    if patched:
        assert rs.apply_speedups()
    else:
        rs.remove_speedups()
    try:
        extractor = featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(params))
        return dict(extractor.execute(image, mask, label=1))
    finally:
        rs.remove_speedups()


def assert_parity(before: dict, after: dict) -> int:
    """Same keys, same diagnostics, every feature within RTOL; returns the feature count."""
    assert list(before) == list(after)
    worst, worst_name = 0.0, None
    features = 0
    for name, value in before.items():
        if name.startswith("diagnostics_"):
            assert str(after[name]) == str(value), name
            continue
        features += 1
        a, b = float(value), float(after[name])
        if a == b or (math.isnan(a) and math.isnan(b)):
            continue
        relative = abs(a - b) / max(abs(a), abs(b))
        if relative > worst:
            worst, worst_name = relative, name
    assert worst <= RTOL, f"{worst_name}: relative difference {worst:.3g}"
    return features


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """Every test starts and ends unpatched, with quiet pyradiomics logs and one thread."""
    rs.remove_speedups()
    rs._last_logged.clear()
    monkeypatch.delenv(rs.SPEEDUPS_ENV, raising=False)
    logger = logging.getLogger("radiomics")
    level = logger.level
    logger.setLevel(logging.ERROR)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    yield
    rs.remove_speedups()
    logger.setLevel(level)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Records how often the fast shape path produced the result (not the C fallback)."""
    calls = []
    real = rs._fast_coefficients

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(rs, "_fast_coefficients", spy)
    return calls


@pytest.fixture
def sparse_mcc_calls(monkeypatch):
    """Records, per MCC computed while patched, whether the sparse Q path ran."""
    calls = []
    real = rs._mcc_q

    def spy(features):
        result = real(features)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(rs, "_mcc_q", spy)
    return calls


def originals() -> dict[str, object]:
    return {
        "cShape": shape.cShape,
        "getBinEdges": imageoperations.getBinEdges,
        "_applyBinning": base.RadiomicsFeaturesBase.__dict__["_applyBinning"],
        "computeFeatures": featureextractor.RadiomicsFeatureExtractor.__dict__["computeFeatures"],
        "getFeatureNames": base.RadiomicsFeaturesBase.__dict__["getFeatureNames"],
        "_calculateCoefficients": glcm.RadiomicsGLCM.__dict__["_calculateCoefficients"],
        "getMCCFeatureValue": glcm.RadiomicsGLCM.__dict__["getMCCFeatureValue"],
    }


# ------------------------------------------------------------------------------------------
# Parity on whole extractions
# ------------------------------------------------------------------------------------------


def test_parity_small_case_fast_params(fast_path_calls):
    """~15 cm3, Original only (the end-to-end test config's params)."""
    image, mask = tumour_case((12, 15, 19), seed=1)
    params = load(FAST_PARAMS)
    before = extract(params, image, mask, patched=False)
    after = extract(params, image, mask, patched=True)
    assert assert_parity(before, after) == 107
    assert fast_path_calls == [True]  # the hull / vectorised shape path did run


def test_parity_moderate_case_full_params(fast_path_calls, sparse_mcc_calls):
    """~80 cm3 with the default params: Original + LoG (4 sigmas) + Wavelet (8 bands)."""
    image, mask = tumour_case((22, 27, 32), seed=2)
    params = load(FULL_PARAMS)
    before = extract(params, image, mask, patched=False)
    after = extract(params, image, mask, patched=True)
    assert assert_parity(before, after) == 1223
    assert fast_path_calls == [True]
    assert len(sparse_mcc_calls) == 13 and any(sparse_mcc_calls)  # the wavelet LLL band


def test_parity_large_case_full_params(fast_path_calls, sparse_mcc_calls):
    """A tumour of more than 1 litre with LoG and Wavelet (about a minute in all)."""
    image, mask = tumour_case((52, 68, 78), seed=3)
    volume_cm3 = np.count_nonzero(sitk.GetArrayViewFromImage(mask)) / 1000
    assert volume_cm3 >= 1000
    params = load(FULL_PARAMS)
    before = extract(params, image, mask, patched=False)
    after = extract(params, image, mask, patched=True)
    assert assert_parity(before, after) == 1223
    assert fast_path_calls == [True]
    assert len(sparse_mcc_calls) == 13 and any(sparse_mcc_calls)


def test_parity_flat_single_slice_mask(fast_path_calls):
    """A one-slice tumour (flat mesh: vertices on 3 planes only) with enough vertices for
    the fast path, plus a few-voxel one (the C code's path)."""
    image, _ = tumour_case((12, 40, 40), seed=4)
    size = image.GetSize()
    x, y = np.meshgrid(np.arange(size[0]) - size[0] / 2, np.arange(size[1]) - size[1] / 2)
    flat = np.zeros(size[::-1], dtype=np.uint8)
    flat[size[2] // 2] = (x / 38) ** 2 + (y / 30) ** 2 <= 1
    tiny = np.zeros(size[::-1], dtype=np.uint8)
    tiny[10:12, 20:22, 20:23] = 1
    params = load(FAST_PARAMS)
    for array in (flat, tiny):
        mask = sitk.GetImageFromArray(array)
        mask.CopyInformation(image)
        before = extract(params, image, mask, patched=False)
        after = extract(params, image, mask, patched=True)
        assert assert_parity(before, after) == 107
    assert fast_path_calls == [True, False]


# ------------------------------------------------------------------------------------------
# Shape coefficients directly, degenerate meshes included
# ------------------------------------------------------------------------------------------


def degenerate_masks() -> dict[str, np.ndarray]:
    def padded(array):
        return np.pad(np.asarray(array, dtype=bool), 1)

    disc = np.zeros((1, 60, 60), dtype=bool)
    yy, xx = np.mgrid[:60, :60]
    disc[0] = (yy - 29.5) ** 2 + (xx - 29.5) ** 2 <= 29**2
    slab = np.zeros((3, 50, 4), dtype=bool)
    slab[1, :, 1:3] = True
    diagonal = np.zeros((30, 30, 30), dtype=bool)
    diagonal[np.arange(30), np.arange(30), np.arange(30)] = True
    return {
        "single voxel": padded(np.ones((1, 1, 1))),
        "two voxels": padded([[[1, 1]]]),
        "line": padded(np.ones((1, 1, 40))),
        "2x2x2 cube": padded(np.ones((2, 2, 2))),
        "one-slice disc": padded(disc),
        "thin plate": padded(slab),
        "diagonal voxels": padded(diagonal),
        "checkerboard": padded(np.indices((8, 9, 10)).sum(axis=0) % 2 == 0),
        "unpadded box": np.ones((5, 6, 7), dtype=bool),
    }


@pytest.mark.parametrize("name", list(degenerate_masks()))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.9)])
def test_shape_coefficients_degenerate(name, spacing, monkeypatch):
    """The fast path (forced even for a few vertices) equals the C function, or declines."""
    mask = degenerate_masks()[name]
    c_code = radiomics.cShape.calculate_coefficients
    expected = c_code(mask, np.array(spacing))
    monkeypatch.setattr(rs, "_SHAPE_MIN_VERTICES", 0)
    mesh = rs._marching_cubes(radiomics.cShape)
    assert isinstance(mesh, rs._MarchingCubes), mesh
    fast = rs._fast_coefficients(mask, np.array(spacing), mesh)
    if fast is not None:
        assert fast[:2] == tuple(expected[:2])
        assert fast[2] == tuple(expected[2])
    assert rs.apply_speedups()
    assert shape.cShape.calculate_coefficients(mask, np.array(spacing)) == expected


@pytest.mark.parametrize("seed", range(4))
def test_shape_coefficients_random_blobs(seed):
    """Irregular masks with thousands of vertices, anisotropic spacing: bit-identical."""
    rng = np.random.default_rng(seed)
    blob = ndimage.gaussian_filter(rng.standard_normal((36, 44, 40)), 2.5) > 0.02
    mask = np.pad(blob, 1)
    spacing = np.array([1.0, 1.0, 1.0]) if seed % 2 == 0 else rng.uniform(0.5, 3.0, 3)
    expected = radiomics.cShape.calculate_coefficients(mask, spacing)
    mesh = rs._marching_cubes(radiomics.cShape)
    assert len(rs._mesh_vertices(mask)) >= rs._SHAPE_MIN_VERTICES
    assert rs._fast_coefficients(mask, spacing, mesh) == (*expected[:2], tuple(expected[2]))


def test_wrong_triangle_table_keeps_shape_in_c(monkeypatch, caplog):
    """A triangle table that does not reproduce the C code is refused: shape stays in C."""
    table = rs._read_triangle_table(radiomics.cShape.__file__)
    swapped = table.copy()
    swapped[[1, 2]] = swapped[[2, 1]]
    monkeypatch.setattr(rs, "_meshes", {})
    monkeypatch.setattr(rs, "_read_triangle_table", lambda path: swapped)
    with caplog.at_level(logging.INFO, logger=rs.__name__):
        assert rs.apply_speedups()
    assert shape.cShape is originals()["cShape"] is radiomics.cShape
    assert "shape left in C" in caplog.text


# ------------------------------------------------------------------------------------------
# Discretisation and bin edges
# ------------------------------------------------------------------------------------------


def test_binning_once_per_image_type(monkeypatch):
    """Patched, binImage runs once per image type (6 times unpatched), cache emptied after."""
    image, mask = tumour_case((8, 10, 12), seed=5)
    calls = []
    real = imageoperations.binImage

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(imageoperations, "binImage", counting)
    params = load(FAST_PARAMS)
    extract(params, image, mask, patched=False)
    assert len(calls) == 6
    calls.clear()
    assert rs.apply_speedups()
    featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(params)).execute(image, mask)
    assert len(calls) == 1
    assert rs._bin_cache.entry is None and rs._bin_cache.depth == 0


@pytest.mark.parametrize(
    "values",
    [
        np.array([0.31, -2.25, 1.7, 0.0999], dtype=np.float32),
        np.array([3.0, 3.0, 3.0]),
        np.array([0.2]),
        np.array([-0.0, 0.0, 1.5]),
        np.array([0.0, -0.0, -1.5]),
        np.array([np.nan, 1.0, 0.5]),
        np.array([1.0, np.nan, 0.5]),
        np.array([7, -3, 120, 5], dtype=np.int16),
        np.array([250, 3], dtype=np.uint8),
    ],
)
@pytest.mark.parametrize("settings", [{"binWidth": 0.1}, {"binWidth": 25}, {"binCount": 16}])
def test_bin_edges_equal(values, settings):
    """Same edges (values and dtype), or the same error (NaN makes pyradiomics fail)."""

    def outcome(get_bin_edges):
        try:
            with np.errstate(invalid="ignore"):
                return get_bin_edges(values.copy(), **settings)
        except ValueError as error:
            return error

    expected = outcome(imageoperations.getBinEdges)
    assert rs.apply_speedups()
    got = outcome(imageoperations.getBinEdges)
    assert type(got) is type(expected)
    if isinstance(expected, ValueError):
        assert str(got) == str(expected)
    else:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
        assert np.asarray(got).dtype == np.asarray(expected).dtype


# ------------------------------------------------------------------------------------------
# GLCM coefficients and MCC
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bin_width", [0.02, 0.1, 0.5])
def test_glcm_features_and_coefficients_equal(bin_width):
    """Every GLCM feature and coefficient array bit-identical; at bin width 0.02 (~250 gray
    levels) the sparse MCC path runs, at 0.5 (~15 levels) pyradiomics' own."""
    image, mask = tumour_case((10, 12, 14), seed=6)
    settings = {"binWidth": bin_width, "label": 1}

    def run(patched: bool):
        if patched:
            assert rs.apply_speedups()
        features = glcm.RadiomicsGLCM(image, mask, **settings)
        features.enableAllFeatures()
        values = dict(features.execute())
        sparse = rs._mcc_q(features) is not None
        rs.remove_speedups()
        return values, features.coefficients, sparse

    before, coefficients_before, _ = run(False)
    after, coefficients_after, sparse = run(True)
    assert sparse == (coefficients_before["Ng"] >= rs._MCC_SPARSE_MIN_LEVELS)
    assert (bin_width == 0.02) == sparse
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert np.array_equal(np.asarray(value), np.asarray(after[name]), equal_nan=True), name
    assert coefficients_before.keys() == coefficients_after.keys()
    for name, value in coefficients_before.items():
        other = coefficients_after[name]
        assert np.array_equal(np.asarray(value), np.asarray(other)), name
        if isinstance(value, np.ndarray):
            assert value.shape == other.shape and value.strides == other.strides, name


def test_glcm_single_angle_keeps_pyradiomics_path():
    """One angle (numpy's sum over the gathered axis would be pairwise): original code."""
    image, mask = tumour_case((4, 5, 6), seed=8)
    settings = {"binWidth": 0.1, "label": 1, "weightingNorm": "euclidean"}
    assert rs.apply_speedups()
    features = glcm.RadiomicsGLCM(image, mask, **settings)
    features.enableAllFeatures()
    after = dict(features.execute())
    assert features.P_glcm.shape[3] == 1 and not rs._plain_glcm(features.P_glcm)
    rs.remove_speedups()
    features = glcm.RadiomicsGLCM(image, mask, **settings)
    features.enableAllFeatures()
    before = dict(features.execute())
    for name, value in before.items():
        assert np.array_equal(np.asarray(value), np.asarray(after[name]), equal_nan=True), name


# ------------------------------------------------------------------------------------------
# The adapter's contract
# ------------------------------------------------------------------------------------------


def test_remove_restores_the_originals():
    before = originals()
    assert rs.apply_speedups()
    assert rs.apply_speedups()  # idempotent: patched once
    patched = originals()
    assert all(patched[name] is not before[name] for name in before)
    rs.remove_speedups()
    after = originals()
    assert all(after[name] is before[name] for name in before)
    assert not rs.speedups_active()
    rs.remove_speedups()  # a second removal is a no-op
    assert originals() == before


def test_context_manager_restores_previous_state():
    before = originals()
    with rs.speedups() as active:
        assert active and rs.speedups_active()
        assert shape.cShape is not before["cShape"]
    assert originals() == before
    with rs.speedups(enabled=False) as active:
        assert not active and originals() == before
    assert rs.apply_speedups()
    with rs.speedups():
        pass
    assert rs.speedups_active()  # applied before the block: stays applied


def test_unverified_version_does_nothing_and_logs_once(monkeypatch, caplog):
    before = originals()
    monkeypatch.setattr(radiomics, "__version__", "v9.9.9")
    with caplog.at_level(logging.DEBUG, logger=rs.__name__):
        assert not rs.apply_speedups()
        assert not rs.apply_speedups()
    assert originals() == before
    loud = [r for r in caplog.records if r.name == rs.__name__ and r.levelno >= logging.INFO]
    assert len(loud) == 1
    assert loud[0].levelno == logging.WARNING
    assert "v9.9.9" in loud[0].getMessage() and "not applied" in loud[0].getMessage()


def test_applied_logs_one_line(caplog):
    with caplog.at_level(logging.DEBUG, logger=rs.__name__):
        assert rs.apply_speedups()
    records = [r for r in caplog.records if r.name == rs.__name__]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "applied" in records[0].getMessage()
    assert "convex hull" in records[0].getMessage()


@pytest.mark.parametrize("value", ["1", "true"])
def test_opt_out_environment_variable(monkeypatch, caplog, value):
    before = originals()
    monkeypatch.setenv(rs.SPEEDUPS_ENV, value)
    with caplog.at_level(logging.INFO, logger=rs.__name__):
        assert not rs.apply_speedups()
    assert originals() == before
    assert rs.SPEEDUPS_ENV in caplog.text
    monkeypatch.setenv(rs.SPEEDUPS_ENV, "0")
    assert rs.apply_speedups()


def test_adapter_imports_no_other_package_module():
    """Only the standard library, numpy, scipy, SimpleITK and radiomics (movable file)."""
    source = Path(rs.__file__).read_text()
    imported = set()
    for line in source.splitlines():
        words = line.split()
        if words[:1] == ["import"] or (words[:1] == ["from"] and "import" in words):
            imported.add(words[1].split(".")[0])
    third_party = imported - {
        "__future__",
        "contextlib",
        "logging",
        "math",
        "os",
        "threading",
        "types",
        "collections",
        "typing",
    }
    assert third_party <= {"numpy", "scipy", "SimpleITK", "radiomics"}, third_party
