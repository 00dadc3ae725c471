"""Synthetic multi-centre NPC MRI demo cohort: images, tumour masks, sheets, clinical table.

Each patient has T1, T2 and CET1 volumes on one grid (so one tumour mask fits all three):
a head-and-neck phantom (fat, muscle, brain-like tissue, marrow, the naso-/oropharyngeal
airway) with an irregular tumour at the nasopharynx, drawn as a thresholded sum of random
Gaussian blobs. Every image gets a smooth multiplicative bias field, a point-spread blur,
Rician noise and its centre's scanner settings (gain, offset, noise level, pixel spacing,
slice thickness, table position), and is stored as int16 like scanner output.

A latent tumour aggressiveness, higher for non-CR, modestly drives the tumour's volume,
texture scale, mean signal and heterogeneity (settings ``response_signal``); each property
also has its own patient noise, so no single feature gives the label away. The clinical
table follows the paper's Table 1 per class and is only weakly related to response.

Every patient is drawn from its own random streams, derived from (seed, patient_id,
stream name) with CRC32, so a patient does not depend on the others or on their order, and
the same seed writes byte-identical files (SimpleITK's gzip header carries no time stamp).
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import ndimage

from npc_radiomics.base.errors import InputError

log = logging.getLogger(__name__)

SHEET_COLUMNS = ("patient_id", "center", "sequence", "image", "mask", "mask_reader2")
CLINICAL_COLUMNS = (
    "patient_id", "response", "age", "gender", "ki67", "ebv_dna", "alb", "tc", "ldh", "wbc",
    "tk1", "lym", "d_dimer", "neut", "t_stage", "n_stage", "clinical_stage",
)  # fmt: skip
TISSUES = ("air", "fat", "muscle", "brain", "marrow", "tumour")
_LABEL = {name: i for i, name in enumerate(TISSUES)}

# The phantom, painted in order (later shapes overwrite earlier ones). Coordinates are in
# units of the half field of view times the patient's head scale: u right -> left,
# v anterior -> posterior, w inferior -> superior. A radius of None along w makes a column
# between the w limits.
_PHANTOM = (
    # tissue, centre (u, v, w), radii (u, v, w), w limits
    ("fat", (0.0, 0.0, 0.0), (0.90, 0.94, None), (-9.0, 9.0)),  # skin + subcutaneous fat
    ("muscle", (0.0, 0.02, 0.0), (0.81, 0.85, None), (-9.0, 9.0)),  # masticators, tongue...
    ("brain", (0.0, 0.18, 1.10), (0.62, 0.55, 0.62), (-9.0, 9.0)),  # above the skull base
    ("marrow", (0.0, 0.40, 0.0), (0.17, 0.14, None), (-9.0, 0.60)),  # clivus, vertebrae
    ("brain", (0.0, 0.64, 0.0), (0.07, 0.07, None), (-9.0, 0.60)),  # spinal cord
    ("fat", (-0.32, 0.02, 0.0), (0.07, 0.12, 0.70), (-9.0, 9.0)),  # parapharyngeal fat
    ("fat", (0.32, 0.02, 0.0), (0.07, 0.12, 0.70), (-9.0, 9.0)),
    ("air", (0.0, -0.12, 0.0), (0.16, 0.09, None), (-9.0, 0.45)),  # naso-/oropharynx
    ("air", (0.0, -0.52, 0.30), (0.12, 0.30, 0.35), (-9.0, 9.0)),  # nasal cavity
)
# Tumour centre: the lateral recess of the nasopharynx (fossa of Rosenmueller), either side.
_TUMOUR_SITE = (0.14, 0.0, 0.15)
_TUMOUR_SITE_SD = 0.03


# ---------------------------------------------------------------------------------------
# settings and cohort layout


def load_settings(path: str | Path) -> dict:
    """Read the generator settings (YAML, e.g. ``resources/demo_cohort.yaml``)."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_preset(settings: dict, preset: str) -> dict:
    """Settings with the preset applied: its keys (fov_mm, patients, n_reader2 and any
    section it overrides) deep-merged over the top-level sections."""
    presets = settings.get("presets", {})
    if preset not in presets:
        raise InputError(f"demo preset {preset!r} unknown (known: {sorted(presets)})")
    base = {k: v for k, v in settings.items() if k != "presets"}
    cfg = _deep_merge(base, presets[preset])
    unknown = sorted(set(cfg["patients"]) - set(cfg["centers"]))
    if unknown:
        raise InputError(f"demo preset {preset!r}: centre(s) {unknown} have no scanner settings")
    return cfg


def _stream(seed: int, *keys: str) -> np.random.Generator:
    """A random generator keyed by the seed and names (CRC32: stable across processes)."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in keys)])


def demo_patients(settings: dict, preset: str) -> pd.DataFrame:
    """patient_id, center of the preset's cohort, sorted by patient_id."""
    cfg = resolve_preset(settings, preset)
    rows = []
    for center in cfg["centers"]:
        counts = cfg["patients"].get(center, {"cr": 0, "non_cr": 0})
        n = int(counts["cr"]) + int(counts["non_cr"])
        width = max(3, len(str(n)))
        rows += [(f"{center}{i:0{width}d}", center) for i in range(1, n + 1)]
    table = pd.DataFrame(rows, columns=["patient_id", "center"])
    return table.sort_values("patient_id", kind="stable").reset_index(drop=True)


def reader2_patients(settings: dict, preset: str) -> list[str]:
    """The patients with a second reader's mask, sorted.

    ``n_reader2`` patients spread over the centres in proportion to their size (at least
    one per centre when there are enough), chosen with the settings' ``layout_seed``.
    """
    cfg = resolve_preset(settings, preset)
    patients = demo_patients(settings, preset)
    n_total = min(int(cfg.get("n_reader2", 0)), len(patients))
    groups = {c: g["patient_id"].tolist() for c, g in patients.groupby("center", sort=True)}
    sizes = np.array([len(ids) for ids in groups.values()], dtype=float)
    if n_total == 0:
        return []
    # largest-remainder allocation, then at least one per centre if possible
    quota = n_total * sizes / sizes.sum()
    alloc = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - alloc), kind="stable")[: n_total - alloc.sum()]:
        alloc[i] += 1
    while n_total >= len(alloc) and (alloc == 0).any():
        alloc[np.argmax(alloc)] -= 1
        alloc[np.argmin(alloc)] += 1
    chosen = []
    for (center, ids), k in zip(groups.items(), alloc, strict=True):
        rng = _stream(cfg["layout_seed"], "reader2", center)
        chosen += [ids[i] for i in rng.choice(len(ids), size=k, replace=False)]
    return sorted(chosen)


def demo_sample_sheet(settings: dict, preset: str, outdir: str) -> pd.DataFrame:
    """The long sample sheet the generator writes (no file I/O; cheap at DAG-build time).

    Columns patient_id, center, sequence, image, mask, mask_reader2 ("" where there is no
    second reader), sorted by patient_id, then sequence in the settings' order.
    """
    patients = demo_patients(settings, preset)
    readers2 = set(reader2_patients(settings, preset))
    base = str(outdir).rstrip("/")
    rows = []
    for pid, center in patients.itertuples(index=False):
        for seq in settings["sequences"]:
            stem = f"{base}/images/{pid}/{seq}"
            rows.append(
                (
                    pid,
                    center,
                    seq,
                    f"{stem}.nii.gz",
                    f"{stem}_mask.nii.gz",
                    f"{stem}_mask_reader2.nii.gz" if pid in readers2 else "",
                )
            )
    return pd.DataFrame(rows, columns=list(SHEET_COLUMNS))


def response_labels(settings: dict, preset: str, seed: int) -> dict[str, int]:
    """patient_id -> response (1 = CR, 0 = non-CR), exactly the preset's counts per centre,
    randomly assigned to the centre's patient ids."""
    cfg = resolve_preset(settings, preset)
    patients = demo_patients(settings, preset)
    labels = {}
    for center, group in patients.groupby("center", sort=True):
        counts = cfg["patients"][center]
        y = np.r_[np.ones(int(counts["cr"]), int), np.zeros(int(counts["non_cr"]), int)]
        y = _stream(seed, "response", center).permutation(y)
        labels.update(zip(group["patient_id"], y.tolist(), strict=True))
    return labels


# ---------------------------------------------------------------------------------------
# one patient


@dataclass
class PatientScan:
    """One simulated patient: arrays are (z, y, x); spacing and origin (x, y, z) in mm."""

    images: dict[str, np.ndarray]  # sequence -> int16 scanner units
    mask: np.ndarray  # uint8, reader 1 (the drawn tumour)
    mask_reader2: np.ndarray | None
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    aggressiveness: float  # the latent variable (non-CR higher)
    tumour_volume_cm3: float
    # Ground truth for checking preprocessing (not written to disk):
    head: np.ndarray  # bool, the head (every tissue but air)
    log_bias: dict[str, np.ndarray]  # sequence -> float32 log of the planted bias field


def _grid_mm(shape: tuple[int, int, int], spacing: np.ndarray) -> list[np.ndarray]:
    """Broadcastable x, y, z coordinates (mm) of the voxel centres around the FOV centre."""
    nz, ny, nx = shape
    x = (np.arange(nx) - (nx - 1) / 2) * spacing[0]
    y = (np.arange(ny) - (ny - 1) / 2) * spacing[1]
    z = (np.arange(nz) - (nz - 1) / 2) * spacing[2]
    return [x[None, None, :], y[None, :, None], z[:, None, None]]


def _paint_phantom(xyz: list[np.ndarray], half_fov: np.ndarray, shape) -> np.ndarray:
    """Tissue label map (uint8, indices into TISSUES) of the phantom."""
    labels = np.zeros(shape, np.uint8)
    u, v, w = (c / h for c, h in zip(xyz, half_fov, strict=True))
    for tissue, centre, radii, (w_lo, w_hi) in _PHANTOM:
        r2 = ((u - centre[0]) / radii[0]) ** 2 + ((v - centre[1]) / radii[1]) ** 2
        if radii[2] is not None:
            r2 = r2 + ((w - centre[2]) / radii[2]) ** 2
        inside = (r2 < 1.0) & (w >= w_lo) & (w <= w_hi)
        labels[inside] = _LABEL[tissue]
    return labels


def _smooth_field(rng, shape, sigma_mm, spacing) -> np.ndarray:
    """Gaussian-smoothed white noise, zero mean, unit SD (float32)."""
    sigma_vox = [sigma_mm / s for s in spacing[::-1]]  # (z, y, x)
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return (field - field.mean()) / max(float(field.std()), 1e-12)


def _tumour_mask(rng, cfg, shape, spacing, xyz, centre_mm, volume_mm3) -> np.ndarray:
    """Irregular tumour: thresholded sum of 3-7 Gaussian blobs (largest component),
    aiming at ``volume_mm3``; kept two voxels (one slice) away from the image border."""
    r_eq = (3 * volume_mm3 / (4 * np.pi)) ** (1 / 3)
    lo_k, hi_k = cfg["tumour"]["n_blobs"]
    n_blobs = int(rng.integers(lo_k, hi_k + 1))
    offsets = rng.normal(0.0, 0.45 * r_eq, (n_blobs, 3)) * [1.0, 1.0, 0.8]
    sigmas = r_eq * rng.uniform(0.25, 0.6, (n_blobs, 3))
    weights = rng.uniform(0.6, 1.0, n_blobs)
    # evaluate the blobs in a box around the centre only
    box = []
    for axis, n in zip((2, 1, 0), shape, strict=True):  # z, y, x
        c = xyz[axis].ravel()
        keep = np.abs(c - centre_mm[axis]) < 2.5 * r_eq + spacing[axis]
        margin = 1 if axis == 2 else 2
        idx = np.flatnonzero(keep)
        box.append(slice(max(idx.min(), margin), min(idx.max() + 1, n - margin)))
    bz, by, bx = box
    x, y, z = xyz[0][..., bx], xyz[1][:, by, :], xyz[2][bz]
    field = np.zeros((bz.stop - bz.start, by.stop - by.start, bx.stop - bx.start), np.float32)
    for off, sig, wgt in zip(offsets, sigmas, weights, strict=True):
        cx, cy, cz = np.asarray(centre_mm) + off
        field += wgt * np.exp(
            -0.5 * (((x - cx) / sig[0]) ** 2 + ((y - cy) / sig[1]) ** 2 + ((z - cz) / sig[2]) ** 2)
        )
    n_vox = int(np.clip(round(volume_mm3 / np.prod(spacing)), 8, field.size - 1))
    threshold = np.partition(field.ravel(), field.size - n_vox)[field.size - n_vox]
    inside = field >= threshold
    components, n_comp = ndimage.label(inside)
    if n_comp > 1:
        sizes = np.bincount(components.ravel())[1:]
        inside = components == 1 + int(np.argmax(sizes))
    mask = np.zeros(shape, bool)
    mask[bz, by, bx] = inside
    return mask


def _bias_field(rng, xyz, half_fov, sd) -> np.ndarray:
    """Smooth multiplicative bias: exp of a random quadratic in the normalised coordinates."""
    u, v, w = (c / h for c, h in zip(xyz, half_fov, strict=True))
    terms = (u, v, w, u * u, v * v, w * w, u * v, u * w, v * w)
    coef = rng.normal(0.0, sd, len(terms))
    return np.exp(sum(c * t for c, t in zip(coef, terms, strict=True))).astype(np.float32)


def second_reader_mask(mask: np.ndarray, rng, spacing, smoothness_mm, threshold) -> np.ndarray:
    """A second reader's mask: reader 1's boundary moved by one voxel in-plane, outwards on
    some smooth pieces and inwards on others (readers contour slice by slice)."""
    sigma_vox = (0.0, smoothness_mm / spacing[1], smoothness_mm / spacing[0])
    field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma_vox)
    field /= max(float(field[mask].std()), 1e-12)
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    wider = ndimage.binary_dilation(mask, in_plane)
    narrower = ndimage.binary_erosion(mask, in_plane)
    out = np.where(field > threshold, wider, np.where(field < -threshold, narrower, mask))
    return out if out.any() else mask.copy()


def _property(rng, latent: float, loading: float) -> float:
    """A patient property with within-class SD 1 and correlation ``loading`` with the latent."""
    return loading * latent + np.sqrt(1.0 - loading**2) * rng.standard_normal()


@dataclass
class TumourProperties:
    """What the latent aggressiveness drives (each with its own patient noise too)."""

    aggressiveness: float  # latent, within-class SD 1; non-CR higher
    volume_cm3: float
    texture_scale_mm: float  # correlation length of the tumour texture
    mean_signal: dict[str, float]  # relative signal per sequence
    heterogeneity: dict[str, float]  # texture SD per sequence, fraction of the mean signal


def tumour_properties(cfg: dict, rng, response: int) -> TumourProperties:
    """Draw the latent aggressiveness of a CR (1) or non-CR (0) patient and its properties."""
    signal, tumour = cfg["response_signal"], cfg["tumour"]
    loading = signal["loadings"]
    latent = (0.5 if response == 0 else -0.5) * signal["separation"] + rng.standard_normal()
    vol = tumour["volume_cm3"]
    log_volume = np.log(vol["median"]) + vol["log_sd"] * _property(
        rng, latent, loading["log_volume"]
    )
    scale = tumour["texture_scale_mm"]
    texture_mm = scale["median"] * np.exp(
        scale["log_sd"] * _property(rng, latent, loading["texture_scale"])
    )
    mean_signal, heterogeneity = {}, {}
    for seq in cfg["sequences"]:
        mean_signal[seq] = cfg["tissue_signal"][seq]["tumour"] * (
            1.0 + tumour["signal_sd"][seq] * _property(rng, latent, loading["mean_signal"][seq])
        )
        heterogeneity[seq] = tumour["heterogeneity"][seq] * np.exp(
            tumour["heterogeneity_log_sd"] * _property(rng, latent, loading["heterogeneity"][seq])
        )
    return TumourProperties(
        aggressiveness=float(latent),
        volume_cm3=float(np.clip(np.exp(log_volume), vol["min"], vol["max"])),
        texture_scale_mm=float(texture_mm),
        mean_signal=mean_signal,
        heterogeneity=heterogeneity,
    )


def _tumour_textures(rng, cfg, tumour, props, spacing) -> dict[str, np.ndarray]:
    """Unit-SD texture values over the tumour voxels (C order) per sequence: a part common
    to all sequences (the same tissue) plus a sequence-specific part."""
    box = ndimage.find_objects(tumour.astype(np.uint8))[0]
    inside = tumour[box]
    shared = cfg["tumour"]["shared_texture_fraction"]
    common = _smooth_field(rng, inside.shape, props.texture_scale_mm, spacing)[inside]
    textures = {}
    for seq in cfg["sequences"]:
        own = _smooth_field(rng, inside.shape, props.texture_scale_mm, spacing)[inside]
        t = np.sqrt(shared) * common + np.sqrt(1.0 - shared) * own
        textures[seq] = (t - t.mean()) / max(float(t.std()), 1e-12)
    return textures


def simulate_patient(
    cfg: dict, seed: int, patient_id: str, center: str, response: int, with_reader2: bool
) -> PatientScan:
    """Simulate one patient's sequences and masks on its centre's grid.

    ``cfg`` is a resolved preset (:func:`resolve_preset`); ``response`` 1 = CR, 0 = non-CR.
    Independent random streams per step (tumour, anatomy, scan, reader 2), keyed by the seed
    and the patient id.
    """
    scanner, ana, scan = cfg["centers"][center], cfg["anatomy"], cfg["scan"]
    spacing = np.array([scanner["pixel_spacing_mm"]] * 2 + [scanner["slice_thickness_mm"]], float)
    fov = np.asarray(cfg["fov_mm"], float)
    shape = tuple(int(round(n)) for n in (fov / spacing)[::-1])  # (z, y, x)
    xyz = _grid_mm(shape, spacing)

    rng_tumour = _stream(seed, patient_id, "tumour")
    props = tumour_properties(cfg, rng_tumour, response)

    # anatomy: head size and position, then the tumour at the nasopharynx
    rng_anat = _stream(seed, patient_id, "anatomy")
    half_head = fov / 2 * (1.0 + ana["head_scale_sd"] * rng_anat.standard_normal())
    shift = rng_anat.normal(0.0, ana["shift_sd_mm"])
    labels = _paint_phantom([c - s for c, s in zip(xyz, shift, strict=True)], half_head, shape)
    side = rng_anat.choice([-1.0, 1.0])
    site = np.array(_TUMOUR_SITE) * [side, 1.0, 1.0] + rng_anat.normal(0, _TUMOUR_SITE_SD, 3)
    tumour = _tumour_mask(
        rng_anat, cfg, shape, spacing, xyz, site * half_head + shift, props.volume_cm3 * 1e3
    )
    labels[tumour] = _LABEL["tumour"]
    tissue_texture = 1.0 + ana["texture_sd"] * _smooth_field(
        rng_anat, shape, ana["texture_scale_mm"], spacing
    )
    textures = _tumour_textures(rng_tumour, cfg, tumour, props, spacing)

    # acquisition: blur, bias field, Rician noise, scanner gain and offset, int16
    rng_scan = _stream(seed, patient_id, "scan")
    psf_vox = [mm / s for mm, s in zip(scan["psf_sigma_mm"][::-1], spacing[::-1], strict=True)]
    images, log_bias = {}, {}
    for seq in cfg["sequences"]:
        contrast = np.array([cfg["tissue_signal"][seq][t] for t in TISSUES], np.float32)
        signal = contrast[labels] * tissue_texture
        signal[tumour] = props.mean_signal[seq] * np.clip(
            1.0 + props.heterogeneity[seq] * textures[seq], 0.1, None
        )
        signal = ndimage.gaussian_filter(signal, psf_vox)
        bias = _bias_field(rng_scan, xyz, fov / 2, scan["bias_field_sd"])
        log_bias[seq] = np.log(bias)
        signal *= bias
        noise = scanner["noise_sd"] * rng_scan.standard_normal((2, *shape), np.float32)
        magnitude = np.hypot(signal + noise[0], noise[1])
        gain = scanner["gain"][seq] * np.exp(scan["gain_log_sd"] * rng_scan.standard_normal())
        units = magnitude * gain + scanner["offset"]
        images[seq] = np.clip(np.rint(units), 0, np.iinfo(np.int16).max).astype(np.int16)
    centre = np.asarray(scanner["origin_mm"], float) + rng_scan.normal(
        0.0, scan["origin_jitter_mm"]
    )
    origin = centre - (np.array(shape[::-1]) - 1) / 2 * spacing

    mask_reader2 = None
    if with_reader2:
        reader2 = cfg["reader2"]
        mask_reader2 = second_reader_mask(
            tumour,
            _stream(seed, patient_id, "reader2"),
            spacing,
            reader2["boundary_smoothness_mm"],
            reader2["threshold"],
        ).astype(np.uint8)
    return PatientScan(
        images=images,
        mask=tumour.astype(np.uint8),
        mask_reader2=mask_reader2,
        spacing=tuple(float(s) for s in spacing),
        origin=tuple(float(np.round(o, 3)) for o in origin),
        aggressiveness=props.aggressiveness,
        tumour_volume_cm3=float(tumour.sum() * np.prod(spacing) / 1e3),
        head=labels > 0,
        log_bias=log_bias,
    )


# ---------------------------------------------------------------------------------------
# clinical table


def simulate_clinical(cfg: dict, seed: int, patient_id: str, response: int) -> dict:
    """One clinical row drawn from the Table 1 distributions of the patient's class.

    Lognormal variables match the class mean and SD; clinical stage is derived from T and
    N the way the staging system does (simplified AJCC 8th: stage = max(T, N + 1)).
    """
    rng = _stream(seed, patient_id, "clinical")
    key = "cr" if response == 1 else "non_cr"
    row: dict = {"patient_id": patient_id, "response": int(response)}
    for name, spec in cfg["clinical"]["continuous"].items():
        mean, sd = spec[key]
        if spec["dist"] == "lognormal":
            sigma2 = np.log1p((sd / mean) ** 2)
            value = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2))
        else:
            value = rng.normal(mean, sd)
        if "range" in spec:
            value = float(np.clip(value, *spec["range"]))
        decimals = int(spec.get("decimals", 2))
        row[name] = int(round(value)) if decimals == 0 else round(float(value), decimals)
    for name, spec in cfg["clinical"]["categorical"].items():
        p = np.asarray(spec[key], float)
        row[name] = int(spec["levels"][rng.choice(len(p), p=p / p.sum())])
    row["clinical_stage"] = max(row["t_stage"], row["n_stage"] + 1)
    return row


# ---------------------------------------------------------------------------------------
# the cohort on disk


def _write(array: np.ndarray, scan: PatientScan, path: str) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(scan.spacing)
    image.SetOrigin(scan.origin)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, path, True)


def _write_tsv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False, lineterminator="\n")


def demo_clinical(settings: dict, preset: str, seed: int) -> pd.DataFrame:
    """The demo's clinical table (no image is simulated: each row has its own stream)."""
    cfg = resolve_preset(settings, preset)
    labels = response_labels(settings, preset, seed)
    rows = [
        simulate_clinical(cfg, seed, pid, labels[pid])
        for pid in demo_patients(settings, preset)["patient_id"]
    ]
    return pd.DataFrame(rows, columns=list(CLINICAL_COLUMNS))


def clinical_text(table: pd.DataFrame) -> str:
    """The text of clinical.tsv as the demo writes it."""
    return table.to_csv(sep="\t", index=False, lineterminator="\n")


def generate_cohort(settings: dict, preset: str, seed: int, outdir: str) -> None:
    """Write every image and mask of :func:`demo_sample_sheet`, plus ``samples.tsv`` and
    ``clinical.tsv`` (patient_id, response (1 = CR), the paper's 14 clinical variables)."""
    cfg = resolve_preset(settings, preset)
    sheet = demo_sample_sheet(settings, preset, outdir)
    labels = response_labels(settings, preset, seed)
    patients = demo_patients(settings, preset)
    for i, (pid, center) in enumerate(patients.itertuples(index=False), start=1):
        t0 = time.perf_counter()
        rows = sheet[sheet["patient_id"] == pid]
        with_reader2 = bool(rows["mask_reader2"].iloc[0])
        scan = simulate_patient(cfg, seed, pid, center, labels[pid], with_reader2)
        for row in rows.itertuples(index=False):
            _write(scan.images[row.sequence], scan, row.image)
            _write(scan.mask, scan, row.mask)
            if row.mask_reader2:
                _write(scan.mask_reader2, scan, row.mask_reader2)
        log.info(
            "demo: patient %d/%d %s (%s, %s) tumour %.1f cm3%s, %.2f s",
            i,
            len(patients),
            pid,
            center,
            "CR" if labels[pid] == 1 else "non-CR",
            scan.tumour_volume_cm3,
            ", reader 2" if with_reader2 else "",
            time.perf_counter() - t0,
        )
    _write_tsv(sheet, Path(outdir) / "samples.tsv")
    path = Path(outdir) / "clinical.tsv"
    path.write_text(clinical_text(demo_clinical(settings, preset, seed)))
