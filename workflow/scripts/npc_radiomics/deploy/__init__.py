"""A model others can apply (rules bundle, predict_*; pipeline step 20).

- ``bundle``: the model bundle (manifest, checksums, novelty reference) and its loader
- ``pipeline_file``: the fitted pipeline in a canonical skops file, trusted types only
- ``novelty``: how far a new patient lies from the training patients (Mahalanobis, Ledoit-Wolf)
- ``predict``: predict mode: start-up checks, scores for new patients, their page
"""
