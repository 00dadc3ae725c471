"""A model others can apply (rules bundle, predict_*; pipeline step 20).

- ``bundle``: the model bundle (skops pipeline, manifest, checksums) and its loader
- ``novelty``: how far a new patient lies from the training patients (Mahalanobis, Ledoit-Wolf)
- ``predict``: predict mode: start-up checks, scores for new patients, their page
"""
