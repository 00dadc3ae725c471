"""A Workflow Run RO-Crate of the run (rule ``run_crate``, step 22), written with ``rocrate``.

The crate's root is ``results/``: ``results/ro-crate-metadata.json`` describes every
result file (relative paths, SHA-256, size) and links each to the rule that made it (one
``CreateAction`` per rule, its ``instrument`` the rule, with its code version: the hash
of its script and the package modules it imports). The workflow run is the main
``CreateAction``: instrument the Snakefile (a ``ComputationalWorkflow``), ``object`` the
inputs with their checksums (from the provenance record), the config as a
``PropertyValue`` list, the code version (git commit when available) and the software
versions. Profiles: Workflow Run Crate and Provenance Run Crate 0.5.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

WFRUN = "https://w3id.org/ro/wfrun"
PROFILES = {
    f"{WFRUN}/process/0.5": "Process Run Crate",
    f"{WFRUN}/workflow/0.5": "Workflow Run Crate",
    f"{WFRUN}/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
METADATA = "ro-crate-metadata.json"


def _pattern_regex(pattern: str) -> re.Pattern:
    """A Snakemake output pattern as a regex: ``{name}`` / ``{name,regex}`` wildcards."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)(?:,([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}", pattern):
        out += re.escape(pattern[pos : m.start()]) + f"(?:{m.group(2) or '[^/]+'})"
        pos = m.end()
    # a directory output (bundle/, bundles/{model}/) claims the files under it
    return re.compile(out + re.escape(pattern[pos:].rstrip("/")) + r"(?:/.+)?")


def rule_of_files(files: list[str], rule_outputs: dict[str, list[str]]) -> dict[str, str]:
    """{file: rule} for every file one rule's output pattern matches (the most literal
    pattern wins; a directory output claims the files under it)."""
    compiled = []
    for rule, patterns in rule_outputs.items():
        for p in patterns:
            literal = len(re.sub(r"\{[^}]*\}", "", p))
            compiled.append((literal, rule, _pattern_regex(p)))
    compiled.sort(key=lambda c: (-c[0], c[1]))
    out = {}
    for f in files:
        for _, rule, rx in compiled:
            if rx.fullmatch(f):
                out[f] = rule
                break
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_crate(
    results_dir: str | Path,
    provenance: dict,
    rule_outputs: dict[str, list[str]],
    code_versions: dict[str, str],
    git_commit: str | None,
    snakefile: str | Path | None = None,
    exclude: tuple[str, ...] = (METADATA,),
):
    """The crate object (``rocrate.rocrate.ROCrate``) of a finished run's ``results_dir``.

    ``rule_outputs``: {rule: output patterns as written, ``results/...``}; ``provenance``:
    the record of rule ``provenance`` (software, config, inputs with checksums)."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    results_dir = Path(results_dir)
    crate = ROCrate()
    crate.name = "npc-radiomics workflow run"
    crate.description = "Workflow Run RO-Crate of one npc-radiomics run (results/)."
    for pid, name in PROFILES.items():
        crate.root_dataset.append_to(
            "conformsTo",
            crate.add(
                ContextEntity(crate, pid, properties={"@type": "CreativeWork", "name": name})
            ),
        )
    engine = crate.add(
        ContextEntity(
            crate,
            "#snakemake",
            properties={
                "@type": "SoftwareApplication",
                "name": "Snakemake",
                "version": provenance.get("software", {}).get("snakemake", ""),
            },
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # entities whose file lives outside the crate
        workflow = crate.add_workflow(
            source=None,
            dest_path="Snakefile",
            main=True,
            lang="snakemake",
            properties={
                "name": "npc-radiomics",
                "version": git_commit or "unknown (not a git checkout)",
                "description": "the workflow's Snakefile (in the repository, not copied)",
                **({"url": str(snakefile)} if snakefile else {}),
            },
        )
    software = [
        crate.add(
            ContextEntity(
                crate,
                f"#software-{name}",
                properties={"@type": "SoftwareApplication", "name": name, "version": version},
            )
        )
        for name, version in sorted(provenance.get("software", {}).items())
    ]
    inputs = []
    for k, (path, checksum) in enumerate(sorted(provenance.get("inputs", {}).items())):
        inputs.append(
            crate.add(
                ContextEntity(
                    crate,
                    f"#input-{k}",
                    properties={
                        "@type": "File",
                        "name": path,
                        "sha256": checksum,
                        "description": "workflow input (outside the crate: path as configured)",
                    },
                )
            )
        )
    config = [
        crate.add(
            ContextEntity(
                crate,
                f"#config-{key}",
                properties={"@type": "PropertyValue", "name": key, "value": json.dumps(value)},
            )
        )
        for key, value in sorted(provenance.get("config", {}).items())
    ]
    files = sorted(
        str(p.relative_to(results_dir))
        for p in results_dir.rglob("*")
        if p.is_file() and p.name not in exclude and ".snakemake" not in p.parts
    )
    made_by = rule_of_files([f"results/{f}" for f in files], rule_outputs)
    by_rule: dict[str, list] = {}
    all_results = []
    for f in files:
        path = results_dir / f
        entity = crate.add_file(
            source=path,
            dest_path=f,
            properties={"sha256": _sha256(path), "contentSize": str(path.stat().st_size)},
        )
        all_results.append(entity)
        rule = made_by.get(f"results/{f}")
        if rule:
            by_rule.setdefault(rule, []).append(entity)
    for rule in sorted(by_rule):
        step = crate.add(
            ContextEntity(
                crate,
                f"#rule-{rule}",
                properties={
                    "@type": "SoftwareApplication",
                    "name": f"rule {rule}",
                    "version": code_versions.get(rule, ""),
                    "description": "Snakemake rule; version: SHA-256 of its script and the "
                    "npc_radiomics modules it imports",
                },
            )
        )
        crate.add_action(
            step,
            identifier=f"#run-{rule}",
            result=by_rule[rule],
            properties={"name": f"rule {rule}", "agent": {"@id": engine.id}},
        )
    crate.add_action(
        workflow,
        identifier="#run",
        object=inputs + config,
        result=all_results,
        properties={
            "name": "npc-radiomics run",
            "agent": {"@id": engine.id},
            "softwareRequirements": [{"@id": s.id} for s in software],
        },
    )
    return crate


def write_run_crate(
    results_dir, provenance_path, rule_outputs, code_versions, git_commit, snakefile=None
) -> Path:
    """Build the crate and write ``results_dir/ro-crate-metadata.json`` (no file copied:
    every data entity already lives under ``results_dir``)."""
    provenance = json.loads(Path(provenance_path).read_text())
    crate = build_crate(results_dir, provenance, rule_outputs, code_versions, git_commit, snakefile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crate.metadata.write(Path(results_dir))
    return Path(results_dir) / METADATA
