"""Exact speed-ups for pyradiomics feature extraction (issue 30), as a version-checked adapter.

On large tumours pyradiomics spends much of its CPU time on work that changes no feature value.
For the pyradiomics version(s) they were verified against (:data:`VERIFIED_VERSIONS`),
:func:`apply_speedups` replaces some of it by code that gives the same numbers, bit for bit:

* **Shape coefficients.** ``radiomics.shape`` calls ``_cshape.calculate_coefficients``, whose
  maximum 3D and 2D diameters compare every pair of mesh vertices: O(n^2), most of the shape
  time on a large tumour. The replacement builds the same vertices (the midpoints of the voxel
  edges crossing the mask boundary, with the C code's floating-point operations) and takes the
  maxima over the vertices that can reach them: the farthest pair of a point set is a pair of
  vertices of its convex hull (scipy's Qhull, coplanar points kept), and every vertex of a hull
  is the first or last point of its grid row. Squared distances are summed in the C code's
  order. Surface area and volume are the C code's marching cubes, vectorised: same triangles,
  same operations, summed left to right in the C loop's order. The triangle table is the one
  compiled into the installed ``_cshape`` module, read from the module file and accepted only
  if every cube configuration and a few random masks, at 1 mm and at an anisotropic spacing,
  give the C function's exact area, volume and diameters. Meshes under
  ``_SHAPE_MIN_VERTICES`` vertices (where the C code is as fast), non-boolean masks and any
  failure go to the C function.
* **One discretisation per image type.** First order and every texture class call
  ``RadiomicsFeaturesBase._applyBinning`` on the same image and mask: 6 times per image type.
  Inside one ``RadiomicsFeatureExtractor.computeFeatures`` call (one image type) the binned
  matrix and its gray levels are computed once and handed out as copies. The cache is keyed on
  the content of the mask, of the voxels inside it and on the binning settings, holds one entry
  and is emptied when ``computeFeatures`` returns.
* **Bin edges from numpy reductions.** ``imageoperations.getBinEdges`` takes the builtin
  ``min`` / ``max`` of a numpy array, a Python loop over every ROI voxel; it now gets the
  two-element array ``[values.min(), values.max()]`` and makes the edges with its own
  arithmetic. NaN, a zero minimum or maximum (builtin ``min`` keeps the first of -0.0 and 0.0)
  and bin-count mode keep the original path.
* **GLCM coefficients and MCC.** The sums of ``p(i, j)`` along ``i + j = k`` and
  ``|i - j| = k`` scan the whole matrix once per k (O(Ng^3)); ``np.bincount`` adds the same
  elements in the same order. The MCC's matrix Q is an O(Ng^3) loop whose terms are mostly
  +0 (a zero co-occurrence): from 96 gray levels on, only the non-zero terms are added, in
  the same order. On the wavelet LLL band (about 200 levels at ``binWidth`` 0.1) the MCC was
  the largest single cost of a demo-sized case.
* **Feature names** of each feature class are listed once (``inspect.getmembers`` ran at
  every class instantiation).

:func:`remove_speedups` restores the original objects (the tests compare patched and unpatched
extraction in one process). :data:`SPEEDUPS_ENV` set to 1 keeps pyradiomics unpatched. This
module imports only the standard library, numpy, scipy and radiomics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "SPEEDUPS_ENV",
    "VERIFIED_VERSIONS",
    "apply_speedups",
    "remove_speedups",
    "speedups",
    "speedups_active",
]

#: Set to 1 (or true / yes / on) to keep pyradiomics unpatched.
SPEEDUPS_ENV = "NPC_RADIOMICS_NO_PYRADIOMICS_SPEEDUPS"
#: ``radiomics.__version__`` values (a leading "v" ignored) whose code the patches were checked
#: against: pyradiomics-bhklab 3.1.4, whose Python sources equal pyradiomics 3.1.0's.
VERIFIED_VERSIONS = ("3.1.4",)
#: Below this many mesh vertices the C shape code (O(n^2)) is as fast: it is used as is.
_SHAPE_MIN_VERTICES = 3000

log = logging.getLogger(__name__)

_lock = threading.RLock()
#: (owner, attribute, original value) of every installed patch, in installation order.
_installed: list[tuple[Any, str, Any]] = []
#: The last message logged at INFO / WARNING; the same outcome again is logged at DEBUG.
_last_logged: list[str] = []


def speedups_active() -> bool:
    """Whether the patches are installed."""
    return bool(_installed)


def apply_speedups(enabled: bool = True) -> bool:
    """Install the exact pyradiomics speed-ups (idempotent), log one line, return whether on.

    Returns whether the patches are on after the call (already applied ones stay on). Nothing
    is patched when ``enabled`` is false, when :data:`SPEEDUPS_ENV` is 1, or when
    ``radiomics.__version__`` is not in :data:`VERIFIED_VERSIONS`. The line is logged at INFO
    (WARNING for an unverified version); an outcome already logged, or a call while the patches
    are on, is logged at DEBUG only.
    """
    with _lock:
        if _installed:
            log.debug("pyradiomics speed-ups: already applied")
            return True
        if not enabled:
            _log_once(logging.INFO, "pyradiomics speed-ups: not applied (disabled by the caller)")
            return False
        if os.environ.get(SPEEDUPS_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
            _log_once(logging.INFO, f"pyradiomics speed-ups: not applied ({SPEEDUPS_ENV} is set)")
            return False
        try:
            import radiomics
        except ImportError as error:
            _log_once(logging.WARNING, f"pyradiomics speed-ups: not applied ({error})")
            return False
        version = str(getattr(radiomics, "__version__", "unknown"))
        if version.lstrip("vV") not in VERIFIED_VERSIONS:
            _log_once(
                logging.WARNING,
                f"pyradiomics speed-ups: not applied (pyradiomics {version} is not a verified "
                f"version: {', '.join(VERIFIED_VERSIONS)})",
            )
            return False
        try:
            shape_note = _install()
        except Exception as error:  # an unexpected layout: leave pyradiomics as it was
            _uninstall()
            _log_once(logging.WARNING, f"pyradiomics speed-ups: not applied ({error!r})")
            return False
        _log_once(
            logging.INFO,
            f"pyradiomics speed-ups: applied to pyradiomics {version} ({shape_note}; one "
            "discretisation per image type; numpy bin edges; GLCM sums without the zeros)",
        )
        return True


def remove_speedups() -> None:
    """Restore every patched pyradiomics object (no-op when nothing is applied)."""
    with _lock:
        _uninstall()


@contextlib.contextmanager
def speedups(enabled: bool = True) -> Iterator[bool]:
    """``with speedups():`` applies the patches for the block and yields whether they are on.

    On exit the previous state comes back: patches applied before the block stay applied.
    """
    with _lock:
        was_active = speedups_active()
    active = apply_speedups(enabled)
    try:
        yield active
    finally:
        if active and not was_active:
            remove_speedups()


def _log_once(level: int, message: str) -> None:
    if _last_logged == [message]:
        log.debug(message)
        return
    _last_logged[:] = [message]
    log.log(level, message)


def _patch(owner: Any, name: str, value: Any) -> None:
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    _installed.append((owner, name, original))
    setattr(owner, name, value)


def _uninstall() -> None:
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)
    _bin_cache.clear()
    _feature_names.clear()


def _install() -> str:
    """Install the patches; return what happened to the shape patch (for the log line)."""
    from radiomics import base, featureextractor, glcm, imageoperations, shape

    extractor = featureextractor.RadiomicsFeatureExtractor
    for owner, name in (
        (base.RadiomicsFeaturesBase, "_applyBinning"),
        (base.RadiomicsFeaturesBase, "getFeatureNames"),
        (extractor, "computeFeatures"),
        (imageoperations, "getBinEdges"),
        (glcm.RadiomicsGLCM, "_calculateCoefficients"),
        (glcm.RadiomicsGLCM, "getMCCFeatureValue"),
    ):
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(f"{getattr(owner, '__name__', owner)}.{name} not found")
    _patch(imageoperations, "getBinEdges", _bin_edges_wrapper(imageoperations.getBinEdges))
    _patch(
        base.RadiomicsFeaturesBase,
        "_applyBinning",
        _apply_binning_wrapper(base.RadiomicsFeaturesBase.__dict__["_applyBinning"]),
    )
    _patch(
        extractor,
        "computeFeatures",
        _compute_features_wrapper(extractor.__dict__["computeFeatures"]),
    )
    _patch(
        base.RadiomicsFeaturesBase,
        "getFeatureNames",
        _feature_names_wrapper(base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]),
    )
    cooccurrence = glcm.RadiomicsGLCM
    _patch(
        cooccurrence,
        "_calculateCoefficients",
        _glcm_coefficients_wrapper(cooccurrence.__dict__["_calculateCoefficients"]),
    )
    _patch(
        cooccurrence,
        "getMCCFeatureValue",
        _mcc_wrapper(cooccurrence.__dict__["getMCCFeatureValue"]),
    )

    cshape = shape.cShape
    if cshape is None or not callable(getattr(cshape, "calculate_coefficients", None)):
        return "shape left in C: radiomics._cshape not loaded"
    mesh = _marching_cubes(cshape)
    if isinstance(mesh, str):
        return f"shape left in C: {mesh}"
    _patch(shape, "cShape", _shape_proxy(cshape, mesh))
    return "shape diameters from the convex hull"


# --------------------------------------------------------------------------------------------
# Shape: surface area, volume and maximum diameters of pyradiomics' marching-cubes mesh
# --------------------------------------------------------------------------------------------

#: The C code's cube corners as (z, y, x) offsets, corner k = bit k of its cube index, and its
#: 12 cube edges as corner pairs (documented in pyradiomics' C source: p0 at the origin, p1 to
#: p3 around the face z = 0 going x first, p4 to p7 the same at z = 1).
_CORNERS = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0))
_EDGES = (
    (0, 1),
    (1, 2),
    (3, 2),
    (0, 3),
    (4, 5),
    (5, 6),
    (7, 6),
    (4, 7),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)
_EDGE_MIDPOINTS = np.array(
    [[(_CORNERS[i][d] + _CORNERS[j][d]) / 2 for d in range(3)] for i, j in _EDGES]
)
#: Cubes handled per vectorised block (at most 5 triangles each): bounds the temporaries.
_CUBE_BLOCK = 1 << 16


class _MarchingCubes:
    """pyradiomics' marching-cubes area and volume, vectorised with the same arithmetic."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table  # (128, 16): edge triples of each configuration, then -1
        self.count = np.count_nonzero(table >= 0, axis=1) // 3

    def sums(self, m: np.ndarray, sp: np.ndarray) -> tuple[float, float]:
        """(surface area, volume) as ``_cshape.calculate_coefficients`` computes them."""
        shape = tuple(n - 1 for n in m.shape)
        index = np.zeros(shape, dtype=np.uint8)
        for k, (dz, dy, dx) in enumerate(_CORNERS):
            corner = m[dz : dz + shape[0], dy : dy + shape[1], dx : dx + shape[2]]
            index |= corner.view(np.uint8) << np.uint8(k)
        flat = index.ravel()
        cubes = np.flatnonzero((flat != 0) & (flat != 255))  # in the C loop's order: z, y, x
        config = flat[cubes]
        flipped = config >= 128  # the C code takes the complement and negates the volume
        config = np.where(flipped, config ^ np.uint8(255), config)
        sign = np.where(flipped, -1.0, 1.0)
        position = np.unravel_index(cubes, shape)
        area = volume = 0.0
        for start in range(0, len(cubes), _CUBE_BLOCK):
            part = slice(start, start + _CUBE_BLOCK)
            area, volume = self._block(
                config[part], sign[part], [p[part] for p in position], sp, area, volume
            )
        return area, volume / 6

    def _block(
        self,
        config: np.ndarray,
        sign: np.ndarray,
        position: list[np.ndarray],
        sp: np.ndarray,
        area: float,
        volume: float,
    ) -> tuple[float, float]:
        """Add one block of cubes' triangles to the running sums, in the C loop's order."""
        per_cube = self.count[config]
        cube = np.repeat(np.arange(len(config)), per_cube)
        slot = np.arange(len(cube)) - (np.cumsum(per_cube) - per_cube)[cube]
        rows = self.table[config[cube]]
        corners = []
        for j in range(3):
            edge = rows[np.arange(len(cube)), 3 * slot + j]
            corners.append(
                [
                    (position[d][cube].astype(np.float64) + _EDGE_MIDPOINTS[edge, d]) * sp[d]
                    for d in range(3)
                ]
            )
        a, b, c = corners
        ab = _cross(a, b)
        signed = sign[cube] * (ab[0] * c[0] + ab[1] * c[1] + ab[2] * c[2])
        ab = _cross([a[d] - c[d] for d in range(3)], [b[d] - c[d] for d in range(3)])
        half = 0.5 * np.sqrt(ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2])
        # np.cumsum adds left to right: the C code's running totals, carried across blocks.
        area = float(np.cumsum(np.concatenate(([area], half)))[-1])
        volume = float(np.cumsum(np.concatenate(([volume], signed)))[-1])
        return area, volume


def _cross(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """The C code's cross product, term for term."""
    return [a[1] * b[2] - b[1] * a[2], a[2] * b[0] - b[2] * a[0], a[0] * b[1] - b[0] * a[1]]


#: Validated marching cubes (or the reason it is unusable) per C function object.
_meshes: dict[int, tuple[Any, _MarchingCubes | str]] = {}


def _marching_cubes(cshape: Any) -> _MarchingCubes | str:
    """The validated vectorised marching cubes for the ``_cshape`` module, or why not."""
    calculate = cshape.calculate_coefficients
    cached = _meshes.get(id(calculate))
    if cached is not None and cached[0] is calculate:
        return cached[1]
    try:
        mesh: _MarchingCubes | str = _MarchingCubes(_read_triangle_table(cshape.__file__))
        _validate(mesh, calculate)
    except Exception as error:
        mesh = f"{type(error).__name__}: {error}"
    _meshes[id(calculate)] = (calculate, mesh)
    return mesh


def _read_triangle_table(path: str) -> np.ndarray:
    """The 128 x 16 int32 triangle table compiled into the ``_cshape`` module file.

    Its rows are edge triples (0-11) of each cube configuration, padded with -1, row 0 empty;
    exactly one such block must exist.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    found = []
    for offset in range(4):
        words = np.frombuffer(data, dtype="<i4", offset=offset, count=(len(data) - offset) // 4)
        minus = np.concatenate(([0], np.cumsum(words == -1)))
        for start in np.flatnonzero(minus[16:] - minus[:-16] == 16):  # 16 x -1: row 0
            block = words[start : start + 128 * 16]
            if len(block) == 128 * 16 and _is_triangle_table(block.reshape(128, 16)):
                found.append(block.reshape(128, 16).astype(np.intp))
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} triangle tables found in {path}")
    return found[0]


def _is_triangle_table(block: np.ndarray) -> bool:
    if np.any(block[0] != -1):
        return False
    for row in block[1:]:
        n = int(np.count_nonzero(row >= 0))
        if n == 0 or n % 3 or np.any(row[:n] < 0) or np.any(row[:n] > 11) or np.any(row[n:] != -1):
            return False
    return True


def _validate(mesh: _MarchingCubes, calculate: Any) -> None:
    """Every cube configuration and some random masks must give the C function's exact output."""
    rng = np.random.default_rng(30)
    cubes = []
    for config in range(256):
        cube = np.zeros((2, 2, 2), dtype=bool)
        for k, offset in enumerate(_CORNERS):
            cube[offset] = bool((config >> k) & 1)
        cubes.append(cube)
    masks = [np.pad(rng.random((9, 10, 11)) < 0.5, 1) for _ in range(2)]
    z, y, x = np.ogrid[-9:10, -12:13, -7:8]
    masks.append(np.pad((z / 9.5) ** 2 + (y / 12.5) ** 2 + (x / 7.5) ** 2 <= 1, 1))
    for spacing in (np.ones(3), np.array([0.7, 1.3, 2.1])):
        for mask in cubes + masks:
            if mesh.sums(mask, spacing) != tuple(calculate(mask, spacing)[:2]):
                raise RuntimeError("the triangle table does not reproduce _cshape's area/volume")
        for mask in masks:
            if _diameters(_mesh_vertices(mask), spacing) != tuple(calculate(mask, spacing)[2]):
                raise RuntimeError("the mesh vertices do not reproduce _cshape's diameters")


def _shape_proxy(cshape: Any, mesh: _MarchingCubes) -> types.SimpleNamespace:
    """A stand-in for ``radiomics.cShape`` whose 3D ``calculate_coefficients`` is the fast one."""
    original = cshape.calculate_coefficients

    def calculate_coefficients(mask: Any, spacing: Any) -> Any:
        try:
            result = _fast_coefficients(mask, spacing, mesh)
        except Exception as error:  # e.g. a Qhull failure: the C code is always right
            log.debug("fast shape coefficients failed (%r); using pyradiomics' C code", error)
            result = None
        return original(mask, spacing) if result is None else result

    return types.SimpleNamespace(
        calculate_coefficients=calculate_coefficients,
        calculate_coefficients2D=cshape.calculate_coefficients2D,
        __file__=getattr(cshape, "__file__", None),
        __wrapped__=cshape,
    )


def _fast_coefficients(
    mask: Any, spacing: Any, mesh: _MarchingCubes
) -> tuple[float, float, tuple[float, float, float, float]] | None:
    """``_cshape.calculate_coefficients(mask, spacing)``, or None where the C code should run."""
    m = np.asarray(mask)
    sp = np.asarray(spacing, dtype=np.float64)
    if m.dtype != np.bool_ or m.ndim != 3 or min(m.shape) < 2 or sp.shape != (3,):
        return None
    if not (np.all(np.isfinite(sp)) and np.all(sp > 0)):
        return None
    vertices = _mesh_vertices(m)
    if len(vertices) < max(_SHAPE_MIN_VERTICES, 2):
        return None
    diameters = _diameters(vertices, sp)
    if diameters is None:
        return None
    area, volume = mesh.sums(m, sp)
    return area, volume, diameters


def _mesh_vertices(m: np.ndarray) -> np.ndarray:
    """The C code's mesh vertices as doubled grid coordinates (int64 columns z, y, x).

    A vertex sits halfway on each voxel edge whose two voxels differ. The C code stores the
    edges meeting at corner (1, 1, 0) of every cube, so it skips x-edges at z = 0 or y = 0,
    y-edges at z = 0 or at the last x, and z-edges at y = 0 or at the last x (all empty in a
    padded mask, as pyradiomics' shape class passes it); the same edges are taken here.
    """
    x_edges = np.nonzero(m[1:, 1:, 1:] != m[1:, 1:, :-1])  # index (z - 1, y - 1, x)
    y_edges = np.nonzero(m[1:, 1:, :-1] != m[1:, :-1, :-1])  # index (z - 1, y, x)
    z_edges = np.nonzero(m[1:, 1:, :-1] != m[:-1, 1:, :-1])  # index (z, y - 1, x)
    blocks = []
    for edges, shift in ((x_edges, (2, 2, 1)), (y_edges, (2, 1, 0)), (z_edges, (1, 2, 0))):
        doubled = np.empty((len(edges[0]), 3), dtype=np.int64)
        for axis in range(3):
            doubled[:, axis] = 2 * edges[axis].astype(np.int64) + shift[axis]
        blocks.append(doubled)
    return np.concatenate(blocks)


def _diameters(doubled: np.ndarray, sp: np.ndarray) -> tuple[float, float, float, float] | None:
    """Maximum distances (same z, same y, same x, any pair) as the C code returns them."""
    coords = (doubled * 0.5) * sp  # the C code's (index + 0, 0.5 or 1) * spacing, bit for bit
    # The first and last vertex of every grid row along x keep every vertex of the 3D hull and
    # of the 2D hulls in the planes z = c and y = c; rows along y do so in the planes x = c.
    along_x = _row_ends(doubled, keys=(0, 1), along=2)
    along_y = _row_ends(doubled, keys=(0, 2), along=1)
    any_pair = _max_pair(coords[along_x])
    if any_pair is None:
        return None
    same_z = _max_in_planes(doubled[along_x], coords[along_x], plane_axis=0)
    same_y = _max_in_planes(doubled[along_x], coords[along_x], plane_axis=1)
    same_x = _max_in_planes(doubled[along_y], coords[along_y], plane_axis=2)
    if any_pair < max(same_z, same_y, same_x):  # impossible for true maxima: stay safe
        return None
    return (math.sqrt(same_z), math.sqrt(same_y), math.sqrt(same_x), math.sqrt(any_pair))


def _row_ends(doubled: np.ndarray, keys: tuple[int, int], along: int) -> np.ndarray:
    """Indices of the first and last vertex (along ``along``) of each row sharing ``keys``."""
    order = np.lexsort((doubled[:, along], doubled[:, keys[1]], doubled[:, keys[0]]))
    k0, k1 = doubled[order, keys[0]], doubled[order, keys[1]]
    first = np.empty(len(order), dtype=bool)
    first[0] = True
    first[1:] = (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])
    last = np.empty(len(order), dtype=bool)
    last[:-1] = first[1:]
    last[-1] = True
    return np.unique(order[first | last])


def _max_sq_distance(points: np.ndarray) -> float:
    """Largest squared distance between two rows of ``points``, summed in the C code's order."""
    best = 0.0
    step = max(1, 2_000_000 // max(1, len(points)))
    for start in range(0, len(points), step):
        block = points[start : start + step]
        total = np.zeros((len(block), len(points)))
        for axis in range(points.shape[1]):
            diff = block[:, None, axis] - points[None, :, axis]
            total += diff * diff
        if total.size:
            best = max(best, float(total.max()))
    return best


def _hull_points(points: np.ndarray) -> np.ndarray | None:
    """Vertices and coplanar points of the convex hull of ``points`` (None: degenerate)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        return None
    keep = np.union1d(hull.vertices, hull.coplanar[:, 0]).astype(np.intp)
    return points[keep]


def _max_pair(points: np.ndarray) -> float | None:
    """Largest squared distance in a 3D point set, over its hull (None: degenerate hull)."""
    if len(points) <= 256:
        return _max_sq_distance(points)
    extreme = _hull_points(points)
    return None if extreme is None else _max_sq_distance(extreme)


def _max_in_planes(doubled: np.ndarray, coords: np.ndarray, plane_axis: int) -> float:
    """Largest squared distance between two vertices with the same ``plane_axis`` coordinate."""
    others = [axis for axis in range(3) if axis != plane_axis]
    order = np.argsort(doubled[:, plane_axis], kind="stable")
    planes = doubled[order, plane_axis]
    starts = np.flatnonzero(np.r_[True, planes[1:] != planes[:-1]])
    ends = np.r_[starts[1:], len(order)]
    in_plane = coords[order][:, others]
    best = 0.0
    for start, end in zip(starts, ends, strict=True):
        points = in_plane[start:end]
        if len(points) > 256:
            extreme = _hull_points(points)  # None when collinear: all points then
            points = points if extreme is None else extreme
        best = max(best, _max_sq_distance(points))
    return best


# --------------------------------------------------------------------------------------------
# Discretisation: once per image type, and bin edges from numpy reductions
# --------------------------------------------------------------------------------------------


class _BinCache(threading.local):
    """The last binned image of this thread; live only inside ``computeFeatures``."""

    def __init__(self) -> None:
        self.depth = 0
        self.entry: tuple[Any, ...] | None = None

    def clear(self) -> None:
        self.entry = None


_bin_cache = _BinCache()


def _compute_features_wrapper(original: Any) -> Any:
    def computeFeatures(self: Any, image: Any, mask: Any, imageTypeName: Any, **kwargs: Any) -> Any:
        _bin_cache.depth += 1
        try:
            return original(self, image, mask, imageTypeName, **kwargs)
        finally:
            _bin_cache.depth -= 1
            _bin_cache.clear()

    computeFeatures.__wrapped__ = original  # type: ignore[attr-defined]
    computeFeatures.__doc__ = original.__doc__
    return computeFeatures


def _apply_binning_wrapper(original: Any) -> Any:
    def _applyBinning(self: Any, matrix: Any) -> Any:
        mask = getattr(self, "maskArray", None)
        if (
            _bin_cache.depth == 0
            or not isinstance(matrix, np.ndarray)
            or not isinstance(mask, np.ndarray)
            or mask.dtype != np.bool_
            or mask.shape != matrix.shape
        ):
            return original(self, matrix)
        # binImage's output depends on the shape, the mask, the values inside it and the
        # two settings getBinEdges reads.
        settings = self.settings
        key = (
            matrix.shape,
            matrix.dtype.str,
            repr(settings.get("binWidth", 25)),
            repr(settings.get("binCount")),
        )
        values = matrix[mask]
        entry = _bin_cache.entry
        if (
            entry is not None
            and entry[0] == key
            and np.array_equal(entry[1], mask)
            and np.array_equal(entry[2], values, equal_nan=values.dtype.kind in "fc")
        ):
            binned, gray_levels, n_gray = entry[3:]
            self.coefficients["grayLevels"] = gray_levels.copy()
            self.coefficients["Ng"] = n_gray
            return binned.copy()
        binned = original(self, matrix)
        _bin_cache.entry = (
            key,
            mask.copy(),
            values,
            binned.copy(),
            self.coefficients["grayLevels"].copy(),
            self.coefficients["Ng"],
        )
        return binned

    _applyBinning.__wrapped__ = original  # type: ignore[attr-defined]
    _applyBinning.__doc__ = original.__doc__
    return _applyBinning


def _bin_edges_wrapper(original: Any) -> Any:
    def getBinEdges(parameterValues: Any, **kwargs: Any) -> Any:
        values = parameterValues
        if (
            kwargs.get("binCount") is None
            and isinstance(values, np.ndarray)
            and values.ndim == 1
            and values.size > 0
            and values.dtype.kind in "fiu"
        ):
            low, high = values.min(), values.max()
            # NaN makes builtin min/max order-dependent; of -0.0 and 0.0 they keep the first.
            if not (np.isnan(low) or np.isnan(high) or low == 0 or high == 0):
                return original(np.array([low, high], dtype=values.dtype), **kwargs)
        return original(parameterValues, **kwargs)

    getBinEdges.__wrapped__ = original  # type: ignore[attr-defined]
    getBinEdges.__doc__ = original.__doc__
    return getBinEdges


# --------------------------------------------------------------------------------------------
# Feature class set-up and GLCM coefficients
# --------------------------------------------------------------------------------------------

#: Feature names per feature class (``getFeatureNames`` runs ``inspect.getmembers`` on the
#: class at every instantiation: 6 or 7 classes x 13 image types per case).
_feature_names: dict[type, dict[str, bool]] = {}


def _feature_names_wrapper(original: classmethod) -> classmethod:
    function = original.__func__

    def getFeatureNames(cls: type) -> dict[str, bool]:
        names = _feature_names.get(cls)
        if names is None:
            names = _feature_names[cls] = function(cls)
        return dict(names)

    getFeatureNames.__wrapped__ = function  # type: ignore[attr-defined]
    getFeatureNames.__doc__ = function.__doc__
    return classmethod(getFeatureNames)


def _plain_glcm(matrix: Any) -> bool:
    """One segment (no voxel-based stack), several angles, finite float64 probabilities."""
    return (
        isinstance(matrix, np.ndarray)
        and matrix.ndim == 4
        and matrix.shape[0] == 1
        and matrix.shape[3] > 1
        and matrix.dtype == np.float64
        and bool(np.isfinite(matrix).all())
    )


def _glcm_coefficients_wrapper(original: Any) -> Any:
    """``RadiomicsGLCM._calculateCoefficients`` with the diagonal sums done by ``bincount``.

    pyradiomics sums ``p(i, j)`` over ``i + j = k`` and ``|i - j| = k`` with a boolean mask of
    the whole matrix per k: O(Ng^3). ``np.bincount`` adds the same elements in the same order
    (row-major (i, j): numpy sums the gathered axis sequentially because the angle axis is the
    contiguous one, hence several angles are required), once per angle. The other
    coefficients are pyradiomics' own expressions.
    """

    def _calculateCoefficients(self: Any) -> None:
        p = self.P_glcm
        if not _plain_glcm(p):
            return original(self)
        n_levels = self.coefficients["Ng"]
        eps = np.spacing(1)
        levels = self.coefficients["grayLevels"].astype("float")
        i, j = np.meshgrid(levels, levels, indexing="ij", sparse=True)
        k_sum = np.arange(2, (n_levels * 2) + 1, dtype="float")
        k_diff = np.arange(0, n_levels, dtype="float")
        self.coefficients.update(
            eps=eps,
            i=i,
            j=j,
            kValuesSum=k_sum,
            kValuesDiff=k_diff,
            px=p.sum(2, keepdims=True),
            py=p.sum(1, keepdims=True),
            ux=np.sum(i[None, :, :, None] * p, (1, 2), keepdims=True),
            uy=np.sum(j[None, :, :, None] * p, (1, 2), keepdims=True),
            pxAddy=_diagonal_sums(p, i + j, k_sum),
            pxSuby=_diagonal_sums(p, np.abs(i - j), k_diff),
            HXY=(-1) * np.sum((p * np.log2(p + eps)), (1, 2)),
        )

    _calculateCoefficients.__wrapped__ = original  # type: ignore[attr-defined]
    _calculateCoefficients.__doc__ = original.__doc__
    return _calculateCoefficients


def _diagonal_sums(p: np.ndarray, index: np.ndarray, k_values: np.ndarray) -> np.ndarray:
    """``sum(p[0, index == k, a])`` for every k and angle a, shape (1, len(k_values), Na), in
    pyradiomics' memory layout (a transposed (K, 1, Na) array)."""
    key = index.astype(np.int64).ravel()  # gray levels are whole numbers
    wanted = k_values.astype(np.int64)
    length = max(int(key.max()), int(wanted.max())) + 1
    out = np.zeros((len(k_values), 1, p.shape[3]))
    for angle in range(p.shape[3]):
        sums = np.bincount(key, weights=p[0, :, :, angle].ravel(), minlength=length)
        out[:, 0, angle] = sums[wanted]
    return out.transpose((1, 0, 2))


#: Below this many gray levels pyradiomics' dense MCC loop is as fast as the sparse one.
_MCC_SPARSE_MIN_LEVELS = 96


def _mcc_wrapper(original: Any) -> Any:
    """``RadiomicsGLCM.getMCCFeatureValue`` with Q summed over its non-zero terms only.

    ``Q(i, j) = sum_k p(i, k) p(j, k) / (p_x(i) p_y(k) + eps)`` is a dense loop over k (O(Ng^3)
    per angle). A term with ``p(i, k) = 0`` or ``p(j, k) = 0`` is +0 and leaves the running sum
    as it is, so adding only the others, with the same expressions in the same k order, gives
    the same Q; the eigenvalues follow as in pyradiomics.
    """

    def getMCCFeatureValue(self: Any) -> Any:
        q = _mcc_q(self)
        if q is None:
            return original(self)
        eigenvalues = np.linalg.eigvals(q.transpose((0, 3, 1, 2)))
        eigenvalues.sort()  # per angle, low to high
        if eigenvalues.shape[2] < 2:
            return 1  # a flat region, as pyradiomics returns it
        return np.nanmean(np.sqrt(eigenvalues[:, :, -2]), 1).real

    getMCCFeatureValue.__wrapped__ = original  # type: ignore[attr-defined]
    getMCCFeatureValue.__doc__ = original.__doc__
    return getMCCFeatureValue


def _mcc_q(self: Any) -> np.ndarray | None:
    p = self.P_glcm
    if not _plain_glcm(p) or p.shape[1] < _MCC_SPARSE_MIN_LEVELS:
        return None
    px, py, eps = self.coefficients["px"], self.coefficients["py"], self.coefficients["eps"]
    n_levels, n_angles = p.shape[1], p.shape[3]
    q = np.zeros((1, n_levels, n_levels, n_angles))
    for angle in range(n_angles):
        pa = p[0, :, :, angle]
        row_marginal = px[0, :, 0, angle]
        plane = np.zeros((n_levels, n_levels))
        for k in range(n_levels):
            rows = np.flatnonzero(pa[:, k])
            if rows.size == 0:
                continue
            column = pa[rows, k]
            denominator = row_marginal[rows] * py[0, 0, k, angle] + eps
            plane[np.ix_(rows, rows)] += (column[:, None] * column[None, :]) / denominator[:, None]
        q[0, :, :, angle] = plane
    return q
