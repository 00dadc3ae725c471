"""What the user hands over (rules demo, masks, split; pipeline steps 1 and 9).

- ``sheets``: sample sheets and clinical tables read as written, validated, cross-checked
- ``dicom_masks``: DICOM RTSTRUCT / SEG masks rasterised onto their series
- ``dicom_uids``: the Study / Series / Frame-of-reference UIDs of DICOM inputs (provenance)
- ``demo``: the synthetic multi-centre demo cohort
- ``split``: the stratified train / test split of the training pool, external cohorts
"""
