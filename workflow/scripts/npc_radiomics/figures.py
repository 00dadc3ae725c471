"""Figures of the report, one function per figure: tidy data in, one image file out.

One style for all figures (:data:`STYLE`, applied per figure through ``rc_context`` so
nothing leaks into other code), sized for print: single panels 3.5 in wide (one journal
column) with 8-9 pt text at 300 dpi. Output is byte-for-byte deterministic: PNGs carry
no software tag, SVGs a fixed hash salt, PDFs no dates.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: rule jobs on cluster nodes have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from npc_radiomics.base.errors import InputError  # noqa: E402
from npc_radiomics.metrics import shap_importance  # noqa: E402

log = logging.getLogger(__name__)

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; 8 models fit
PALETTE = [
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
]
REFERENCE_GREY = "#7f7f7f"
DPI = 300
PANEL_IN = 3.5  # width of one panel in inches: one journal column

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.3,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "svg.hashsalt": "npc-radiomics",  # fixed ids in SVG output
    "pdf.fonttype": 42,  # editable text in PDF
}


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}")
    if df.empty:
        raise InputError(f"{what}: no data to plot")


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) without timestamps; close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    metadata = {
        ".png": {"Software": None},
        ".svg": {"Date": None, "Creator": None},
        ".pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    }.get(suffix)
    if metadata is None:
        plt.close(fig)
        raise InputError(f"figure {path}: format must be .png, .svg or .pdf")
    with plt.rc_context(STYLE):
        fig.savefig(path, metadata=metadata)
    plt.close(fig)
    return path


def placeholder_figure(path: str | Path, message: str) -> Path:
    """A small PNG that says why a figure could not be drawn (the rule's output must exist)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PANEL_IN, PANEL_IN * 0.4))
        ax.axis("off")
        ax.text(0.5, 0.5, f"Not available:\n{message}", ha="center", va="center", wrap=True)
    return save_figure(fig, path)


def figure_or_placeholder(plot, path: str | Path, *args, **kwargs) -> str:
    """Call ``plot(*args, path, **kwargs)``; on InputError draw a placeholder instead.

    Returns "" when the figure was drawn, else the reason (for the log and the report).
    """
    try:
        plot(*args, path, **kwargs)
        return ""
    except InputError as err:
        log.warning("figure %s not drawn: %s", path, err)
        placeholder_figure(path, str(err))
        return str(err)


def panels(n: int, height: float = PANEL_IN) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, n, figsize=(PANEL_IN * n, height), squeeze=False)
    return fig, axes[0]


def model_colours(models) -> dict[str, str]:
    """The same colour for a model in every figure: assigned by sorted model name."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(set(models)))}


def _cohorts(df: pd.DataFrame) -> list[str]:
    from npc_radiomics.base.layout import cohort_order

    return cohort_order(df["cohort"])


def _auc_labels(metrics: pd.DataFrame | None, column: str = "auc") -> dict:
    """(model, cohort) -> legend text such as "SVM 0.935 (0.867-1.000)"."""
    if metrics is None:
        return {}
    labels = {}
    for r in metrics.itertuples(index=False):
        value = getattr(r, column)
        if column == "auc" and np.isfinite(getattr(r, "auc_ci_low", np.nan)):
            labels[(r.model, r.cohort)] = (
                f"{r.model} {value:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})"
            )
        elif np.isfinite(value):
            labels[(r.model, r.cohort)] = f"{r.model} {value:.3f}"
    return labels


# --------------------------------------------------------------------------- model curves


def _curve_panels(
    curves: pd.DataFrame, path: str | Path, draw, reference, axes_labels, legend
) -> Path:
    """One panel per cohort, one curve per model (same colour everywhere).

    ``draw(ax, rows, colour, model, cohort)`` draws one model's curve; ``reference(ax,
    cohort)`` the no-skill line; ``axes_labels``: (xlabel, ylabel); ``legend``: (loc,
    title or None).
    """
    colours = model_colours(curves["model"])
    cohorts = _cohorts(curves)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(cohorts))
        for ax, cohort in zip(axes, cohorts, strict=True):
            reference(ax, cohort)
            for model in sorted(curves["model"].unique()):
                d = curves[(curves["model"] == model) & (curves["cohort"] == cohort)]
                if len(d):
                    draw(ax, d, colours[model], model, cohort)
            ax.set(
                xlim=(-0.01, 1.01),
                ylim=(-0.01, 1.01),
                aspect="equal",
                title=cohort,
                xlabel=axes_labels[0],
                ylabel=axes_labels[1],
            )
            ax.legend(loc=legend[0], title=legend[1])
    return save_figure(fig, path)


def plot_roc_curves(
    roc: pd.DataFrame, path: str | Path, metrics: pd.DataFrame | None = None
) -> Path:
    """ROC curves of all models, one panel per cohort.

    ``roc``: model, cohort, fpr, tpr (``metrics.curve_table(predictions, "roc")``);
    ``metrics`` (optional, ``evaluate_predictions`` output) puts AUC (95% CI) in the legend.
    """
    _require(roc, ["model", "cohort", "fpr", "tpr"], "ROC curves")
    labels = _auc_labels(metrics)

    def draw(ax, d, colour, model, cohort):
        # straight segments between all distinct thresholds are the exact ROC, diagonal
        # where tied scores mix both classes
        ax.plot(d["fpr"], d["tpr"], color=colour, label=labels.get((model, cohort), model))

    def reference(ax, cohort):
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=REFERENCE_GREY)

    legend = ("lower right", "AUC (95% CI)" if labels else None)
    return _curve_panels(roc, path, draw, reference, ("1 - specificity", "Sensitivity"), legend)


def plot_pr_curves(pr: pd.DataFrame, path: str | Path, metrics: pd.DataFrame | None = None) -> Path:
    """Precision-recall curves, one panel per cohort; the prevalence line is the no-skill
    reference. ``pr``: model, cohort, recall, precision; ``metrics`` adds AUPRC labels."""
    _require(pr, ["model", "cohort", "recall", "precision"], "PR curves")
    labels = _auc_labels(metrics, "auprc")

    def draw(ax, d, colour, model, cohort):
        # precision P_k holds on (R_{k-1}, R_k]: the area is average precision
        ax.step(
            d["recall"],
            d["precision"],
            where="pre",
            color=colour,
            label=labels.get((model, cohort), model),
        )

    def reference(ax, cohort):
        # the prevalence (no-skill) line, drawn first so the curves lie over it
        if metrics is not None:
            m = metrics[metrics["cohort"] == cohort]
            if len(m) and m["n"].iloc[0] > 0:
                prevalence = m["n_positive"].iloc[0] / m["n"].iloc[0]
                ax.axhline(prevalence, ls="--", lw=0.8, color=REFERENCE_GREY)

    labels_xy = ("Recall (sensitivity)", "Precision (PPV)")
    legend = ("lower left", "AUPRC" if labels else None)
    return _curve_panels(pr, path, draw, reference, labels_xy, legend)


def plot_calibration_curves(calibration: pd.DataFrame, path: str | Path) -> Path:
    """Observed fraction of CR against mean predicted probability per risk bin, one panel
    per cohort. ``calibration``: model, cohort, mean_predicted, observed_fraction."""
    _require(calibration, ["model", "cohort", "mean_predicted", "observed_fraction"], "calibration")
    colours = model_colours(calibration["model"])
    cohorts = _cohorts(calibration)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(cohorts))
        for ax, cohort in zip(axes, cohorts, strict=True):
            ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=REFERENCE_GREY, label="ideal")
            for model in sorted(calibration["model"].unique()):
                d = calibration[(calibration["model"] == model) & (calibration["cohort"] == cohort)]
                if len(d):
                    ax.plot(
                        d["mean_predicted"],
                        d["observed_fraction"],
                        marker="o",
                        ms=2.5,
                        color=colours[model],
                        label=model,
                    )
            ax.set(
                xlim=(-0.01, 1.01),
                ylim=(-0.01, 1.01),
                aspect="equal",
                title=cohort,
                xlabel="Predicted probability of CR",
                ylabel="Observed fraction of CR",
            )
            ax.legend(loc="upper left")
    return save_figure(fig, path)


def plot_smoothed_calibration(
    smooth: pd.DataFrame, predictions: pd.DataFrame, model: str, path: str | Path
) -> Path:
    """Calibration of one model, a panel per cohort: LOWESS curve with its bootstrap band,
    the decile groups' observed fraction, and a rug of the patients' predictions (CR on
    top, non-CR at the bottom). ``smooth``: cohort, predicted, observed, ci_low, ci_high
    (metrics.smoothed_calibration per cohort); ``predictions``: cohort, probability,
    label of ``model``."""
    from npc_radiomics.metrics import calibration_curve

    _require(smooth, ["cohort", "predicted", "observed", "ci_low", "ci_high"], "calibration")
    cohorts = _cohorts(predictions)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(cohorts))
        for ax, cohort in zip(axes, cohorts, strict=True):
            ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=REFERENCE_GREY, label="ideal")
            d = smooth[smooth["cohort"] == cohort]
            if len(d):
                ax.fill_between(
                    d["predicted"],
                    d["ci_low"],
                    d["ci_high"],
                    color=PALETTE[0],
                    alpha=0.2,
                    lw=0,
                    label="95% bootstrap band",
                )
                ax.plot(d["predicted"], d["observed"], color=PALETTE[0], label="LOWESS")
            g = predictions[predictions["cohort"] == cohort]
            g = g[g["probability"].notna()]
            bins = calibration_curve(g["label"], g["probability"], 10)
            ax.plot(
                bins["mean_predicted"],
                bins["observed_fraction"],
                "o",
                ms=3,
                color=PALETTE[1],
                label="deciles of risk",
            )
            for label, (y0, y1) in ((1, (0.97, 1.0)), (0, (0.0, 0.03))):
                x = g.loc[g["label"] == label, "probability"]
                ax.vlines(x, y0, y1, color="black", lw=0.6)
            ax.set(
                xlim=(-0.01, 1.01),
                ylim=(-0.01, 1.01),
                aspect="equal",
                title=f"{cohort} (n = {len(g)})",
                xlabel=f"Predicted probability of CR ({model})",
                ylabel="Observed fraction of CR",
            )
            ax.legend(loc="upper left")
    return save_figure(fig, path)


def plot_decision_curves(
    curves: pd.DataFrame, path: str | Path, models: list[str] | None = None
) -> Path:
    """Net benefit against threshold probability, one panel per cohort, with treat-all and
    treat-none. ``curves``: ``dca.decision_curves`` output (cohort, strategy, threshold,
    net_benefit). The y axis is cut below at -0.05: treat-all plunges at high thresholds.
    The training panel's title says "in-sample" (the final models scoring their own
    training patients)."""
    from npc_radiomics.base.layout import TREAT_ALL, TREAT_NONE, cohort_label

    _require(curves, ["cohort", "strategy", "threshold", "net_benefit"], "decision curves")
    strategies = sorted(set(curves["strategy"]) - {TREAT_ALL, TREAT_NONE})
    if models is not None:
        strategies = [m for m in strategies if m in models]
    colours = model_colours(strategies)
    cohorts = _cohorts(curves)
    with plt.rc_context(STYLE):
        fig, axes = panels(len(cohorts))
        for ax, cohort in zip(axes, cohorts, strict=True):
            c = curves[curves["cohort"] == cohort]
            top = 0.0
            for name, style in (
                (TREAT_ALL, {"color": REFERENCE_GREY, "lw": 1.0, "label": "Treat all"}),
                (TREAT_NONE, {"color": "black", "lw": 1.0, "ls": "--", "label": "Treat none"}),
            ):
                d = c[c["strategy"] == name]
                ax.plot(d["threshold"], d["net_benefit"], **style)
                top = max(top, float(d["net_benefit"].max()))
            for model in strategies:
                d = c[c["strategy"] == model]
                if len(d):
                    ax.plot(d["threshold"], d["net_benefit"], color=colours[model], label=model)
                    top = max(top, float(d["net_benefit"].max()))
            ax.set(
                xlim=(0, 1),
                ylim=(-0.05, max(top, 0.05) * 1.08),
                title=cohort_label(cohort),
                xlabel="Threshold probability",
                ylabel="Net benefit",
            )
            ax.legend(loc="upper right")
    return save_figure(fig, path)


# --------------------------------------------------------------------------- selection


def plot_lasso_path(lambdas, coefficients, chosen_lambda: float, path: str | Path) -> Path:
    """LASSO coefficient path: each feature's coefficient against log10(lambda).

    ``coefficients``: array (n_lambdas, n_features) on standardised features; the dashed
    line marks ``chosen_lambda``; the title gives the features kept there. Lines are not
    labelled: with dozens of features names would be unreadable (the selected-feature
    table lists them).
    """
    lambdas = np.asarray(lambdas, dtype=float)
    coefficients = np.asarray(coefficients, dtype=float)
    if lambdas.ndim != 1 or coefficients.shape[:1] != lambdas.shape or coefficients.ndim != 2:
        raise InputError("LASSO path: coefficients must have shape (n_lambdas, n_features)")
    if (lambdas <= 0).any():
        raise InputError("LASSO path: lambdas must be positive (plotted on a log scale)")
    order = np.argsort(lambdas)
    x = np.log10(lambdas[order])
    coef = coefficients[order]
    at_chosen = coef[np.argmin(np.abs(lambdas[order] - chosen_lambda))]
    with plt.rc_context(STYLE):
        fig, axes = panels(1, height=PANEL_IN * 0.8)
        ax = axes[0]
        ax.plot(x, coef, lw=0.7)  # cycles through the palette, one line per feature
        ax.axvline(np.log10(chosen_lambda), ls="--", lw=0.8, color="black")
        ax.axhline(0, lw=0.5, color=REFERENCE_GREY)
        kept = np.flatnonzero(at_chosen != 0)
        ax.set(
            xlabel=r"log$_{10}$($\lambda$)",
            ylabel="Coefficient",
            title=rf"LASSO path ($\lambda$ = {chosen_lambda:.4g}, {kept.size} features)",
        )
    return save_figure(fig, path)


def plot_lasso_cv(
    lambdas,
    cv_mean,
    cv_se,
    chosen_lambda: float,
    path: str | Path,
    lambda_1se: float | None = None,
    ylabel: str = "Binomial deviance",
    folds: int | None = None,
) -> Path:
    """Cross-validated deviance (mean +/- SE over folds) against log10(lambda), with the
    chosen lambda (and the 1-SE lambda if given) as dashed lines."""
    lambdas, cv_mean, cv_se = (np.asarray(a, dtype=float) for a in (lambdas, cv_mean, cv_se))
    if not lambdas.shape == cv_mean.shape == cv_se.shape or lambdas.ndim != 1:
        raise InputError("LASSO CV curve: lambdas, cv_mean and cv_se must be equal-length 1-d")
    if (lambdas <= 0).any():
        raise InputError("LASSO CV curve: lambdas must be positive (plotted on a log scale)")
    x = np.log10(lambdas)
    with plt.rc_context(STYLE):
        fig, axes = panels(1, height=PANEL_IN * 0.8)
        ax = axes[0]
        ax.errorbar(
            x,
            cv_mean,
            yerr=cv_se,
            fmt="o",
            ms=2.5,
            color=PALETTE[1],
            ecolor=PALETTE[0],
            elinewidth=0.6,
            capsize=1.5,
        )
        ax.axvline(np.log10(chosen_lambda), ls="--", lw=0.8, color="black", label="chosen")
        if lambda_1se is not None:
            ax.axvline(np.log10(lambda_1se), ls=":", lw=0.8, color="black", label="1-SE")
        ax.set(
            xlabel=r"log$_{10}$($\lambda$)",
            ylabel=ylabel,
            title=f"LASSO {folds}-fold CV" if folds else "LASSO CV",
        )
        ax.legend(loc="upper left")
    return save_figure(fig, path)


# --------------------------------------------------------------------------- SHAP


def _swarm_offsets(x: np.ndarray, bins: int = 100, width: float = 0.4) -> np.ndarray:
    """Deterministic vertical offsets for a beeswarm row: points that share an x bin are
    spread alternately up and down, at most ``width`` (in row units) from the centre."""
    if x.size == 0:
        return np.zeros(0)
    span = np.ptp(x) or 1.0
    idx = np.minimum(((x - x.min()) / span * bins).astype(int), bins - 1)
    order = np.argsort(idx, kind="mergesort")
    rank = np.empty(x.size, dtype=int)
    sorted_idx = idx[order]
    # position of each point within its bin: 0, 1, 2, ...
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_idx)) + 1]
    within = np.arange(x.size) - np.repeat(starts, np.diff(np.r_[starts, x.size]))
    rank[order] = within
    offset = np.ceil(rank / 2) * np.where(rank % 2 == 0, 1, -1)
    # a fixed step per point keeps sparse rows flat; dense rows shrink to fit ``width``
    peak = max(np.abs(offset).max(), 1.0)
    return offset * min(0.07, width / peak)


def plot_shap_beeswarm(
    shap_values, feature_values, feature_names, path: str | Path, max_display: int = 20
) -> Path:
    """SHAP summary (beeswarm): one row per feature, most important on top; each dot a
    patient at its SHAP value, coloured by the feature's value (low blue to high red,
    5th-95th percentile per feature so outliers do not wash out the colours)."""
    values = np.asarray(shap_values, dtype=float)
    features = np.asarray(feature_values, dtype=float)
    if features.shape != values.shape:
        raise InputError("SHAP beeswarm: feature values must have the shape of the SHAP values")
    table = shap_importance(values, feature_names)
    names = list(feature_names)
    top = [names.index(f) for f in table["feature"][:max_display]]
    cmap = matplotlib.colormaps["coolwarm"]
    with plt.rc_context(STYLE):
        fig, axes = panels(1, height=max(2.0, 0.22 * len(top) + 0.8))
        ax = axes[0]
        for row, j in enumerate(reversed(top)):
            v, f = values[:, j], features[:, j]
            lo, hi = np.nanpercentile(f, [5, 95]) if np.isfinite(f).any() else (0.0, 1.0)
            colour = np.clip((f - lo) / (hi - lo), 0, 1) if hi > lo else np.full(f.size, 0.5)
            ax.scatter(
                v,
                row + _swarm_offsets(v),
                c=cmap(np.nan_to_num(colour, nan=0.5)),
                s=4,
                linewidths=0,
                rasterized=False,
            )
        ax.axvline(0, lw=0.6, color=REFERENCE_GREY)
        ax.set_yticks(range(len(top)), [names[j] for j in reversed(top)])
        ax.set(xlabel="SHAP value (impact on model output)", ylim=(-0.7, len(top) - 0.3))
        bar = fig.colorbar(
            matplotlib.cm.ScalarMappable(cmap=cmap), ax=ax, ticks=[0, 1], aspect=30, pad=0.02
        )
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("Feature value")
        bar.outline.set_visible(False)
    return save_figure(fig, path)


def plot_shap_bar(shap_values, feature_names, path: str | Path, max_display: int = 20) -> Path:
    """Mean |SHAP| per feature as horizontal bars, most important on top."""
    table = shap_importance(shap_values, feature_names).head(max_display)
    with plt.rc_context(STYLE):
        fig, axes = panels(1, height=max(2.0, 0.22 * len(table) + 0.8))
        ax = axes[0]
        ax.barh(np.arange(len(table))[::-1], table["mean_abs_shap"], color=PALETTE[0], height=0.7)
        ax.set_yticks(np.arange(len(table))[::-1], table["feature"])
        ax.set(xlabel="Mean |SHAP value|", ylim=(-0.6, len(table) - 0.4))
    return save_figure(fig, path)


# --------------------------------------------------------------------------- features


def plot_icc_histogram(icc: pd.DataFrame, threshold: float, path: str | Path) -> Path:
    """Histogram of ICC(2,1) over features with the robustness cut-off; the title gives
    how many features pass. ``icc``: columns feature, icc (``results/features/icc.tsv``)."""
    _require(icc, ["icc"], "ICC histogram")
    values = icc["icc"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    robust = int((values > threshold).sum())
    with plt.rc_context(STYLE):
        fig, axes = panels(1, height=PANEL_IN * 0.75)
        ax = axes[0]
        ax.hist(values, bins=np.linspace(min(values.min(), 0), 1, 41), color=PALETTE[0])
        ax.axvline(threshold, ls="--", lw=0.8, color="black")
        ax.set(
            xlabel="ICC(2,1)",
            ylabel="Features",
            title=f"{robust} of {values.size} features with ICC > {threshold:g}",
        )
    return save_figure(fig, path)


def plot_correlation_heatmap(
    features: pd.DataFrame, path: str | Path, method: str = "pearson"
) -> Path:
    """Correlation matrix of the selected features (columns of ``features``, one row per
    patient), diverging colours from -1 to 1; values printed when at most 15 features."""
    import seaborn as sns

    numeric = features.select_dtypes("number")
    if numeric.shape[1] < 2:
        raise InputError("correlation heatmap: need at least 2 numeric feature columns")
    corr = numeric.corr(method=method)
    k = corr.shape[0]
    size = min(max(PANEL_IN, 0.3 * k + 1.5), 12.0)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(size, size * 0.9))
        sns.heatmap(
            corr,
            ax=ax,
            vmin=-1,
            vmax=1,
            center=0,
            cmap="RdBu_r",
            square=True,
            annot=k <= 15,
            fmt=".2f",
            annot_kws={"fontsize": 5},
            cbar_kws={"label": f"{method.capitalize()} r", "shrink": 0.7},
            xticklabels=True,
            yticklabels=True,
        )
        ax.tick_params(labelsize=5 if k > 15 else 6.5)
    return save_figure(fig, path)
