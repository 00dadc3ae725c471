"""Selection stability (rule ``selection_stability``, step 22): which features another
sample would have chosen.

The selection (non-finite filter, impute, variance, scale, mRMR, LASSO) does not depend
on the classifier, so it is refitted here on ``stability.n_bootstrap`` bootstrap
resamples of the training set (default 100; stratified: each class resampled with
replacement within itself, so every resample keeps the class counts the LASSO's CV
needs; seeded ``derived_seed(seed, "stability", b)``) and once on the whole training set
(the final fit). Per feature: how often it survived mRMR and LASSO over the bootstrap
fits (and whether the final fit kept it); per stage: the mean pairwise Jaccard index of
the bootstrap fits' selected sets and their mean Jaccard index with the final set. The
outer folds' five fits share 60% of their rows, too few and too alike to measure
stability.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

FREQUENCY_COLUMNS = [
    "feature",
    "mrmr_count",
    "mrmr_frequency",
    "lasso_count",
    "lasso_frequency",
    "in_final_mrmr",
    "in_final_lasso",
]


def fitted_sets(selection, feature_names: list[str]) -> tuple[list[str], list[str]]:
    """(mRMR survivors, LASSO survivors) of a fitted selection pipeline."""
    steps = selection.named_steps
    before = selection[: list(steps).index("mrmr")].get_feature_names_out(feature_names)
    mrmr_names = np.asarray(before)[steps["mrmr"].ranking_]  # LASSO sees them in this order
    kept = mrmr_names[steps["lasso"].support_]
    return sorted(map(str, mrmr_names)), sorted(map(str, kept))


def bootstrap_rows(y: pd.Series, seed: int, b: int) -> np.ndarray:
    """Row positions of stratified bootstrap resample ``b`` of the training labels ``y``:
    each class resampled with replacement within itself (same class counts), sorted."""
    from npc_radiomics.base.config import derived_seed

    rng = np.random.default_rng(derived_seed(seed, "stability", b))
    labels = np.asarray(y)
    parts = [
        rng.choice(np.flatnonzero(labels == c), size=int((labels == c).sum()), replace=True)
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(parts))


def selection_sets(
    X: pd.DataFrame, y: pd.Series, settings, seed: int, n_bootstrap: int = 100
) -> pd.DataFrame:
    """One row per fit (``boot000`` .. bootstrap resamples, then ``final``, the whole
    training set) and stage (mrmr / lasso): fit, stage, features (``;``-joined, sorted).
    Training rows only: X, y are the training set."""
    from sklearn.base import clone

    fits = [(f"boot{b:03d}", bootstrap_rows(y, seed, b)) for b in range(n_bootstrap)]
    fits.append(("final", np.arange(len(y))))
    rows = []
    for name, rows_idx in fits:
        Xb = X.iloc[rows_idx].reset_index(drop=True)  # repeated patients: unique row labels
        sel = clone(settings.selection(seed)).fit(Xb, y.iloc[rows_idx].to_numpy())
        mrmr, lasso = fitted_sets(sel, list(X.columns))
        rows += [(name, "mrmr", ";".join(mrmr)), (name, "lasso", ";".join(lasso))]
    return pd.DataFrame(rows, columns=["fit", "stage", "features"])


def _split(features: str) -> set[str]:
    return set(features.split(";")) if isinstance(features, str) and features else set()


def jaccard(a: set, b: set) -> float:
    """|A & B| / |A | B|; 1 for two empty sets."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def stability_tables(sets: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-feature frequencies over the bootstrap fits, every fit but ``final``, with
    whether the final fit kept it; per stage the mean pairwise Jaccard index of the
    bootstrap fits' sets, scope ``bootstrap``, and their mean Jaccard index with the final
    set, scope ``bootstrap_vs_final``)."""
    fits = list(dict.fromkeys(sets["fit"]))
    boots = [f for f in fits if f != "final"]
    by = {(r.fit, r.stage): _split(r.features) for r in sets.itertuples()}
    features = sorted(set().union(*by.values())) if by else []
    rows = []
    for f in features:
        row = {"feature": f}
        for stage in ("mrmr", "lasso"):
            count = sum(f in by.get((fit, stage), set()) for fit in boots)
            row[f"{stage}_count"] = count
            row[f"{stage}_frequency"] = count / len(boots) if boots else np.nan
            row[f"in_final_{stage}"] = f in by.get(("final", stage), set())
        rows.append(row)
    freq = pd.DataFrame(rows, columns=FREQUENCY_COLUMNS).sort_values(
        ["lasso_count", "mrmr_count", "feature"], ascending=[False, False, True], kind="mergesort"
    )
    summary = []
    for stage in ("mrmr", "lasso"):
        sets_b = [by.get((n, stage), set()) for n in boots]
        final = by.get(("final", stage))
        for scope, values in (
            ("bootstrap", [jaccard(a, b) for a, b in itertools.combinations(sets_b, 2)]),
            (
                "bootstrap_vs_final",
                [jaccard(a, final) for a in sets_b] if final is not None else [],
            ),
        ):
            summary.append(
                {
                    "stage": stage,
                    "scope": scope,
                    "n_fits": len(boots),
                    "mean_jaccard": float(np.mean(values)) if values else np.nan,
                    "mean_size": float(np.mean([len(a) for a in sets_b])) if sets_b else np.nan,
                }
            )
    return freq.reset_index(drop=True), pd.DataFrame(summary)


def plot_selection_frequency(freq: pd.DataFrame, path, top: int = 20):
    """Horizontal bars: the ``top`` most often selected features, LASSO and mRMR."""
    import matplotlib.pyplot as plt

    from npc_radiomics.base.errors import InputError
    from npc_radiomics.figures import PALETTE, STYLE, save_figure

    if freq.empty:
        raise InputError("no feature was selected in any fit")
    head = freq.head(top).iloc[::-1]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(head) + 1.2))
        y = np.arange(len(head))
        ax.barh(y + 0.2, head["mrmr_frequency"], 0.4, color=PALETTE[1], label="mRMR")
        ax.barh(y - 0.2, head["lasso_frequency"], 0.4, color=PALETTE[0], label="LASSO")
        ax.set_yticks(y, head["feature"], fontsize=7)
        ax.set(xlim=(0, 1), xlabel="Share of bootstrap refits selecting the feature")
        ax.legend(loc="lower right")
    return save_figure(fig, path)


def stability_rule(design, settings, seed: int, out, n_bootstrap: int = 100) -> str:
    """Rule ``selection_stability``: the sets, the tables and the figure."""
    from npc_radiomics.base.io import write_tsv
    from npc_radiomics.figures import figure_or_placeholder

    X, y = design.train()
    sets = selection_sets(X, y, settings, seed, n_bootstrap)
    freq, summary = stability_tables(sets)
    write_tsv(sets, out.sets)
    write_tsv(freq, out.frequency)
    write_tsv(summary, out.jaccard)
    figure_or_placeholder(plot_selection_frequency, out.figure, freq)
    lasso = summary[(summary["stage"] == "lasso") & (summary["scope"] == "bootstrap")]
    return (
        f"LASSO mean pairwise Jaccard over {n_bootstrap} bootstrap refits "
        f"{lasso['mean_jaccard'].iloc[0]:.3f}"
    )
