"""A job uses exactly the threads it declares: SimpleITK's pool, BLAS, and no extra threads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

# Runs in a fresh interpreter, as a rule script does: rule_setup first, then the imaging
# stack, then multi-threaded work (ITK filters incl. N4, a BLAS SVD).
_CHILD = """
import json, os, sys
from types import SimpleNamespace
sys.path.insert(0, {scripts!r})
from npc_radiomics.glue.runtime import rule_setup
rule_setup(SimpleNamespace(threads={threads}, log=[]))
import numpy, SimpleITK as sitk, threadpoolctl
import radiomics.featureextractor
image = sitk.GaussianSource(sitk.sitkFloat32, [96] * 3, [20] * 3, [48] * 3)
smooth = sitk.SmoothingRecursiveGaussian(image, 2.0)
sitk.N4BiasFieldCorrection(sitk.Abs(smooth) + 1, sitk.Cast(smooth > -1, sitk.sitkUInt8), 0.15, [5])
numpy.linalg.svd(numpy.random.default_rng(0).random((400, 400)))
print(json.dumps({{
    "itk": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
    "pools": [p["num_threads"] for p in threadpoolctl.threadpool_info()],
    "env": os.environ["OMP_NUM_THREADS"],
    "os_threads": len(os.listdir("/proc/self/task")),
}}))
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_rule_setup_limits_every_thread_pool(threads):
    code = _CHILD.format(scripts=str(ROOT / "workflow" / "scripts"), threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["itk"] == threads
    assert seen["pools"] and all(n == threads for n in seen["pools"])
    assert seen["env"] == str(threads)
    # After the work, the process holds no more OS threads than it declared.
    assert seen["os_threads"] <= threads
