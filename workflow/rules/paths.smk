# Result paths used by more than one rule or input function: one definition each, before
# any input function or rule refers to them.

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
# Features of the training patients' seeded perturbations (robustness.method perturbation
# or both) and what each perturbation did, per batch of the training pool.
PERTURBED_BATCH = "results/features/perturbed/{centre}/{batch}.parquet"
PERTURBED_BATCH_PARAMS = "results/features/perturbed/{centre}/{batch}_params.tsv"
ICC_TSV = "results/features/icc.tsv"
ICC_HISTOGRAM = "results/features/icc_hist.png"
SELECTION_DIR = "results/selection"
NON_FINITE_TSV = f"{SELECTION_DIR}/non_finite.tsv"
MODEL_DIR = "results/models/{model}"
TUNING_PART = f"{MODEL_DIR}/tuning/part{{part}}.json"
BEST_PARAMS = f"{MODEL_DIR}/best_params.json"
NESTED_FOLD = f"{MODEL_DIR}/nested_cv/fold{{fold}}.tsv"
NESTED_FOLD_PARAMS = f"{MODEL_DIR}/nested_cv/fold{{fold}}.json"
# The selection of each CV context (full = the whole training set, outer<k> = outer fold
# k's training part), fitted once on its inner folds and all its rows, for every model.
CV_SELECTION = f"{SELECTION_DIR}/cv/{{context}}.joblib"
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

# bundle and predict mode (bundle_common.smk)
BUNDLE_DIR = "results/bundle"
MODEL_BUNDLE_DIR = "results/bundles/{model}"
PREDICT_DIR = "results/predict"
PREDICT_QC_BATCH = f"{PREDICT_DIR}/qc/batches/{{batch}}.tsv"
PREDICT_QC_TSV = f"{PREDICT_DIR}/qc/qc.tsv"
PREDICT_PREPROCESSED_BATCH = f"{PREDICT_DIR}/preprocess/{{batch}}"
PREDICT_BATCH_MOMENTS = f"{PREDICT_DIR}/preprocess/{{batch}}_moments.tsv"
PREDICT_BATCH_FEATURES = f"{PREDICT_DIR}/features/batches/{{batch}}.parquet"
PREDICT_BATCH_PROVENANCE = f"{PREDICT_DIR}/features/batches/{{batch}}_provenance.tsv"
# The new patients' DICOM RTSTRUCT / SEG masks rasterised (as DICOM_MASK* in training).
PREDICT_MASK_PATTERNS = {
    "mask": f"{PREDICT_DIR}/masks/{{patient}}/{{sequence}}_mask.nii.gz",
    "mask_report": f"{PREDICT_DIR}/masks/{{patient}}/{{sequence}}_mask.json",
}

# evidence stages (evidence_common.smk)
BASELINES_DIR = "results/baselines"
PERMUTATION_DIR = "results/permutation"
PERMUTATION_RUN = f"{PERMUTATION_DIR}/runs/perm{{perm}}.json"
EVIDENCE_JSON = "results/evidence/evidence.json"
STABILITY_DIR = f"{SELECTION_DIR}/stability"
CHECKLIST_TSV = f"{REPORT_DIR}/checklist.tsv"
RUN_CRATE = "results/ro-crate-metadata.json"
