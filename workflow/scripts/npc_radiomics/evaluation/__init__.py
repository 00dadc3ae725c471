"""How good the fitted models are (rules evaluate, clinical, decision_curves, shap;
pipeline steps 15-18).

- ``performance``: Table 3 per model x cohort, thresholds, the chosen model, predictions
- ``dca``: net benefit and decision curves, with paired bootstrap CIs of the differences
- ``subgroups``: the chosen model's AUC and calibration-in-the-large per subgroup and centre
- ``shap_analysis``: SHAP values of the chosen model
- ``clinical``: Tables 1-2, the multivariable model, biomarker AUCs, DeLong comparisons
"""
