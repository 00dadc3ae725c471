# Paths, input functions and params of the bundle rules (bundle.smk) and of predict mode
# (predict.smk); the predict-mode switch and its start-up checks are in common.smk.

# ---- the model bundle ----------------------------------------------------------------


def bundle_inputs(wildcards):
    """Inputs of the bundle rules: every final pipeline (the chosen one is only known once
    evaluation ran), the evaluation tables, the split and, for images, the z-score
    statistics, the pyradiomics params and the extraction provenance."""
    inputs = {
        "chosen": CHOSEN_MODEL_JSON,
        "pipelines": expand(PIPELINE, model=config["models"]),
        "checksums": expand(f"{PIPELINE}.sha256", model=config["models"]),
        "thresholds": f"{EVALUATION_DIR}/thresholds.tsv",
        "metrics": f"{EVALUATION_DIR}/metrics.tsv",
        "split": SPLIT_TSV,
    }
    # The training design the final pipelines were fitted on (its features, split, robust
    # list and ComBat covariates): the novelty reference of the bundle (deploy/novelty.py).
    design = modelling_inputs(wildcards)
    inputs["features"] = design.pop("features")
    inputs["design_split"] = design.pop("split")
    inputs.update(design)
    if not FEATURES_IN:
        inputs["zscore"] = ZSCORE_TSV
        inputs["params"] = resource_path(config["features"]["params"])
        # Each sequence's params file, in SEQUENCES order (features.params_per_sequence).
        inputs["sequence_params"] = [PARAMS_FILES[s] for s in SEQUENCES]
        inputs["feature_provenance"] = FEATURE_PROVENANCE_TSV
    return inputs


def bundle_targets():
    """The bundle directories a training run makes."""
    if config["bundle"]["models"] == "all":
        return [BUNDLE_DIR] + expand(MODEL_BUNDLE_DIR, model=config["models"])
    return [BUNDLE_DIR]


BUNDLE_PARAMS = {
    "models": config["models"],
    "config": config,
    # How the modelling rules read the training design (npc_radiomics.modelling.design).
    "design": {
        k: MODELLING_PARAMS[k]
        for k in ("id_column", "outcome", "exclude", "harmonization")
        if k in MODELLING_PARAMS
    }
    | {"settings": {"combat": bool(config["harmonization"]["combat"])}},
    # How each categorical clinical variable was coded (common.smk clinical_coding).
    "clinical_coding": lambda wildcards: clinical_coding(),
    "settings": {
        "input": "features_table" if FEATURES_IN else "images",
        "id_column": MODELLING_ID,
        "sequences": SEQUENCES,
        "outcome": config["outcome"],
        "preprocessing": config["preprocessing"],
        "mask_label": config["qc"]["mask_label"],
        "geometry_tolerance": config["qc"]["geometry_tolerance"],
        "crop_margin_mm": config["features"]["crop_margin_mm"],
        "params_per_sequence": config["features"].get("params_per_sequence") or {},
        # What predict mode reproduces: the masks' ROI rules and components, and each
        # sequence's preprocessing ROI-box margin as resolved at start-up.
        "masks": config["masks"],
        "preprocess_crop_margin_mm": CROP_MARGIN_MM,
    },
}


# ---- predict mode --------------------------------------------------------------------
# The new patients in batches of imaging.patients_per_job (their centres play no part).
PREDICT_CENTRE = "new"
PREDICT_BATCHES = (
    plan_batches(
        {p: PREDICT_CENTRE for p in PREDICT_SETUP.samples["patient_id"]},
        PATIENTS_PER_JOB,
    )
    if PREDICT
    else {}
)
_PREDICT_CASES = (
    {
        (row["patient_id"], row["sequence"]): row
        for row in PREDICT_SAMPLES.to_dict("records")
    }
    if PREDICT
    else {}
)


def predict_batch_cases(wildcards):
    """The predict sheet's rows of a batch (patients sorted, sequences in order); a
    reader-2 mask plays no part in scoring."""
    batch = PREDICT_BATCHES[(PREDICT_CENTRE, wildcards.batch)]
    return [
        {**_PREDICT_CASES[(p, s)], "mask_reader2": "", "mask_reader2_kind": "label"}
        for p in batch.patients
        for s in SEQUENCES
        if (p, s) in _PREDICT_CASES
    ]


def predict_bundle_file(name):
    return str(Path(config["predict"]["bundle"]) / name)


def predict_setting(key):
    return PREDICT_SETUP.settings[key]


def predict_sequence_setting(key):
    """sequence -> the bundle's setting ``key`` (n4, interpolator, normalization,
    crop_margin_mm, params): each sequence as training preprocessed and extracted it."""
    return {s: v[key] for s, v in PREDICT_SETUP.settings["sequences"].items()}


def predict_params_files():
    """sequence -> its pyradiomics params file in the bundle."""
    return {
        s: predict_bundle_file(n) for s, n in predict_sequence_setting("params").items()
    }


def predict_masks_setting(key):
    """The bundle's masks.``key`` (structures, components); components of a bundle that
    did not record it: this run's config."""
    value = PREDICT_SETUP.settings["masks"].get(key)
    return config["masks"][key] if value is None else value


def predict_outputs():
    """Named outputs of the predict job; with outcomes also the external-validation tables."""
    outputs = {
        "predictions": f"{PREDICT_DIR}/predictions.tsv",
        "features": f"{PREDICT_DIR}/features.tsv",
        "html": f"{PREDICT_DIR}/index.html",
    }
    if PREDICT and PREDICT_SETUP.outcomes:
        outputs.update(
            metrics=f"{PREDICT_DIR}/metrics.tsv",
            calibration=f"{PREDICT_DIR}/calibration_curve.tsv",
            dca=f"{PREDICT_DIR}/decision_curve.tsv",
            calibration_figure=f"{PREDICT_DIR}/calibration_curve.png",
            dca_figure=f"{PREDICT_DIR}/decision_curve.png",
        )
    return outputs


def predict_targets():
    return list(predict_outputs().values())
