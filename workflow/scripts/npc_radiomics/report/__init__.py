"""The standalone HTML report (rules standalone_report, checklist; pipeline step 19).

- ``html``: building blocks (sections, tables, embedded figures, gaps)
- ``kit``: what every section shares (section ids, reading results by key, gaps, formats)
- ``sections``: cohort, Tables 1-3, features, chosen model, curves, DCA, SHAP, centres,
  provenance
- ``evidence``: the first screen (evidence), baselines, permutation, selection stability
- ``checklist``: TRIPOD+AI / CLEAR / METRICS items and their section
- ``assemble``: every section in order, into ``results/report/index.html``
"""
