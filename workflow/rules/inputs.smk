# Input functions of the imaging, split and modelling stages (the bundle and predict
# stages': bundle_common.smk; the evidence stages': evidence_common.smk).


# ---- one patient x sequence: its masks ---------------------------------------------------
# A DICOM RTSTRUCT / SEG mask is rasterised inside its batch's QC job (rule qc_batch), as a
# NIfTI label mask + report under DICOM_MASK (PREDICT_MASK_PATTERNS in predict mode), which QC
# reads and preprocessing takes; a label mask is used as the sheet gives it.
def case_mask(case, pattern=None):
    """A case's label mask: the sheet's file, or the one rasterised from its DICOM
    RTSTRUCT / SEG."""
    if case.get("mask_kind", "label") != "label":
        return (pattern or DICOM_MASK).format(
            patient=case["patient_id"], sequence=case["sequence"]
        )
    return case["mask"]


def case_mask_reader2(case, pattern=None):
    """A case's reader-2 label mask, or '' when it has none."""
    if not case["mask_reader2"]:
        return ""
    if case.get("mask_reader2_kind", "label") != "label":
        return (pattern or DICOM_MASK_READER2).format(
            patient=case["patient_id"], sequence=case["sequence"]
        )
    return case["mask_reader2"]


def case_mask_report(case, column="mask", pattern=None):
    """The rasterisation report of the case's ``column`` mask, or '' for a label mask."""
    if not case[column] or case.get(f"{column}_kind", "label") == "label":
        return ""
    default = DICOM_MASK_REPORT if column == "mask" else DICOM_MASK_READER2_REPORT
    return (pattern or default).format(
        patient=case["patient_id"], sequence=case["sequence"]
    )


def case_mask_sources(case):
    """What the QC job rasterises of a case (rule qc_batch), for each DICOM mask its file,
    kind and ROI (empty for a label mask)."""
    sources = {}
    for column in ("mask", "mask_reader2"):
        contour = case[column] and case.get(f"{column}_kind", "label") != "label"
        sources[f"{column}_source"] = case[column] if contour else ""
        sources[f"{column}_kind"] = case.get(f"{column}_kind", "label")
    sources["mask_roi"] = case.get("mask_roi", "")
    return sources


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
# (batch_cases here; predict_batch_cases in predict mode, whose rasterised masks go under
# its own folder: ``patterns``, the DICOM_MASK* patterns of its run).
def qc_cases(cases_of=batch_cases, patterns=None):
    """Params function, what QC needs of each case (rule qc_batch's ``cases``). Its files
    (the masks as QC and preprocessing read them), and the DICOM masks it rasterises
    first."""
    p = patterns or {}

    def cases(wildcards):
        return [
            {
                "patient_id": case["patient_id"],
                "center": case["center"],
                "sequence": case["sequence"],
                "image": case["image"],
                "mask": case_mask(case, p.get("mask")),
                "mask_reader2": case_mask_reader2(case, p.get("mask_reader2")),
                "mask_report": case_mask_report(case, "mask", p.get("mask_report")),
                "mask_reader2_report": case_mask_report(
                    case, "mask_reader2", p.get("mask_reader2_report")
                ),
                **case_mask_sources(case),
            }
            for case in cases_of(wildcards)
        ]

    return cases


def batch_files(*columns, cases_of=batch_cases):
    """Input function: the sheet's non-empty files of ``columns`` over the batch's cases
    (a DICOM mask's RTSTRUCT / SEG file: the job rasterises it)."""

    def files(wildcards):
        return [
            case[column]
            for case in cases_of(wildcards)
            for column in columns
            if case[column]
        ]

    return files


def preprocess_cases(cases_of=batch_cases, patterns=None):
    """Params function: rule preprocess_batch's ``cases`` (the masks as QC left them)."""
    qc = qc_cases(cases_of, patterns)
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


def robustness_method():
    """readers | perturbation | both (config robustness.method)."""
    return config["robustness"].get("method", "readers")


def icc_inputs(wildcards):
    """Both readers' tables and the split of the ICC's reference patients: the training
    pool's (reference train) or every cohort's (all, the paper's variant); with
    perturbations, the training pool's perturbed batches (training patients only)."""
    method = robustness_method()
    if method == "perturbation":
        inputs = {"features": POOL_FEATURES, "split": POOL_SPLIT_TSV}
    elif icc_reference_all():
        inputs = {
            "features": FEATURES_PARQUET,
            "features_reader2": FEATURES_READER2_PARQUET,
            "split": SPLIT_TSV,
        }
    else:
        inputs = {
            "features": POOL_FEATURES,
            "features_reader2": POOL_FEATURES_READER2,
            "split": POOL_SPLIT_TSV,
        }
    if method != "readers":
        inputs["perturbed"] = batch_paths(PERTURBED_BATCH, TRAIN_CENTERS)
    return inputs


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
    if robustness_method() != "readers":
        # Perturbations need no second reader (both: the start-up checks made sure of it).
        return [ROBUST_FEATURES]
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


def zscore_input(wildcards):
    """The z-score table, when a sequence is z-scored (normalization zscore): a CT in HU
    alone needs no statistics, nor the split."""
    if any(n["method"] == "zscore" for n in NORMALIZATION.values()):
        # A str (not a one-element list): the rule script then sees a path.
        return ZSCORE_TSV
    return []


# ---- input functions: evaluation ------------------------------------------------------
def decision_curve_inputs(wildcards):
    """The predictions, and the clinical model's (for the net-benefit differences model -
    clinical model) when the run has a clinical table."""
    inputs = {"predictions": PREDICTIONS_TSV}
    if CLINICAL_TSV is not None:
        inputs["clinical"] = f"{CLINICAL_DIR}/clinical_predictions.tsv"
    return inputs


def subgroup_inputs(wildcards):
    """The predictions, the chosen model, the split (centres) and, when the run has one,
    the clinical table (the subgroup variables)."""
    inputs = {
        "predictions": PREDICTIONS_TSV,
        "chosen": CHOSEN_MODEL_JSON,
        "split": SPLIT_TSV,
    }
    if CLINICAL_TSV is not None:
        inputs["clinical"] = CLINICAL_TSV
    return inputs
