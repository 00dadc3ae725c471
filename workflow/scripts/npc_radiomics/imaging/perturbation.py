"""Feature robustness without a second reader: seeded image and contour perturbations.

pipeline step 7 (``robustness.method: perturbation`` or ``both``). In the spirit of MIRP
and Zwanenburg et al. 2019 (Sci Rep 9:614, "Assessing robustness of radiomic features by
image perturbation"): each training patient's preprocessed case is perturbed ``n`` times,
each perturbation a combination of

- a rigid move: a rotation about the tumour centroid in the axial plane (uniform in
  +/- ``rotation_deg``) and a translation (uniform in +/- ``translation_mm`` per axis),
  applied to image (B-spline) and mask (linear, then thresholded at 0.5) together, as a
  patient repositioned in the scanner;
- additive Gaussian noise whose SD is the image's own noise estimate in a box around the
  tumour (wavelet median absolute deviation, Donoho & Johnstone; scikit-image's
  ``estimate_sigma``), so the perturbed image is about as noisy again as the original;
- a contour change: ``morphology``, the mask eroded or dilated by a ball of a whole number
  of voxels drawn uniformly in +/- ``contour_voxels`` (0: the moved contour as it is); or
  ``supervoxel``, MIRP's contour randomisation: the box is over-segmented into supervoxels
  (SLIC, scikit-image) and each supervoxel joins the new contour with a probability equal
  to the share of it inside the moved contour (:func:`supervoxel_contour`),

and its features extracted exactly as rule ``extract_batch`` extracts the case
(:func:`npc_radiomics.imaging.features.extract_case`: ROI crop, the sequence's
normalisation and pyradiomics params). ICC(2,1) across the ``n`` perturbations ("raters")
per feature, on the training patients, is the robustness measure (:func:`perturbation_icc`).

Every draw comes from a generator seeded with
``derived_seed(seed, patient, sequence, perturbation)``: a case's perturbations depend on
neither the batch it is in nor the other cases.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from npc_radiomics.base.config import derived_seed
from npc_radiomics.imaging.features import SEPARATOR, extract_case, load_params, normalisation_args
from npc_radiomics.imaging.icc import MIN_READER2_PATIENTS, icc2_1

__all__ = [
    "PerturbationSettings",
    "Perturbation",
    "draw_perturbation",
    "estimate_noise_sd",
    "perturb_case",
    "perturbed_features",
    "perturb_batch_rule",
    "perturbation_icc",
    "PERTURBED_COLUMNS",
    "PERTURBATION_PARAM_COLUMNS",
]

log = logging.getLogger(__name__)

#: The long table of a batch's perturbed features.
PERTURBED_COLUMNS = ["patient_id", "sequence", "perturbation", "feature", "value"]
#: What each perturbation did (one row per patient x sequence x perturbation).
PERTURBATION_PARAM_COLUMNS = [
    "patient_id",
    "sequence",
    "perturbation",
    "seed",
    "rotation_deg",
    "translation_x_mm",
    "translation_y_mm",
    "translation_z_mm",
    "contour",
    "contour_voxels",
    "noise_sd",
    "n_voxels",
]
CONTOUR_METHODS = ("morphology", "supervoxel", "none")
#: Supervoxel contour randomisation, after MIRP: a supervoxel holds about this many mm^3
#: (at least 20 voxels); the smallest share inside the contour that can join, and the share
#: from which it always does (the supervoxel most inside always does too).
SUPERVOXEL_MM3 = 500.0
SUPERVOXEL_MIN_SHARE = 0.2
SUPERVOXEL_SURE_SHARE = 0.9
SUPERVOXEL_COMPACTNESS = 0.05


@dataclass(frozen=True)
class PerturbationSettings:
    """config ``robustness.perturbation``; the defaults are config/config.yaml's."""

    n: int = 5
    noise: bool = True
    rotation_deg: float = 4.0
    translation_mm: float = 1.0
    contour: str = "morphology"
    contour_voxels: int = 1

    def __post_init__(self):
        if int(self.n) < 2:
            raise ValueError(f"config key robustness.perturbation.n: {self.n} < 2 (ICC raters)")
        if self.contour not in CONTOUR_METHODS:
            raise ValueError(
                f"config key robustness.perturbation.contour: {self.contour!r} is not one of "
                f"{', '.join(CONTOUR_METHODS)}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PerturbationSettings:
        return cls(**dict(section))


@dataclass(frozen=True)
class Perturbation:
    """One drawn perturbation of one case."""

    seed: int
    rotation_deg: float
    translation_mm: tuple[float, float, float]
    contour_voxels: int
    noise: bool
    contour: str = "morphology"


def draw_perturbation(
    settings: PerturbationSettings, seed: int, patient: str, sequence: str, k: int
) -> Perturbation:
    """Perturbation ``k`` of one case: its parameters and the seed of its noise, from a
    generator seeded by (``seed``, patient, sequence, k) alone."""
    case_seed = derived_seed(seed, "perturbation", patient, sequence, k)
    rng = np.random.default_rng(case_seed)
    rotation = float(rng.uniform(-1.0, 1.0) * settings.rotation_deg)
    translation = tuple(float(v) for v in rng.uniform(-1.0, 1.0, 3) * settings.translation_mm)
    radius = 0
    if settings.contour == "morphology" and settings.contour_voxels > 0:
        radius = int(rng.integers(-settings.contour_voxels, settings.contour_voxels + 1))
    return Perturbation(
        case_seed, rotation, translation, radius, bool(settings.noise), settings.contour
    )


def estimate_noise_sd(image: sitk.Image) -> float:
    """The image's noise SD: the wavelet median absolute deviation of its finest diagonal
    detail band (Donoho & Johnstone 1994), scikit-image's ``estimate_sigma``."""
    from skimage.restoration import estimate_sigma

    array = sitk.GetArrayFromImage(image).astype(np.float64)
    return float(estimate_sigma(array, channel_axis=None))


def supervoxel_contour(image: sitk.Image, mask: sitk.Image, rng: np.random.Generator) -> sitk.Image:
    """A randomised contour from supervoxels (MIRP's contour randomisation).

    The image, clipped to the contour's intensity range widened by 10% on each side and
    scaled to [0, 1], is over-segmented by SLIC into supervoxels of about
    :data:`SUPERVOXEL_MM3`; a supervoxel joins the new contour with probability equal to
    its share of voxels inside ``mask`` (below :data:`SUPERVOXEL_MIN_SHARE` never, from
    :data:`SUPERVOXEL_SURE_SHARE` always, the one most inside always), and a binary
    closing fills the seams. An empty result keeps ``mask``.
    """
    from scipy.ndimage import binary_closing
    from skimage.segmentation import slic

    array = sitk.GetArrayFromImage(image).astype(np.float64)
    roi = sitk.GetArrayFromImage(mask) > 0
    spacing = np.asarray(image.GetSpacing())[::-1]  # array order (z, y, x)
    low, high = float(array[roi].min()), float(array[roi].max())
    widen = 0.1 * (high - low)
    low, high = low - widen, high + widen
    scaled = (np.clip(array, low, high) - low) / (high - low) if high > low else 0 * array
    per_segment = max(20.0, SUPERVOXEL_MM3 / float(np.prod(spacing)))
    segments = slic(
        scaled,
        n_segments=max(2, int(array.size / per_segment)),
        compactness=SUPERVOXEL_COMPACTNESS,
        sigma=float(spacing.min()),
        spacing=spacing,
        channel_axis=None,
        start_label=0,
    )
    size = np.bincount(segments.ravel())
    inside = np.bincount(segments[roi], minlength=size.size)
    share = np.divide(inside, size, out=np.zeros(size.size), where=size > 0)
    share[np.argmax(share)] = 1.0
    share[share >= SUPERVOXEL_SURE_SHARE] = 1.0
    share[share < SUPERVOXEL_MIN_SHARE] = 0.0
    chosen = rng.random(share.size) < share
    new = binary_closing(chosen[segments])
    if not new.any():
        return mask
    result = sitk.GetImageFromArray(new.astype(np.uint8))
    result.CopyInformation(mask)
    return result


def _roi_box(mask: sitk.Image, pad_mm: float) -> tuple[list[int], list[int]]:
    """(index, size) of the mask's bounding box plus ``pad_mm``, clipped to the image."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    if 1 not in stats.GetLabels():
        raise ValueError("mask has no tumour voxel")
    box = stats.GetBoundingBox(1)
    dim = mask.GetDimension()
    start, extent = np.asarray(box[:dim]), np.asarray(box[dim:])
    pad = np.ceil(pad_mm / np.asarray(mask.GetSpacing())).astype(int)
    lower = np.maximum(start - pad, 0)
    upper = np.minimum(start + extent + pad, np.asarray(mask.GetSize()))
    return [int(v) for v in lower], [int(v) for v in upper - lower]


def perturb_case(
    image: sitk.Image,
    mask: sitk.Image,
    perturbation: Perturbation,
    *,
    margin_mm: float,
    noise_sd: float | None = None,
) -> tuple[sitk.Image, sitk.Image, dict[str, float]]:
    """One perturbed copy of a case (image and binary tumour mask, same grid).

    Works on a box around the tumour: ``margin_mm`` plus what the move can shift into
    view, so the extraction's own crop (the ROI plus its margin) never reaches the box's
    edge. ``noise_sd``: the noise SD to add (default: :func:`estimate_noise_sd` of the
    box); ignored when the perturbation adds no noise.

    Returns:
        (image, mask, info): info has ``noise_sd`` (0 without noise), ``contour_voxels``
        (as applied: an erosion that would empty the mask is not applied) and
        ``n_voxels`` of the perturbed mask.
    """
    binary = sitk.Cast(mask > 0, sitk.sitkUInt8)
    spacing = np.asarray(binary.GetSpacing())
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(binary)
    if 1 not in stats.GetLabels():
        raise ValueError("mask has no tumour voxel")
    box = stats.GetBoundingBox(1)
    half_extent = 0.5 * np.asarray(box[3:]) * spacing
    reach = float(np.linalg.norm(half_extent)) + margin_mm
    shift = reach * math.sin(math.radians(abs(perturbation.rotation_deg)))
    shift += float(np.max(np.abs(perturbation.translation_mm)))
    shift += abs(perturbation.contour_voxels) * float(spacing.max()) + 2.0 * float(spacing.max())
    if perturbation.contour == "supervoxel":  # a supervoxel partly inside may join whole
        shift += 2.0 * SUPERVOXEL_MM3 ** (1.0 / 3.0)
    index, size = _roi_box(binary, margin_mm + shift)
    image = sitk.Cast(sitk.RegionOfInterest(image, size, index), sitk.sitkFloat32)
    binary = sitk.RegionOfInterest(binary, size, index)

    transform = sitk.Euler3DTransform()
    transform.SetCenter(stats.GetCentroid(1))
    transform.SetRotation(0.0, 0.0, math.radians(perturbation.rotation_deg))
    transform.SetTranslation(perturbation.translation_mm)
    moved = sitk.Resample(image, image, transform, sitk.sitkBSpline, 0.0, sitk.sitkFloat32)
    moved_mask = sitk.Resample(
        sitk.Cast(binary, sitk.sitkFloat32), binary, transform, sitk.sitkLinear, 0.0
    )
    moved_mask = sitk.Cast(moved_mask >= 0.5, sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(moved_mask)):
        moved_mask = binary  # a tumour thinner than the move's blur: keep its voxels

    applied = perturbation.contour_voxels
    if perturbation.contour == "supervoxel":
        rng = np.random.default_rng([perturbation.seed, 2])
        moved_mask = supervoxel_contour(moved, moved_mask, rng)
    elif applied > 0:
        moved_mask = sitk.BinaryDilate(moved_mask, [applied] * 3, sitk.sitkBall, 0, 1)
    elif applied < 0:
        eroded = sitk.BinaryErode(moved_mask, [-applied] * 3, sitk.sitkBall, 0, 1)
        if np.any(sitk.GetArrayViewFromImage(eroded)):
            moved_mask = eroded
        else:
            applied = 0
    moved_mask = sitk.Cast(moved_mask, sitk.sitkUInt8)

    sd = 0.0
    if perturbation.noise:
        sd = estimate_noise_sd(image) if noise_sd is None else float(noise_sd)
        rng = np.random.default_rng([perturbation.seed, 1])
        array = sitk.GetArrayFromImage(moved).astype(np.float64)
        array += rng.normal(0.0, sd, array.shape)
        noisy = sitk.GetImageFromArray(array.astype(np.float32))
        noisy.CopyInformation(moved)
        moved = noisy
    info = {
        "noise_sd": sd,
        "contour": perturbation.contour,
        "contour_voxels": int(applied),
        "n_voxels": int(np.count_nonzero(sitk.GetArrayViewFromImage(moved_mask))),
    }
    return moved, moved_mask, info


def perturbed_features(
    image: sitk.Image,
    mask: sitk.Image,
    params: Mapping[str, Any] | Any,
    settings: PerturbationSettings,
    seed: int,
    *,
    patient: str,
    sequence: str,
    crop_margin_mm: float | None,
    zscore: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
) -> tuple[list[tuple], list[dict]]:
    """The ``settings.n`` perturbations of one case and their features.

    Returns:
        (feature rows ``PERTURBED_COLUMNS``, one parameter dict per perturbation
        ``PERTURBATION_PARAM_COLUMNS``).
    """
    margin = float(crop_margin_mm or 0.0)
    rows: list[tuple] = []
    drawn: list[dict] = []
    noise_sd = None
    if settings.noise:
        # One estimate per case, in the tumour's surroundings (its box plus the margin).
        index, size = _roi_box(mask, margin)
        noise_sd = estimate_noise_sd(sitk.RegionOfInterest(image, size, index))
    for k in range(int(settings.n)):
        perturbation = draw_perturbation(settings, seed, patient, sequence, k)
        moved, moved_mask, info = perturb_case(
            image, mask, perturbation, margin_mm=margin, noise_sd=noise_sd
        )
        result = extract_case(
            moved,
            moved_mask,
            params,
            crop_margin_mm=crop_margin_mm,
            zscore=zscore,
            window=window,
        )
        rows.extend((patient, sequence, k, name, v) for name, v in result.features.items())
        x, y, z = perturbation.translation_mm
        drawn.append(
            {
                "patient_id": patient,
                "sequence": sequence,
                "perturbation": k,
                "seed": perturbation.seed,
                "rotation_deg": perturbation.rotation_deg,
                "translation_x_mm": x,
                "translation_y_mm": y,
                "translation_z_mm": z,
                **info,
            }
        )
    return rows, drawn


def training_patients(split: pd.DataFrame) -> set[str]:
    """The split's training-cohort patients (the only ones ever perturbed)."""
    return set(split.loc[split["cohort"] == "train", "patient_id"].astype(str))


def perturb_batch_rule(
    cases: Sequence[Mapping],
    folder: str,
    zscore_path: str | None,
    split: pd.DataFrame,
    *,
    params_files: Mapping[str, str],
    normalization: Mapping[str, Mapping[str, Any]],
    crop_margin_mm: float | None,
    settings: PerturbationSettings | Mapping[str, Any],
    seed: int,
    features_path: str,
    params_path: str,
) -> pd.DataFrame:
    """Rule ``perturb_batch``: the perturbed features of a batch's training patients.

    ``cases`` as rule ``extract_batch`` takes them; only patients of the training cohort
    of ``split`` (the training pool's split) that preprocessing included are perturbed:
    test and external patients never are. Reader-1 masks only. Writes the long table
    :data:`PERTURBED_COLUMNS` (Parquet) and what each perturbation did
    (:data:`PERTURBATION_PARAM_COLUMNS`, TSV).
    """
    from npc_radiomics.base.io import read_image, write_tsv
    from npc_radiomics.imaging.batches import preprocessed_paths, run_cases

    if not isinstance(settings, PerturbationSettings):
        settings = PerturbationSettings.from_config(settings)
    train = training_patients(split)
    todo = [
        case
        for case in cases
        if str(case["patient_id"]) in train
        and Path(preprocessed_paths(folder, case["patient_id"], case["sequence"])["image"]).exists()
    ]
    zscores = None
    if zscore_path:
        zscores = pd.read_csv(zscore_path, sep="\t").set_index("sequence")
    params = {sequence: load_params(path) for sequence, path in params_files.items()}

    def work(case):
        patient, sequence = str(case["patient_id"]), case["sequence"]
        zscore, window = normalisation_args(sequence, normalization[sequence], zscores)
        paths = preprocessed_paths(folder, patient, sequence)
        return perturbed_features(
            read_image(paths["image"]),
            read_image(paths["mask"]),
            params[sequence],
            settings,
            seed,
            patient=patient,
            sequence=sequence,
            crop_margin_mm=crop_margin_mm,
            zscore=zscore,
            window=window,
        )

    done = run_cases(todo, work, f"perturbed extraction ({settings.n} per case)")
    table = pd.DataFrame([r for rows, _ in done for r in rows], columns=PERTURBED_COLUMNS)
    table["value"] = table["value"].astype(float)
    table["perturbation"] = table["perturbation"].astype(int)
    table.to_parquet(features_path, index=False)
    drawn = pd.DataFrame([d for _, ds in done for d in ds], columns=PERTURBATION_PARAM_COLUMNS)
    write_tsv(drawn, params_path)
    return table


def perturbation_icc(
    perturbed: pd.DataFrame,
    split: pd.DataFrame,
    *,
    threshold: float,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """ICC(2,1) per feature across the perturbations, on the training patients.

    Args:
        perturbed: the batches' long tables (:data:`PERTURBED_COLUMNS`).
        split: the split (patient_id, cohort); rows of any patient not in its training
            cohort are left out.
        threshold: a feature is robust when its ICC is strictly above it.
        features: wide-table names ``<sequence>__<feature>`` to rate, in order (default:
            every perturbed one, sorted by sequence, in extraction order); one never
            perturbed gets NaN and is not robust.

    Returns:
        ``feature, icc, ci_low, ci_high, robust, n_patients, n_perturbations``: each
        feature rests on the training patients having all its perturbations finite.

    Raises:
        ValueError: fewer than :data:`~npc_radiomics.imaging.icc.MIN_READER2_PATIENTS`
            training patients were perturbed.
    """
    train = training_patients(split)
    table = perturbed[perturbed["patient_id"].astype(str).isin(train)]
    names = (table["sequence"].astype(str) + SEPARATOR + table["feature"].astype(str)).to_numpy()
    order = list(dict.fromkeys(names[np.argsort(table["sequence"].to_numpy(), kind="stable")]))
    wanted = list(features) if features is not None else order
    patients = sorted(set(table["patient_id"].astype(str)))
    n_rater = int(table["perturbation"].max()) + 1 if len(table) else 0
    if len(patients) < MIN_READER2_PATIENTS or n_rater < 2:
        raise ValueError(
            f"perturbation ICC: {len(patients)} training patient(s) with {n_rater} "
            f"perturbation(s), need >= {MIN_READER2_PATIENTS} patients and >= 2 perturbations"
        )
    position = {name: j for j, name in enumerate(wanted)}
    row_of = {p: i for i, p in enumerate(patients)}
    ratings = np.full((len(patients), n_rater, len(wanted)), np.nan)
    cols = np.array([position.get(n, -1) for n in names])
    keep = cols >= 0
    rows = np.array([row_of[p] for p in table["patient_id"].astype(str)], dtype=int)
    ratings[rows[keep], table["perturbation"].to_numpy(dtype=int)[keep], cols[keep]] = table[
        "value"
    ].to_numpy(dtype=np.float64)[keep]

    complete = np.isfinite(ratings).all(axis=1)  # (patients, features)
    out = {k: np.full(len(wanted), np.nan) for k in ("icc", "ci_low", "ci_high")}
    patterns, group = np.unique(complete.T, axis=0, return_inverse=True)
    for g, mask in enumerate(patterns):
        idx = np.flatnonzero(group.ravel() == g)
        if mask.sum() < 2:
            continue
        icc, low, high = icc2_1(ratings[mask][:, :, idx])
        out["icc"][idx], out["ci_low"][idx], out["ci_high"][idx] = icc, low, high
    result = pd.DataFrame({"feature": wanted, **out})
    result["robust"] = result["icc"] > threshold  # NaN compares False
    result["n_patients"] = complete.sum(axis=0)
    result["n_perturbations"] = n_rater
    return result
