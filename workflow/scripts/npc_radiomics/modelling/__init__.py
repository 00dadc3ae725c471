"""From the feature table to fitted pipelines (rules select, model; pipeline steps 8-14).

- ``design``: feature table + split -> X / y per cohort
- ``settings``: tuning and CV settings from the validated config; the selection pipeline
- ``harmonize``: ComBat across centres as a pipeline step
- ``selection``: mRMR and LASSO as scikit-learn transformers
- ``zoo``: the eight classifiers and their search spaces (one place)
- ``folds``: CV folds and the fold-cached selections
- ``claims``: trial claims of parallel tuning jobs sharing one study
- ``studies``: Optuna tuning of one model, deterministic whatever the number of jobs
- ``fits``: nested-CV folds and the final fit with its threshold
- ``persistence``: fitted pipelines on disk, checksum-verified
- ``rules``: the modelling rules' entry points
"""
