"""npc-radiomics: multimodal MRI radiomics for treatment-response prediction in NPC.

The Snakemake rule scripts in ``workflow/scripts`` are thin wrappers around this package,
which the tests import directly. Subpackages follow the rule files, one per stage, in
layers: a module imports only from its own subpackage and the layers below it, never
from a later stage (tests/test_package_layout.py checks it).

- ``base``: errors, I/O, the results layout's shared pieces, config
- ``glue``: rule set-up, code versions, cluster resources, Snakemake work-arounds,
  provenance, the run crate
- ``metrics`` (a subpackage), ``figures``: every metric and every figure, below the stages
  using them
- ``inputs`` -> ``imaging`` -> ``modelling`` -> ``evaluation`` -> ``validation`` ->
  ``report`` -> ``deploy``: the stages, in the order the data flows
- ``checks``: every start-up check, above the stages whose settings it checks
"""

__version__ = "0.1.0"
