"""Bundles written before the package was laid out by stage still load and predict the
same (tests/fixtures/bundle_flat_layout: a kNN and an SVM bundle of the tiny run made by
the flat-layout code, with features and predictions of its test and external patients)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npc_radiomics.deploy.bundle import load_bundle, predict_probabilities
from npc_radiomics.deploy.pipeline_file import (
    TRUSTED_TYPES,
    BundleError,
    current_type,
    untrusted_types,
)

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_flat_layout"


@pytest.mark.parametrize("model", ["knn", "svm"])
def test_a_flat_layout_bundle_loads_and_predicts_as_when_it_was_made(model):
    stored = untrusted_types(FIXTURE / model / "pipeline.skops")
    assert any(t.startswith("npc_radiomics.selection.") for t in stored)  # the old paths
    bundle = load_bundle(FIXTURE / model, allow_extractor_mismatch=True)
    table = pd.read_csv(FIXTURE / "features.tsv", sep="\t", dtype={"patient_id": str})
    expected = pd.read_csv(FIXTURE / "expected.tsv", sep="\t", dtype={"patient_id": str})
    expected = expected[expected["model"] == model].set_index("patient_id")["probability"]
    got = pd.Series(predict_probabilities(bundle, table), index=table["patient_id"])
    # The run scored every cohort in one matrix: BLAS sums may differ in the last bit.
    np.testing.assert_allclose(
        got.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-15
    )
    # the loaded steps are today's classes, and the old module names are not left behind
    import sys

    assert "npc_radiomics.selection" not in sys.modules
    steps = {type(s).__module__ for _, s in bundle.pipeline.steps}
    assert "npc_radiomics.modelling.selection" in steps


def test_old_type_paths_map_to_trusted_ones_and_nothing_else():
    assert current_type("npc_radiomics.zoo.PlattSVC") in TRUSTED_TYPES
    assert current_type("npc_radiomics.selection.MRMRSelector") in TRUSTED_TYPES
    assert current_type("npc_radiomics.tuning.Anything") == "npc_radiomics.tuning.Anything"
    assert current_type("os.system") not in TRUSTED_TYPES


def test_a_flat_layout_bundle_with_a_foreign_type_is_still_refused(tmp_path):
    # The alias is for the workflow's own classes only: a type skops does not trust and
    # the workflow does not know is refused before anything is built.
    import zipfile

    copy = tmp_path / "svm"
    shutil.copytree(FIXTURE / "svm", copy)
    skops = copy / "pipeline.skops"
    with zipfile.ZipFile(skops) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = members["schema.json"].decode()
    assert "npc_radiomics.zoo" in schema
    members["schema.json"] = schema.replace("npc_radiomics.zoo", "npc_radiomics.evil").encode()
    with zipfile.ZipFile(skops, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    from npc_radiomics.deploy.pipeline_file import load_pipeline_file

    with pytest.raises(BundleError, match="unexpected type"):
        load_pipeline_file(skops)
