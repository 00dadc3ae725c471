"""The workflow's machinery around the science (imports only ``base``).

- ``runtime``: ``rule_setup``, the first call of every rule script (threads, logging)
- ``codehash``: a hash of each rule script and the package modules it imports (reruns)
- ``cluster``: resources of the batch rules for SLURM; local rules
- ``snakemake_fixes``: version-checked work-arounds over Snakemake, each with an opt-out
- ``provenance``: software versions, platform, config, seeds, input checksums
- ``runcrate``: the Workflow Run RO-Crate
"""
