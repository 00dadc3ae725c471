"""Per-sequence preprocessing and pyradiomics params (a CT next to MR sequences): defaults
keep every sequence on the global settings; a CT with ``normalization: none`` gives
exactly pyradiomics' own features on the same HU image, through the workflow too."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import ROOT, preprocessed_file, run_workflow, write_config

from npc_radiomics.base.config import load_yaml
from npc_radiomics.base.errors import InputError
from npc_radiomics.imaging.features import extract_case, extract_rule, make_extractor
from npc_radiomics.imaging.preprocess import (
    preprocess_case,
    resample_isotropic,
    sequence_preprocessing,
)

DEFAULT = load_yaml(ROOT / "config" / "config.yaml")
CT_PARAMS = {
    "setting": {"binWidth": 25, "label": 1, "force2D": False},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "glcm": [], "shape": []},
}


def _ct(size=(30, 28, 10), spacing=(0.8, 0.8, 2.5), seed=0):
    """A CT-like image in HU (air / fat / soft tissue, a 40 HU tumour) and its mask."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]]
    ball = ((x - 15) * 0.8) ** 2 + ((y - 14) * 0.8) ** 2 + ((z - 5) * 2.5) ** 2 < 8**2
    hu = np.where(ball, rng.normal(40, 15, ball.shape), rng.normal(-90, 30, ball.shape))
    image = sitk.GetImageFromArray(hu.astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((-12.0, 5.0, 30.0))
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def test_defaults_are_the_global_settings_for_every_sequence():
    prep = DEFAULT["preprocessing"]
    for sequence in ("T1", "T2", "CET1"):
        got = sequence_preprocessing(prep, sequence)
        assert got == {
            "n4": prep["n4"],
            "interpolator": "bspline",
            "normalization": {"method": "zscore", "window": None},
        }


def test_per_sequence_overrides_merge_key_by_key():
    prep = copy.deepcopy(DEFAULT["preprocessing"])
    prep["per_sequence"] = {
        "CT": {"n4": {"enabled": False}, "resample": {"interpolator": "linear"},
               "normalization": {"method": "none"}},
        "PET": {"normalization": {"method": "window", "window": [0, 20]}},
    }  # fmt: skip
    ct = sequence_preprocessing(prep, "CT")
    assert ct["n4"] == {**prep["n4"], "enabled": False}
    assert ct["interpolator"] == "linear" and ct["normalization"]["method"] == "none"
    assert sequence_preprocessing(prep, "PET")["normalization"] == {
        "method": "window",
        "window": [0, 20],
    }
    assert sequence_preprocessing(prep, "T1") == sequence_preprocessing(
        DEFAULT["preprocessing"], "T1"
    )
    prep["per_sequence"]["PET"]["normalization"]["window"] = [20, 0]
    with pytest.raises(InputError, match=r"per_sequence.PET.normalization.window"):
        sequence_preprocessing(prep, "PET")


def test_interpolator_is_used():
    image, _ = _ct()
    bspline = sitk.GetArrayFromImage(resample_isotropic(image, (1, 1, 1)))
    linear = sitk.GetArrayFromImage(resample_isotropic(image, (1, 1, 1), interpolator="linear"))
    default = sitk.GetArrayFromImage(preprocess_case(image, _ct()[1], n4=None)[0])
    assert np.array_equal(default, bspline) and not np.array_equal(linear, bspline)
    raw = sitk.GetArrayFromImage(image)
    # Linear interpolation never leaves the range of the voxels it mixes; B-spline overshoots.
    assert raw.min() <= linear.min() and linear.max() <= raw.max()
    assert bspline.min() < raw.min() or bspline.max() > raw.max()
    with pytest.raises(ValueError, match="unknown interpolator"):
        resample_isotropic(image, (1, 1, 1), interpolator="cubic")


def test_ct_without_normalization_equals_pyradiomics_on_the_hu_image(tmp_path):
    image, mask = _ct()
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    (tmp_path / "ct.yaml").write_text(yaml.safe_dump(CT_PARAMS))
    # A z-score table that would change every intensity feature if it were applied.
    pd.DataFrame({"sequence": ["CT"], "mean": [40.0], "sd": [15.0]}).to_csv(
        tmp_path / "z.tsv", sep="\t", index=False
    )
    args = (tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz", tmp_path / "z.tsv")
    kw = {"patient": "P1", "sequence": "CT", "reader": "reader1", "crop_margin_mm": 10.0}
    ours, _ = extract_rule(*args, tmp_path / "ct.yaml", normalization={"method": "none"}, **kw)
    own = make_extractor(CT_PARAMS).execute(image, mask, label=1)
    own = {k: float(v) for k, v in own.items() if not k.startswith("diagnostics_")}
    got = ours.drop(columns=["patient_id", "sequence"]).iloc[0].to_dict()
    assert set(got) == set(own) and len(own) > 30
    for name, value in own.items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name  # crop: shape round-off
    assert got["original_firstorder_Mean"] == pytest.approx(40, abs=3)  # HU, not z units
    zscored, _ = extract_rule(*args, tmp_path / "ct.yaml", **kw)  # the default: z-score
    assert zscored["original_firstorder_Mean"].iloc[0] == pytest.approx(0, abs=0.3)
    window = {"method": "window", "window": [-50.0, 60.0]}
    clipped, _ = extract_rule(*args, tmp_path / "ct.yaml", normalization=window, **kw)
    assert clipped["original_firstorder_Maximum"].iloc[0] == 60.0
    direct = extract_case(image, mask, CT_PARAMS, window=(-50.0, 60.0)).features
    assert clipped["original_firstorder_Mean"].iloc[0] == direct["original_firstorder_Mean"]


@pytest.mark.snakemake
def test_workflow_ct_sequence_next_to_mr(tmp_path, user_cohort):
    """Sequences MR_T1 and CT: the CT goes without N4, with linear resampling, without
    z-score and with its own params file (Original only, binWidth 25 HU); its features
    from the workflow equal pyradiomics' on the preprocessed HU image. The MR sequence
    keeps the defaults (dry run)."""
    df = pd.read_csv(user_cohort["samples"], sep="\t", dtype=str, keep_default_na=False)
    df = df[df["sequence"].isin(["T1", "T2"])].copy()
    df["sequence"] = df["sequence"].replace({"T1": "MR_T1", "T2": "CT"})
    ct_rows = df["sequence"] == "CT"
    for i in df.index[ct_rows]:
        image, mask = _ct(seed=int(i))
        pid = df.loc[i, "patient_id"]
        df.loc[i, "image"] = str(user_cohort["root"] / f"{pid}_ct.nii.gz")
        df.loc[i, "mask"] = str(user_cohort["root"] / f"{pid}_ct_mask.nii.gz")
        sitk.WriteImage(image, df.loc[i, "image"])
        sitk.WriteImage(mask, df.loc[i, "mask"])
    df.to_csv(user_cohort["samples"], sep="\t", index=False)
    params = tmp_path / "ct_params.yaml"
    params.write_text(yaml.safe_dump(CT_PARAMS))
    config = user_cohort["config"]
    config["sequences"] = ["MR_T1", "CT"]
    config["preprocessing"] = {
        "per_sequence": {
            "CT": {"n4": {"enabled": False}, "resample": {"interpolator": "linear"},
                   "normalization": {"method": "none"}}
        }
    }  # fmt: skip
    config["features"] = {"params_per_sequence": {"CT": str(params)}}
    cfg = write_config(tmp_path / "c.yaml", config)
    dry = run_workflow(tmp_path, cfg, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    target = "results/features/batches/A/000.parquet"  # A000-A009
    proc = run_workflow(tmp_path, cfg, target, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw = sitk.ReadImage(df.loc[(df["patient_id"] == "A000") & ct_rows, "image"].iloc[0])
    pre = sitk.ReadImage(str(preprocessed_file(tmp_path, "A000", "CT_image.nii.gz")))
    expected = resample_isotropic(raw, (1, 1, 1), interpolator="linear")  # no N4
    # preprocessing.crop_margin_mm auto: the ROI box of that grid, values unchanged in it.
    index = expected.TransformPhysicalPointToContinuousIndex(pre.GetOrigin())
    expected = sitk.RegionOfInterest(expected, pre.GetSize(), [round(v) for v in index])
    assert np.array_equal(sitk.GetArrayFromImage(pre), sitk.GetArrayFromImage(expected))
    pre_mask = sitk.ReadImage(str(preprocessed_file(tmp_path, "A000", "CT_mask.nii.gz")))
    own = make_extractor(CT_PARAMS).execute(pre, pre_mask, label=1)
    long = pd.read_parquet(tmp_path / target)
    long = long[(long["patient_id"] == "A000") & (long["sequence"] == "CT")]
    assert set(long["reader"]) == {"reader1"}
    got = long.set_index("feature")["value"]
    names = [k for k in own if not k.startswith("diagnostics_")]
    assert len(names) > 30 and all(n in got.index for n in names)
    assert not any(c.startswith(("log-", "wavelet-")) for c in got.index)  # CT's own params
    for name in names:
        assert got[name] == pytest.approx(float(own[name]), rel=1e-6, abs=1e-9), name


def test_predict_reproduces_each_sequences_settings_from_the_bundle(tmp_path):
    """A bundle trained with per-sequence preprocessing (CT: no N4, linear, HU as is),
    a window, per-sequence params and masks.components is accepted by predict mode, which
    resolves every sequence exactly as training did (the same function on the same
    config), takes the CT's own params file from the bundle and its masks settings."""
    from test_bundle import SEQUENCES, SETTINGS, _predict_cfg, _sheet

    from npc_radiomics.deploy.bundle import load_bundle
    from npc_radiomics.deploy.predict import predict_setup
    from npc_radiomics.imaging.preprocess import sequence_preprocessing

    sheet = _sheet(tmp_path, [("N1", s) for s in SEQUENCES])
    ct_params = tmp_path / "ct.yaml"
    ct_params.write_text(yaml.safe_dump(CT_PARAMS))
    preprocessing = {
        **SETTINGS["preprocessing"],
        "normalization": {"reference": "train", "method": "zscore", "window": None},
        "resample": {"spacing_mm": [1.0, 1.0, 1.0], "interpolator": "bspline"},
        "per_sequence": {
            "T2": {"n4": {"enabled": False}, "resample": {"interpolator": "linear"},
                   "normalization": {"method": "none"}},
            "CET1": {"normalization": {"method": "window", "window": [0, 300]}},
        },
    }  # fmt: skip
    settings = {
        **SETTINGS,
        "preprocessing": preprocessing,
        "params_per_sequence": {"T2": str(ct_params)},
        "masks": {"roi": {"T1": "GTV.*"}, "structures": "fail", "components": "largest"},
        "preprocess_crop_margin_mm": {"T1": 12.5, "T2": 12.5, "CET1": None},
    }
    from test_bundle import CONFIG, PARAMS, _fit, _tables, write_bundle

    thresholds, metrics, split, zscore, provenance = _tables(tmp_path)
    directory = tmp_path / "bundle"
    write_bundle(
        directory,
        pipeline=_fit(),
        model="logistic_regression",
        choice={"model": "logistic_regression"},
        thresholds=thresholds,
        metrics=metrics,
        split=split,
        settings=settings,
        config=CONFIG,
        zscore_path=zscore,
        params_path=PARAMS,
        feature_provenance=provenance,
        sequence_params={"T1": PARAMS, "T2": ct_params, "CET1": PARAMS},
    )
    setup = predict_setup(_predict_cfg(directory, sheet))
    by_sequence = setup.settings["sequences"]
    for sequence in SEQUENCES:
        trained = sequence_preprocessing(preprocessing, sequence)
        mine = by_sequence[sequence]
        assert mine["interpolator"] == trained["interpolator"], sequence
        assert mine["normalization"] == trained["normalization"], sequence
        assert mine["n4"]["enabled"] == trained["n4"]["enabled"], sequence
        assert mine["crop_margin_mm"] == settings["preprocess_crop_margin_mm"][sequence]
    assert by_sequence["T2"]["n4"]["enabled"] is False
    assert by_sequence["CET1"]["normalization"] == {"method": "window", "window": [0, 300]}
    # The CT-like sequence's own params, copied into the bundle byte for byte.
    assert by_sequence["T1"]["params"] == "pyradiomics_params.yaml"
    assert (directory / by_sequence["T2"]["params"]).read_bytes() == ct_params.read_bytes()
    assert setup.settings["masks"]["components"] == "largest"
    assert setup.settings["masks"]["structures"] == "fail"
    # Tampering with the CT params file is refused like any other bundle file.
    (directory / by_sequence["T2"]["params"]).write_text("binWidth: 1\n")
    with pytest.raises(InputError, match="pyradiomics_params_T2.yaml was changed"):
        load_bundle(directory)


@pytest.mark.snakemake
def test_per_sequence_keys_must_name_sequences(tmp_path, user_cohort):
    config = user_cohort["config"]
    config["preprocessing"] = {"per_sequence": {"CT": {"n4": {"enabled": False}}}}
    proc = run_workflow(tmp_path, write_config(tmp_path / "c.yaml", config), "-n")
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if "npc-radiomics input error" in x]
    assert len(lines) == 1 and "config key preprocessing.per_sequence: 'CT'" in lines[0]
