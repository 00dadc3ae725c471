# Shared set-up: config and sheet validation, wildcard constraints, result paths and
# input functions. Everything here runs when the DAG is built, so bad input stops the run
# before any job. The Snakefile has already merged the config over the defaults.
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
from npc_radiomics.inputs import split as split_checks
from npc_radiomics import checks
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
        from npc_radiomics.validation import centres  # imports scikit-learn: main process only
        from npc_radiomics import checks

        _local_config = (
            ["config/config.yaml"] if os.path.exists("config/config.yaml") else []
        )
        check_config_files([*_local_config, *workflow.configfiles])
        validate_config(config, SCHEMAS / "config.schema.yaml")
        sheets.check_sequence_names(list(config["sequences"]))
        if not config["predict"]["samples"]:
            checks.check_centre_config(config)
except InputError as err:
    _stop(err)

# Predict mode (config predict.samples, rules in predict.smk): new patients are scored with
# a frozen bundle; the training sheets are never read, the bundle sets the sequences.
PREDICT = bool(config["predict"]["samples"])
SEQUENCES = list(config["sequences"])
TRAIN_CENTERS = list(config["cohorts"]["train_centers"])
EXTERNAL_CENTERS = list(config["cohorts"]["external_centers"])
OUTCOME = config["outcome"]["column"]
FEATURES_IN = bool(config.get("features_table")) and not PREDICT
DEMO = bool(config["demo"]["enabled"]) and not FEATURES_IN and not PREDICT
DEMO_DIR = "results/demo"

try:
    if PREDICT:
        from npc_radiomics.deploy.predict import predict_setup

        PREDICT_SETUP = predict_setup(config["predict"])
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
        SAMPLES = sheets.validate_samples(
            sheets.read_sheet(config["samples"], "sample sheet"),
            SEQUENCES,
            TRAIN_CENTERS + EXTERNAL_CENTERS,
            check_files=MAIN_PROCESS,
            base_dir=".",
            # Job processes take the sheet the main process checked, unchecked.
            checks=MAIN_PROCESS,
        )
        CLINICAL_TSV = config["clinical"]
        if MAIN_PROCESS:
            _clinical = sheets.read_clinical(
                CLINICAL_TSV,
                OUTCOME,
                config["clinical_variables"]["continuous"],
                config["clinical_variables"]["categorical"],
                config.get("evaluation", {}).get("biomarkers", []),
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
    # Which masks are DICOM RTSTRUCT / SEG files (rasterised by rule dicom_mask) and their
    # ROI; the demo's files do not exist yet and are label images. Every process needs the
    # kinds (they route the masks' input functions).
    SAMPLES = dicom_masks.annotate_mask_kinds(
        SAMPLES, config["masks"]["roi"], check_files=not DEMO
    )
    if PREDICT and MAIN_PROCESS:
        dicom_masks.refuse_contour_masks(PREDICT_SETUP.samples, "predict sample sheet")
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


def zscore_input(wildcards):
    """The z-score table, when a sequence is z-scored (normalization zscore): a CT in HU
    alone needs no statistics, nor the split."""
    if any(n["method"] == "zscore" for n in NORMALIZATION.values()):
        # A str (not a one-element list): the rule script then sees a path.
        return ZSCORE_TSV
    return []


TUNING_SETTINGS = asdict(TuningSettings.from_config(config))
N_TUNING_JOBS = int(config["tuning"].get("n_jobs_per_model") or 1)
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
    assert step in SEED_STEPS, f"{step!r} is not in npc_radiomics.base.config.SEED_STEPS"
    return derived_seed(config["seed"], step)


def centre_constraint(centres):
    """A wildcard constraint matching exactly these centre names (none: nothing)."""
    return "|".join(re.escape(c) for c in centres) or "(?!)"


# ---- result paths used by more than one rule or input function (one definition each) ---
QC_BATCH = "results/qc/batches/{centre}/{batch}.tsv"
QC_TSV = "results/qc/qc.tsv"
POOL_SPLIT_TSV = "results/split/pool.tsv"
EXTERNAL_COHORT = "results/split/external/{centre}.tsv"
SPLIT_TSV = "results/split/split.tsv"
PREPROCESSED_BATCH = "results/preprocess/{centre}/{batch}"
BATCH_MOMENTS = "results/preprocess/{centre}/{batch}_moments.tsv"
DICOM_MASK = "results/masks/{patient}/{sequence}_mask.nii.gz"
DICOM_MASK_REPORT = "results/masks/{patient}/{sequence}_mask.json"
DICOM_MASK_READER2 = "results/masks/{patient}/{sequence}_mask_reader2.nii.gz"
DICOM_MASK_READER2_REPORT = "results/masks/{patient}/{sequence}_mask_reader2.json"
ZSCORE_TSV = "results/normalization/zscore.tsv"
BATCH_FEATURES = "results/features/batches/{centre}/{batch}.parquet"
BATCH_PROVENANCE = "results/features/batches/{centre}/{batch}_provenance.tsv"
# Every cohort's features (the documented table), the training pool's (what every fitted
# step reads) and each external centre's (what its predictions read).
FEATURES_PARQUET = "results/features/features.parquet"
FEATURES_READER2_PARQUET = "results/features/features_reader2.parquet"
FEATURE_PROVENANCE_TSV = "results/features/provenance.tsv"
POOL_FEATURES = "results/features/pool/features.parquet"
POOL_FEATURES_READER2 = "results/features/pool/features_reader2.parquet"
EXTERNAL_FEATURES = "results/features/external/{centre}.parquet"
ROBUST_FEATURES = "results/features/robust_features.txt"
ICC_TSV = "results/features/icc.tsv"
ICC_HISTOGRAM = "results/features/icc_hist.png"
SELECTION_DIR = "results/selection"
NON_FINITE_TSV = f"{SELECTION_DIR}/non_finite.tsv"
MODEL_DIR = "results/models/{model}"
TUNING_PART = f"{MODEL_DIR}/tuning/part{{part}}.json"
BEST_PARAMS = f"{MODEL_DIR}/best_params.json"
NESTED_FOLD = f"{MODEL_DIR}/nested_cv/fold{{fold}}.tsv"
NESTED_FOLD_PARAMS = f"{MODEL_DIR}/nested_cv/fold{{fold}}.json"
PIPELINE = f"{MODEL_DIR}/pipeline.joblib"
MODEL_PREDICTIONS = f"{MODEL_DIR}/predictions.tsv"
MODEL_THRESHOLD = f"{MODEL_DIR}/threshold.json"
EXTERNAL_PREDICTIONS = "results/predictions/external/{centre}.tsv"
PREDICTIONS_TSV = "results/predictions/predictions.tsv"
NESTED_CV_TSV = "results/predictions/nested_cv.tsv"
EVALUATION_DIR = "results/evaluation"
SHAP_DIR = "results/shap"
CLINICAL_DIR = "results/clinical"
FIGURES_DIR = "results/figures"
REPORT_DIR = "results/report"
CHOSEN_MODEL_JSON = f"{EVALUATION_DIR}/chosen_model.json"
# Centres (pipeline step 21): leave-one-centre-out and centre-effect diagnostics.
LOCO = bool(config["validation"]["leave_one_centre_out"]) and not PREDICT
LOCO_DIR = "results/loco"
LOCO_FOLD = f"{LOCO_DIR}/{{centre}}/{{model}}.tsv"
LOCO_FOLD_INFO = f"{LOCO_DIR}/{{centre}}/{{model}}.json"
LOCO_TSV = f"{LOCO_DIR}/loco.tsv"
LOCO_FOREST = f"{FIGURES_DIR}/loco_forest.png"
CENTRES_TSV = "results/centres/centres.tsv"
CENTRE_DIAGNOSTICS_TSV = "results/centres/diagnostics.tsv"
CENTRE_PCA = f"{FIGURES_DIR}/centre_pca.png"


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
            _CLINICAL_TABLE.append(sheets.read_sheet(CLINICAL_TSV, "clinical table"))
    return sheets.rows_digest(_CLINICAL_TABLE[0], patients)


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


# ---- input functions: one patient x sequence (DICOM masks) -----------------------------
def _case(wildcards):
    return _CASES[(wildcards.patient, wildcards.sequence)]


def get_image(wildcards):
    return _case(wildcards)["image"]


def case_mask(case):
    """A case's label mask: the sheet's file, or the one rasterised from its DICOM
    RTSTRUCT / SEG (rule dicom_mask)."""
    if case.get("mask_kind", "label") != "label":
        return DICOM_MASK.format(patient=case["patient_id"], sequence=case["sequence"])
    return case["mask"]


def case_mask_reader2(case):
    """A case's reader-2 label mask, or '' when it has none."""
    if not case["mask_reader2"]:
        return ""
    if case.get("mask_reader2_kind", "label") != "label":
        return DICOM_MASK_READER2.format(
            patient=case["patient_id"], sequence=case["sequence"]
        )
    return case["mask_reader2"]


def case_mask_report(case, column="mask"):
    """The dicom_mask report of the case's ``column`` mask, or '' for a label mask."""
    if not case[column] or case.get(f"{column}_kind", "label") == "label":
        return ""
    pattern = DICOM_MASK_REPORT if column == "mask" else DICOM_MASK_READER2_REPORT
    return pattern.format(patient=case["patient_id"], sequence=case["sequence"])


def get_contour_file(wildcards, column="mask"):
    """The sheet's DICOM RTSTRUCT / SEG file of ``column`` and its kind."""
    case = _case(wildcards)
    return {
        "contours": case[column],
        "kind": case[f"{column}_kind"],
        "roi": case["mask_roi"],
    }


# ---- input functions: one batch of patients ---------------------------------------------
def batch_keys(centres):
    """(centre, batch) of every batch of these centres, in order."""
    keep = set(centres)
    return [key for key in BATCHES if key[0] in keep]


def batch_paths(pattern, centres):
    """``pattern`` formatted for every batch of these centres."""
    return [pattern.format(centre=c, batch=b) for c, b in batch_keys(centres)]


def batch_cases(wildcards):
    """The sheet rows of a batch: its patients (sorted), each with its sequences in the
    config's order."""
    batch = BATCHES[(wildcards.centre, wildcards.batch)]
    return [
        _CASES[(p, s)] for p in batch.patients for s in SEQUENCES if (p, s) in _CASES
    ]


# The batch rules' params and inputs from a function listing a batch's sheet rows
# (batch_cases here; predict_batch_cases in predict mode).
def qc_cases(cases_of=batch_cases):
    """Params function: what QC needs of each case (rule qc_batch's ``cases``)."""

    def cases(wildcards):
        return [
            {
                "patient_id": case["patient_id"],
                "center": case["center"],
                "sequence": case["sequence"],
                "image": case["image"],
                "mask": case_mask(case),
                "mask_reader2": case_mask_reader2(case),
                "mask_report": case_mask_report(case),
                "mask_reader2_report": case_mask_report(case, "mask_reader2"),
            }
            for case in cases_of(wildcards)
        ]

    return cases


def batch_files(*keys, cases_of=batch_cases):
    """Input function: the non-empty values of ``keys`` over the batch's QC cases."""
    qc = qc_cases(cases_of)

    def files(wildcards):
        return [case[key] for case in qc(wildcards) for key in keys if case[key]]

    return files


def preprocess_cases(cases_of=batch_cases):
    """Params function: rule preprocess_batch's ``cases``."""
    qc = qc_cases(cases_of)
    keys = ("patient_id", "sequence", "image", "mask", "mask_reader2")
    return lambda wildcards: [{k: case[k] for k in keys} for case in qc(wildcards)]


def extract_cases(cases_of=batch_cases):
    """Params function: rule extract_batch's ``cases``."""
    return lambda wildcards: [
        {
            "patient_id": case["patient_id"],
            "sequence": case["sequence"],
            "mask_reader2": bool(case["mask_reader2"]),
        }
        for case in cases_of(wildcards)
    ]


# ---- the training pool and the external centres -----------------------------------------
def split_inputs(wildcards):
    """Inputs of the pool's split: the clinical table and the pool's QC tables, or the
    ready feature table."""
    if FEATURES_IN:
        return {"table": config["features_table"]}
    return {"clinical": clinical_input(), "qc": batch_paths(QC_BATCH, TRAIN_CENTERS)}


def external_cohort_inputs(wildcards):
    if FEATURES_IN:
        return {"table": config["features_table"]}
    return {
        "clinical": clinical_input(),
        "qc": batch_paths(QC_BATCH, [wildcards.centre]),
    }


def zscore_reference_all():
    return config["preprocessing"]["normalization"]["reference"] == "all"


def icc_reference_all():
    return config["robustness"].get("reference", "train") == "all"


def icc_inputs(wildcards):
    """Both readers' tables and the split of the ICC's reference patients: the training
    pool's (reference train) or every cohort's (all, the paper's variant)."""
    if icc_reference_all():
        return {
            "features": FEATURES_PARQUET,
            "features_reader2": FEATURES_READER2_PARQUET,
            "split": SPLIT_TSV,
        }
    return {
        "features": POOL_FEATURES,
        "features_reader2": POOL_FEATURES_READER2,
        "split": POOL_SPLIT_TSV,
    }


# ---- modelling inputs -----------------------------------------------------------------
def modelling_features():
    """The feature table the modelling stage reads: the training pool's, or the
    configured table."""
    if FEATURES_IN:
        return config["features_table"]
    return POOL_FEATURES


def modelling_robust():
    """The robust-feature list (ICC filter) as a list of 0 or 1 paths."""
    if FEATURES_IN or not config["robustness"]["enabled"]:
        return []
    # The ICC's reference patients' centres decide (an external centre with second
    # readings must not switch the filter on for the training pool's rules).
    rows = SAMPLES
    if not icc_reference_all():
        rows = SAMPLES[SAMPLES["center"].isin(TRAIN_CENTERS)]
    if not (rows["mask_reader2"] != "").any():
        return []
    return [ROBUST_FEATURES]


def modelling_inputs(wildcards):
    """Inputs of every modelling rule: the training pool's features and split, and
    (optionally) the robust list and the clinical table (ComBat's covariates)."""
    inputs = {"features": modelling_features(), "split": POOL_SPLIT_TSV}
    robust = modelling_robust()
    if robust:
        inputs["robust"] = robust[0]
    if COMBAT_COVARIATES and not FEATURES_IN:
        inputs["clinical"] = clinical_input()  # ComBat's covariates
    return inputs


def all_features():
    """Every cohort's feature table: extracted, or the configured table."""
    return config["features_table"] if FEATURES_IN else FEATURES_PARQUET


def all_cohort_inputs(wildcards):
    """modelling_inputs with every cohort's features and split (centre diagnostics: it
    shows every cohort and fits nothing that the models use)."""
    inputs = modelling_inputs(wildcards)
    inputs["features"] = all_features()
    inputs["split"] = SPLIT_TSV
    if "clinical" in inputs:
        inputs["clinical"] = CLINICAL_TSV
    return inputs


def predict_external_inputs(wildcards):
    """The final pipelines, and the training pool's design plus one external centre's
    (its features and cohort table), so the centre's rows get exactly the columns the
    pipelines were fitted on."""
    inputs = modelling_inputs(wildcards)
    if not FEATURES_IN:
        inputs["features"] = [POOL_FEATURES, EXTERNAL_FEATURES.format(**wildcards)]
    inputs["split"] = [POOL_SPLIT_TSV, EXTERNAL_COHORT.format(**wildcards)]
    inputs["pipelines"] = expand(PIPELINE, model=config["models"])
    inputs["checksums"] = expand(f"{PIPELINE}.sha256", model=config["models"])
    return inputs


def modelling_targets():
    return [
        f"{SELECTION_DIR}/selected_features.tsv",
        PREDICTIONS_TSV,
        NESTED_CV_TSV,
        *expand(BEST_PARAMS, model=config["models"]),
    ]


def provenance_inputs(wildcards):
    """The files whose checksums go into the provenance record: sheets, images, params."""
    if FEATURES_IN:
        return [config["features_table"]]
    images = set(SAMPLES["image"]) | set(SAMPLES["mask"])
    images |= {p for p in SAMPLES["mask_reader2"] if p}
    sheets = [f"{DEMO_DIR}/samples.tsv"] if DEMO else [config["samples"]]
    params = {resource_path(config["features"]["params"])}
    params |= {
        resource_path(p)
        for p in (config["features"].get("params_per_sequence") or {}).values()
    }
    return sheets + [CLINICAL_TSV] + sorted(params) + sorted(images)


def report_inputs(wildcards):
    """Named inputs of the standalone report; parts that this run does not make are left
    out, and the report shows them as gaps."""
    inputs = {
        "split": SPLIT_TSV,
        "metrics": f"{EVALUATION_DIR}/metrics.tsv",
        "chosen": CHOSEN_MODEL_JSON,
        "roc": f"{FIGURES_DIR}/roc_curves.png",
        "pr": f"{FIGURES_DIR}/pr_curves.png",
        "calibration": f"{FIGURES_DIR}/calibration_curves.png",
        "dca": f"{FIGURES_DIR}/decision_curves.png",
        "dca_ranges": f"{EVALUATION_DIR}/dca_ranges.tsv",
        "net_benefit_ci": f"{EVALUATION_DIR}/net_benefit_ci.tsv",
        "shap_summary": f"{SHAP_DIR}/shap.json",
        "shap_importance": f"{SHAP_DIR}/shap_importance.tsv",
        "shap_beeswarm": f"{FIGURES_DIR}/shap_beeswarm.png",
        "shap_bar": f"{FIGURES_DIR}/shap_bar.png",
        "selected_features": f"{SELECTION_DIR}/selected_features.tsv",
        "lasso_lambda": f"{SELECTION_DIR}/lasso_lambda.json",
        "lasso_path": f"{FIGURES_DIR}/lasso_path.png",
        "lasso_cv": f"{FIGURES_DIR}/lasso_cv.png",
        "correlation": f"{FIGURES_DIR}/selected_feature_correlation.png",
        "provenance": f"{REPORT_DIR}/provenance.json",
        "best_params": expand(BEST_PARAMS, model=config["models"]),
        "non_finite": NON_FINITE_TSV,
    }
    if not FEATURES_IN:
        inputs["qc"] = QC_TSV
    inputs.update(evidence_report_inputs())  # evidence.smk
    if modelling_robust():
        inputs["icc_histogram"] = ICC_HISTOGRAM
        inputs["icc"] = ICC_TSV
    inputs["centres"] = CENTRES_TSV
    inputs["centre_diagnostics"] = CENTRE_DIAGNOSTICS_TSV
    inputs["centre_pca"] = CENTRE_PCA
    if LOCO:
        inputs["loco"] = LOCO_TSV
        inputs["loco_forest"] = LOCO_FOREST
    if CLINICAL_TSV is not None:
        for key, name in (
            ("table1", "table1.tsv"),
            ("table2", "table2.tsv"),
            ("multivariable", "multivariable_model.tsv"),
            ("clinical_model", "clinical_model.json"),
            ("biomarker_aucs", "biomarker_aucs.tsv"),
            ("delong_tests", "delong_tests.tsv"),
        ):
            inputs[key] = f"{CLINICAL_DIR}/{name}"
    return inputs


# ---- targets -------------------------------------------------------------------------
def get_final_output():
    """Everything `snakemake` builds by default (in predict mode: the predictions)."""
    if PREDICT:
        return predict_targets()
    targets = [SPLIT_TSV]
    if not FEATURES_IN:
        targets += [QC_TSV, FEATURES_PARQUET]
        targets += modelling_robust()
    targets += modelling_targets()
    targets += [
        f"{EVALUATION_DIR}/metrics.tsv",
        f"{EVALUATION_DIR}/dca_ranges.tsv",
        f"{SHAP_DIR}/shap_importance.tsv",
        f"{REPORT_DIR}/provenance.json",
        f"{REPORT_DIR}/index.html",
    ]
    targets += bundle_targets()
    targets += baselines_targets()  # baselines.smk
    targets += permutation_outputs()  # permutation.smk
    targets += [EVIDENCE_JSON]  # evidence.smk
    targets += [f"{STABILITY_DIR}/jaccard.tsv"]  # stability.smk
    targets += [RUN_CRATE]  # runcrate.smk
    targets += [CENTRES_TSV]
    if LOCO:
        targets += [LOCO_TSV]
    if CLINICAL_TSV is not None:
        targets += [
            f"{CLINICAL_DIR}/table1.tsv",
            f"{CLINICAL_DIR}/table2.tsv",
            f"{CLINICAL_DIR}/delong_tests.tsv",
        ]
    return targets


# ---- preprocessing: the ROI crop's margin per sequence (preprocess.smk) ----------------

from npc_radiomics.imaging.features import load_params as _load_radiomics_params
from npc_radiomics.imaging.preprocess import crop_margin_setting as _crop_margin_setting


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
