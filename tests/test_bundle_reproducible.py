"""A byte-reproducible bundle: the same fitted pipeline written in two processes gives the
same pipeline.skops bytes, hence the same manifest, checksums and bundle hash."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npc_radiomics.deploy.bundle import CHECKSUMS, MANIFEST, PIPELINE_FILE, load_bundle

ROOT = Path(__file__).resolve().parents[1]

# Fits the pipeline in a fresh process (its objects get other ids there) after allocating
# some objects, so that Python's ids differ from the other process's, then writes a bundle.
SCRIPT = """
import sys
sys.path[:0] = [{scripts!r}, {tests!r}]
junk = [object() for _ in range(int(sys.argv[3]))]
from pathlib import Path
from test_bundle import _fit, make_bundle
pipe = _fit(sys.argv[2], {params!r})
make_bundle(Path(sys.argv[1]), pipe, model=sys.argv[2])
"""


def _write_in_a_process(tmp: Path, model: str, params: dict, allocate: int) -> Path:
    script = SCRIPT.format(
        scripts=str(ROOT / "workflow" / "scripts"), tests=str(ROOT / "tests"), params=params
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp), model, str(allocate)],
        check=True,
        capture_output=True,
        text=True,
    )
    return tmp / "bundle"


@pytest.mark.parametrize(
    "model,params",
    [
        ("logistic_regression", {"C": 1.0}),
        ("xgboost", {"n_estimators": 10, "max_depth": 2}),
        ("random_forest", {"n_estimators": 10, "max_depth": 3}),
    ],
)
def test_the_same_pipeline_gives_the_same_bundle_bytes_in_two_processes(tmp_path, model, params):
    first = _write_in_a_process(tmp_path / "one", model, params, 10)
    second = _write_in_a_process(tmp_path / "two", model, params, 5000)
    assert (first / PIPELINE_FILE).read_bytes() == (second / PIPELINE_FILE).read_bytes()
    assert (first / MANIFEST).read_bytes() == (second / MANIFEST).read_bytes()
    assert (first / CHECKSUMS).read_bytes() == (second / CHECKSUMS).read_bytes()
    a, b = load_bundle(first), load_bundle(second)
    assert a.hash == b.hash
    # The canonical archive: no object ids or random names, sorted, fixed time stamps.
    with zipfile.ZipFile(first / PIPELINE_FILE) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(n == "schema.json" or len(Path(n).stem) == 6 for n in names)


def test_the_canonical_archive_loads_with_skops_and_predicts_the_same(tmp_path):
    import skops.io as sio

    sys.path.insert(0, str(ROOT / "tests"))
    from test_bundle import _design, _fit, make_bundle

    X, y = _design()
    pipe = _fit("lightgbm", {"n_estimators": 10, "num_leaves": 4, "min_child_samples": 5}, X, y)
    directory = make_bundle(tmp_path, pipe, model="lightgbm")
    path = directory / PIPELINE_FILE
    loaded = sio.load(str(path), trusted=sio.get_untrusted_types(file=str(path)))
    features = X.set_index("patient_id")
    np.testing.assert_array_equal(loaded.predict_proba(features), pipe.predict_proba(features))
