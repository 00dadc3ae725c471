# Shared set-up: config and sheet validation, wildcard constraints, input functions.
# Everything here runs when the DAG is built, so bad input stops the run before any job.
import os
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from snakemake.utils import update_config

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))


from npc_radiomics.config import derived_seed, load_yaml, validate_config
from npc_radiomics.models import parse_search_spaces
from npc_radiomics.tuning import TuningSettings
from npc_radiomics.errors import InputError
from npc_radiomics import sheets
from npc_radiomics import split as split_checks
from npc_radiomics.snakemake_fixes import limit_scheduler_wakeups


def _warn(lines):
    """Print start-up warnings, one line each; the run goes on."""
    for line in lines:
        print(f"npc-radiomics warning: {line}", file=sys.stderr)


def _stop(err):
    """Print one clear line and stop before any job runs."""
    print(f"npc-radiomics input error: {err}", file=sys.stderr)
    raise SystemExit(1)


# One pending scheduler re-evaluation at most (Snakemake's timers pile up with every job).
limit_scheduler_wakeups()

BASEDIR = Path(workflow.basedir)
SCHEMAS = BASEDIR / "workflow" / "schemas"

# The repository's config/config.yaml holds every default; a user's --configfile or
# --config only overrides keys (deep merge), whatever the working directory.
_merged = load_yaml(BASEDIR / "config" / "config.yaml")
update_config(_merged, config)
config.clear()
config.update(_merged)


def resource_path(path):
    """A resources/ path: relative to the working directory if present there, else the repo's."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(BASEDIR / path)


try:
    validate_config(config, SCHEMAS / "config.schema.yaml")
except InputError as err:
    _stop(err)

SEQUENCES = list(config["sequences"])
TRAIN_CENTERS = list(config["cohorts"]["train_centers"])
EXTERNAL_CENTERS = list(config["cohorts"]["external_centers"])
OUTCOME = config["outcome"]["column"]
FEATURES_IN = bool(config.get("features_table"))
DEMO = bool(config["demo"]["enabled"]) and not FEATURES_IN
DEMO_DIR = "results/demo"

try:
    if FEATURES_IN:
        SAMPLES = pd.DataFrame(columns=list(sheets.SAMPLE_COLUMNS) + ["mask_reader2"])
        CLINICAL_TSV = None
    elif DEMO:
        from npc_radiomics import demo as demo_cohort

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
        )
        CLINICAL_TSV = f"{DEMO_DIR}/clinical.tsv"
        sheets.check_clinical_columns(
            demo_cohort.CLINICAL_COLUMNS, config, "the demo clinical table"
        )
        sheets.design_checks(
            config,
            SAMPLES,
            demo_cohort.response_labels(
                DEMO_SETTINGS, config["demo"]["preset"], derived_seed(config["seed"], "demo")
            ),
        )
    else:
        SAMPLES = sheets.validate_samples(
            sheets.read_sheet(config["samples"], "sample sheet"),
            SEQUENCES,
            TRAIN_CENTERS + EXTERNAL_CENTERS,
            base_dir=".",
        )
        CLINICAL_TSV = config["clinical"]
        _clinical = sheets.read_clinical(
            CLINICAL_TSV,
            OUTCOME,
            config["clinical_variables"]["continuous"],
            config["clinical_variables"]["categorical"],
            config.get("evaluation", {}).get("biomarkers", []),
        )
        sheets.cross_check(SAMPLES, _clinical)
        _warn(sheets.startup_checks(config, SAMPLES, _clinical))
    if FEATURES_IN:
        _warn(split_checks.check_features_input(config))
except InputError as err:
    _stop(err)

try:
    parse_search_spaces(config.get("search_spaces", {}), config["models"])
except InputError as err:
    _stop(err)

TUNING_SETTINGS = asdict(TuningSettings.from_config(config))
N_TUNING_JOBS = int(config["tuning"].get("n_jobs_per_model") or 1)
MODELLING_ID = config["features_table_columns"]["id"] if FEATURES_IN else "patient_id"

PATIENTS = sorted(SAMPLES["patient_id"].unique())
_CASES = SAMPLES.set_index(["patient_id", "sequence"], drop=False)


wildcard_constraints:
    patient=r"[A-Za-z0-9_.-]+",
    sequence="|".join(SEQUENCES),
    model="|".join(config["models"]),


def rule_seed(*keys):
    """Seed of one random step, derived from the master seed (stable across runs)."""
    return derived_seed(config["seed"], *keys)


# ---- input functions: one patient x sequence -------------------------------------------
def _case(wildcards):
    return _CASES.loc[(wildcards.patient, wildcards.sequence)]


def get_center(wildcards):
    return _case(wildcards)["center"]


def get_image(wildcards):
    return _case(wildcards)["image"]


def get_mask(wildcards):
    return _case(wildcards)["mask"]


def get_mask_reader2(wildcards):
    """The second reader's mask as a one-element list, or an empty list."""
    path = _case(wildcards)["mask_reader2"]
    return [path] if path else []


def all_qc_cases():
    return [
        f"results/qc/cases/{p}/{s}.tsv"
        for p, s in zip(SAMPLES["patient_id"], SAMPLES["sequence"])
    ]


# ---- checkpoints: patients that passed QC, and the split --------------------------------
def included_patients():
    """Sorted ids of the patients that passed QC on every sequence."""
    qc = pd.read_csv(
        checkpoints.qc.get().output[0], sep="\t", dtype=str, keep_default_na=False
    )
    return sorted(qc.loc[qc["patient_status"] == "included", "patient_id"].unique())


def reader2_cases():
    """Sorted (patient, sequence) pairs with a reader-2 mask, among included patients."""
    keep = set(included_patients())
    rows = SAMPLES[(SAMPLES["mask_reader2"] != "") & SAMPLES["patient_id"].isin(keep)]
    return sorted(zip(rows["patient_id"], rows["sequence"]))


def split_inputs(wildcards):
    """Inputs of the split rule: the clinical table and QC, or the ready feature table."""
    if FEATURES_IN:
        return {"table": config["features_table"]}
    return {"clinical": CLINICAL_TSV, "qc": "results/qc/qc.tsv"}


# ---- modelling inputs -----------------------------------------------------------------
def modelling_features():
    """The feature table the modelling stage reads: extracted, or the configured table."""
    if FEATURES_IN:
        return config["features_table"]
    return "results/features/features.parquet"


def modelling_robust():
    """The robust-feature list (ICC filter) as a list of 0 or 1 paths."""
    if FEATURES_IN or not config["robustness"]["enabled"]:
        return []
    if not (SAMPLES["mask_reader2"] != "").any():
        return []
    return ["results/features/robust_features.txt"]


def modelling_inputs(wildcards):
    """Inputs of every modelling rule: features, split and (optionally) the robust list."""
    inputs = {"features": modelling_features(), "split": "results/split/split.tsv"}
    robust = modelling_robust()
    if robust:
        inputs["robust"] = robust[0]
    return inputs


def modelling_targets():
    return [
        "results/selection/selected_features.tsv",
        "results/predictions/predictions.tsv",
        "results/predictions/nested_cv.tsv",
        *expand("results/models/{model}/best_params.json", model=config["models"]),
    ]


# ---- result paths of the evaluation and report stages, in one place ----------------------
PREDICTIONS_TSV = "results/predictions/predictions.tsv"
NESTED_CV_TSV = "results/predictions/nested_cv.tsv"
PIPELINE = "results/models/{model}/pipeline.joblib"
SELECTION_DIR = "results/selection"
EVALUATION_DIR = "results/evaluation"
SHAP_DIR = "results/shap"
CLINICAL_DIR = "results/clinical"
FIGURES_DIR = "results/figures"
REPORT_DIR = "results/report"
CHOSEN_MODEL_JSON = f"{EVALUATION_DIR}/chosen_model.json"


def provenance_inputs(wildcards):
    """The files whose checksums go into the provenance record: sheets, images, params."""
    if FEATURES_IN:
        return [config["features_table"]]
    images = set(SAMPLES["image"]) | set(SAMPLES["mask"])
    images |= {p for p in SAMPLES["mask_reader2"] if p}
    sheets = [f"{DEMO_DIR}/samples.tsv"] if DEMO else [config["samples"]]
    return (
        sheets
        + [CLINICAL_TSV, resource_path(config["features"]["params"])]
        + sorted(images)
    )


def report_inputs(wildcards):
    """Named inputs of the standalone report; parts that this run does not make are left
    out, and the report shows them as gaps."""
    inputs = {
        "split": "results/split/split.tsv",
        "metrics": f"{EVALUATION_DIR}/metrics.tsv",
        "chosen": CHOSEN_MODEL_JSON,
        "roc": f"{FIGURES_DIR}/roc_curves.png",
        "pr": f"{FIGURES_DIR}/pr_curves.png",
        "calibration": f"{FIGURES_DIR}/calibration_curves.png",
        "dca": f"{FIGURES_DIR}/decision_curves.png",
        "dca_ranges": f"{EVALUATION_DIR}/dca_ranges.tsv",
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
    }
    if not FEATURES_IN:
        inputs["qc"] = "results/qc/qc.tsv"
    if modelling_robust():
        inputs["icc_histogram"] = "results/features/icc_hist.png"
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
    """Everything `snakemake` builds by default."""
    targets = ["results/split/split.tsv"]
    if not FEATURES_IN:
        targets += ["results/qc/qc.tsv", "results/features/features.parquet"]
        targets += modelling_robust()
    targets += modelling_targets()
    targets += [
        f"{EVALUATION_DIR}/metrics.tsv",
        f"{EVALUATION_DIR}/dca_ranges.tsv",
        f"{SHAP_DIR}/shap_importance.tsv",
        f"{REPORT_DIR}/provenance.json",
        f"{REPORT_DIR}/index.html",
    ]
    if CLINICAL_TSV is not None:
        targets += [
            f"{CLINICAL_DIR}/table1.tsv",
            f"{CLINICAL_DIR}/table2.tsv",
            f"{CLINICAL_DIR}/delong_tests.tsv",
        ]
    return targets
