"""Code versions of the rule scripts: a change to the package reruns the rules it affects.

Snakemake reruns a job when its params change (``--rerun-triggers`` includes ``params``
by default), but it does not know which package modules a ``script:`` rule imports. Each
script rule gets one extra param, ``CODE_PARAM``: a SHA-256 over the script's own text and
the text of every ``npc_radiomics`` module it imports, transitively (imports found in the
source line by line, those inside functions included, so a lazily imported module counts
too). Computed once when the workflow starts, from the files on disk.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PACKAGE = "npc_radiomics"
CODE_PARAM = "npc_code_version"


# Import statements, found line by line (a regex is 10x faster than ``ast`` and this runs
# at every workflow start, also inside cluster jobs); parenthesised name lists may span
# lines. A match inside a string only adds a module: the hash errs on the side of reruns.
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.+[\w.]*|[\w.]+)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n#;]+)|import[ \t]+(?P<modules>[^\n#;]+))",
    re.M,
)


def _names(text: str) -> list[str]:
    """``a as b, c`` (or a parenthesised list, comments on its lines) -> [a, c]."""
    text = re.sub(r"#[^\n]*", "", text).strip().strip("()").replace("\\", " ")
    return [part.split()[0] for part in text.split(",") if part.split()]


def _imported_names(source: str, module: str | None) -> set[str]:
    """Package modules (``npc_radiomics.x`` names) one source file imports directly, at
    module level or inside functions (a lazy import counts too).

    ``module``: the dotted name of the file itself (for relative imports), or None for a
    rule script outside the package."""
    found: set[str] = set()
    for m in _IMPORT.finditer(source):
        if m.group("modules"):
            for name in _names(m.group("modules")):
                if name == PACKAGE or name.startswith(PACKAGE + "."):
                    found.add(name)
            continue
        base = m.group("base")
        if base.startswith("."):  # relative: resolve against the importing module's package
            if module is None:
                continue
            level = len(base) - len(base.lstrip("."))
            parent = module.split(".")[:-level]
            rest = base.lstrip(".")
            base = ".".join(parent + ([rest] if rest else []))
        if base != PACKAGE and not base.startswith(PACKAGE + "."):
            continue
        found.add(base)
        # ``from npc_radiomics import split``: the names may be submodules.
        found.update(f"{base}.{name}" for name in _names(m.group("names")))
    return found


class CodeIndex:
    """The package's modules under ``scripts_dir`` (the folder holding ``npc_radiomics``),
    read once: direct imports and text hash per module."""

    def __init__(self, scripts_dir: str | Path):
        self.scripts_dir = Path(scripts_dir)
        package_dir = self.scripts_dir / PACKAGE
        self.modules: dict[str, Path] = {}
        # Every module of the package and its subpackages; a subpackage's __init__.py is the
        # subpackage itself (npc_radiomics.imaging).
        for path in sorted(package_dir.rglob("*.py")):
            parts = path.relative_to(self.scripts_dir).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            self.modules[".".join(parts)] = path
        self._imports: dict[str, frozenset[str]] = {}
        self._digest: dict[str, str] = {}
        self._closures: dict[str, frozenset[str]] = {}
        for name, path in self.modules.items():
            data = path.read_bytes()
            self._digest[name] = hashlib.sha256(data).hexdigest()
            self._imports[name] = frozenset(self._known(_imported_names(data.decode(), name)))

    def _known(self, names: set[str]) -> set[str]:
        """Names that are modules of the package (``from x import function`` names drop out);
        importing a submodule imports the ``__init__`` of every package above it too."""
        known = {n for n in names if n in self.modules}
        for name in list(known):
            parts = name.split(".")
            known.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return known

    def digest(self, name: str) -> str:
        """SHA-256 of one module's text."""
        return self._digest[name]

    def closure(self, name: str) -> frozenset[str]:
        """``name`` and every package module it imports, transitively (cached)."""
        if name not in self._closures:
            seen, todo = {name}, [name]
            while todo:
                for dep in self._imports[todo.pop()]:
                    if dep not in seen:
                        seen.add(dep)
                        todo.append(dep)
            self._closures[name] = frozenset(seen)
        return self._closures[name]

    def script_modules(self, script: str | Path) -> list[str]:
        """Sorted package modules a rule script imports, transitively."""
        direct = self._known(_imported_names(Path(script).read_text(), None))
        out: set[str] = set()
        for name in direct:
            out |= self.closure(name)
        return sorted(out)

    def script_hash(self, script: str | Path) -> str:
        """SHA-256 over the script's text and the (name, text hash) of each module it
        imports, transitively: changes exactly when one of those files changes."""
        h = hashlib.sha256(Path(script).read_bytes())
        for name in self.script_modules(script):
            h.update(f"\n{name}:{self._digest[name]}".encode())
        return h.hexdigest()


def _rule_script(rule) -> Path | None:
    """The absolute path of a Snakemake rule's ``script:``, or None for other rules."""
    script = getattr(rule, "script", None)
    if not script:
        return None
    path = Path(str(script))
    if not path.is_absolute():
        # rule.basedir: a Snakemake LocalSourceFile (its .path) or a plain path.
        path = Path(str(getattr(rule.basedir, "path", rule.basedir))) / path
    if not path.is_file():
        raise ValueError(f"rule {rule.name}: script {path} not found")
    return path.resolve()


def attach_code_versions(rules, scripts_dir: str | Path) -> dict[str, str]:
    """Add ``CODE_PARAM`` (the script's code hash) to the params of every script rule in
    ``rules`` (Snakemake ``Rule`` objects); returns {rule name: hash}. Run once, after
    every rule is defined and before the DAG is built."""
    index = CodeIndex(scripts_dir)
    versions: dict[str, str] = {}
    for rule in rules:
        path = _rule_script(rule)
        if path is None or path.suffix != ".py":
            continue
        if CODE_PARAM in rule.params.keys():
            raise ValueError(f"rule {rule.name}: params already has {CODE_PARAM!r}")
        versions[rule.name] = index.script_hash(path)
        rule.set_params(**{CODE_PARAM: versions[rule.name]})
    return versions


def strip_code_version(snakemake) -> None:
    """Remove ``CODE_PARAM`` from a running script's ``snakemake.params`` in place (rule
    scripts pass their params on as keyword arguments; the code version is for Snakemake's
    rerun triggers alone). ``snakemake.params`` is a property that builds a fresh Params
    from ``_params_store`` on every access, so the store is edited: its last item, name and
    attribute (checked on Snakemake 9.27.1 by tests/test_codehash.py)."""
    params = getattr(snakemake, "_params_store", None)
    if params is None:
        params = getattr(snakemake, "params", None)
    if params is None or CODE_PARAM not in params.keys():  # a rule without params
        return
    start, end = params._names[CODE_PARAM]
    if end is not None or start != len(params) - 1:
        raise ValueError(f"{CODE_PARAM} is not the last param of this rule")
    del params._names[CODE_PARAM]
    del params[start]
    vars(params).pop(CODE_PARAM, None)
