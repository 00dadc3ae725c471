"""Per patient x sequence image work, in batches of patients (rules qc, preprocess,
features, icc; pipeline steps 1-7).

- ``batches``: which patients form a batch; running a batch's cases
- ``qc``: input QC of image and masks; the one rule for which mask value is the tumour
- ``preprocess``: N4, resampling to 1 mm, tumour moments, the pooled z-score
- ``features``: pyradiomics extraction and the merge into the wide table
- ``icc``: ICC(2,1) per feature, the robustness filter
- ``perturbation``: seeded image and contour perturbations of training patients, their
  features and ICC(2,1) across them (robustness without a second reader)
- ``robustness``: rule icc's table for robustness.method readers / perturbation / both
"""
