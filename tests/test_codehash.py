"""Code changes trigger reruns: each script rule's params carry a hash of the package
modules it imports (npc_radiomics.glue.codehash)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, SNAKEMAKE, prepare_workdir, require_snakemake_marker, write_config
from test_features_in import make_table

from npc_radiomics.glue.codehash import CODE_PARAM, CodeIndex, strip_code_version


def _package(tmp: Path) -> Path:
    """scripts/ with a small npc_radiomics package: a -> b -> c (c lazily, in a function),
    a relative import in b, d imported by nobody; run.py imports a."""
    pkg = tmp / "scripts" / "npc_radiomics"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""pkg"""\n')
    (pkg / "a.py").write_text("from npc_radiomics.b import thing\n")
    (pkg / "b.py").write_text(
        "from . import e\n\ndef thing():\n    from npc_radiomics import c\n    return c\n"
    )
    (pkg / "c.py").write_text("X = 1\n")
    (pkg / "d.py").write_text("Y = 1\n")
    (pkg / "e.py").write_text("Z = 1\n")
    (tmp / "scripts" / "run.py").write_text("import os\nfrom npc_radiomics.a import thing\n")
    (tmp / "scripts" / "other.py").write_text("from npc_radiomics import d\n")
    return tmp / "scripts"


def test_closure_follows_relative_lazy_and_from_package_imports(tmp_path):
    scripts = _package(tmp_path)
    index = CodeIndex(scripts)
    names = [m.split(".")[-1] for m in index.script_modules(scripts / "run.py")]
    assert names == ["npc_radiomics", "a", "b", "c", "e"]
    assert index.script_modules(scripts / "other.py") == ["npc_radiomics", "npc_radiomics.d"]


def test_parenthesised_imports_with_comments_are_found():
    # A comment after the parenthesis (e.g. a noqa directive) or on a name's line must not
    # hide the names: a hidden submodule's change would not rerun the rule.
    from npc_radiomics.glue.codehash import _imported_names

    source = (
        "from npc_radiomics import (  # a comment after the parenthesis\n"
        "    features,  # the first name, after the comment\n"
        "    io,\n"
        ")\n"
    )
    assert _imported_names(source, None) == {
        "npc_radiomics",
        "npc_radiomics.features",
        "npc_radiomics.io",
    }


def test_subpackage_modules_and_their_packages_are_in_the_closure(tmp_path):
    pkg = tmp_path / "scripts" / "npc_radiomics"
    (pkg / "stage").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "stage" / "__init__.py").write_text('"""A stage."""\n')
    (pkg / "stage" / "a.py").write_text("from npc_radiomics.stage.b import f\n")
    (pkg / "stage" / "b.py").write_text("from npc_radiomics.base import g\n")
    (pkg / "base.py").write_text("G = 1\n")
    (tmp_path / "scripts" / "run.py").write_text("from npc_radiomics.stage import a\n")
    index = CodeIndex(tmp_path / "scripts")
    assert index.script_modules(tmp_path / "scripts" / "run.py") == [
        "npc_radiomics",
        "npc_radiomics.base",
        "npc_radiomics.stage",
        "npc_radiomics.stage.a",
        "npc_radiomics.stage.b",
    ]
    before = index.script_hash(tmp_path / "scripts" / "run.py")
    (pkg / "stage" / "b.py").write_text("from npc_radiomics.base import g\n# changed\n")
    assert CodeIndex(tmp_path / "scripts").script_hash(tmp_path / "scripts" / "run.py") != before


def test_hash_changes_with_an_imported_module_only(tmp_path):
    scripts = _package(tmp_path)
    before = CodeIndex(scripts).script_hash(scripts / "run.py")
    (scripts / "npc_radiomics" / "d.py").write_text("Y = 2\n")
    assert CodeIndex(scripts).script_hash(scripts / "run.py") == before
    (scripts / "npc_radiomics" / "c.py").write_text("X = 2\n")
    changed = CodeIndex(scripts).script_hash(scripts / "run.py")
    assert changed != before
    (scripts / "run.py").write_text("import os\nfrom npc_radiomics.a import thing\n# x\n")
    assert CodeIndex(scripts).script_hash(scripts / "run.py") != changed


def test_rule_scripts_get_params_without_the_code_version():
    from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, Snakemake

    params = Params(fromdict={"seed": 1, "outcome": "response", CODE_PARAM: "abc"})
    smk = Snakemake(InputFiles(), OutputFiles(), params, {}, 1, {}, Log(), {}, "r", 0)
    strip_code_version(smk)
    assert dict(smk.params.items()) == {"seed": 1, "outcome": "response"}
    assert smk.params.seed == 1 and len(smk.params) == 2
    strip_code_version(smk)  # nothing to strip: unchanged
    assert list(smk.params.keys()) == ["seed", "outcome"]


# ---- dry-run: a module change reruns exactly the rules importing it --------------------
TARGETS = ["results/split/split.tsv", "results/selection/selected_features.tsv"]


def _snakemake(tree: Path, work: Path, cfg: Path, *args: str) -> subprocess.CompletedProcess:
    require_snakemake_marker()
    cmd = [SNAKEMAKE, *TARGETS, *args, "-s", str(tree / "Snakefile"), "-d", str(work)]
    cmd += ["--cores", "1", "--configfile", str(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _params_changed_rules(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """{rule: reason} of the jobs a dry run lists."""
    text = proc.stdout + proc.stderr
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        reason = re.search(r"reason: (.*)", block)
        if head and reason:
            jobs[head.group(1)] = reason.group(1)
    return jobs


@pytest.mark.snakemake
def test_changing_one_module_reruns_exactly_the_rules_importing_it(tmp_path):
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sub in ("workflow", "config", "resources", "envs"):
        shutil.copytree(ROOT / sub, tree / sub, ignore=ignore)
    shutil.copy(ROOT / "Snakefile", tree / "Snakefile")
    work = prepare_workdir(tmp_path / "work")
    table = make_table(tmp_path / "features.csv", n_pool=40, n_external=10, n_features=12)
    cfg = write_config(
        work / "cfg.yaml",
        {
            "features_table": str(table),
            "features_table_columns": {"id": "case", "center": "site", "cohort": None},
            "cohorts": {"train_centers": ["A"], "external_centers": ["B"]},
            "models": ["logistic_regression"],
            "selection": {"mrmr_k": 6, "lasso": {"cv_folds": 3, "n_lambdas": 8, "rule": "min"}},
        },
    )
    _snakemake(tree, work, cfg)
    assert "Nothing to be done" in _snakemake(tree, work, cfg, "-n").stdout

    index = CodeIndex(tree / "workflow" / "scripts")
    scripts = {
        "split": "split.py",
        "external_cohort": "split.py",
        "split_table": "split_table.py",
        "select_features": "select_features.py",
    }
    package = tree / "workflow" / "scripts" / "npc_radiomics"
    # sheets: the split rules only (the pool's split and each external cohort); design:
    # selection only; qc: neither (features-in run). split_table's module imports sheets
    # too, but Snakemake gives a job downstream of a rerun job no reason of its own (it
    # reruns for its updated input).
    splits = {"split", "external_cohort"}
    for module, expected in (
        ("inputs.sheets", splits),
        ("modelling.design", {"select_features"}),
        ("imaging.qc", set()),
    ):
        path = package / (module.replace(".", "/") + ".py")
        original = path.read_text()
        path.write_text(original + "\n# a change\n")
        try:
            jobs = _params_changed_rules(_snakemake(tree, work, cfg, "-n"))
        finally:
            path.write_text(original)
        changed = {r for r, why in jobs.items() if "Params have changed" in why}
        assert changed == expected, (module, jobs)
        importing = {
            rule
            for rule, script in scripts.items()
            if f"npc_radiomics.{module}" in index.script_modules(index.scripts_dir / script)
        }
        assert changed <= importing and importing <= set(jobs), (module, importing, jobs)
        # Downstream jobs rerun for their updated input, not for their own code.
        assert set(jobs) - changed <= {"select_features", "split_table"}, jobs


def _ast_imports(source: str, module: str | None) -> set[str]:
    """The reference: the same imports found with ``ast`` (slower, exact)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "npc_radiomics"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if module is None:
                    continue
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            if base.split(".")[0] == "npc_radiomics":
                found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def test_line_scanner_finds_what_ast_finds_in_every_real_file():
    from npc_radiomics.glue.codehash import _imported_names

    scripts = ROOT / "workflow" / "scripts"
    files = [(p, None) for p in sorted(scripts.glob("*.py"))]
    files += [
        (p, f"npc_radiomics.{p.stem}") for p in sorted((scripts / "npc_radiomics").glob("*.py"))
    ]
    for path, module in files:
        source = path.read_text()
        assert _imported_names(source, module) >= _ast_imports(source, module), path.name
