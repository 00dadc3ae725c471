"""The code's shape: the package's layers and import graph, the rule files' include order,
and docs/architecture.md naming every module and rule file (issue: package by stage)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
PACKAGE = SCRIPTS / "npc_radiomics"
RULES = ROOT / "workflow" / "rules"

#: Layers, lowest first: a module may import its own layer and the layers below it only.
LAYERS = (
    "base",
    "glue",
    "metrics",
    "figures",
    "inputs",
    "imaging",
    "modelling",
    "evaluation",
    "validation",
    "report",
    "deploy",
    "checks",
)
#: The only modules that import by a computed name, and why: lazy first-use imports, and
#: the aliases under which bundles written before this layout find their types.
DYNAMIC_IMPORTS = {"npc_radiomics.base.lazy", "npc_radiomics.deploy.pipeline_file"}


def package_modules(package_dir: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, subpackages' ``__init__`` as the subpackage."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(package_dir: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> package modules it imports (at module level or inside functions)."""
    modules = package_modules(package_dir)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    if path.name != "__init__.py":
                        base = base[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    deps.add(full if full in modules else module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else None


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_circle(tmp_path):
    pkg = tmp_path / "npc_radiomics"
    (pkg / "inputs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "inputs" / "__init__.py").write_text("")
    (pkg / "inputs" / "a.py").write_text("def f():\n    from npc_radiomics.inputs import b\n")
    (pkg / "inputs" / "b.py").write_text("from .a import f\n")
    assert cycles(import_graph(pkg)) == [["npc_radiomics.inputs.a", "npc_radiomics.inputs.b"]]


def test_every_module_sits_in_a_layer():
    unplaced = [m for m in package_modules() if m != "npc_radiomics" and layer(m) is None]
    assert unplaced == []
    top = {m.split(".")[1] for m in package_modules() if m != "npc_radiomics"}
    assert top == set(LAYERS)


def test_no_import_climbs_up_a_layer():
    climbs = sorted(
        f"{module} -> {dep}"
        for module, deps in import_graph().items()
        if module != "npc_radiomics"
        for dep in deps
        if dep != "npc_radiomics" and layer(dep) > layer(module)
    )
    assert climbs == []


def test_no_module_imports_by_a_computed_name():
    dynamic = sorted(
        name
        for name, path in package_modules().items()
        if "import_module" in path.read_text() and name not in DYNAMIC_IMPORTS
    )
    assert dynamic == []


def test_no_private_name_imported_across_modules():
    private = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("npc_radiomics"):
                private += [f"{name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []


# ---- rule files -------------------------------------------------------------------------
def included_rule_files() -> list[Path]:
    text = (ROOT / "Snakefile").read_text()
    return [ROOT / p for p in re.findall(r'^include: "([^"]+)"', text, re.M)]


def _definitions(text: str) -> set[str]:
    names = set(re.findall(r"^def (\w+)\(", text, re.M))
    names |= set(re.findall(r"^([A-Za-z_]\w*) = ", text, re.M))
    names |= set(re.findall(r"^from \S+ import (?:\(?)([\w, \n]+)", text, re.M)[0:0])
    return names


def _uses(text: str) -> set[str]:
    code = re.sub(r"#[^\n]*", "", text)
    code = re.sub(r'"""(.*?)"""', "", code, flags=re.S)
    return set(re.findall(r"\b([A-Za-z_]\w*)\b", code))


def test_rule_files_never_refer_forward():
    files = included_rule_files()
    defined_at = {}
    for i, path in enumerate(files):
        for name in _definitions(path.read_text()):
            defined_at.setdefault(name, i)
    forward = sorted(
        f"{path.name} uses {name} ({files[defined_at[name]].name})"
        for i, path in enumerate(files)
        for name in _uses(path.read_text())
        if defined_at.get(name, -1) > i
    )
    assert forward == []


def test_the_forward_reference_check_sees_one(tmp_path):
    early = "def f():\n    return LATE_PATH\n"
    late = 'LATE_PATH = "results/x"\n'
    assert "LATE_PATH" in _uses(early) and "LATE_PATH" in _definitions(late)


def test_rule_files_import_only_at_their_top():
    late = []
    for path in included_rule_files():
        seen_code = False
        for line in path.read_text().splitlines():
            if re.match(r"(def |rule |[A-Z_]+ = |if |wildcard_constraints)", line):
                seen_code = True
            elif seen_code and re.match(r"(from \S+ )?import ", line):
                late.append(f"{path.name}: {line}")
    assert late == []


# ---- docs -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["modules", "rule files"])
def test_architecture_doc_names_every_module_and_rule_file(kind):
    doc = (ROOT / "docs" / "architecture.md").read_text()
    if kind == "modules":
        names = [
            str(p.relative_to(PACKAGE))
            for p in sorted(PACKAGE.rglob("*.py"))
            if p.name != "__init__.py"
        ]
        names += [str(p.parent.relative_to(PACKAGE)) + "/" for p in PACKAGE.glob("*/__init__.py")]
    else:
        names = [p.name for p in sorted(RULES.glob("*.smk"))]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert missing == []
