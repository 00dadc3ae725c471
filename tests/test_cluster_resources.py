"""Cluster resource callables: scale with the input, grow with the retry attempt."""

from __future__ import annotations

from types import SimpleNamespace

from npc_radiomics.cluster import case_resource, fixed_resource, grown, path_mb, table_resource


def test_grown_multiplies_by_attempt_and_rounds_up():
    assert [grown(1000, a) for a in (1, 2, 3)] == [1000, 2000, 3000]
    assert grown(10.2, 1) == 11
    assert grown(5, 0) == 5


def test_path_mb_of_file_folder_and_missing(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x" * 2_000_000)
    series = tmp_path / "dicom"
    series.mkdir()
    for i in range(3):
        (series / f"{i}.dcm").write_bytes(b"x" * 500_000)
    assert path_mb(str(tmp_path / "a.nii.gz")) == 2.0
    assert path_mb(str(series)) == 1.5
    assert path_mb(str(tmp_path / "missing.nii.gz")) == 0.0


def test_case_resource_scales_with_image_size_and_attempt(tmp_path):
    small, large = tmp_path / "small.nii.gz", tmp_path / "large.nii.gz"
    small.write_bytes(b"x" * 1_000_000)
    large.write_bytes(b"x" * 4_000_000)
    images = {"P1": str(small), "P2": str(large), "P3": str(tmp_path / "later.nii.gz")}
    mem = case_resource(1000, 150, lambda wc: images[wc.patient])
    wc = {p: _Wildcards(patient=p, sequence="T1") for p in images}
    assert mem(wc["P1"], 1) == 1150
    assert mem(wc["P2"], 1) == 1600
    assert mem(wc["P2"], 2) == 3200
    # a demo image not written yet: the base, then the real size once it exists
    assert mem(wc["P3"], 1) == 1000
    (tmp_path / "later.nii.gz").write_bytes(b"x" * 2_000_000)
    assert mem(wc["P3"], 1) == 1300


class _Wildcards(SimpleNamespace):
    def __iter__(self):
        return iter(vars(self).values())


def test_table_and_fixed_resources():
    inputs = SimpleNamespace(size_mb=40.0)
    assert table_resource(1000, 10)(None, inputs, 1) == 1400
    assert table_resource(1000, 10)(None, inputs, 3) == 4200
    assert fixed_resource(720)(None, 2) == 1440


def test_local_rules_must_exist_and_not_be_grouped():
    import pytest

    from npc_radiomics.cluster import check_local_rules
    from npc_radiomics.errors import InputError

    rules = [
        SimpleNamespace(name="qc_case", _group="qc_cases", group=None),
        SimpleNamespace(name="merge_features", _group=None, group=None),
        SimpleNamespace(name="evaluate", _group=None, group=None),
    ]
    assert check_local_rules(["merge_features", "evaluate"], rules) == [
        "evaluate",
        "merge_features",
    ]
    assert check_local_rules([], rules) == []
    bad = r"'qc_case' runs in SLURM group jobs \(group 'qc_cases'\)"
    with pytest.raises(InputError, match=bad):
        check_local_rules(["evaluate", "qc_case"], rules)
    with pytest.raises(InputError, match=r"'evaluat' is not a rule of this workflow"):
        check_local_rules(["evaluat"], rules)
    # a rule of the workflow that this run's mode does not define is left out, not refused
    known = {"qc_case", "merge_features", "evaluate", "clinical_analysis"}
    assert check_local_rules(["clinical_analysis", "evaluate"], rules, known) == ["evaluate"]
    with pytest.raises(InputError, match=r"'clinical_analysi' is not a rule"):
        check_local_rules(["clinical_analysi"], rules, known)


def test_default_local_rules_are_rules_of_the_workflow():
    # every default name is a rule (a renamed rule would otherwise silently go to SLURM)
    import re

    from conftest import ROOT

    from npc_radiomics.cluster import workflow_rule_names
    from npc_radiomics.config import load_yaml

    names = load_yaml(ROOT / "config" / "config.yaml")["cluster"]["local_rules"]
    text = "".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    defined = set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, flags=re.M))
    assert {"qc", "evaluate", "clinical_analysis"} <= defined
    defined = workflow_rule_names(ROOT / "workflow" / "rules")
    assert names and set(names) <= defined, sorted(set(names) - defined)
    heavy = {"tune_model_part", "nested_cv_fold", "fit_final", "select_features"}
    assert not heavy & set(names)
