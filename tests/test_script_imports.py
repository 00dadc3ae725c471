"""Rule jobs import only what they use (issue 18, per-job overhead).

Each job is a fresh interpreter; scikit-learn, scipy, pandas, matplotlib or Optuna cost
0.3-1.5 s each to import. The imaging scripts (one job per batch of patients) and the
small aggregation scripts must not load the heavy libraries they do not call, and the
per-case work itself (preprocessing, QC's mask helpers) must not pull them in either.
benchmarks/bench_startup.py measures the seconds.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"
MODELLING = ("sklearn", "matplotlib", "optuna", "shap", "xgboost", "lightgbm", "statsmodels")

#: script -> heavy libraries its module-level imports must not load.
NOT_AT_START = {
    "qc_batch": (*MODELLING, "scipy", "radiomics"),
    "preprocess_batch": (*MODELLING, "pandas", "scipy", "radiomics"),
    "extract_batch": (*MODELLING, "scipy"),
    # small aggregation scripts
    "gather_predictions": (*MODELLING, "scipy"),
    "standalone_report": (*MODELLING, "scipy"),
    "provenance": (*MODELLING, "pandas", "scipy"),
}


def module_imports(script) -> str:
    """The module-level import statements of a rule script, in order."""
    tree = ast.parse(script.read_text())
    return "\n".join(
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    )


def loaded_after(code: str, heavy) -> list[str]:
    """Run ``code`` in a fresh interpreter (rule scripts' sys.path); the top-level package
    names of ``heavy`` that are in sys.modules afterwards."""
    probe = (
        f"import sys\nsys.path.insert(0, {str(SCRIPTS)!r})\n{code}\n"
        f"print(sorted(m for m in {tuple(heavy)!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("script", sorted(NOT_AT_START))
def test_script_start_up_skips_unused_libraries(script):
    code = module_imports(SCRIPTS / f"{script}.py")
    assert "npc_radiomics" in code  # the parser found the script's imports
    assert loaded_after(code, NOT_AT_START[script]) == []


def test_the_probe_sees_a_heavy_import():
    # The check above could pass by looking in the wrong place: the same probe must see
    # what a script does import at start-up.
    code = module_imports(SCRIPTS / "extract_batch.py")
    assert loaded_after(code, ("SimpleITK", "pandas", "sklearn")) == ["SimpleITK", "pandas"]


_CASE = """
import numpy as np
import SimpleITK as sitk
from npc_radiomics.imaging.preprocess import preprocess_case, preprocess_mask, tumour_moments

rng = np.random.default_rng(0)
image = sitk.GetImageFromArray(rng.normal(100, 10, (8, 20, 20)).astype(np.float32))
image.SetSpacing((1.0, 1.0, 3.0))
roi = np.zeros((8, 20, 20), np.uint8)
roi[2:6, 5:12, 5:12] = 1
roi[3, 15:17, 15:17] = 1  # a second component: the QC helpers run
mask = sitk.GetImageFromArray(roi)
mask.CopyInformation(image)
out, out_mask = preprocess_case(image, mask, n4={"enabled": False}, components="largest")
moments = tumour_moments(out, out_mask)
reader2 = preprocess_mask(mask, out, label=1)
assert out.GetSpacing() == (1.0, 1.0, 1.0) and moments.n > 0
assert sitk.GetArrayFromImage(reader2).sum() > 0
"""


def test_per_case_preprocessing_work_needs_neither_pandas_nor_scipy():
    """Not only the imports: resampling a case and a reader-2 mask (with N4 off; N4's head
    mask uses scipy.ndimage) loads no pandas, scipy or scikit-learn."""
    assert loaded_after(_CASE, ("pandas", "scipy", "sklearn")) == []


def test_lazy_module_imports_on_first_use():
    code = (
        "from npc_radiomics.base.lazy import lazy_module\n"
        "m = lazy_module('fractions')\n"
        "import sys\n"
        "before = 'fractions' in sys.modules\n"
        "assert 'not imported yet' in repr(m)\n"
        "assert str(m.Fraction(1, 3)) == '1/3'\n"
        "assert not before and 'fractions' in sys.modules, before\n"
        "assert 'imported' in repr(m)\n"
    )
    assert loaded_after(code, ("sklearn",)) == []


def test_lazy_scipy_stats_in_metrics_still_works():
    from npc_radiomics import metrics
    from npc_radiomics.metrics import discrimination

    ci = metrics.delong_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert 0.0 <= ci.ci_low <= ci.auc <= ci.ci_high <= 1.0
    assert discrimination.stats.norm.ppf(0.975) == pytest.approx(1.959964, abs=1e-6)


_SETUP = """
from types import SimpleNamespace
{before}
from npc_radiomics.glue.runtime import rule_setup
rule_setup(SimpleNamespace(threads=1, log=[]))
import sys
assert ({before!r} != "") == ("SimpleITK" in sys.modules), "rule_setup imported SimpleITK"
import SimpleITK as sitk
assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
"""


@pytest.mark.parametrize("before", ["", "import SimpleITK"])
def test_rule_setup_limits_itk_without_importing_it(before):
    """A job that never images does not import SimpleITK in rule_setup; ITK is held to the
    declared threads whether it is imported after rule_setup (environment) or before."""
    assert loaded_after(_SETUP.format(before=before), ("pandas", "scipy")) == []
