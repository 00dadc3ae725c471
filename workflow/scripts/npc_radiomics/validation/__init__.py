"""Whether there is anything to show (rules baselines, permutation, stability, evidence,
loco, centres; pipeline steps 21-22).

- ``baselines``: volume-only, clinical and combined models on the same footing
- ``permutation``: the label-permutation negative control
- ``stability``: selection stability
- ``evidence``: events per variable, minimum sample size, the verdict
- ``loco``: leave-one-centre-out
- ``centres``: per-centre table and centre-effect diagnostics
"""
