"""The JSON schemas: the shipped configs validate, and violations name the key or line."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from conftest import ROOT

from npc_radiomics.base.config import load_yaml, validate_config
from npc_radiomics.base.errors import InputError
from npc_radiomics.inputs.sheets import validate_clinical, validate_samples

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT = load_yaml(ROOT / "config" / "config.yaml")


def test_default_config_is_valid():
    validate_config(DEFAULT, SCHEMA)


@pytest.mark.parametrize(
    "extra",
    [
        *sorted((ROOT / "config").glob("*.yaml")),
        *sorted((ROOT / "tests" / "configs").glob("*.yaml")),
    ],
)
def test_test_configs_are_valid_overrides(extra):
    from snakemake.utils import update_config

    merged = copy.deepcopy(DEFAULT)
    update_config(merged, load_yaml(extra))
    validate_config(merged, SCHEMA)


@pytest.mark.parametrize(
    "path, value, key",
    [
        (("seed",), -1, "seed"),
        (("preprocessing", "normalization", "reference"), "test", "reference"),
        (("preprocessing", "resample", "spacing_mm"), [1, 1], "spacing_mm"),
        (("unknown_key",), 1, "<top level>"),
        (("cohorts", "external_centers"), ["QZ"], "cohorts"),
    ],
)
def test_config_violations_name_the_key(path, value, key):
    cfg = copy.deepcopy(DEFAULT)
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(InputError, match=key):
        validate_config(cfg, SCHEMA)


def _sheet(**change):
    row = {"patient_id": "P1", "center": "QZ", "sequence": "T1", "image": "a", "mask": "b"}
    row.update(change)
    return pd.DataFrame([row])


def test_sample_schema_rejects_bad_patient_id():
    with pytest.raises(InputError, match=r"line 2: column patient_id"):
        validate_samples(_sheet(patient_id="P 1/x"), ["T1"], ["QZ"], check_files=False)


def test_sample_sheet_missing_column():
    with pytest.raises(InputError, match="missing column"):
        validate_samples(_sheet().drop(columns="mask"), ["T1"], ["QZ"], check_files=False)


def test_clinical_schema_and_types():
    clinical = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "response": ["1", "0"], "age": ["50", "x"]}
    )
    with pytest.raises(InputError, match="line 3: variable 'age' of patient P2 is not a number"):
        validate_clinical(clinical, "response", ["age"], [])
    clinical["age"] = ["50", ""]
    out = validate_clinical(clinical, "response", ["age"], [])
    assert out["age"].isna().sum() == 1 and out["response"].tolist() == [1, 0]


def test_a_key_twice_in_a_config_file_is_refused(tmp_path):
    from npc_radiomics.base.config import check_config_files

    path = tmp_path / "mine.yaml"
    path.write_text("tuning:\n  n_trials: 5\nmodels: [knn]\ntuning:\n  inner_folds: 3\n")
    with pytest.raises(InputError, match=r"mine.yaml: key 'tuning' appears twice \(line 4\)"):
        check_config_files([path])
    nested = tmp_path / "nested.yaml"
    nested.write_text("tuning:\n  n_trials: 5\n  n_trials: 6\n")
    with pytest.raises(InputError, match=r"key 'n_trials' appears twice \(line 3\)"):
        load_yaml(nested)


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "config").glob("*.yaml")),
        *sorted((ROOT / "tests" / "configs").glob("*.yaml")),
        *sorted((ROOT / "resources").glob("*.yaml")),
        *sorted((ROOT / "profiles").glob("*/config.yaml")),
    ],
    ids=lambda p: p.name,
)
def test_shipped_yaml_files_have_no_repeated_keys(path):
    load_yaml(path)
