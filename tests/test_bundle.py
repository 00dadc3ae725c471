"""The model bundle: what it records, checksums, trusted types, versions; predict's checks."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import FunctionTransformer

from npc_radiomics.base.errors import InputError
from npc_radiomics.deploy import bundle as bundle_mod
from npc_radiomics.deploy.bundle import MANIFEST, config_hash, load_bundle, seal, write_bundle
from npc_radiomics.deploy.pipeline_file import BundleError
from npc_radiomics.deploy.predict import predict_setup, predictions_table
from npc_radiomics.modelling.selection import selection_pipeline
from npc_radiomics.modelling.studies import model_pipeline

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "resources" / "pyradiomics_params_fast.yaml"
SEQUENCES = ["T1", "T2", "CET1"]
CONFIG = {"seed": 7, "models": ["logistic_regression"], "sequences": SEQUENCES}


def _design(n=40, p=24, seed=0):
    rng = np.random.default_rng(seed)
    columns = [f"{SEQUENCES[j % 3]}__original_firstorder_F{j}" for j in range(p)]
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=columns)
    y = (X.iloc[:, 0] + 0.5 * X.iloc[:, 3] + rng.normal(0, 0.7, n) > 0).astype(int).to_numpy()
    X.insert(0, "patient_id", [f"P{i:03d}" for i in range(n)])
    return X, y


def _fit(model="logistic_regression", params=None, X=None, y=None):
    if X is None:
        X, y = _design()
    pipe = model_pipeline(
        model, params or {"C": 1.0}, selection_pipeline(8, 3, 8, "min", 0), seed=3
    )
    return pipe.fit(X.set_index("patient_id"), y)


def _tables(tmp: Path, model="logistic_regression"):
    thresholds = pd.DataFrame(
        {"model": [model, "knn"], "threshold": [0.4375, 0.6], "source": ["fixed on OOF", "x"]}
    )
    metrics = pd.DataFrame(
        {
            "model": [model] * 3,
            "cohort": ["nested_cv", "test", "ND"],
            "n": [30, 12, 10],
            "auc": [0.71, 0.66, 0.62],
            "auc_ci_low": [np.nan, 0.4, 0.3],
            "auc_ci_high": [np.nan, 0.9, 0.9],
            "auc_sd": [0.05, np.nan, np.nan],
        }
    )
    split = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(10)],
            "center": ["QZ"] * 5 + ["XY"] * 2 + ["ND"] * 3,
            "cohort": ["train"] * 4 + ["test", "train", "train", "ND", "ND", "ND"],
            "label": [1, 0, 1, 0, 1, 1, 0, 1, 0, 0],
        }
    )
    zscore = tmp / "zscore.tsv"
    pd.DataFrame(
        {
            "sequence": SEQUENCES,
            "mean": [101.25, 88.5, 230.0625],
            "sd": [12.5, 9.75, 40.125],
            "n_voxels": [1000, 1000, 1000],
            "n_patients": [6, 6, 6],
            "reference": ["train"] * 3,
        }
    ).to_csv(zscore, sep="\t", index=False)
    provenance = pd.DataFrame(
        {
            "patient_id": ["P000", "P000", "P001"],
            "sequence": ["T1", "T1", "T1"],
            "reader": "reader1",
            "key": ["Versions_PyRadiomics", "Versions_Numpy", "Versions_PyRadiomics"],
            "value": ["3.1.4", "2.4.6", "3.1.4"],
        }
    )
    return thresholds, metrics, split, zscore, provenance


SETTINGS = {
    "input": "images",
    "id_column": "patient_id",
    "sequences": SEQUENCES,
    "outcome": {"column": "response", "positive_label": "CR", "negative_label": "non-CR"},
    "preprocessing": {
        "n4": {"enabled": True, "shrink_factor": 4, "iterations": [20, 20]},
        "resample": {"spacing_mm": [1.0, 1.0, 1.0]},
        "normalization": {"reference": "train"},
    },
    "mask_label": 1,
    "geometry_tolerance": 1e-3,
    "crop_margin_mm": 5.0,
}


def make_bundle(tmp: Path, pipe=None, settings=SETTINGS, model="logistic_regression") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    thresholds, metrics, split, zscore, provenance = _tables(tmp, model)
    out = tmp / "bundle"
    write_bundle(
        out,
        pipeline=pipe if pipe is not None else _fit(),
        model=model,
        choice={"model": model, "reason": "test"},
        thresholds=thresholds,
        metrics=metrics,
        split=split,
        settings=settings,
        config=CONFIG,
        zscore_path=zscore,
        params_path=PARAMS,
        feature_provenance=provenance,
    )
    return out


def _edit_manifest(directory: Path, change) -> None:
    """Change the manifest and re-seal it (a consistent bundle with other content)."""
    manifest = json.loads((directory / MANIFEST).read_text())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    seal(directory)


def test_manifest_records_what_predicting_needs(tmp_path):
    X, y = _design()
    pipe = _fit(X=X, y=y)
    directory = make_bundle(tmp_path, pipe)
    m = json.loads((directory / MANIFEST).read_text())
    assert m["features"] == list(X.columns[1:])  # every input feature, in order
    assert m["threshold"] == {"value": 0.4375, "source": "fixed on OOF"}
    assert m["training"]["n"] == 6 and m["training"]["events"] == 3
    assert m["training"]["centres"] == ["QZ", "XY"]
    assert m["training"]["cohorts"]["ND"] == {"n": 3, "events": 1}
    assert m["performance"]["nested_cv_auc"] == 0.71 and m["performance"]["test_auc"] == 0.66
    assert m["performance"]["cohorts"]["nested_cv"]["auc_sd"] == 0.05
    assert m["performance"]["cohorts"]["ND"]["auc_ci_low"] == 0.3
    zs = m["preprocessing"]["zscore"]["sequences"]
    assert zs["CET1"] == {"mean": 230.0625, "sd": 40.125, "n_voxels": 1000, "n_patients": 6}
    assert m["preprocessing"]["n4"]["iterations"] == [20, 20]
    assert m["preprocessing"]["crop_margin_mm"] == 5.0
    assert m["outcome"]["coding"] == {"1": "CR", "0": "non-CR"}
    assert m["extractor"]["Versions_PyRadiomics"] == "3.1.4"
    assert m["config_sha256"] == config_hash(CONFIG)
    assert config_hash({**CONFIG, "seed": 8}) != m["config_sha256"]
    assert (directory / "pyradiomics_params.yaml").read_bytes() == PARAMS.read_bytes()
    for name, digest in m["files"].items():
        assert bundle_mod.file_sha256(directory / name) == digest
    assert m["software"]["scikit-learn"] and m["software"]["skops"]


@pytest.mark.parametrize(
    "model,params",
    [
        ("logistic_regression", {"C": 0.5}),
        ("svm", {"C": 1.0, "gamma": 0.1, "kernel": "rbf"}),
        ("knn", {"n_neighbors": 5}),
        ("random_forest", {"n_estimators": 20, "max_depth": 3}),
        ("extra_trees", {"n_estimators": 20}),
        ("xgboost", {"n_estimators": 20, "max_depth": 2}),
        ("lightgbm", {"n_estimators": 20, "num_leaves": 4, "min_child_samples": 5}),
        ("mlp", {"n_units": 8, "n_layers": 1}),
    ],
)
def test_every_model_round_trips_exactly_from_a_copied_bundle(tmp_path, model, params):
    X, y = _design()
    pipe = _fit(model, params, X, y)
    directory = make_bundle(tmp_path / "made", pipe, model=model)
    copy = tmp_path / "elsewhere" / "b"
    shutil.copytree(directory, copy)
    shutil.rmtree(directory)  # the copy must not refer back to the original
    loaded = load_bundle(copy)
    expected = pipe.predict_proba(X.set_index("patient_id"))[:, 1]
    table = predictions_table(loaded, X.sample(frac=1.0, random_state=1))
    got = table.set_index("patient_id").loc[X["patient_id"], "probability"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert set(table["predicted_class"]) <= {0, 1}
    assert (table["predicted_class"] == (table["probability"] >= 0.4375 - 0.0).astype(int)).all()
    assert (table["bundle_hash"] == bundle_mod.file_sha256(copy / MANIFEST)).all()


def test_a_changed_byte_in_any_file_is_refused(tmp_path):
    directory = make_bundle(tmp_path)
    names = sorted(p.name for p in directory.iterdir())
    assert {"manifest.json", "checksums.sha256", "pipeline.skops", "zscore.tsv"} <= set(names)
    for name in names:
        copy = tmp_path / f"copy_{name}"
        shutil.copytree(directory, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(BundleError) as err:
            load_bundle(copy)
        message = str(err.value)
        assert "\n" not in message and ("refused" in message or "malformed" in message), message


def test_missing_or_extra_file_is_refused(tmp_path):
    directory = make_bundle(tmp_path)
    (directory / ".snakemake_timestamp").write_text("")  # Snakemake's marker: ignored
    load_bundle(directory, load_model=False)
    (directory / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="notes.txt is not in checksums.sha256"):
        load_bundle(directory)
    (directory / "notes.txt").unlink()
    (directory / "zscore.tsv").unlink()
    with pytest.raises(BundleError, match="file zscore.tsv is missing"):
        load_bundle(directory)
    with pytest.raises(BundleError, match="bundle directory not found"):
        load_bundle(tmp_path / "nowhere")


class Planted(FunctionTransformer):
    """A type no bundle should hold."""


def test_an_unexpected_type_is_refused_before_loading(tmp_path):
    X, y = _design()
    pipe = _fit(X=X, y=y)
    directory = make_bundle(tmp_path, pipe)
    import skops.io as sio

    bad = pipe.__class__([("planted", Planted()), *pipe.steps]).fit(X.set_index("patient_id"), y)
    sio.dump(bad, str(directory / "pipeline.skops"))
    _edit_manifest(
        directory,
        lambda m: m["files"].update(
            {"pipeline.skops": bundle_mod.file_sha256(directory / "pipeline.skops")}
        ),
    )
    with pytest.raises(BundleError, match=r"unexpected type\(s\) \['test_bundle.Planted'\]"):
        load_bundle(directory)
    # Writing such a pipeline is refused too.
    with pytest.raises(RuntimeError, match="outside pipeline_file.TRUSTED_TYPES"):
        make_bundle(tmp_path / "again", bad)


def test_other_package_versions_warn_naming_them(tmp_path):
    directory = make_bundle(tmp_path)
    _edit_manifest(directory, lambda m: m["software"].update({"scikit-learn": "0.0.1"}))
    with pytest.warns(UserWarning, match=r"scikit-learn 0\.0\.1 in the bundle, 1\.\d+\.\d+ here"):
        load_bundle(directory)


def test_another_pyradiomics_is_refused_unless_overridden(tmp_path):
    directory = make_bundle(tmp_path)
    _edit_manifest(directory, lambda m: m["extractor"].update({"Versions_PyRadiomics": "2.0.0"}))
    with pytest.raises(BundleError, match="extracted with 2.0.0.*allow_extractor_mismatch"):
        load_bundle(directory)
    with pytest.warns(UserWarning, match="overridden"):
        load_bundle(directory, allow_extractor_mismatch=True)


def test_predicting_never_fits_anything(tmp_path, monkeypatch):
    X, y = _design()
    directory = make_bundle(tmp_path, _fit(X=X, y=y))
    loaded = load_bundle(directory)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__}.fit called while predicting")

    for _, step in loaded.pipeline.steps:
        for name in ("fit", "fit_transform"):
            if hasattr(type(step), name):
                monkeypatch.setattr(type(step), name, refuse)
    monkeypatch.setattr(type(loaded.pipeline), "fit", refuse)
    table = predictions_table(loaded, X)
    assert len(table) == len(X) and table["probability"].between(0, 1).all()


# ------------------------------------------------------------ predict's start-up checks
def _sheet(tmp: Path, rows) -> Path:
    folder = tmp / "img"
    folder.mkdir(exist_ok=True)
    out = []
    for pid, seq in rows:
        image, mask = folder / f"{pid}_{seq}.nii.gz", folder / f"{pid}_{seq}_mask.nii.gz"
        image.write_bytes(b"x")
        mask.write_bytes(b"x")
        out.append({"patient_id": pid, "sequence": seq, "image": str(image), "mask": str(mask)})
    path = tmp / "new.tsv"
    pd.DataFrame(out).to_csv(path, sep="\t", index=False)
    return path


def _predict_cfg(bundle_dir, samples, outcomes=None):
    return {
        "samples": str(samples),
        "bundle": str(bundle_dir),
        "outcomes": outcomes,
        "allow_extractor_mismatch": False,
    }


def test_predict_setup_keeps_the_bundles_n4_fit_grid(tmp_path):
    # A bundle from before n4.fit_spacing_mm was fitted with the shrink factor alone: predict
    # must not give it the new 5 mm default; a bundle that records the key keeps its value.
    sheet = _sheet(tmp_path, [("N1", s) for s in SEQUENCES])
    old = predict_setup(_predict_cfg(make_bundle(tmp_path / "old"), sheet))
    assert old.settings["n4"]["fit_spacing_mm"] is None
    n4 = {**SETTINGS["preprocessing"]["n4"], "fit_spacing_mm": 5.0}
    settings = {**SETTINGS, "preprocessing": {**SETTINGS["preprocessing"], "n4": n4}}
    new = predict_setup(_predict_cfg(make_bundle(tmp_path / "new", settings=settings), sheet))
    assert new.settings["n4"]["fit_spacing_mm"] == 5.0
    assert new.settings["n4"]["shrink_factor"] == 4


def test_predict_setup_reads_a_sheet_without_centre_or_clinical_table(tmp_path):
    directory = make_bundle(tmp_path)
    sheet = _sheet(tmp_path, [(p, s) for p in ("N2", "N1") for s in SEQUENCES])
    setup = predict_setup(_predict_cfg(directory, sheet))
    assert setup.patients == ["N1", "N2"] and setup.sequences == SEQUENCES
    assert setup.outcomes is None
    assert setup.settings["n4"]["iterations"] == [20, 20]
    outcomes = tmp_path / "outcomes.tsv"
    pd.DataFrame({"patient_id": ["N1", "N2"], "response": [1, 0]}).to_csv(
        outcomes, sep="\t", index=False
    )
    setup = predict_setup(_predict_cfg(directory, sheet, str(outcomes)))
    assert setup.outcomes == {"N1": 1, "N2": 0}


@pytest.mark.parametrize(
    "rows,message",
    [
        ([("N1", "T1"), ("N1", "T2")], r"patient N1 has no row for sequence\(s\) \['CET1'\]"),
        (
            [("N1", s) for s in SEQUENCES] + [("N1", "FLAIR")],
            "sequence 'FLAIR' of patient N1 is unknown to the bundle",
        ),
    ],
)
def test_predict_setup_refuses_a_sheet_the_bundle_cannot_score(tmp_path, rows, message):
    directory = make_bundle(tmp_path)
    with pytest.raises(InputError, match=message) as err:
        predict_setup(_predict_cfg(directory, _sheet(tmp_path, rows)))
    assert "\n" not in str(err.value)


def test_a_features_in_bundle_cannot_score_images(tmp_path):
    settings = {**SETTINGS, "input": "features_table"}
    directory = make_bundle(tmp_path, settings=settings)
    assert not (directory / "zscore.tsv").exists()
    sheet = _sheet(tmp_path, [("N1", s) for s in SEQUENCES])
    with pytest.raises(InputError, match="trained on a ready feature table"):
        predict_setup(_predict_cfg(directory, sheet))


def test_outcomes_must_be_binary_and_cover_every_patient(tmp_path):
    directory = make_bundle(tmp_path)
    sheet = _sheet(tmp_path, [(p, s) for p in ("N1", "N2") for s in SEQUENCES])
    outcomes = tmp_path / "outcomes.tsv"
    pd.DataFrame({"patient_id": ["N1"], "response": [1]}).to_csv(outcomes, sep="\t", index=False)
    with pytest.raises(InputError, match="no outcome for patient N2"):
        predict_setup(_predict_cfg(directory, sheet, str(outcomes)))
    pd.DataFrame({"patient_id": ["N1", "N2"], "response": [1, 2]}).to_csv(
        outcomes, sep="\t", index=False
    )
    with pytest.raises(InputError, match="must be 0 or 1"):
        predict_setup(_predict_cfg(directory, sheet, str(outcomes)))


def test_warnings_are_silent_for_a_bundle_made_here(tmp_path):
    directory = make_bundle(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_bundle(directory)


# ------------------------------------------------------------------ the rules' functions
class _Namespace(dict):
    """Attribute access over a dict, like Snakemake's input / params / output."""

    __getattr__ = dict.__getitem__


def test_bundle_rule_picks_the_chosen_model_and_reads_thresholds_tsv(tmp_path):
    from npc_radiomics.deploy.bundle import bundle_rule
    from npc_radiomics.modelling.persistence import save_pipeline

    X, y = _design()
    thresholds, metrics, split, zscore, provenance = _tables(tmp_path, "knn")
    paths = {}
    for model, params in (("logistic_regression", {"C": 1.0}), ("knn", {"n_neighbors": 5})):
        pipe = _fit(model, params, X, y)
        paths[model] = tmp_path / f"{model}.joblib"
        save_pipeline(pipe, paths[model], f"{paths[model]}.sha256")
    for name, table in (("thresholds", thresholds), ("metrics", metrics), ("split", split)):
        table.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False)
    provenance.to_csv(tmp_path / "provenance.tsv", sep="\t", index=False)
    (tmp_path / "chosen.json").write_text(json.dumps({"model": "knn", "reason": "best"}))
    inputs = _Namespace(
        chosen=tmp_path / "chosen.json",
        pipelines=[str(paths["logistic_regression"]), str(paths["knn"])],
        thresholds=tmp_path / "thresholds.tsv",
        metrics=tmp_path / "metrics.tsv",
        split=tmp_path / "split.tsv",
        zscore=zscore,
        params=PARAMS,
        feature_provenance=tmp_path / "provenance.tsv",
    )
    params = _Namespace(models=["logistic_regression", "knn"], settings=SETTINGS, config=CONFIG)
    bundle_rule(inputs, params, tmp_path / "chosen_bundle")
    chosen = load_bundle(tmp_path / "chosen_bundle")
    assert chosen.model == "knn" and chosen.threshold == 0.4375
    assert chosen.manifest["threshold"]["source"] == "fixed on OOF"
    assert type(chosen.pipeline[-1]).__name__ == "CappedKNeighborsClassifier"
    bundle_rule(inputs, params, tmp_path / "lr_bundle", model="logistic_regression")
    other = load_bundle(tmp_path / "lr_bundle")
    assert other.model == "logistic_regression" and other.manifest["choice"]["chosen"] is False
    assert other.threshold is None  # thresholds.tsv has no row for it: recorded, not invented
    assert "no threshold" in other.manifest["threshold"]["source"]


def _predict_rule_inputs(tmp_path, excluded=None, new_rows=None):
    """A bundle fitted on 40 patients and predict's inputs for 20 new ones (one batch's
    long feature table and provenance, the QC table): ``excluded`` (patient -> reason)
    are excluded at QC and have no features; ``new_rows`` replaces the new patients'
    feature rows. Returns (pipe, new, y_new, inputs, params, out)."""
    from npc_radiomics.imaging.features import BATCH_FEATURE_COLUMNS, CaseFeatures, case_tables

    excluded = excluded or {}
    X, y = _design(n=60)
    pipe = _fit(X=X.iloc[:40], y=y[:40])
    directory = make_bundle(tmp_path, pipe)
    new = X.iloc[40:] if new_rows is None else new_rows
    long, provenance_parts, qc_rows = [], [], []
    for row in new.itertuples(index=False):
        values = dict(zip(X.columns[1:], row[1:], strict=True))
        for sequence in SEQUENCES:
            prefix = f"{sequence}__"
            case = CaseFeatures(
                {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)},
                {"Versions_PyRadiomics": "v3.1.4"},
            )
            failed = row.patient_id in excluded and sequence == SEQUENCES[0]
            if row.patient_id not in excluded:
                long += [
                    (row.patient_id, sequence, "reader1", k, v) for k, v in case.features.items()
                ]
                provenance_parts.append(case_tables(row.patient_id, sequence, case)[1])
            qc_rows.append(
                {
                    "patient_id": row.patient_id,
                    "sequence": sequence,
                    "status": "fail" if failed else "pass",
                    "reason": excluded[row.patient_id] if failed else "",
                    "patient_status": "excluded" if row.patient_id in excluded else "included",
                }
            )
    # One batch's long feature table and provenance (rule predict_extract_batch's files).
    feature_paths = [tmp_path / "batch.parquet"]
    provenance_paths = [tmp_path / "batch_provenance.tsv"]
    pd.DataFrame(long, columns=BATCH_FEATURE_COLUMNS).to_parquet(feature_paths[0], index=False)
    pd.concat(provenance_parts).to_csv(provenance_paths[0], sep="\t", index=False)
    pd.DataFrame(qc_rows).to_csv(tmp_path / "qc.tsv", sep="\t", index=False)
    out_dir = tmp_path / "predict"
    out = _Namespace(
        {
            k: str(out_dir / v)
            for k, v in {
                "predictions": "predictions.tsv",
                "features": "features.tsv",
                "html": "index.html",
                "metrics": "metrics.tsv",
                "calibration": "calibration.tsv",
                "dca": "dca.tsv",
                "calibration_figure": "calibration.png",
                "dca_figure": "dca.png",
            }.items()
        }
    )
    params = _Namespace(
        outcomes=dict(zip(new["patient_id"], map(int, y[40:]), strict=True)),
        allow_extractor_mismatch=False,
        ci_method="delong",
        n_bootstrap=200,
        calibration_bins=4,
        dca_thresholds=[0.1, 0.9, 0.1],
        seed=1,
    )
    inputs = _Namespace(
        features=feature_paths,
        provenance=provenance_paths,
        qc=tmp_path / "qc.tsv",
        bundle=directory / MANIFEST,
    )
    return pipe, new, y[40:], inputs, params, out


def test_predict_rule_scores_and_validates_a_new_cohort(tmp_path):
    from npc_radiomics.deploy.predict import predict_rule

    pipe, new, y_new, inputs, params, out = _predict_rule_inputs(tmp_path)
    provenance_paths = inputs.provenance
    predict_rule(inputs, params, out)
    got = pd.read_csv(out.predictions, sep="\t")
    expected = pipe.predict_proba(new.set_index("patient_id"))[:, 1]
    np.testing.assert_allclose(got["probability"], expected, rtol=0, atol=1e-12)
    from npc_radiomics.metrics import delong_ci

    metrics = pd.read_csv(out.metrics, sep="\t").iloc[0]
    reference = delong_ci(y_new, expected)
    assert metrics["auc"] == pytest.approx(reference.auc, abs=1e-12)
    assert metrics["auc_ci_low"] == pytest.approx(reference.ci_low, abs=1e-12)
    assert metrics["threshold"] == 0.4375 and metrics["n"] == 20
    dca = pd.read_csv(out.dca, sep="\t")
    assert {"treat_all", "treat_none", "logistic_regression"} <= set(dca["strategy"])
    assert "External validation" in Path(out.html).read_text()
    # Features from another pyradiomics are refused unless overridden.
    for path in provenance_paths[:1]:
        table = pd.read_csv(path, sep="\t")
        table["value"] = "v9.9.9"
        table.to_csv(path, sep="\t", index=False)
    with pytest.raises(BundleError, match="pyradiomics v9.9.9 extracted the new patients"):
        predict_rule(inputs, params, out)


def test_a_failed_model_gives_a_sealed_empty_bundle_that_loading_refuses(tmp_path):
    thresholds, metrics, split, zscore, provenance = _tables(tmp_path)
    out = tmp_path / "bundle"
    write_bundle(
        out,
        pipeline=None,
        model="svm",
        choice={"model": "svm"},
        thresholds=thresholds,
        metrics=metrics,
        split=split,
        settings=SETTINGS,
        config=CONFIG,
    )
    assert sorted(p.name for p in out.iterdir()) == ["checksums.sha256", "manifest.json"]
    with pytest.raises(BundleError, match="holds no model: model svm has no fitted pipeline"):
        load_bundle(out)


def test_predict_gives_every_patient_of_the_sheet_a_row(tmp_path):
    """qc.on_fail: exclude: the excluded patients keep a row (status, reason, no
    probability), the scored ones are untouched, the evaluation uses the scored only,
    and the console line counts them."""
    from npc_radiomics.deploy.predict import exclusion_line, predict_rule

    reasons = {
        "P041": "P041 T1: mask has no voxel of label 1 (file m.nii.gz)",
        "P055": "P055 T1: image unreadable (file i.nii.gz)",
    }
    pipe, new, y_new, inputs, params, out = _predict_rule_inputs(tmp_path, excluded=reasons)
    predict_rule(inputs, params, out)
    got = pd.read_csv(out.predictions, sep="\t", dtype={"patient_id": str}, keep_default_na=False)
    assert list(got["patient_id"]) == sorted(new["patient_id"])  # every patient, sorted
    rows = got.set_index("patient_id")
    for pid, reason in reasons.items():
        assert rows.loc[pid, "status"] == "excluded"
        assert rows.loc[pid, "reason"] == reason
        assert rows.loc[pid, "probability"] == "" and rows.loc[pid, "predicted_class"] == ""
    scored = new[~new["patient_id"].isin(list(reasons))]
    expected = pipe.predict_proba(scored.set_index("patient_id"))[:, 1]
    kept = rows.loc[scored["patient_id"]]
    assert (kept["status"] == "scored").all() and (kept["reason"] == "").all()
    np.testing.assert_allclose(kept["probability"].astype(float), expected, rtol=0, atol=1e-12)
    metrics = pd.read_csv(out.metrics, sep="\t").iloc[0]
    assert metrics["n"] == 18
    line = exclusion_line(out.predictions)
    assert line.startswith("predict: 18 of 20 patients scored, 2 excluded at QC")
    assert "P041, P055" in line and "\n" not in line


def test_predict_setup_takes_dicom_series_with_rtstruct_masks_and_the_bundles_roi(tmp_path):
    """DICOM series + RTSTRUCT in the predict sheet (refused before): the mask kinds are
    read, the ROI comes from the bundle's masks.roi, the run's masks.roi overrides it and
    the sheet's mask_roi column overrides both; without any ROI the sheet is refused."""
    from dicom_fixtures import sphere_contours, write_rtstruct, write_series

    rows = []
    for sequence in SEQUENCES:
        series = write_series(tmp_path / "N1" / sequence, (16, 16, 6), (1.0, 1.0, 3.0))
        rtstruct = write_rtstruct(
            tmp_path / "N1" / f"{sequence}_rs.dcm",
            series,
            {"GTV": sphere_contours(series, (8.0, 8.0, 2.5), 5.0)},
        )
        rows.append(
            {"patient_id": "N1", "sequence": sequence, "image": str(series.folder),
             "mask": str(rtstruct)}
        )  # fmt: skip
    sheet = tmp_path / "new.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    masks = {"roi": dict.fromkeys(SEQUENCES, "gtv"), "structures": "merge", "components": "largest"}
    directory = make_bundle(tmp_path / "b", settings={**SETTINGS, "masks": masks})
    setup = predict_setup(_predict_cfg(directory, sheet))
    assert list(setup.samples["mask_kind"]) == ["rtstruct"] * 3
    assert list(setup.samples["mask_roi"]) == ["gtv"] * 3
    assert setup.settings["masks"]["components"] == "largest"
    assert list(predict_setup(_predict_cfg(directory, sheet), roi={"T2": "G.*"}).samples[
        "mask_roi"]) == ["gtv", "G.*", "gtv"]  # fmt: skip
    pd.DataFrame(rows).assign(mask_roi=["GTV", "", ""]).to_csv(sheet, sep="\t", index=False)
    assert list(predict_setup(_predict_cfg(directory, sheet)).samples["mask_roi"]) == [
        "GTV", "gtv", "gtv"]  # fmt: skip
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    with pytest.raises(InputError, match="patient N1 sequence T1: mask is a DICOM RTSTRUCT"):
        predict_setup(_predict_cfg(make_bundle(tmp_path / "c"), sheet))


def test_predict_with_every_patient_excluded_writes_rows_and_nan_metrics(tmp_path):
    """Degenerate: QC excluded every patient of the sheet; every patient still has a row,
    the metrics are NaN with the reason, the figures are placeholders: no crash."""
    from npc_radiomics.deploy.predict import exclusion_line, predict_rule

    X, _ = _design(n=60)
    reasons = {p: f"{p} T1: image unreadable" for p in X["patient_id"][40:]}
    pipe, new, y_new, inputs, params, out = _predict_rule_inputs(
        tmp_path, excluded=dict(list(reasons.items())[:-1])
    )
    qc = pd.read_csv(inputs.qc, sep="\t", dtype=str, keep_default_na=False)
    last = qc["patient_id"] == "P059"
    qc.loc[last & (qc["sequence"] == "T1"), ["status", "reason"]] = ["fail", reasons["P059"]]
    qc["patient_status"] = "excluded"
    qc.to_csv(inputs.qc, sep="\t", index=False)
    features = pd.read_parquet(inputs.features[0])
    features.iloc[:0].to_parquet(inputs.features[0], index=False)
    predict_rule(inputs, params, out)
    got = pd.read_csv(out.predictions, sep="\t", dtype=str, keep_default_na=False)
    assert list(got["patient_id"]) == list(new["patient_id"])
    assert (got["status"] == "excluded").all() and (got["probability"] == "").all()
    assert got.set_index("patient_id").loc["P059", "reason"] == reasons["P059"]
    metrics = pd.read_csv(out.metrics, sep="\t").iloc[0]
    assert metrics["n"] == 0 and np.isnan(metrics["auc"]) and "excluded" in metrics["note"]
    assert Path(out.calibration_figure).is_file() and Path(out.dca_figure).is_file()
    assert exclusion_line(out.predictions).startswith("predict: 0 of 20 patients scored")
