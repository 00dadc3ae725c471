"""The fitted pipeline's file in a bundle: skops' format, which loads without executing
pickled code, written canonically (object ids renumbered, members renamed, sorted and
time-stamped 1980-01-01, so the same pipeline gives the same bytes in any process), and
loaded trusting exactly the workflow's own types (:data:`TRUSTED_TYPES`; bundles of the
flat package layout through :data:`LEGACY_TYPE_MODULES`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from npc_radiomics.base.errors import InputError

#: Every type a bundle's pipeline may hold beyond skops' defaults: the selection steps and
#: the classifier zoo (npc_radiomics.modelling.zoo). Anything else in a pipeline file is refused.
TRUSTED_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        "npc_radiomics.modelling.harmonize.CentreComBat",
        "npc_radiomics.modelling.selection.LassoCVSelector",
        "npc_radiomics.modelling.selection.NonFiniteFilter",
        "npc_radiomics.modelling.selection.MRMRSelector",
        "npc_radiomics.modelling.zoo.CappedKNeighborsClassifier",
        "npc_radiomics.modelling.zoo.PlattSVC",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.tree._tree.Tree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
    }
)


#: Bundles written before the package was laid out by stage (until 2026-12) name the
#: workflow's own types by their old flat module: old module -> the module holding the
#: same class now. Such a bundle loads unchanged (tests/fixtures/bundle_flat_layout).
LEGACY_TYPE_MODULES = {
    "npc_radiomics.harmonize": "npc_radiomics.modelling.harmonize",
    "npc_radiomics.selection": "npc_radiomics.modelling.selection",
    "npc_radiomics.zoo": "npc_radiomics.modelling.zoo",
}


def current_type(name: str) -> str:
    """A type path as the package lays it out today (old flat-layout paths mapped)."""
    module, _, cls = name.rpartition(".")
    return f"{LEGACY_TYPE_MODULES.get(module, module)}.{cls}"


@contextlib.contextmanager
def legacy_module_aliases(types):
    """While loading, the old module names a file uses resolve to today's modules (skops
    imports a type's module by the name stored in the file)."""
    import importlib
    import sys

    added = []
    for name in types:
        old = name.rpartition(".")[0]
        if old in LEGACY_TYPE_MODULES and old not in sys.modules:
            sys.modules[old] = importlib.import_module(LEGACY_TYPE_MODULES[old])
            added.append(old)
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)


class BundleError(InputError):
    """A bundle that is missing, altered, of an unknown format or holds unexpected types."""


def untrusted_types(path: str | Path) -> list[str]:
    """Types in a skops file that skops does not trust by default (read, never executed)."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(file=str(path)))


#: Time stamp of every member of a canonical skops archive (the earliest a zip can hold).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


#: skops' own member holding the object tree; every other member is named by it.
SKOPS_SCHEMA = "schema.json"


def canonical_schema(schema: dict) -> tuple[dict, dict[str, str]]:
    """``schema`` with skops' object ids renumbered 1, 2, ... and its member files renamed
    ``000001.npy``, ... in the order the tree first names them; returns (schema, old file
    name -> new file name).

    skops records ``id()`` of each saved object (``__id__``, used on loading only to share
    a node named twice) and names array files by it (``<id>.npy``, ``<id>.npz``) or by a
    random UUID (``<uuid>.bin``): both change from process to process. Renumbering keeps
    every reference consistent (the same id or file named twice maps to the same number),
    so the loaded object is the same. Immutable leaves (``JsonNode``: str, int, float,
    ...) lose their id: whether Python shared such an object is an accident of interning,
    and loading shares nothing through them (unless an old file holds ``CachedNode``
    references, in which case every id is kept, renumbered).
    """
    text = json.dumps(schema)
    keep_leaf_ids = '"CachedNode"' in text
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}

    def walk(node):
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        is_node = "__loader__" in node
        out = {}
        for key, value in node.items():
            if is_node and key == "__id__":
                if node["__loader__"] == "JsonNode" and not keep_leaf_ids:
                    continue
                out[key] = ids.setdefault(value, len(ids) + 1)
            elif is_node and key == "file" and isinstance(value, str):
                suffix = Path(value).suffix
                out[key] = files.setdefault(value, f"{len(files) + 1:06d}{suffix}")
            else:
                out[key] = walk(value)
        return out

    return walk(schema), files


def canonical_skops(path: str | Path) -> None:
    """Rewrite a skops file byte-reproducibly: object ids and member names renumbered in
    tree order (:func:`canonical_schema`), members sorted by name, every time stamp
    :data:`ZIP_EPOCH`, fixed permissions, no compression (skops' default). The same
    fitted pipeline then gives the same bytes in any process, on any day; ``skops.io.load``
    reads the file as before (the tests load it and compare predictions)."""
    import zipfile

    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    schema, renamed = canonical_schema(json.loads(members.pop(SKOPS_SCHEMA)))
    unreferenced = sorted(set(members) - set(renamed))
    if unreferenced:
        raise RuntimeError(f"{path.name}: skops member(s) {unreferenced[:3]} not in its schema")
    content = {new: members[old] for old, new in renamed.items()}
    content[SKOPS_SCHEMA] = json.dumps(schema, indent=2).encode()
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(content):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, content[name])
    tmp.replace(path)


def dump_pipeline(pipe, path: str | Path) -> list[str]:
    """Write ``pipe`` with ``skops.io.dump``, made byte-reproducible
    (:func:`canonical_skops`); returns the non-default types it holds.

    Raises:
        RuntimeError: if the pipeline holds a type outside :data:`TRUSTED_TYPES` (a new
            model in the zoo must be added there, or the bundle could not be loaded).
    """
    import skops.io as sio

    sio.dump(pipe, str(path))
    canonical_skops(path)
    types = untrusted_types(path)
    unexpected = sorted(set(types) - TRUSTED_TYPES)
    if unexpected:
        raise RuntimeError(
            f"pipeline holds type(s) outside pipeline_file.TRUSTED_TYPES: {unexpected}; add them "
            "there if they are safe"
        )
    return types


def load_pipeline_file(path: str | Path):
    """Load a skops pipeline, trusting exactly the expected types (:data:`TRUSTED_TYPES`).

    Raises:
        BundleError: naming the unexpected types, before anything is constructed.
    """
    import skops.io as sio

    types = untrusted_types(path)
    unexpected = sorted(t for t in types if current_type(t) not in TRUSTED_TYPES)
    if unexpected:
        raise BundleError(
            f"bundle {Path(path).parent}: {Path(path).name} holds unexpected type(s) "
            f"{unexpected}; refused (only the workflow's own model types are loaded)"
        )
    with legacy_module_aliases(types):
        return sio.load(str(path), trusted=types)
