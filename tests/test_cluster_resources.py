"""Cluster resource callables: scale with the input, grow with the retry attempt."""

from __future__ import annotations

from types import SimpleNamespace

from npc_radiomics.glue.cluster import (
    batch_resource,
    fixed_resource,
    grown,
    path_mb,
    table_resource,
)


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


def test_batch_resource_scales_with_image_sizes_and_attempt(tmp_path):
    small, large = tmp_path / "small.nii.gz", tmp_path / "large.nii.gz"
    small.write_bytes(b"x" * 1_000_000)
    large.write_bytes(b"x" * 4_000_000)
    later = str(tmp_path / "later.nii.gz")
    batches = {"000": [str(small), str(large)], "001": [str(small), later]}
    mem = batch_resource(1000, 0, 150, "max", lambda wc: batches[wc.batch])
    runtime = batch_resource(10, 1, 5, "sum", lambda wc: batches[wc.batch])
    wc = {b: _Wildcards(centre="QZ", batch=b) for b in batches}
    # memory: the largest case of the batch (cases run one after another)
    assert mem(wc["000"], 1) == 1600
    assert mem(wc["000"], 2) == 3200
    # runtime: the base once, then per case its own term
    assert runtime(wc["000"], 1) == 10 + (1 + 5) + (1 + 20)
    assert runtime(wc["000"], 3) == 3 * 37
    # a demo image not written yet counts 0 MB, then its real size once it exists
    assert mem(wc["001"], 1) == 1150
    (tmp_path / "later.nii.gz").write_bytes(b"x" * 2_000_000)
    assert mem(wc["001"], 1) == 1300
    assert runtime(wc["001"], 1) == 10 + (1 + 5) + (1 + 10)
    import pytest

    with pytest.raises(ValueError, match="max or sum"):
        batch_resource(1, 0, 1, "mean", lambda wc: [])


def test_batch_memory_scales_with_the_worker_count(tmp_path):
    # declared mem_mb = the job's process + per worker (its base + its largest case's
    # term); runtime: the cases shared by the workers, bounded for any order they take.
    sizes = [1, 4, 2, 1]
    images = []
    for k, mb in enumerate(sizes):
        images.append(tmp_path / f"{k}.nii.gz")
        images[-1].write_bytes(b"x" * mb * 1_000_000)
    batch = [str(p) for p in images]
    mem = batch_resource(500, 0, 150, "max", lambda wc: batch, per_worker=500)
    runtime = batch_resource(10, 1, 5, "sum", lambda wc: batch)
    wc = _Wildcards(centre="QZ", batch="000")
    assert mem(wc, 1) == mem(wc, 1, threads=1) == 500 + (500 + 600)  # as with one process
    assert mem(wc, 1, threads=2) == 500 + 2 * (500 + 600)
    assert mem(wc, 2, threads=3) == 2 * (500 + 3 * 1100)
    assert mem(wc, 1, threads=16) == 500 + 4 * 1100  # no more workers than cases
    cases = [1 + 5 * mb for mb in sizes]  # 6, 21, 11, 6
    assert runtime(wc, 1) == 10 + sum(cases)
    # two workers: half the work, plus at most half the longest case left over
    assert runtime(wc, 1, threads=2) == 43  # 10 + 44 / 2 + 21 / 2, rounded up
    assert runtime(wc, 1, threads=4) == 10 + 21  # one case each: the longest
    # the bound holds for every order two workers can take the cases in
    from itertools import permutations

    for order in permutations(cases):
        finish = [0, 0]
        for case in order:
            finish[finish.index(min(finish))] += case
        assert 10 + max(finish) <= runtime(wc, 1, threads=2)


class _Wildcards(SimpleNamespace):
    def __iter__(self):
        return iter(vars(self).values())


def test_table_and_fixed_resources():
    inputs = SimpleNamespace(size_mb=40.0)
    assert table_resource(1000, 10)(None, inputs, 1) == 1400
    assert table_resource(1000, 10)(None, inputs, 3) == 4200
    assert fixed_resource(720)(None, 2) == 1440


def test_local_rules_must_exist():
    import pytest

    from npc_radiomics.base.errors import InputError
    from npc_radiomics.glue.cluster import check_local_rules

    rules = [
        SimpleNamespace(name="qc_batch"),
        SimpleNamespace(name="merge_features"),
        SimpleNamespace(name="evaluate"),
    ]
    assert check_local_rules(["merge_features", "evaluate"], rules) == [
        "evaluate",
        "merge_features",
    ]
    assert check_local_rules([], rules) == []
    with pytest.raises(InputError, match=r"'evaluat' is not a rule of this workflow"):
        check_local_rules(["evaluat"], rules)
    # a rule of the workflow that this run's mode does not define is left out, not refused
    known = {"qc_batch", "merge_features", "evaluate", "clinical_analysis"}
    assert check_local_rules(["clinical_analysis", "evaluate"], rules, known) == ["evaluate"]
    with pytest.raises(InputError, match=r"'clinical_analysi' is not a rule"):
        check_local_rules(["clinical_analysi"], rules, known)


def test_default_local_rules_are_rules_of_the_workflow():
    # every default name is a rule (a renamed rule would otherwise silently go to SLURM)
    import re

    from conftest import ROOT

    from npc_radiomics.base.config import load_yaml
    from npc_radiomics.glue.cluster import workflow_rule_names

    names = load_yaml(ROOT / "config" / "config.yaml")["cluster"]["local_rules"]
    text = "".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    defined = set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, flags=re.M))
    assert {"qc", "evaluate", "clinical_analysis"} <= defined
    defined = workflow_rule_names(ROOT / "workflow" / "rules")
    assert names and set(names) <= defined, sorted(set(names) - defined)
    heavy = {"tune_model_part", "nested_cv_fold", "fit_final", "select_features"}
    heavy |= {"qc_batch", "preprocess_batch", "extract_batch"}
    assert not heavy & set(names)


def test_slurm_profile_asks_for_each_jobs_threads():
    # The executor's --cpus-per-task: a job's threads unless a cpus_per_task resource says
    # otherwise; a default of 1 in the profile would give an 8-worker batch one CPU.
    from conftest import ROOT
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting

    from npc_radiomics.base.config import load_yaml

    profile = load_yaml(ROOT / "profiles" / "slurm" / "config.yaml")
    resources = _Resources(profile.get("default-resources") or {})
    for threads in (1, 8):
        job = SimpleNamespace(threads=threads, resources=resources)
        assert get_cpu_setting(job, False) == f"--cpus-per-task={threads}"


class _Resources(SimpleNamespace):
    def __init__(self, values):
        super().__init__(**values)

    def get(self, key, default=None):
        return getattr(self, key, default)
