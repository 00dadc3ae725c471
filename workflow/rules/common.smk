# Shared set-up: config and sheet validation (start-up checks: npc_radiomics.checks),
# wildcard constraints and the settings derived from the config. Everything here runs when
# the DAG is built, so bad input stops the run before any job. The Snakefile has already
# merged the config over the defaults. Result paths: paths.smk; input functions:
# inputs.smk (and each stage's *_common.smk); default targets: targets.smk.
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from npc_radiomics.base.config import (
    SEED_STEPS,
    check_config_files,
    derived_seed,
    validate_config,
)
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.imaging.batches import plan_batches
from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs import sheets
from npc_radiomics import checks
from npc_radiomics.inputs import dicom_masks
from npc_radiomics.imaging.features import load_params as _load_radiomics_params
from npc_radiomics.imaging.preprocess import crop_margin_setting as _crop_margin_setting
from npc_radiomics.glue.snakemake_fixes import (
    limit_scheduler_wakeups,
    run_slurm_jobs_in_process,
)


def _warn(lines):
    """Print start-up warnings, one line each; the run goes on."""
    for line in lines:
        print(f"npc-radiomics warning: {line}", file=sys.stderr)


def _stop(err):
    """Print one clear line and stop before any job runs."""
    print(f"npc-radiomics input error: {err}", file=sys.stderr)
    raise SystemExit(1)


# The checks below stop a bad run before any job, so only the main process makes them.
# Every job process (a cluster job) evaluates this file again to
# find its own job: there they would repeat the main process's verdict and cost seconds
# per job (scikit-learn imports, the sheets' file checks, the clinical table).
MAIN_PROCESS = workflow.is_main_process

# One pending scheduler re-evaluation at most (Snakemake's timers pile up with every job).
limit_scheduler_wakeups(verbose=True)
# Inside a SLURM job, its rule runs in the job's own Snakemake process (no srun step and
# second Snakemake start-up per job); see npc_radiomics.glue.snakemake_fixes.
run_slurm_jobs_in_process(verbose=MAIN_PROCESS)

BASEDIR = Path(workflow.basedir)
SCHEMAS = BASEDIR / "workflow" / "schemas"


def resource_path(path):
    """A resources/ path: relative to the working directory if present there, else the repo's."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(BASEDIR / path)


try:
    if MAIN_PROCESS:
        from npc_radiomics.validation import (
            centres,
        )  # imports scikit-learn: main process only
        from npc_radiomics import checks

        _local_config = (
            ["config/config.yaml"] if os.path.exists("config/config.yaml") else []
        )
        check_config_files([*_local_config, *workflow.configfiles])
        validate_config(config, SCHEMAS / "config.schema.yaml")
        sheets.check_sequence_names(list(config["sequences"]))
        if not config["predict"]["samples"]:
            checks.check_centre_config(config)
            checks.check_subgroup_config(config)
except InputError as err:
    _stop(err)

# Predict mode (config predict.samples, rules in predict.smk): new patients are scored with
# a frozen bundle; the training sheets are never read, the bundle sets the sequences.
PREDICT = bool(config["predict"]["samples"])
SEQUENCES = list(config["sequences"])
TRAIN_CENTERS = list(config["cohorts"]["train_centers"])
EXTERNAL_CENTERS = list(config["cohorts"]["external_centers"])
OUTCOME = config["outcome"]["column"]
# The worksheet of an .xlsx input (None: its first sheet; sheets.read_sheet).
SAMPLES_SHEET = config["sheets"]["samples"]
CLINICAL_SHEET = config["sheets"]["clinical"]
FEATURES_SHEET = config["sheets"]["features_table"]
FEATURES_IN = bool(config.get("features_table")) and not PREDICT
DEMO = bool(config["demo"]["enabled"]) and not FEATURES_IN and not PREDICT
DEMO_DIR = "results/demo"

try:
    if PREDICT:
        from npc_radiomics.deploy.predict import predict_setup

        # The sheet's masks may be DICOM RTSTRUCT / SEG, with the bundle's ROI rules (this
        # run's masks.roi, then the sheet's mask_roi column, take precedence).
        PREDICT_SETUP = predict_setup(config["predict"], roi=config["masks"]["roi"])
        SEQUENCES = PREDICT_SETUP.sequences
        SAMPLES = pd.DataFrame(columns=list(sheets.SAMPLE_COLUMNS) + ["mask_reader2"])
        CLINICAL_TSV = None
    elif FEATURES_IN:
        SAMPLES = pd.DataFrame(columns=list(sheets.SAMPLE_COLUMNS) + ["mask_reader2"])
        CLINICAL_TSV = None
    elif DEMO:
        from npc_radiomics.inputs import demo as demo_cohort

        DEMO_SETTINGS = demo_cohort.load_settings(
            resource_path(config["demo"]["settings"])
        )
        if config["demo"]["preset"] not in DEMO_SETTINGS["presets"]:
            raise InputError(
                f"config key demo.preset: unknown preset {config['demo']['preset']!r} "
                f"(known: {sorted(DEMO_SETTINGS['presets'])})"
            )
        SAMPLES = sheets.validate_samples(
            demo_cohort.demo_sample_sheet(
                DEMO_SETTINGS, config["demo"]["preset"], DEMO_DIR
            ),
            SEQUENCES,
            TRAIN_CENTERS + EXTERNAL_CENTERS,
            check_files=False,
            checks=MAIN_PROCESS,
        )
        CLINICAL_TSV = f"{DEMO_DIR}/clinical.tsv"
        if MAIN_PROCESS:
            sheets.check_clinical_columns(
                demo_cohort.CLINICAL_COLUMNS, config, "the demo clinical table"
            )
            _labels = demo_cohort.response_labels(
                DEMO_SETTINGS,
                config["demo"]["preset"],
                derived_seed(config["seed"], "demo"),
            )
            checks.design_checks(config, SAMPLES, _labels)
            _warn(
                checks.centre_class_warnings(
                    config, centres.patient_labels(SAMPLES, _labels)
                )
            )
    else:
        # Relative paths resolve against the sheet's own folder.
        SAMPLES = sheets.validate_samples(
            sheets.read_sheet(config["samples"], "sample sheet", SAMPLES_SHEET),
            SEQUENCES,
            TRAIN_CENTERS + EXTERNAL_CENTERS,
            check_files=MAIN_PROCESS,
            # Job processes take the sheet the main process checked, unchecked.
            checks=MAIN_PROCESS,
        )
        if MAIN_PROCESS:
            _warn(SAMPLES.attrs.get("warnings", []))
        CLINICAL_TSV = config["clinical"]
        if MAIN_PROCESS:
            _clinical = sheets.read_clinical(
                CLINICAL_TSV,
                OUTCOME,
                config["clinical_variables"]["continuous"],
                config["clinical_variables"]["categorical"],
                config.get("evaluation", {}).get("biomarkers", []),
                sheet=CLINICAL_SHEET,
            )
            sheets.cross_check(SAMPLES, _clinical)
            _warn(checks.startup_checks(config, SAMPLES, _clinical))
            _warn(
                checks.centre_class_warnings(
                    config,
                    centres.patient_labels(
                        SAMPLES, _clinical.set_index("patient_id")[OUTCOME].to_dict()
                    ),
                )
            )
    # Which masks are DICOM RTSTRUCT / SEG files (rasterised by rule qc_batch) and their
    # ROI; the demo's files do not exist yet and are label images. Every process needs the
    # kinds (they route the masks' input functions).
    SAMPLES = dicom_masks.annotate_mask_kinds(
        SAMPLES, config["masks"]["roi"], check_files=not DEMO
    )
    # The predict sheet's rows, their DICOM masks annotated by predict_setup (the sheet's
    # mask_roi, else masks.roi, else the bundle's); rasterised by rule predict_qc_batch.
    PREDICT_SAMPLES = PREDICT_SETUP.samples if PREDICT else None
    if FEATURES_IN and MAIN_PROCESS:
        _warn(checks.check_features_input(config))
    if MAIN_PROCESS:
        from npc_radiomics.modelling.zoo import parse_search_spaces

        parse_search_spaces(config.get("search_spaces", {}), config["models"])
except InputError as err:
    _stop(err)

# Per-sequence preprocessing (preprocessing.per_sequence) and pyradiomics params
# (features.params_per_sequence); without overrides every sequence gets the global ones.
try:
    from npc_radiomics.imaging.preprocess import sequence_preprocessing

    for _key, _map in (
        (
            "preprocessing.per_sequence",
            config["preprocessing"].get("per_sequence") or {},
        ),
        (
            "features.params_per_sequence",
            config["features"].get("params_per_sequence") or {},
        ),
    ):
        for _seq in sorted(set(_map) - set(SEQUENCES)):
            raise InputError(
                f"config key {_key}: {_seq!r} is not a sequence (sequences: {SEQUENCES})"
            )
    SEQUENCE_PREPROCESSING = {
        s: sequence_preprocessing(config["preprocessing"], s) for s in SEQUENCES
    }
    if MAIN_PROCESS and not PREDICT:
        from npc_radiomics.checks import check_harmonization_config

        check_harmonization_config(config)
except InputError as err:
    _stop(err)


def params_file(sequence):
    """The pyradiomics params file of a sequence."""
    per_sequence = config["features"].get("params_per_sequence") or {}
    return resource_path(per_sequence.get(sequence, config["features"]["params"]))


# Each sequence's params file and normalization (rule extract_batch's params).
PARAMS_FILES = {sequence: params_file(sequence) for sequence in SEQUENCES}
NORMALIZATION = {s: SEQUENCE_PREPROCESSING[s]["normalization"] for s in SEQUENCES}
# The perturbations of robustness.method perturbation / both (rule perturb_batch).
PERTURBATION = dict(config["robustness"]["perturbation"])


TUNING_SETTINGS = asdict(TuningSettings.from_config(config))
N_TUNING_JOBS = int(config["tuning"]["n_jobs_per_model"])
MODELLING_ID = config["features_table_columns"]["id"] if FEATURES_IN else "patient_id"

PATIENTS = sorted(SAMPLES["patient_id"].unique())
# One dict lookup per input function call (a DataFrame .loc costs ~0.3 ms, per job).
_CASES = {
    (row["patient_id"], row["sequence"]): row for row in SAMPLES.to_dict("records")
}
CENTRE_OF = dict(zip(SAMPLES["patient_id"], SAMPLES["center"]))
CENTRES = sorted(set(CENTRE_OF.values()))
# The imaging stages (QC, preprocessing, extraction) run in batches of
# imaging.patients_per_job patients of one centre (npc_radiomics.imaging.batches): a new centre
# adds batches and leaves every other batch as it is.
PATIENTS_PER_JOB = int(config["imaging"]["patients_per_job"])
# Each batch job's cores: its cases in this many worker processes (results do not depend
# on it).
THREADS_PER_JOB = int(config["imaging"]["threads_per_job"])
BATCHES = plan_batches(CENTRE_OF, PATIENTS_PER_JOB)


wildcard_constraints:
    patient=r"[A-Za-z0-9_.-]+",
    # Names are letters and digits joined by single _ or - (schemas) and never end in a
    # results-path suffix (sheets.check_sequence_names): an exact alternation is unambiguous.
    sequence="|".join(re.escape(s) for s in SEQUENCES),
    model="|".join(config["models"]),
    batch=r"\d+",


def rule_seed(step):
    """Seed of one random step (one of config.SEED_STEPS), derived from the master seed."""
    assert (
        step in SEED_STEPS
    ), f"{step!r} is not in npc_radiomics.base.config.SEED_STEPS"
    return derived_seed(config["seed"], step)


def centre_constraint(centres):
    """A wildcard constraint matching exactly these centre names (none: nothing)."""
    return "|".join(re.escape(c) for c in centres) or "(?!)"


# ---- preprocessing: the ROI crop's margin per sequence (preprocess.smk) ----------------


def _crop_margins():
    """preprocessing.crop_margin_mm in mm (None: no crop) per sequence (its params file),
    at start-up, so a margin below features.crop_margin_mm stops the run before any job.
    """
    if PREDICT or FEATURES_IN:
        # Predict mode's extraction follows the bundle's settings, not this run's, so it
        # keeps the whole field of view.
        return {sequence: None for sequence in SEQUENCES}
    try:
        return {
            sequence: _crop_margin_setting(
                config["preprocessing"].get("crop_margin_mm"),
                _load_radiomics_params(params_file(sequence)),
                config["preprocessing"]["resample"]["spacing_mm"],
                config["features"]["crop_margin_mm"],
            )
            for sequence in SEQUENCES
        }
    except InputError as err:
        _stop(err)


CROP_MARGIN_MM = _crop_margins()
# Each sequence's preprocessing (the preprocess_batch params), preprocessing.per_sequence
# over the global settings, and the ROI box's margin (the box of the tumour and of the
# reader-2 mask, plus the margin, is resampled and kept).
PREPROCESS_SETTINGS = {
    s: {
        "n4": SEQUENCE_PREPROCESSING[s]["n4"],
        "interpolator": SEQUENCE_PREPROCESSING[s]["interpolator"],
        "crop_margin_mm": CROP_MARGIN_MM[s],
    }
    for s in SEQUENCES
}


# ---- the clinical rows a rule depends on ------------------------------------------------
# The training pool's rules read the clinical table as ancient() input (its time stamp
# never reruns them) and carry a hash of exactly their patients' rows as a param, so
# adding an external centre's rows to the table reruns none of them, while an edit of a
# pool patient's row does (Snakemake's params trigger).
_CLINICAL_TABLE = []


def clinical_rows_hash(patients):
    """SHA-256 of the clinical table's rows of ``patients`` (sheets.rows_digest): of the
    user's table, or of the demo's as its rule will write it (the same digest as a user
    run on those sheets)."""
    if PREDICT or FEATURES_IN:
        return None
    if not _CLINICAL_TABLE:
        if DEMO:
            text = demo_cohort.clinical_text(
                demo_cohort.demo_clinical(
                    DEMO_SETTINGS, config["demo"]["preset"], rule_seed("demo")
                )
            )
            _CLINICAL_TABLE.append(sheets.parse_sheet(text, "demo clinical table"))
        else:
            _CLINICAL_TABLE.append(
                sheets.read_sheet(CLINICAL_TSV, "clinical table", CLINICAL_SHEET)
            )
    return sheets.rows_digest(_CLINICAL_TABLE[0], patients)


_CLINICAL_CODING = []


def clinical_coding():
    """How each categorical clinical variable enters the models (sheets.categorical_coding:
    text levels sorted, the first the reference, dummies for the others), for the
    provenance record and the bundle; {} without a clinical table."""
    if PREDICT or FEATURES_IN:
        return {}
    if not _CLINICAL_CODING:
        clinical_rows_hash([])  # reads the table once
        validated = sheets.validate_clinical(
            _CLINICAL_TABLE[0],
            OUTCOME,
            config["clinical_variables"]["continuous"],
            config["clinical_variables"]["categorical"],
        )
        _CLINICAL_CODING.append(
            sheets.categorical_coding(
                validated, config["clinical_variables"]["categorical"]
            )
        )
    return _CLINICAL_CODING[0]


def sheet_params():
    """The worksheet params (clinical_sheet, features_sheet) of a rule that may read the
    clinical table or the feature table, only when one is configured (a run of text
    sheets keeps its params as they were)."""
    out = {}
    if CLINICAL_SHEET and not (FEATURES_IN or DEMO or PREDICT):
        out["clinical_sheet"] = CLINICAL_SHEET
    if FEATURES_SHEET and FEATURES_IN:
        out["features_sheet"] = FEATURES_SHEET
    return out


def clinical_input():
    """The clinical table as an input of a rule that reads only some patients' rows,
    ancient() in a user's run (with clinical_rows_hash as a param), as is in the demo.
    """
    return CLINICAL_TSV if DEMO else ancient(CLINICAL_TSV)


def centre_patients(centres):
    """Sorted patients of these centres (sample sheet)."""
    keep = set(centres)
    return sorted(p for p, c in CENTRE_OF.items() if c in keep)


# Params shared by every modelling rule (design matrix, settings, seed).
COMBAT_COVARIATES = bool(
    config["harmonization"]["combat"] and config["harmonization"].get("covariates")
)
MODELLING_PARAMS = {
    "settings": TUNING_SETTINGS,
    "seed": config["seed"],
    "id_column": MODELLING_ID,
    "outcome": OUTCOME,
    "exclude": [c for c in config["features_table_columns"].values() if c],
    # ComBat's covariates (npc_radiomics.modelling.harmonize); categorical ones become dummies.
    **(
        {
            "harmonization": {
                "covariates": list(config["harmonization"].get("covariates") or []),
                "categorical": list(config["clinical_variables"]["categorical"]),
            }
        }
        if config["harmonization"]["combat"]
        else {}
    ),
    # The pool's clinical rows, which ComBat's covariates come from.
    **(
        {"clinical_rows": clinical_rows_hash(centre_patients(TRAIN_CENTERS))}
        if COMBAT_COVARIATES and not FEATURES_IN
        else {}
    ),
    # The worksheets of .xlsx inputs (the feature table, the clinical table).
    **sheet_params(),
}
# What a rule outside the modelling family that loads the design for a fitted pipeline
# (SHAP) needs when the pipeline starts with ComBat: the centre and covariate columns.
COMBAT_DESIGN_PARAMS = (
    {
        "settings": {"combat": True},
        "harmonization": MODELLING_PARAMS["harmonization"],
    }
    if config["harmonization"]["combat"]
    else {}
)
