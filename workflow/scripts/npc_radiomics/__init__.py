"""npc-radiomics: multimodal MRI radiomics for treatment-response prediction in NPC.

One module per stage of the workflow; the Snakemake rule scripts in ``workflow/scripts``
are thin wrappers around the functions here, which the tests import directly.
"""

__version__ = "0.1.0"
