"""Figures: each function writes a readable, deterministic image from tidy data."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from conftest import predictions_frame

from npc_radiomics import figures as plots
from npc_radiomics import metrics
from npc_radiomics.base.errors import InputError
from npc_radiomics.evaluation import dca
from npc_radiomics.metrics import shap_importance


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for cohort, n in (("train", 80), ("test", 40), ("ND", 30)):
        y = rng.integers(0, 2, n)
        for model, strength in (("svm", 2.0), ("lr", 1.0), ("knn", 0.5)):
            p = 1 / (1 + np.exp(-(strength * (y - 0.5) + rng.normal(0, 1, n))))
            parts.append((cohort, model, cohort, p, y))
    return predictions_frame(parts)


def check_image(path, min_width_px: int = 600) -> np.ndarray:
    image = mpimg.imread(path)
    assert image.shape[1] >= min_width_px  # >= 2 in at 300 dpi: readable in print
    assert image[..., :3].std() > 0.01  # not blank
    return image


def test_model_curves(tmp_path, predictions):
    table = metrics.evaluate_predictions(predictions, {"svm": 0.5, "lr": 0.5, "knn": 0.5})
    roc = plots.plot_roc_curves(
        metrics.curve_table(predictions, "roc"), tmp_path / "roc.png", table
    )
    pr = plots.plot_pr_curves(metrics.curve_table(predictions, "pr"), tmp_path / "pr.png", table)
    cal = plots.plot_calibration_curves(
        metrics.curve_table(predictions, "calibration", bins=5), tmp_path / "cal.png"
    )
    curves = dca.decision_curves(predictions, dca.threshold_grid(0.01, 0.99, 0.01))
    dc = plots.plot_decision_curves(curves, tmp_path / "dca.png")
    for path in (roc, pr, cal, dc):
        image = check_image(path, min_width_px=3 * 600)  # three cohort panels
        assert image.shape[1] > image.shape[0]


def test_selection_figures(tmp_path):
    rng = np.random.default_rng(1)
    lambdas = np.logspace(-3, 0, 30)
    coefficients = np.maximum(rng.normal(0.5, 0.3, 12)[None, :] - lambdas[:, None], 0)
    plots.plot_lasso_path(lambdas, coefficients, 0.045, tmp_path / "path.png")
    mean = 1.2 + (np.log10(lambdas) + 1.5) ** 2 / 5
    plots.plot_lasso_cv(lambdas, mean, np.full(30, 0.05), 0.03, tmp_path / "cv.png", 0.09)
    check_image(tmp_path / "path.png")
    check_image(tmp_path / "cv.png")
    with pytest.raises(InputError, match="shape"):
        plots.plot_lasso_path(lambdas, coefficients[:5], 0.045, tmp_path / "x.png")


def test_shap_figures_and_table(tmp_path):
    rng = np.random.default_rng(2)
    features = rng.normal(0, 1, (52, 24))
    shap_values = features * np.linspace(1, 0.05, 24) + rng.normal(0, 0.05, (52, 24))
    names = [f"T2__feature_{j:02d}" for j in range(24)]
    table = shap_importance(shap_values, names)
    assert table["feature"].iloc[0] == "T2__feature_00"
    assert table["mean_abs_shap"].is_monotonic_decreasing
    plots.plot_shap_beeswarm(shap_values, features, names, tmp_path / "bee.png")
    plots.plot_shap_bar(shap_values, names, tmp_path / "bar.png")
    bee = check_image(tmp_path / "bee.png")
    assert bee.shape[0] > bee.shape[1]  # 20 rows: taller than wide
    check_image(tmp_path / "bar.png")
    with pytest.raises(InputError, match="shape"):
        plots.plot_shap_beeswarm(shap_values, features[:, :3], names, tmp_path / "x.png")


def test_feature_figures(tmp_path):
    rng = np.random.default_rng(3)
    icc = pd.DataFrame({"feature": [f"f{i}" for i in range(500)], "icc": rng.beta(8, 2, 500)})
    plots.plot_icc_histogram(icc, 0.85, tmp_path / "icc.png")
    base = rng.normal(0, 1, (100, 1))
    selected = pd.DataFrame(
        base + rng.normal(0, 1, (100, 8)), columns=[f"T1__f{j}" for j in range(8)]
    )
    plots.plot_correlation_heatmap(selected, tmp_path / "corr.png")
    check_image(tmp_path / "icc.png")
    check_image(tmp_path / "corr.png")
    with pytest.raises(InputError, match="icc"):
        plots.plot_icc_histogram(icc.rename(columns={"icc": "value"}), 0.85, tmp_path / "x.png")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_output_is_byte_identical_across_runs(tmp_path, predictions, suffix):
    roc = metrics.curve_table(predictions, "roc")
    a = plots.plot_roc_curves(roc, tmp_path / f"a{suffix}")
    b = plots.plot_roc_curves(roc, tmp_path / f"b{suffix}")
    assert a.read_bytes() == b.read_bytes()


def test_missing_columns_and_unknown_format_raise(tmp_path, predictions):
    roc = metrics.curve_table(predictions, "roc")
    with pytest.raises(InputError, match="fpr"):
        plots.plot_roc_curves(roc.drop(columns="fpr"), tmp_path / "roc.png")
    with pytest.raises(InputError, match="format"):
        plots.plot_roc_curves(roc, tmp_path / "roc.jpg")
