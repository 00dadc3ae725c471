"""Degenerate predictions give NaN with the rest of the metrics, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from npc_radiomics.metrics import logistic_recalibration


def test_constant_predictions_have_an_intercept_and_no_slope():
    y = np.array([0, 1, 1, 0, 1, 1, 0, 1])
    recal = logistic_recalibration(y, np.full(y.size, 0.4))
    # logit(observed 5/8) - logit(0.4): calibration-in-the-large with one prediction.
    expected = np.log(5 / 3) - np.log(0.4 / 0.6)
    assert recal.intercept == pytest.approx(expected, rel=1e-6)
    assert np.isnan(recal.slope) and all(np.isnan(recal.slope_ci))
    assert recal.intercept_ci[0] < expected < recal.intercept_ci[1]
