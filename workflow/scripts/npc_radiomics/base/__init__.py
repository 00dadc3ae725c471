"""The shared layer below every stage (imports nothing else of the package).

- ``errors``: ``InputError`` (one clear line naming row, patient, file or key), ``ModelFitError``
- ``io``: the one image reader (NIfTI, NRRD, MHA, DICOM series), tables, the one JSON writer
- ``layout``: the results layout's shared pieces (prediction columns, cohort order, strategies)
- ``config``: config over the repository defaults, validation, seeds, file checksums
- ``lazy``: modules imported on first use (start-up stays light)
"""
