"""Discrimination and calibration metrics for binary response predictions.

Conventions used throughout: ``y`` holds labels (1 = complete response, 0 = non-CR),
``p`` holds predicted probabilities of label 1 (unitless, in [0, 1]); a patient is
called positive when ``p >= threshold`` (the same rule as scikit-learn's ``roc_curve``
and the ``dcurves`` package).

Degenerate cohorts (one class only, very few patients) give NaN rather than an
exception; :func:`evaluate_predictions` says why in its ``note`` column. Malformed
input (labels other than 0/1, probabilities outside [0, 1], length mismatch) raises
:class:`~npc_radiomics.base.errors.InputError`.

The subpackage's modules, in the order they build on each other: ``inputs``,
``discrimination``, ``thresholds``, ``calibration``, ``tables``; every public name is
available here too.
"""

from npc_radiomics.metrics.calibration import (  # noqa: F401
    FLAT_SE,
    HosmerLemeshow,
    Recalibration,
    brier_score,
    calibration_curve,
    hosmer_lemeshow,
    integrated_calibration_index,
    logistic_recalibration,
    logit,
    lowess_calibration,
    observed_expected,
    recalibrate,
    smoothed_calibration,
)
from npc_radiomics.metrics.discrimination import (  # noqa: F401
    AUCResult,
    DeLongTest,
    auc,
    auc_ci,
    average_precision,
    bootstrap_auc,
    bootstrap_ci,
    boundary_auc_interval,
    degenerate_auc_note,
    delong_ci,
    delong_difference_ci,
    delong_test,
    expit,
    logit_auc_interval,
    pr_curve_points,
    roc_curve_points,
)
from npc_radiomics.metrics.inputs import (  # noqa: F401
    FEW_PER_CLASS,
    ROW_TYPES,
    both_classes,
    check_predictions,
    check_probabilities,
    check_scores,
    class_counts_note,
)
from npc_radiomics.metrics.tables import (  # noqa: F401
    CALIBRATION_COLUMNS,
    CI_COLUMNS,
    EXTRA_COLUMNS,
    METRICS_COLUMNS,
    UPDATING_COLUMNS,
    bootstrap_metric_ci,
    curve_table,
    evaluate_one,
    evaluate_predictions,
    original_rows,
    shap_importance,
    stratified_resamples,
    updated_model_rows,
)
from npc_radiomics.metrics.thresholds import (  # noqa: F401
    threshold_metrics,
    wilson_ci,
    youden_threshold,
    youden_thresholds,
)
