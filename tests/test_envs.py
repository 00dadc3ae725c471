"""The conda envs pin the lock's versions, and every rule declares what a cluster needs.

conda itself cannot run on these machines (no conda channels are reachable), so the envs
are checked for agreement with requirements.lock, which the tests and CI install.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "workflow" / "rules").glob("*.smk"))
REQUIRED = ("threads:", "resources:", "log:", "benchmark:", "conda:")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[_norm(name)] = version
    return pins


@pytest.mark.parametrize("env", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.stem)
def test_env_pins_match_lock(env):
    spec = yaml.safe_load(env.read_text())
    pip = [d for d in spec["dependencies"] if isinstance(d, dict)][0]["pip"]
    lock = _lock()
    assert pip, env
    for requirement in pip:
        name, version = requirement.split("==")
        assert lock.get(_norm(name)) == version, f"{env.name}: {requirement} vs lock"
    assert "python=3.11" in spec["dependencies"]


def _rule_blocks(text: str):
    """(name, body) of every rule/checkpoint in a .smk file."""
    pattern = re.compile(r"^(\s*)(rule|checkpoint) (\w+):\n", re.M)
    matches = list(pattern.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        yield m.group(3), text[m.end() : end]


def test_every_rule_declares_cluster_essentials():
    envs = {p.name for p in (ROOT / "envs").glob("*.yaml")}
    seen = 0
    for path in RULE_FILES:
        for name, body in _rule_blocks(path.read_text()):
            if name == "all":
                continue
            seen += 1
            for key in REQUIRED:
                assert key in body, f"{path.name}: rule {name} lacks {key}"
            assert "mem_mb=" in body and "runtime=" in body, f"rule {name}: resources"
            env = re.search(r'conda:\s*\n\s*"\.\./\.\./envs/([\w.]+)"', body)
            assert env and env.group(1) in envs, f"rule {name}: conda env"
    assert seen >= 3


def test_lock_has_the_design_card_libraries():
    lock = _lock()
    for name in (
        "snakemake",
        "simpleitk",
        "pyradiomics-bhklab",
        "scikit-learn",
        "optuna",
        "xgboost",
        "lightgbm",
        "shap",
        "mrmr-selection",
        "statsmodels",
        "pandas",
        "seaborn",
    ):
        assert name in lock, name
