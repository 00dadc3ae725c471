"""The model bundle (pipeline step 20): the chosen model, frozen, in one copyable folder.

A bundle directory holds

- ``pipeline.skops``: the fitted scikit-learn Pipeline (imputer, variance filter, scaler,
  mRMR, LASSO, classifier) in skops' format, which loads without executing pickled code.
  XGBoost and LightGBM boosters inside it are stored by skops from their own native
  serialisations (XGBoost's UBJSON model, LightGBM's model text);
- ``pyradiomics_params.yaml``: the extraction parameters, copied byte for byte;
- ``zscore.tsv``: the per-sequence z-score statistics of the training run (frozen);
- ``manifest.json``: feature names in order, preprocessing settings, threshold and its
  source, outcome coding, training cohort summary, nested-CV / test / external AUCs,
  software versions, config hash and the SHA-256 of every other file;
- ``checksums.sha256``: ``sha256sum``-style lines for every file including the manifest.

:func:`load_bundle` verifies every checksum, refuses unknown serialised types, warns on
other package versions and refuses another feature-extractor version unless overridden.
The bundle hash (:attr:`Bundle.hash`) is the SHA-256 of ``manifest.json``, which lists the
checksum of every other file, so it names the whole bundle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from npc_radiomics.base.config import file_sha256
from npc_radiomics.base.errors import InputError
from npc_radiomics.deploy.pipeline_file import BundleError, dump_pipeline, load_pipeline_file
from npc_radiomics.glue.provenance import software_versions

log = logging.getLogger(__name__)


BUNDLE_FORMAT = "npc-radiomics-bundle"


FORMAT_VERSION = 1


MANIFEST = "manifest.json"


CHECKSUMS = "checksums.sha256"


PIPELINE_FILE = "pipeline.skops"


PARAMS_FILE = "pyradiomics_params.yaml"


#: A sequence's own pyradiomics params (features.params_per_sequence), when they differ.
SEQUENCE_PARAMS_FILE = "pyradiomics_params_{sequence}.yaml"


ZSCORE_FILE = "zscore.tsv"


#: Snakemake's marker in a directory() output: not part of the bundle, ignored.
SNAKEMAKE_MARKER = ".snakemake_timestamp"


#: Packages whose versions the manifest records and loading compares (the pipeline's).
PIPELINE_PACKAGES = (
    "scikit-learn",
    "skops",
    "numpy",
    "scipy",
    "pandas",
    "xgboost",
    "lightgbm",
)


#: The feature extractor's version key in pyradiomics' diagnostics (features/provenance).
EXTRACTOR_VERSION_KEY = "Versions_PyRadiomics"


def _checksums_text(directory: Path, names: list[str]) -> str:
    return "".join(f"{file_sha256(directory / n)}  {n}\n" for n in sorted(names))


def _files(directory: Path) -> list[str]:
    """The bundle's files (relative names), without the checksums file and Snakemake's
    directory marker."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.name not in (CHECKSUMS, SNAKEMAKE_MARKER)
    )


def verify_checksums(directory: str | Path) -> dict[str, str]:
    """Check ``checksums.sha256`` against every file of the bundle; returns name -> sha256.

    Refuses (``BundleError``, one line) a missing or extra file, a changed file, and a
    checksums file that is not exactly what the bundle writer makes.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"bundle directory not found: {directory}")
    listing = directory / CHECKSUMS
    if not listing.is_file():
        raise BundleError(f"bundle {directory}: {CHECKSUMS} is missing")
    text = listing.read_text(encoding="utf-8", errors="replace")
    expected: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise BundleError(f"bundle {directory}: {CHECKSUMS} line {number} is malformed")
        expected[name] = digest
    for name in sorted(expected):
        if not (directory / name).is_file():
            raise BundleError(f"bundle {directory}: file {name} is missing")
    present = _files(directory)
    extra = sorted(set(present) - set(expected))
    if extra:
        raise BundleError(f"bundle {directory}: file {extra[0]} is not in {CHECKSUMS}")
    for name in sorted(expected):
        if file_sha256(directory / name) != expected[name]:
            raise BundleError(
                f"bundle {directory}: {name} was changed (SHA-256 differs from {CHECKSUMS}); "
                "refused"
            )
    if text != _checksums_text(directory, list(expected)):
        raise BundleError(f"bundle {directory}: {CHECKSUMS} was changed; refused")
    if MANIFEST not in expected:
        raise BundleError(f"bundle {directory}: {MANIFEST} is missing")
    return expected


def seal(directory: str | Path) -> str:
    """Write ``checksums.sha256`` for every file of ``directory``; returns the bundle hash."""
    directory = Path(directory)
    names = _files(directory)
    (directory / CHECKSUMS).write_text(_checksums_text(directory, names))
    return file_sha256(directory / MANIFEST)


def config_hash(config: dict) -> str:
    """SHA-256 of the run's config as canonical JSON (sorted keys)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _float(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def cohort_summary(split: pd.DataFrame) -> dict:
    """Training cohort summary from the split table: n, events, centres, and per cohort."""
    split = split.copy()
    split["label"] = pd.to_numeric(split["label"])
    train = split[split["cohort"] == "train"]
    centres = sorted(train["center"].astype(str).unique()) if "center" in train else []
    per_cohort = {
        str(c): {"n": int(len(g)), "events": int(g["label"].sum())}
        for c, g in split.groupby("cohort", sort=True)
    }
    return {
        "n": int(len(train)),
        "events": int(train["label"].sum()),
        "event": "label 1 (positive class)",
        "centres": centres,
        "cohorts": per_cohort,
    }


def model_performance(metrics: pd.DataFrame, model: str) -> dict:
    """The model's AUCs from metrics.tsv: nested CV (mean, SD), test and external cohorts."""
    from npc_radiomics.metrics import original_rows

    rows = original_rows(metrics)
    rows = rows[rows["model"] == model]
    out: dict[str, Any] = {"cohorts": {}}
    for row in rows.itertuples(index=False):
        entry = {
            "n": int(row.n),
            "auc": _float(row.auc),
            "auc_ci_low": _float(row.auc_ci_low),
            "auc_ci_high": _float(row.auc_ci_high),
        }
        if row.cohort == "nested_cv" and "auc_sd" in rows.columns:
            entry["auc_sd"] = _float(row.auc_sd)
        out["cohorts"][str(row.cohort)] = entry
    nested = out["cohorts"].get("nested_cv", {})
    test = out["cohorts"].get("test", {})
    out["nested_cv_auc"] = nested.get("auc")
    out["test_auc"] = test.get("auc")
    return out


def model_threshold(thresholds: pd.DataFrame, model: str) -> dict:
    """The model's decision threshold and its source from thresholds.tsv (model, threshold,
    source)."""
    missing = [c for c in ("model", "threshold", "source") if c not in thresholds.columns]
    if missing:
        raise InputError(f"thresholds.tsv: missing column(s) {missing}")
    rows = thresholds[thresholds["model"] == model]
    if rows.empty:
        return {"value": None, "source": f"no threshold for {model} in thresholds.tsv"}
    row = rows.iloc[0]
    return {"value": _float(row["threshold"]), "source": str(row["source"])}


def extractor_versions(provenance: pd.DataFrame) -> dict[str, str]:
    """pyradiomics' ``Versions_*`` diagnostics of the training run's extraction.

    ``provenance``: results/features/provenance.tsv (patient_id, sequence, reader, key,
    value). Raises InputError if the cases were extracted with different versions."""
    rows = provenance[provenance["key"].astype(str).str.startswith("Versions_")]
    out = {}
    for key, g in rows.groupby("key", sort=True):
        values = sorted(g["value"].astype(str).unique())
        if len(values) > 1:
            raise InputError(f"features/provenance.tsv: cases extracted with {key} {values}")
        out[str(key)] = values[0]
    return out


def write_bundle(
    directory: str | Path,
    *,
    pipeline,
    model: str,
    choice: dict,
    thresholds: pd.DataFrame,
    metrics: pd.DataFrame,
    split: pd.DataFrame,
    settings: dict,
    config: dict,
    zscore_path: str | Path | None = None,
    params_path: str | Path | None = None,
    feature_provenance: pd.DataFrame | None = None,
    sequence_params: dict[str, str | Path] | None = None,
    train_X: pd.DataFrame | None = None,
) -> dict:
    """Write one bundle directory (replacing its contents); returns the manifest.

    Args:
        pipeline: the fitted Pipeline (fitted on a DataFrame, so it knows its feature
            names in order).
        model: its name in the zoo; choice: how it was chosen (chosen_model.json, or a
            note that it is one of every model's bundles).
        thresholds, metrics, split: results/evaluation/thresholds.tsv, metrics.tsv and
            results/split/split.tsv.
        settings: ``input`` (``images`` or ``features_table``), ``sequences``,
            ``outcome``, ``preprocessing`` (n4, resample, normalization reference),
            ``mask_label``, ``crop_margin_mm``, ``geometry_tolerance``, ``id_column``,
            ``clinical_coding`` (optional: :func:`npc_radiomics.inputs.sheets.categorical_coding`).
        config: the run's whole config (hashed, and its seed recorded).
        zscore_path, params_path, feature_provenance: images runs only.
        sequence_params: sequence -> its pyradiomics params file (features.params_per_sequence
            over features.params); a file that differs from ``params_path`` is copied as
            ``pyradiomics_params_<sequence>.yaml``, so predict mode extracts each sequence
            as training did.
        train_X: the training patients' rows as the pipeline was fitted on them
            (``Design.train()``); gives the novelty reference (:mod:`npc_radiomics.deploy.novelty`),
            stored in the manifest as plain numbers (``novelty``). None: no reference.

    The manifest also records (images runs) the masks' settings (``masks.roi``,
    ``masks.structures``, ``masks.components``), each sequence's preprocessing ROI-box
    margin as training resolved it (``preprocess_crop_margin_mm``) and each sequence's
    params file (``pyradiomics_params_by_sequence``).
    """
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    if pipeline is None:
        return write_empty_bundle(
            directory, model, f"model {model} has no fitted pipeline (its tuning failed)"
        )
    features = [str(f) for f in getattr(pipeline, "feature_names_in_", [])]
    if not features:
        raise InputError(f"model {model}: the pipeline does not record its feature names")
    types = dump_pipeline(pipeline, directory / PIPELINE_FILE)
    images = settings["input"] == "images"
    zscore = None
    params_by_sequence: dict[str, str] = {}
    if images:
        shutil.copyfile(params_path, directory / PARAMS_FILE)
        shutil.copyfile(zscore_path, directory / ZSCORE_FILE)
        shared = Path(params_path).read_bytes()
        for sequence in settings["sequences"]:
            own = (sequence_params or {}).get(sequence)
            if own is None or Path(own).read_bytes() == shared:
                params_by_sequence[str(sequence)] = PARAMS_FILE
                continue
            name = SEQUENCE_PARAMS_FILE.format(sequence=sequence)
            shutil.copyfile(own, directory / name)
            params_by_sequence[str(sequence)] = name
        table = pd.read_csv(directory / ZSCORE_FILE, sep="\t")
        zscore = {
            "file": ZSCORE_FILE,
            "reference": sorted(table["reference"].astype(str).unique()),
            "sequences": {
                str(r.sequence): {
                    "mean": float(r.mean),
                    "sd": float(r.sd),
                    "n_voxels": int(r.n_voxels),
                    "n_patients": int(r.n_patients),
                }
                for r in table.itertuples(index=False)
            },
        }
    outcome = dict(settings["outcome"])
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model,
        "choice": choice,
        "input": settings["input"],
        "id_column": settings.get("id_column", "patient_id"),
        "features": features,
        "n_selected_features": len(pipeline[:-1].get_feature_names_out(features)),
        "sequences": list(settings["sequences"]) if images else [],
        "outcome": {
            **outcome,
            "coding": {
                "1": outcome.get("positive_label", "positive"),
                "0": outcome.get("negative_label", "negative"),
            },
            "probability_of": 1,
        },
        "threshold": model_threshold(thresholds, model),
        "preprocessing": (
            {
                "n4": settings["preprocessing"]["n4"],
                "resample": settings["preprocessing"]["resample"],
                "mask_label": (
                    None if settings["mask_label"] is None else int(settings["mask_label"])
                ),
                "crop_margin_mm": float(settings["crop_margin_mm"]),
                "geometry_tolerance": float(settings["geometry_tolerance"]),
                "zscore": zscore,
                "pyradiomics_params": PARAMS_FILE,
                # Per-sequence settings and non-default normalisation / interpolation:
                # recorded so that predict mode can refuse what it does not reproduce yet.
                "normalization": {
                    k: v
                    for k, v in settings["preprocessing"].get("normalization", {}).items()
                    if k != "reference"
                },
                "per_sequence": settings["preprocessing"].get("per_sequence") or {},
                "params_per_sequence": settings.get("params_per_sequence") or {},
                # What predict mode reproduces per sequence: the params file in the
                # bundle, the ROI box margin training resolved, the masks' settings.
                "pyradiomics_params_by_sequence": params_by_sequence,
                "preprocess_crop_margin_mm": {
                    str(k): (None if v is None else float(v))
                    for k, v in (settings.get("preprocess_crop_margin_mm") or {}).items()
                },
                "masks": {
                    "roi": dict(settings.get("masks", {}).get("roi") or {}),
                    "structures": settings.get("masks", {}).get("structures", "merge"),
                    "components": settings.get("masks", {}).get("components", "merge"),
                },
            }
            if images
            else None
        ),
        "training": cohort_summary(split),
        "performance": model_performance(metrics, model),
        "software": software_versions(PIPELINE_PACKAGES),
        "extractor": (
            extractor_versions(feature_provenance)
            if images and feature_provenance is not None
            else {}
        ),
        "serialised_types": types,
        "novelty": novelty_reference(pipeline, train_X) if train_X is not None else None,
        # How each categorical clinical variable was coded (text levels sorted, the first
        # the reference), e.g. for ComBat covariates.
        "clinical_coding": settings.get("clinical_coding") or {},
        "config_sha256": config_hash(config),
        "seed": config.get("seed"),
    }
    files = sorted(p.name for p in directory.iterdir() if p.is_file())
    manifest["files"] = {name: file_sha256(directory / name) for name in files}
    from npc_radiomics.base.io import write_json

    write_json(manifest, directory / MANIFEST)
    bundle_hash = seal(directory)
    log.info(
        "bundle %s: model %s, %d features, hash %s", directory, model, len(features), bundle_hash
    )
    return manifest


def selected_space(pipeline, X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Rows of ``X`` (the pipeline's input columns) as the classifier sees them: through
    every fitted step but the last (transform only). Returns (array, feature names)."""
    head = pipeline[:-1]
    Z = np.asarray(head.transform(X[list(pipeline.feature_names_in_)]), dtype=float)
    names = [str(n) for n in head.get_feature_names_out(list(pipeline.feature_names_in_))]
    return Z, names


def novelty_reference(pipeline, train_X: pd.DataFrame) -> dict:
    """The novelty reference of the training rows (:func:`npc_radiomics.deploy.novelty.fit_novelty`
    in :func:`selected_space`)."""
    from npc_radiomics.deploy.novelty import fit_novelty

    Z, names = selected_space(pipeline, train_X)
    return fit_novelty(Z, names)


def write_empty_bundle(directory: str | Path, model: str | None, reason: str) -> dict:
    """A sealed bundle that holds no model (every model failed, or this one did): the run
    goes on and shows the gap; :func:`load_bundle` refuses it with the reason."""
    from npc_radiomics.base.io import write_json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model,
        "failed": True,
        "reason": reason,
        "files": {},
    }
    write_json(manifest, directory / MANIFEST)
    seal(directory)
    log.error("bundle %s holds no model: %s", directory, reason)
    return manifest


def bundle_rule(inputs, params, out_dir, model: str | None = None) -> str:
    """Rule ``bundle`` (chosen model) / ``bundle_model`` (``model`` given): one bundle.

    ``inputs``: chosen, pipelines (every model's, in ``params.models`` order), thresholds,
    metrics, split[, zscore, params, feature_provenance]. Returns the line to log.
    """
    from npc_radiomics.modelling.persistence import load_pipeline

    choice = json.loads(Path(inputs.chosen).read_text())
    if model is None:
        model = choice.get("model")
        if model is None:
            write_empty_bundle(out_dir, None, f"no model to bundle: {choice.get('reason')}")
            return f"no model to bundle: {choice.get('reason')}"
    else:
        choice = {
            "model": model,
            "chosen": model == choice.get("model"),
            "reason": f"bundle of every model (bundle.models: all); chosen: {choice.get('model')}",
        }
    pipeline = load_pipeline(list(inputs.pipelines)[list(params.models).index(model)])
    images = params.settings["input"] == "images"
    train_X = None
    if pipeline is not None and "features" in inputs.keys():
        from npc_radiomics.modelling.design import load_rule_design

        design_inputs = {
            "features": inputs.features,
            "split": inputs.design_split,
            "robust": inputs.get("robust", None),
            "clinical": inputs.get("clinical", None),
        }
        design = load_rule_design(_Items(design_inputs), _Items(dict(params.design)))
        train_X = design.train()[0]
    manifest = write_bundle(
        out_dir,
        pipeline=pipeline,
        model=model,
        choice=choice,
        thresholds=pd.read_csv(inputs.thresholds, sep="\t"),
        metrics=pd.read_csv(inputs.metrics, sep="\t"),
        split=pd.read_csv(inputs.split, sep="\t", dtype={"patient_id": str}),
        settings={**params.settings, "clinical_coding": params.get("clinical_coding") or {}},
        config=dict(params.config),
        zscore_path=inputs.zscore if images else None,
        params_path=inputs.params if images else None,
        feature_provenance=(
            pd.read_csv(inputs.feature_provenance, sep="\t", dtype=str) if images else None
        ),
        train_X=train_X,
        sequence_params=(
            dict(zip(params.settings["sequences"], inputs.sequence_params, strict=True))
            if images and "sequence_params" in inputs.keys()
            else None
        ),
    )
    if manifest.get("failed"):
        return f"bundle of {model}: no model ({manifest['reason']})"
    return f"bundle of {model}: {len(manifest['features'])} input features -> {out_dir}"


class _Items(dict):
    """A dict with attribute access (a Snakemake input / params stand-in)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Bundle:
    """A verified bundle: its directory, manifest, hash and (optionally) the pipeline."""

    directory: Path
    manifest: dict
    hash: str
    pipeline: Any = None

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def threshold(self) -> float | None:
        return self.manifest["threshold"]["value"]

    def path(self, name: str) -> Path:
        return self.directory / name


def version_differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """'name bundle X, here Y' for each package whose versions differ."""
    return [
        f"{name} {recorded[name]} in the bundle, {current.get(name, 'not installed')} here"
        for name in sorted(recorded)
        if current.get(name, "not installed") != recorded[name]
    ]


def check_extractor_version(
    manifest: dict, version: str | None, allow_mismatch: bool = False, where: str = "here"
) -> None:
    """Refuse features from another pyradiomics version than the bundle's (not comparable)
    unless ``allow_mismatch``; then warn. ``version`` None = cannot tell (no check)."""
    recorded = manifest.get("extractor", {}).get(EXTRACTOR_VERSION_KEY)
    # pyradiomics' diagnostics and radiomics.__version__ may or may not carry a "v".
    if recorded is None or version is None or str(version).lstrip("v") == str(recorded).lstrip("v"):
        return
    message = (
        f"pyradiomics {version} {where} but the bundle's features were extracted with "
        f"{recorded}: features would not be comparable"
    )
    if not allow_mismatch:
        raise BundleError(f"{message} (set predict.allow_extractor_mismatch: true to override)")
    warnings.warn(f"{message} (overridden by predict.allow_extractor_mismatch)", stacklevel=2)
    log.warning("%s (overridden)", message)


def installed_extractor_version() -> str | None:
    """The importable pyradiomics' version, or None when it is not installed here."""
    try:
        import radiomics
    except ImportError:
        return None
    return str(radiomics.__version__)


def load_bundle(
    directory: str | Path, *, load_model: bool = True, allow_extractor_mismatch: bool = False
) -> Bundle:
    """Verify and load a bundle.

    Every file's SHA-256 is checked (:func:`verify_checksums`), the manifest's format and
    file list too; package versions that differ from the bundle's give one warning naming
    them; another pyradiomics than the one that made the training features is refused
    (where pyradiomics is importable) unless ``allow_extractor_mismatch``. With
    ``load_model`` the pipeline is loaded trusting only :data:`TRUSTED_TYPES`.

    Raises:
        BundleError: one line naming the bundle and the problem.
    """
    directory = Path(directory)
    sums = verify_checksums(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except ValueError:
        raise BundleError(f"bundle {directory}: {MANIFEST} is not valid JSON") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle {directory}: not an npc-radiomics bundle ({MANIFEST})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle {directory}: format version {manifest.get('format_version')}, this "
            f"workflow reads {FORMAT_VERSION}"
        )
    if manifest.get("failed"):
        raise BundleError(f"bundle {directory} holds no model: {manifest.get('reason')}")
    listed = manifest.get("files", {})
    for name, digest in sorted(listed.items()):
        if sums.get(name) != digest:
            raise BundleError(f"bundle {directory}: {name} differs from {MANIFEST}'s checksum")
    needed = [PIPELINE_FILE] + ([PARAMS_FILE, ZSCORE_FILE] if manifest["input"] == "images" else [])
    if manifest["input"] == "images":
        by_sequence = manifest["preprocessing"].get("pyradiomics_params_by_sequence") or {}
        needed += sorted(set(by_sequence.values()) - set(needed))
    for name in needed:
        if name not in listed:
            raise BundleError(f"bundle {directory}: {MANIFEST} lists no {name}")
    differences = version_differences(
        manifest.get("software", {}), software_versions(PIPELINE_PACKAGES)
    )
    if differences:
        message = f"bundle {directory} was made with other package versions: " + "; ".join(
            differences
        )
        warnings.warn(message, stacklevel=2)
        log.warning("%s", message)
    if manifest["input"] == "images":
        check_extractor_version(manifest, installed_extractor_version(), allow_extractor_mismatch)
    bundle = Bundle(directory, manifest, file_sha256(directory / MANIFEST))
    if load_model:
        bundle.pipeline = load_pipeline_file(directory / PIPELINE_FILE)
        names = [str(f) for f in getattr(bundle.pipeline, "feature_names_in_", [])]
        if names != bundle.features:
            raise BundleError(f"bundle {directory}: pipeline features differ from {MANIFEST}")
    return bundle


def bundle_rows(
    bundle: Bundle, table: pd.DataFrame, id_column: str = "patient_id", centres=None
) -> pd.DataFrame:
    """The rows of a wide feature table as the bundle's pipeline takes them (its columns
    in order, indexed by ``id_column``; ComBat's centre column from ``centres`` or a
    ``center`` column)."""
    from npc_radiomics.modelling.harmonize import CENTRE_COLUMN, is_auxiliary

    features = [f for f in bundle.features if not is_auxiliary(f)]
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise InputError(
            f"feature table lacks {len(missing)} feature(s) the bundle needs, e.g. {missing[:3]}"
        )
    X = table.set_index(id_column)[features].astype(float)
    aux = [f for f in bundle.features if is_auxiliary(f)]
    if aux:
        if aux != [CENTRE_COLUMN]:
            raise InputError(
                f"the bundle's ComBat step needs covariate column(s) {aux[1:]}, which predict "
                "mode has no clinical table for; bundle a model fitted without covariates"
            )
        if centres is None and "center" in table.columns:
            centres = dict(
                zip(table[id_column].astype(str), table["center"].astype(str), strict=True)
            )
        if centres is None:
            raise InputError("the bundle's ComBat step needs each patient's centre")
        X[CENTRE_COLUMN] = [str(centres[str(p)]) for p in X.index]
        X = X[bundle.features]
    return X


def predict_probabilities(
    bundle: Bundle, table: pd.DataFrame, id_column: str = "patient_id", centres=None
):
    """Probability of the positive class for each row of a wide feature table.

    ``table`` must hold every feature of the bundle (extra columns are ignored); columns
    are taken in the bundle's order. A bundle whose pipeline starts with ComBat
    (npc_radiomics.modelling.harmonize) also needs each patient's centre: ``centres`` (a mapping
    patient_id -> centre) or a ``center`` column of ``table``. Returns a float array in
    the table's row order.
    """
    X = bundle_rows(bundle, table, id_column, centres)
    return bundle.pipeline.predict_proba(X)[:, 1]


def predict_novelty(
    bundle: Bundle, table: pd.DataFrame, id_column: str = "patient_id", centres=None
) -> tuple[np.ndarray, np.ndarray]:
    """(novelty score, flag) per row of a wide feature table against the bundle's training
    patients (:mod:`npc_radiomics.deploy.novelty`); NaN for a bundle without a reference."""
    from npc_radiomics.deploy.novelty import novelty_scores

    reference = bundle.manifest.get("novelty")
    if not reference or reference.get("location") is None:
        return novelty_scores(None, np.zeros((len(table), 0)))
    Z, _ = selected_space(bundle.pipeline, bundle_rows(bundle, table, id_column, centres))
    return novelty_scores(reference, Z)
