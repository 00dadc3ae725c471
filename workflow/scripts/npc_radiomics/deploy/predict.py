"""Predict mode (pipeline step 20): score new patients with a frozen model bundle.

Nothing is fitted here and no training file is read: preprocessing uses the bundle's
N4 / resampling / crop settings, the z-score uses the bundle's frozen statistics, the
extraction the bundle's pyradiomics params, and the fitted pipeline only predicts.
:func:`predict_setup` checks everything that can be checked before any job (the bundle's
checksums and types, the sample sheet against the bundle's sequences, the outcomes), so
bad input stops the run with one line and nothing is written under ``results/predict/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.deploy.bundle import Bundle, check_extractor_version, load_bundle
from npc_radiomics.inputs import sheets

log = logging.getLogger(__name__)

#: Columns of results/predict/predictions.tsv: one row per patient of the sheet; a patient
#: excluded at QC has status ``excluded``, the QC reason and no probability.
PREDICT_COLUMNS = [
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
#: status of a scored patient / of one QC excluded (qc.on_fail: exclude).
SCORED = "scored"
EXCLUDED = "excluded"
#: Cohort name of the new patients in the metrics and curve tables.
PREDICT_COHORT = "predict"
#: Metric columns of a predict run's metrics.tsv left NaN when no patient was scored.
EMPTY_METRICS = [
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "accuracy",
    "sensitivity",
    "specificity",
    "threshold",
    "brier",
    "hl_p",
]
#: Centre written for sheets without a ``center`` column.
DEFAULT_CENTER = "new"


@dataclass
class PredictSetup:
    """What predict mode knows before any job: the bundle, the sheet and any outcomes."""

    bundle: Bundle
    samples: pd.DataFrame
    outcomes: dict[str, int] | None = None
    settings: dict = field(default_factory=dict)

    @property
    def sequences(self) -> list[str]:
        return list(self.bundle.manifest["sequences"])

    @property
    def patients(self) -> list[str]:
        return sorted(self.samples["patient_id"].unique())


def read_predict_samples(
    path: str | Path, sequences: list[str], outcome: str, base_dir: str | Path | None = None
) -> tuple[pd.DataFrame, dict[str, int] | None]:
    """The sample sheet of new patients, checked against the bundle's sequences.

    Same format as training (``patient_id, sequence, image, mask``; ``center`` optional);
    no clinical table. An optional ``outcome`` column (0/1, the same for every row of a
    patient) gives outcomes. Returns (sheet sorted like training, outcomes or None).
    """
    sheet = sheets.read_sheet(path, "predict sample sheet")
    if "center" not in sheet.columns:
        sheet["center"] = DEFAULT_CENTER
    for i, row in sheet.iterrows():
        name = str(row.get("sequence", "")).strip()
        if "sequence" in sheet.columns and name and name not in sequences:
            raise InputError(
                f"predict sample sheet {sheets.line_of(sheet, i)}: sequence {name!r} of patient "
                f"{row.get('patient_id', '?')} is unknown to the bundle (its sequences: "
                f"{sequences})"
            )
    present = (
        sheet.groupby("patient_id")["sequence"].apply(set)
        if {"patient_id", "sequence"} <= set(sheet.columns)
        else {}
    )
    for pid in sorted(present.index if len(present) else []):
        lacking = [s for s in sequences if s not in present[pid]]
        if lacking:
            raise InputError(
                f"predict sample sheet: patient {pid} has no row for sequence(s) {lacking} "
                "that the bundle needs"
            )
    outcomes = None
    if outcome in sheet.columns:
        outcomes = _outcomes_from(sheet[["patient_id", outcome]], outcome, "predict sample sheet")
    centers = sorted(set(sheet["center"].astype(str).str.strip()) - {""})
    samples = sheets.validate_samples(
        sheet.drop(columns=[outcome], errors="ignore"), sequences, centers, base_dir=base_dir
    )
    return samples, outcomes


def _outcomes_from(table: pd.DataFrame, outcome: str, what: str) -> dict[str, int]:
    """patient_id -> 0/1 from a table; one value per patient."""
    out: dict[str, int] = {}
    for i, pid, value in zip(table.index, table["patient_id"], table[outcome], strict=True):
        text = str(value).strip()
        if text not in ("0", "1", "0.0", "1.0"):
            raise InputError(
                f"{what} {sheets.line_of(table, i)}: outcome {outcome!r} of patient {pid} is "
                f"{text!r}; must be 0 or 1"
            )
        label = int(float(text))
        if out.setdefault(str(pid), label) != label:
            raise InputError(
                f"{what} {sheets.line_of(table, i)}: patient {pid} has two different outcomes"
            )
    return out


def read_outcomes(path: str | Path, outcome: str, patients: list[str]) -> dict[str, int]:
    """Outcomes of the new patients from a table (``patient_id`` + the bundle's outcome
    column); every patient of the sheet needs one."""
    table = sheets.read_sheet(path, "predict outcomes table")
    for column in ("patient_id", outcome):
        if column not in table.columns:
            raise InputError(f"predict outcomes table {path}: missing column {column!r}")
    out = _outcomes_from(table, outcome, f"predict outcomes table {path}")
    missing = [p for p in patients if p not in out]
    if missing:
        raise InputError(f"predict outcomes table {path}: no outcome for patient {missing[0]}")
    return {p: out[p] for p in patients}


def bundle_sequence_settings(manifest: dict, where: str = "the bundle") -> dict[str, dict]:
    """Each sequence's preprocessing and extraction exactly as the training run did them,
    from the bundle's manifest: N4, the image interpolator and the normalisation
    (``preprocessing.per_sequence`` over the global settings, resolved by the same
    function as training, :func:`npc_radiomics.imaging.preprocess.sequence_preprocessing`),
    the ROI box margin training resolved, and the pyradiomics params file in the bundle.

    Raises:
        InputError: a bundle written before per-sequence params files were stored in it
            (it names features.params_per_sequence but holds only the shared file).
    """
    from npc_radiomics.deploy.bundle import PARAMS_FILE
    from npc_radiomics.imaging.preprocess import sequence_preprocessing

    prep = manifest["preprocessing"]
    as_config = {
        # A bundle written before n4.fit_spacing_mm existed was fitted with the factor alone.
        "n4": {"fit_spacing_mm": None, **prep["n4"]},
        "resample": {"interpolator": "bspline", **prep["resample"]},
        "normalization": {"method": "zscore", "window": None, **(prep.get("normalization") or {})},
        "per_sequence": prep.get("per_sequence") or {},
    }
    by_sequence = prep.get("pyradiomics_params_by_sequence")
    if by_sequence is None and prep.get("params_per_sequence"):
        raise InputError(
            f"{where} was trained with features.params_per_sequence but does not hold those "
            "params files (written by an older workflow); bundle the model again"
        )
    crops = prep.get("preprocess_crop_margin_mm") or {}
    out = {}
    for sequence in manifest["sequences"]:
        resolved = sequence_preprocessing(as_config, sequence)
        out[sequence] = {
            "n4": resolved["n4"],
            "interpolator": resolved["interpolator"],
            "normalization": resolved["normalization"],
            # None (a bundle without it): the whole field of view, whose features equal
            # the cropped ones (preprocessing.crop_margin_mm: auto).
            "crop_margin_mm": crops.get(sequence),
            "params": (by_sequence or {}).get(sequence, PARAMS_FILE),
        }
    return out


def predict_setup(
    predict_cfg: dict, base_dir: str | Path | None = None, roi: dict[str, str] | None = None
) -> PredictSetup:
    """Everything predict mode checks before any job (config ``predict``).

    Loads the bundle (checksums, types, versions), refuses a bundle made from a ready
    feature table (it has no image settings), reads the sheet and the outcomes, and
    resolves each sequence's settings from the bundle (:func:`bundle_sequence_settings`).
    Masks may be label images or DICOM RTSTRUCT / SEG files as in training: their ROI is
    the sheet's ``mask_roi`` column, else ``roi`` (the predict run's config ``masks.roi``),
    else the bundle's ``masks.roi``; ``masks.structures`` and ``masks.components`` are
    the bundle's.
    """
    from npc_radiomics.inputs.dicom_masks import annotate_mask_kinds

    allow = bool(predict_cfg.get("allow_extractor_mismatch", False))
    bundle = load_bundle(predict_cfg["bundle"], allow_extractor_mismatch=allow)
    manifest = bundle.manifest
    if manifest["input"] != "images":
        raise InputError(
            f"bundle {predict_cfg['bundle']} was trained on a ready feature table "
            f"({manifest['input']}): it has no imaging settings and cannot score images"
        )
    outcome = manifest["outcome"]["column"]
    samples, outcomes = read_predict_samples(
        predict_cfg["samples"], list(manifest["sequences"]), outcome, base_dir
    )
    if predict_cfg.get("outcomes"):
        if outcomes is not None:
            raise InputError(
                f"predict: outcomes given twice (column {outcome!r} in the sample sheet and "
                "predict.outcomes)"
            )
        outcomes = read_outcomes(
            predict_cfg["outcomes"], outcome, sorted(samples["patient_id"].unique())
        )
    prep = manifest["preprocessing"]
    masks = {"roi": {}, "structures": "merge", "components": None, **(prep.get("masks") or {})}
    samples = annotate_mask_kinds(samples, {**masks["roi"], **(roi or {})})
    settings = {
        # A bundle written before n4.fit_spacing_mm existed was fitted with the factor alone.
        "n4": {"fit_spacing_mm": None, **prep["n4"]},
        "spacing_mm": prep["resample"]["spacing_mm"],
        "crop_margin_mm": prep["crop_margin_mm"],
        "sequences": bundle_sequence_settings(manifest, f"bundle {predict_cfg['bundle']}"),
        # None: the training run took binary masks only (qc.mask_label null).
        "mask_label": None if prep.get("mask_label") is None else int(prep["mask_label"]),
        "geometry_tolerance": float(prep["geometry_tolerance"]),
        # components None: a bundle written before it was recorded (the run's config then).
        "masks": masks,
    }
    return PredictSetup(bundle=bundle, samples=samples, outcomes=outcomes, settings=settings)


# ------------------------------------------------------------------- the predict rule
def case_extractor_versions(provenance_paths) -> set[str]:
    """pyradiomics versions recorded by the predict extraction jobs (their diagnostics)."""
    from npc_radiomics.deploy.bundle import EXTRACTOR_VERSION_KEY

    versions = set()
    for path in provenance_paths:
        table = pd.read_csv(path, sep="\t", dtype=str)
        versions |= set(table.loc[table["key"] == EXTRACTOR_VERSION_KEY, "value"])
    return versions


def excluded_patients(qc: pd.DataFrame) -> dict[str, str]:
    """patient_id -> reason for every patient QC excluded (its failing cases' reasons, in
    the QC table's order, joined by '; ')."""
    if "patient_status" not in qc.columns:
        return {}
    out: dict[str, str] = {}
    rows = qc[qc["patient_status"] == EXCLUDED]
    for pid, group in rows.groupby("patient_id", sort=True):
        failing = group[group.get("status", pd.Series("fail", index=group.index)) != "pass"]
        reasons = [str(r) for r in failing.get("reason", pd.Series(dtype=str)) if str(r)]
        out[str(pid)] = "; ".join(reasons) or "excluded at QC"
    return out


def predictions_table(
    bundle: Bundle,
    features: pd.DataFrame,
    centres=None,
    excluded: dict[str, str] | None = None,
) -> pd.DataFrame:
    """patient_id, probability, predicted_class (1 = probability >= the bundle's threshold,
    empty without a threshold), novelty_score and novelty_flag (the Mahalanobis distance to
    the training patients, and 1 above the bundle's threshold: deploy/novelty.py; empty
    for a bundle without a reference), model, bundle_hash, status (``scored``), reason;
    rows sorted by patient. ``centres`` (patient_id -> centre) feeds a bundle that
    harmonises with ComBat. ``excluded`` (patient_id -> reason) adds a row for each
    patient QC excluded: status ``excluded``, the reason, probability NaN."""
    from npc_radiomics.deploy.bundle import predict_novelty, predict_probabilities

    features = features.sort_values("patient_id", kind="mergesort")
    prob = (
        predict_probabilities(bundle, features, centres=centres) if len(features) else np.zeros(0)
    )
    novelty, flag = (
        predict_novelty(bundle, features, centres=centres)
        if len(features)
        else (np.zeros(0), np.zeros(0))
    )
    threshold = bundle.threshold
    predicted = (
        pd.array((prob >= threshold).astype(int), dtype="Int64")
        if threshold is not None
        else pd.array([pd.NA] * len(prob), dtype="Int64")
    )
    scored = pd.DataFrame(
        {
            "patient_id": features["patient_id"].astype(str).to_numpy(),
            "probability": prob,
            "predicted_class": predicted,
            "novelty_score": novelty,
            "novelty_flag": pd.array(
                [pd.NA if np.isnan(f) else int(f) for f in flag], dtype="Int64"
            ),
            "model": bundle.model,
            "bundle_hash": bundle.hash,
            "status": SCORED,
            "reason": "",
        }
    )
    excluded = {p: r for p, r in (excluded or {}).items() if p not in set(scored["patient_id"])}
    if not excluded:
        return scored[PREDICT_COLUMNS]
    dropped = pd.DataFrame(
        {
            "patient_id": list(excluded),
            "probability": np.nan,
            "predicted_class": pd.array([pd.NA] * len(excluded), dtype="Int64"),
            "novelty_score": np.nan,
            "novelty_flag": pd.array([pd.NA] * len(excluded), dtype="Int64"),
            "model": bundle.model,
            "bundle_hash": bundle.hash,
            "status": EXCLUDED,
            "reason": list(excluded.values()),
        }
    )
    table = pd.concat([scored, dropped], ignore_index=True)
    table = table.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    return table[PREDICT_COLUMNS]


def exclusion_line(predictions_path: str | Path) -> str | None:
    """The console's one line after a predict run: how many patients were scored and how
    many QC excluded (named, up to 10). None without a predictions table."""
    path = Path(predictions_path)
    if not path.is_file():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "status" not in table.columns:
        return None
    excluded = sorted(table.loc[table["status"] == EXCLUDED, "patient_id"])
    line = f"predict: {len(table) - len(excluded)} of {len(table)} patients scored"
    if not excluded:
        return line + ", none excluded at QC"
    shown = ", ".join(excluded[:10]) + (", ..." if len(excluded) > 10 else "")
    return (
        f"{line}, {len(excluded)} excluded at QC and not scored ({shown}); the reasons are "
        f"in {path}"
    )


def outcome_evaluation(
    predictions: pd.DataFrame,
    outcomes: dict[str, int],
    threshold: float | None,
    *,
    ci_method: str,
    n_bootstrap: int,
    calibration_bins: int,
    dca_thresholds,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """External validation of the new cohort: metrics (AUC with CI, threshold metrics,
    Brier, Hosmer-Lemeshow), calibration curve and decision curve, no refitting."""
    from npc_radiomics.evaluation.dca import decision_curve, threshold_grid
    from npc_radiomics.metrics import calibration_curve, evaluate_one

    if "status" in predictions.columns:
        # Patients excluded at QC have no probability: the cohort is the scored patients.
        predictions = predictions[predictions["status"] == SCORED]
    model = str(predictions["model"].iloc[0]) if len(predictions) else ""
    row = {"model": model, "cohort": PREDICT_COHORT}
    if predictions.empty:
        # Every patient excluded at QC: no metric (NaN) and the reason, no curve.
        note = "no patient was scored (every patient excluded at QC)"
        metrics = pd.DataFrame([{**row, "n": 0, **dict.fromkeys(EMPTY_METRICS, np.nan)}])
        return {
            "metrics": metrics.assign(note=note),
            "calibration": pd.DataFrame(columns=["model", "cohort"]),
            "dca": pd.DataFrame(columns=["cohort"]),
            "note": note,
        }
    y = np.array([outcomes[p] for p in predictions["patient_id"]])
    p = predictions["probability"].to_numpy(dtype=float)
    row.update(
        evaluate_one(
            y,
            p,
            np.nan if threshold is None else threshold,
            ci_method=ci_method,
            n_bootstrap=n_bootstrap,
            hl_groups=calibration_bins,
            seed=seed,
        )
    )
    calibration = calibration_curve(y, p, calibration_bins).assign(
        model=model, cohort=PREDICT_COHORT
    )
    curve = decision_curve(y, p, threshold_grid(*dca_thresholds), model).assign(
        cohort=PREDICT_COHORT
    )
    return {"metrics": pd.DataFrame([row]), "calibration": calibration, "dca": curve}


def predict_rule(inputs, params, out) -> str:
    """Rule ``predict``: merge the new patients' features, check the extractor version,
    predict with the bundle, and (with outcomes) evaluate; write ``out``.

    ``inputs``: features (the batches' long tables), provenance, qc, bundle (the manifest
    path);
    ``params``: outcomes (dict or None), allow_extractor_mismatch, ci_method,
    n_bootstrap, calibration_bins, dca_thresholds, seed. Returns the line to log.
    """
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.imaging.features import merge_batch_features

    bundle = load_bundle(
        Path(inputs.bundle).parent, allow_extractor_mismatch=params.allow_extractor_mismatch
    )
    versions = case_extractor_versions(inputs.provenance)
    for version in sorted(versions):
        check_extractor_version(
            bundle.manifest,
            version,
            params.allow_extractor_mismatch,
            where="extracted the new patients' features",
        )
    qc = pd.read_csv(inputs.qc, sep="\t", dtype=str, keep_default_na=False)
    patients = sorted(qc.loc[qc["patient_status"] == "included", "patient_id"].unique())
    features = (
        merge_batch_features(inputs.features, "reader1", patients=patients)
        if patients
        else pd.DataFrame({"patient_id": pd.Series(dtype=str)})
    )
    centres = (
        dict(zip(qc["patient_id"], qc["center"], strict=True)) if "center" in qc.columns else None
    )
    excluded = excluded_patients(qc)
    predictions = predictions_table(bundle, features, centres, excluded)
    write_tsv(features, out.features)
    write_tsv(predictions, out.predictions)
    evaluation = None
    if params.outcomes:
        evaluation = outcome_evaluation(
            predictions,
            dict(params.outcomes),
            bundle.threshold,
            ci_method=params.ci_method,
            n_bootstrap=params.n_bootstrap,
            calibration_bins=params.calibration_bins,
            dca_thresholds=params.dca_thresholds,
            seed=params.seed,
        )
        write_tsv(evaluation["metrics"], out.metrics)
        write_tsv(evaluation["calibration"], out.calibration)
        write_tsv(evaluation["dca"], out.dca)
        _figures(evaluation, out)
    write_page(out.html, bundle, predictions, qc, evaluation, out)
    scored = int((predictions["status"] == SCORED).sum())
    line = f"{scored} patients scored with bundle {bundle.hash[:12]} ({bundle.model})"
    if excluded:
        line += f"; {len(excluded)} excluded at QC (rows with status excluded)"
        log.warning("%d patient(s) excluded at QC, not scored: %s", len(excluded), sorted(excluded))
    return line


def _figures(evaluation: dict, out) -> None:
    from npc_radiomics.figures import (
        figure_or_placeholder,
        placeholder_figure,
        plot_calibration_curves,
        plot_decision_curves,
    )

    if evaluation.get("note"):
        placeholder_figure(out.calibration_figure, evaluation["note"])
        placeholder_figure(out.dca_figure, evaluation["note"])
        return

    figure_or_placeholder(
        plot_calibration_curves, out.calibration_figure, evaluation["calibration"]
    )
    figure_or_placeholder(plot_decision_curves, out.dca_figure, evaluation["dca"])


def novelty_text(reference: dict | None, predictions: pd.DataFrame) -> str:
    """The predict page's line on novelty: how many patients lie outside the training
    distribution, and how that is decided."""
    if not reference or reference.get("location") is None:
        why = (reference or {}).get("reason") or "the bundle holds no novelty reference"
        return f"Novelty: not scored ({why})."
    flags = predictions["novelty_flag"].dropna()
    flagged = sorted(predictions.loc[predictions["novelty_flag"] == 1, "patient_id"])
    names = f": {', '.join(flagged)}" if flagged else ""
    return (
        f"Novelty: {len(flagged)} of {len(flags)} scored patients lie outside the training "
        f"distribution{names} (flag 1: Mahalanobis distance on the "
        f"{len(reference['features'])} selected features, Ledoit-Wolf covariance of the "
        f"{reference['n_train']} training patients, above {reference['threshold']:.3f}, the "
        f"{reference['threshold_source']}). A flagged patient's probability is an "
        "extrapolation: read it with care."
    )


def write_page(path, bundle: Bundle, predictions, qc, evaluation, out) -> None:
    """The short HTML page: bundle, QC exclusions, predictions and (with outcomes) the
    external-validation metrics, calibration and decision curves."""
    from npc_radiomics.report.html import Section, figure, table, text, write_report

    m = bundle.manifest
    threshold = m["threshold"]
    perf = m["performance"]
    training = m["training"]
    about = Section("bundle", "Model bundle")

    def number(value):
        return "n/a" if value is None else f"{value:.3f}"

    about.add(
        text(
            f"Model {m['model']} ({len(m['features'])} input features, "
            f"{m['n_selected_features']} after selection); bundle hash {bundle.hash}. "
            f"Decision threshold {number(threshold['value'])} ({threshold['source']}). "
            f"Probability of {m['outcome']['column']} = 1 ({m['outcome']['coding']['1']}). "
            f"Trained on {training['n']} patients ({training['events']} events) from "
            f"centre(s) {', '.join(training['centres'])}; nested-CV AUC "
            f"{number(perf['nested_cv_auc'])}, test AUC {number(perf['test_auc'])}."
        )
    )
    sections = [about]
    excluded = qc[qc.get("patient_status", pd.Series(dtype=str)) == "excluded"]
    qc_section = Section("qc", "Input QC")
    if len(excluded):
        qc_section.add(table(excluded[["patient_id", "sequence", "reason"]], "Excluded cases"))
    else:
        qc_section.add(text(f"All {qc['patient_id'].nunique()} patients passed QC."))
    sections.append(qc_section)
    sections.append(
        Section("predictions", "Predictions")
        .add(text(novelty_text(m.get("novelty"), predictions)))
        .add(table(predictions.drop(columns=["bundle_hash"]), digits=4))
    )
    if evaluation is not None:
        metrics = evaluation["metrics"]
        cols = ["n", "auc", "auc_ci_low", "auc_ci_high", "accuracy", "sensitivity"]
        cols += ["specificity", "threshold", "brier", "hl_p"]
        sections.append(
            Section("validation", "External validation of the new cohort")
            .add(table(metrics[cols], "Metrics at the bundle's threshold"))
            .add(figure(out.calibration_figure, "Calibration"))
            .add(figure(out.dca_figure, "Decision curve"))
        )
    write_report(
        path,
        "npc-radiomics predictions",
        "New patients scored with a frozen model bundle; nothing was refitted.",
        sections,
    )
