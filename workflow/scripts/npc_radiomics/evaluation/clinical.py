"""Clinical baseline: Table 1, Table 2, stepwise multivariable model, biomarker AUCs.

Input is one table per patient with ``patient_id``, ``cohort`` (``train``, ``test`` or
an external centre, from ``results/split/split.tsv``), the outcome column (1 = CR,
0 = non-CR) and the clinical variables, continuous or categorical as declared in
config ``clinical_variables``. Numerically coded categorical variables (gender 0/1,
T/N/clinical stage 1-4) enter the regressions as ordinal numbers, one coefficient each,
as in the paper's Table 2; text-coded ones (``Male`` / ``Female``, histology names) as
0/1 dummies of their sorted levels, the first the reference
(:func:`npc_radiomics.inputs.sheets.dummy_code`), one Table 2 row per dummy; Table 1
counts each level either way.

Everything that is fitted (univariate and stepwise regressions, the clinical model,
the direction of each biomarker) is fitted on the training cohort only.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from npc_radiomics.base.errors import InputError, shown
from npc_radiomics.base.layout import cohort_order
from npc_radiomics.metrics import check_predictions, delong_ci, delong_test

TRAIN = "train"
# Monte Carlo tables for the Fisher-Freeman-Halton test of tables larger than 2 x 2;
# 9,999 gives p to about +/- 0.005 at p = 0.05 and runs in milliseconds
FFH_RESAMPLES = 9999


# --------------------------------------------------------------------------- input


def merge_split(clinical: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Clinical table joined with the cohort of each patient (inner join on patient_id).

    Patients missing from ``split`` (excluded by QC) drop out; a patient of the split
    without a clinical row raises InputError.
    """
    for name, df, cols in (
        ("clinical", clinical, ["patient_id"]),
        ("split", split, ["patient_id", "cohort"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise InputError(f"{name} table: missing column(s) {missing}")
    absent = sorted(set(split["patient_id"]) - set(clinical["patient_id"]))
    if absent:
        raise InputError(f"clinical table: no row for patient {absent[0]} ({len(absent)} in all)")
    merged = clinical.drop(columns=["cohort"], errors="ignore").merge(
        split[["patient_id", "cohort"]], on="patient_id", how="inner", validate="one_to_one"
    )
    return merged.sort_values("patient_id", kind="mergesort").reset_index(drop=True)


def _check(
    data: pd.DataFrame, outcome: str, variables: list[str], text_ok: tuple[str, ...] = ()
) -> None:
    missing = [c for c in ["patient_id", "cohort", outcome, *variables] if c not in data.columns]
    if missing:
        raise InputError(f"clinical table: missing column(s) {missing}")
    bad = data[~data[outcome].isin([0, 1])]
    if len(bad):
        raise InputError(
            f"clinical table: patient {bad['patient_id'].iloc[0]} has {outcome}="
            f"{shown(bad[outcome].iloc[0])}, expected 0 or 1"
        )
    for v in variables:
        if v not in text_ok and not pd.api.types.is_numeric_dtype(data[v]):
            raise InputError(
                f"clinical table: variable {v} must be numerically coded (found {data[v].dtype})"
            )


# --------------------------------------------------------------------------- Table 1


def compare_continuous(
    group0: np.ndarray, group1: np.ndarray, alpha: float = 0.05, welch: bool = False
) -> tuple[float, str]:
    """Two-sided p and test name for a continuous variable between outcome groups.

    Student's t-test (Welch's if ``welch``) when Shapiro-Wilk does not reject normality
    (p >= ``alpha``) in either group, Mann-Whitney U otherwise. Shapiro needs 3 values
    and a non-zero spread per group; below that the rank test is used.
    """
    group0 = group0[np.isfinite(group0)]
    group1 = group1[np.isfinite(group1)]
    if min(group0.size, group1.size) == 0:
        return float("nan"), "not tested: an outcome group is empty"
    if np.ptp(np.r_[group0, group1]) == 0:
        return float("nan"), "not tested: constant"

    def normal(x: np.ndarray) -> bool:
        return x.size >= 3 and np.ptp(x) > 0 and stats.shapiro(x).pvalue >= alpha

    if normal(group0) and normal(group1):
        name = "Welch t-test" if welch else "t-test"
        return float(stats.ttest_ind(group0, group1, equal_var=not welch).pvalue), name
    p_value = stats.mannwhitneyu(group0, group1, alternative="two-sided").pvalue
    return float(p_value), "Mann-Whitney U"


def compare_categorical(table: np.ndarray, seed: int = 0) -> tuple[float, str]:
    """Two-sided p and test name for a levels x outcome contingency table of counts.

    Chi-square (Yates-corrected for 2 x 2, scipy's default) when every expected count
    is >= 5; otherwise Fisher's exact test for 2 x 2 and the Fisher-Freeman-Halton test
    (Monte Carlo, seeded, :data:`FFH_RESAMPLES` tables) for larger tables. Levels or
    groups with no patient are dropped first (they make expected counts 0).
    """
    table = np.asarray(table, dtype=int)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return float("nan"), "not tested: one level or one outcome group"
    expected = stats.contingency.expected_freq(table)
    if expected.min() >= 5:
        name = "chi-square (Yates)" if table.shape == (2, 2) else "chi-square"
        return float(stats.chi2_contingency(table).pvalue), name
    if table.shape == (2, 2):
        return float(stats.fisher_exact(table).pvalue), "Fisher exact"
    method = stats.MonteCarloMethod(n_resamples=FFH_RESAMPLES, rng=np.random.default_rng(seed))
    # scipy 1.17 returns a one-element array, not a scalar, for some sparse tables
    # (e.g. [[0, 1], [1, 1], [1, 0]]).
    p = np.asarray(stats.fisher_exact(table, method=method).pvalue, dtype=float).reshape(-1)
    return float(p[0]), "Fisher-Freeman-Halton (MC)"


def _level_name(level) -> str:
    if isinstance(level, str):
        return level
    return str(int(level)) if float(level).is_integer() else str(level)


def table1(
    data: pd.DataFrame,
    outcome: str,
    continuous: list[str],
    categorical: list[str],
    group_labels: tuple[str, str] = ("non_cr", "cr"),
    alpha: float = 0.05,
    welch: bool = False,
    decimals: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Baseline characteristics per cohort and outcome group (the paper's Table 1).

    Continuous: "mean ± SD" with t-test / Mann-Whitney U (:func:`compare_continuous`).
    Categorical: one header row carrying the p-value, then one row per level with
    "count (column %)" and chi-square / Fisher (:func:`compare_categorical`).
    Columns: variable, level, then per cohort ``<cohort>_all``, ``<cohort>_<label0>``,
    ``<cohort>_<label1>``, ``<cohort>_p``, ``<cohort>_test``. Missing values are left
    out per variable and counted in the test column.
    """
    _check(data, outcome, [*continuous, *categorical], text_ok=tuple(categorical))
    cohorts = cohort_order(data["cohort"])
    rows: list[dict] = []

    def cell(x: np.ndarray) -> str:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return "-"
        sd = x.std(ddof=1) if x.size > 1 else float("nan")
        return f"{x.mean():.{decimals}f} ± {sd:.{decimals}f}"

    for var in continuous:
        row = {"variable": var, "level": ""}
        for c in cohorts:
            d = data[data["cohort"] == c]
            x = d[var].to_numpy(dtype=float)
            y = d[outcome].to_numpy()
            p, test = compare_continuous(x[y == 0], x[y == 1], alpha, welch)
            n_missing = int(np.isnan(x).sum())
            row.update(
                {
                    f"{c}_all": cell(x),
                    f"{c}_{group_labels[0]}": cell(x[y == 0]),
                    f"{c}_{group_labels[1]}": cell(x[y == 1]),
                    f"{c}_p": p,
                    f"{c}_test": test + (f"; {n_missing} missing" if n_missing else ""),
                }
            )
        rows.append(row)

    for var in categorical:
        levels = np.sort(data[var].dropna().unique())
        header = {"variable": var, "level": ""}
        level_rows = [{"variable": var, "level": _level_name(lv)} for lv in levels]
        for c in cohorts:
            d = data[(data["cohort"] == c) & data[var].notna()]
            counts = pd.crosstab(d[var], d[outcome]).reindex(
                index=levels, columns=[0, 1], fill_value=0
            )
            table = counts.to_numpy()
            p, test = compare_categorical(table, seed)
            n_missing = int(((data["cohort"] == c) & data[var].isna()).sum())
            header.update(
                {
                    f"{c}_all": "",
                    f"{c}_{group_labels[0]}": "",
                    f"{c}_{group_labels[1]}": "",
                    f"{c}_p": p,
                    f"{c}_test": test + (f"; {n_missing} missing" if n_missing else ""),
                }
            )
            all_counts = table.sum(axis=1)
            columns = (all_counts, table[:, 0], table[:, 1])
            names = ("all", *group_labels)
            for i, lr in enumerate(level_rows):
                for name, col in zip(names, columns, strict=True):
                    total = col.sum()
                    pct = 100 * col[i] / total if total else 0.0
                    lr[f"{c}_{name}"] = f"{col[i]} ({pct:.{decimals}f})"
                lr[f"{c}_p"] = np.nan
                lr[f"{c}_test"] = ""
        rows.append(header)
        rows.extend(level_rows)
    columns = ["variable", "level"] + [
        f"{c}_{s}" for c in cohorts for s in ("all", *group_labels, "p", "test")
    ]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- regression


@dataclass
class LogitFit:
    """A statsmodels logistic fit, or None with the reason it could not be used."""

    result: object | None
    note: str = ""


def fit_logit(y: np.ndarray, x: pd.DataFrame) -> LogitFit:
    """Maximum-likelihood logistic regression with an intercept (statsmodels ``Logit``).

    Returns the fit, or ``result=None`` with a note on perfect separation, failure to
    converge or a singular design, instead of raising.
    """
    import statsmodels.api as sm

    design = sm.add_constant(x.astype(float), has_constant="add")
    if len(np.unique(y)) < 2:
        return LogitFit(None, "one outcome class only")
    if len(y) <= design.shape[1]:
        return LogitFit(None, f"{len(y)} patients for {design.shape[1]} coefficients")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = sm.Logit(np.asarray(y, dtype=float), design).fit(disp=0, maxiter=100)
        except (np.linalg.LinAlgError, ValueError) as err:
            return LogitFit(None, f"fit failed: {err}")
    messages = " ".join(str(w.message) for w in caught)
    if "separation" in messages.lower():
        return LogitFit(None, "perfect separation: odds ratio not estimable")
    if not result.mle_retvals.get("converged", True) or not np.all(np.isfinite(result.bse)):
        return LogitFit(None, "did not converge")
    return LogitFit(result)


def _coefficient_rows(result, names: list[str], level: float = 0.95) -> pd.DataFrame:
    ci = np.asarray(result.conf_int(alpha=1 - level))
    params = np.asarray(result.params)
    out = pd.DataFrame(
        {
            "variable": names,
            "log_or": params,
            "log_or_ci_low": ci[:, 0],
            "log_or_ci_high": ci[:, 1],
            "or": np.exp(params),
            "or_ci_low": np.exp(ci[:, 0]),
            "or_ci_high": np.exp(ci[:, 1]),
            "p_value": np.asarray(result.pvalues),
        }
    )
    out["or_ci"] = [
        f"{o:.3f} ({lo:.3f}-{hi:.3f})"
        for o, lo, hi in zip(out["or"], out["or_ci_low"], out["or_ci_high"], strict=True)
    ]
    return out


TABLE2_COLUMNS = [
    "variable",
    "n",
    "log_or",
    "log_or_ci_low",
    "log_or_ci_high",
    "or",
    "or_ci_low",
    "or_ci_high",
    "or_ci",
    "p_value",
    "note",
]


def univariate_logistic(
    data: pd.DataFrame, outcome: str, variables: list[str], level: float = 0.95
) -> pd.DataFrame:
    """Table 2: one logistic regression of the outcome on each variable alone.

    Log odds ratio per unit of the variable (e.g. per year of age, per stage), its Wald
    CI, the odds ratio with CI, and the Wald p-value. Patients with the variable missing
    are left out of that variable's fit (``n`` says how many were used). A fit that fails
    (separation, one class) gives NaN and a note.
    """
    _check(data, outcome, variables)
    rows = []
    for var in variables:
        d = data[[outcome, var]].dropna()
        fit = fit_logit(d[outcome].to_numpy(), d[[var]])
        if fit.result is None:
            rows.append({"variable": var, "n": len(d), "note": fit.note})
            continue
        coef = _coefficient_rows(fit.result, ["intercept", var], level).iloc[[1]]
        rows.append({**coef.iloc[0].to_dict(), "n": len(d), "note": ""})
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS)


def _lr_pvalue(full, reduced) -> float:
    """Likelihood-ratio test p of a nested pair of logistic fits."""
    df = full.df_model - reduced.df_model
    return float(stats.chi2.sf(max(2 * (full.llf - reduced.llf), 0.0), df))


@dataclass
class StepwiseResult:
    """Outcome of bidirectional stepwise logistic regression.

    ``selected`` is empty and ``model`` None when no variable entered; ``note`` says
    why (e.g. no variable had univariate p < entry_p).
    """

    candidates: list[str]
    selected: list[str]
    steps: pd.DataFrame  # step, action (enter / remove), variable, p_value
    coefficients: pd.DataFrame  # TABLE2-like, intercept first; empty without a model
    model: object | None = None
    n: int = 0
    note: str = ""
    entry_p: float = 0.1
    stay_p: float = 0.1


def stepwise_logistic(
    data: pd.DataFrame,
    outcome: str,
    candidates: list[str],
    entry_p: float = 0.1,
    stay_p: float = 0.1,
    max_steps: int = 100,
) -> StepwiseResult:
    """Forward-backward stepwise logistic regression with likelihood-ratio p-values.

    Each forward step adds the candidate with the smallest LR-test p if p < ``entry_p``;
    after each addition, variables whose removal has LR p > ``stay_p`` are removed one at
    a time (largest p first). Stops when nothing changes or a model repeats. The sample
    is the patients complete on all candidates, fixed throughout so that nested fits are
    comparable. LR rather than Wald p-values because Wald is unreliable in small samples.
    """
    _check(data, outcome, candidates)
    empty_coef = pd.DataFrame(columns=TABLE2_COLUMNS)
    steps_columns = ["step", "action", "variable", "p_value"]
    if not candidates:
        return StepwiseResult(
            [],
            [],
            pd.DataFrame(columns=steps_columns),
            empty_coef,
            note=f"no clinical variable had univariate p < {entry_p}: no multivariable model",
            entry_p=entry_p,
            stay_p=stay_p,
        )
    d = data[[outcome, *candidates]].dropna()
    y = d[outcome].to_numpy()
    cache: dict[tuple[str, ...], LogitFit] = {}

    def fit(variables: tuple[str, ...]) -> LogitFit:
        key = tuple(sorted(variables))
        if key not in cache:
            cache[key] = fit_logit(y, d[list(key)])
        return cache[key]

    selected: list[str] = []
    steps: list[tuple] = []
    seen = {()}
    for _ in range(max_steps):
        current = fit(tuple(selected))
        if current.result is None:
            break
        entries = {}
        for var in candidates:
            if var in selected:
                continue
            bigger = fit((*selected, var))
            if bigger.result is not None:
                entries[var] = _lr_pvalue(bigger.result, current.result)
        if not entries:
            break
        best = min(entries, key=lambda v: (entries[v], v))
        if entries[best] >= entry_p:
            break
        selected.append(best)
        steps.append((len(steps) + 1, "enter", best, entries[best]))
        while len(selected) > 1:
            full = fit(tuple(selected)).result
            if full is None:
                break
            removals = {}
            for v in selected:
                reduced = fit(tuple(s for s in selected if s != v)).result
                if reduced is not None:
                    removals[v] = _lr_pvalue(full, reduced)
            if not removals:
                break
            worst = max(removals, key=lambda v: (removals[v], v))
            if removals[worst] <= stay_p:
                break
            selected.remove(worst)
            steps.append((len(steps) + 1, "remove", worst, removals[worst]))
        if tuple(sorted(selected)) in seen:
            break  # a cycle: entry and removal undo each other
        seen.add(tuple(sorted(selected)))
    steps_df = pd.DataFrame(steps, columns=steps_columns)

    def no_model(note: str) -> StepwiseResult:
        return StepwiseResult(
            list(candidates),
            [],
            steps_df,
            empty_coef,
            n=len(d),
            note=note,
            entry_p=entry_p,
            stay_p=stay_p,
        )

    if not selected:
        return no_model(f"no candidate entered the stepwise model at p < {entry_p}")
    # refit in the order of entry, which is how the model is reported
    final = fit_logit(y, d[selected])
    if final.result is None:
        return no_model(f"final model {selected} could not be fitted: {final.note}")
    model = final.result
    coefficients = _coefficient_rows(model, ["intercept", *selected]).assign(n=len(d), note="")
    return StepwiseResult(
        list(candidates),
        selected,
        steps_df,
        coefficients[TABLE2_COLUMNS],
        model,
        len(d),
        entry_p=entry_p,
        stay_p=stay_p,
    )


def clinical_model_predictions(
    step: StepwiseResult, data: pd.DataFrame, outcome: str, name: str = "clinical"
) -> pd.DataFrame:
    """Predicted probabilities of the stepwise model for every patient of every cohort.

    Same columns as ``predictions.tsv`` (patient_id, cohort, model, probability, label),
    so :func:`npc_radiomics.metrics.evaluate_predictions` applies unchanged. Probability is
    NaN for patients missing a selected variable, and for everyone when no model exists.
    """
    out = data[["patient_id", "cohort"]].copy()
    out["model"] = name
    out["label"] = data[outcome].astype(int).to_numpy()
    if step.model is None:
        out["probability"] = np.nan
    else:
        import statsmodels.api as sm

        x = sm.add_constant(data[step.selected].astype(float), has_constant="add")
        complete = x.notna().all(axis=1).to_numpy()
        prob = np.full(len(data), np.nan)
        prob[complete] = step.model.predict(x[complete])
        out["probability"] = prob
    return out[["patient_id", "cohort", "model", "probability", "label"]]


def clinical_cv_predictions(
    train: pd.DataFrame,
    outcome: str,
    variables: list[str],
    entry_p: float,
    stay_p: float,
    n_folds: int = 5,
    seed: int = 0,
    name: str = "clinical",
) -> pd.DataFrame:
    """Out-of-fold probabilities of the whole clinical-model procedure on the training
    cohort: in each stratified fold the univariate screen (p < ``entry_p``) and the
    stepwise selection are redone on the fold's training rows and the fitted model
    scores the held-out rows. A fold where no variable enters predicts its training
    prevalence (the intercept-only model). Same columns as predictions.tsv.
    """
    from sklearn.model_selection import StratifiedKFold

    train = train.reset_index(drop=True)
    y = train[outcome].astype(int).to_numpy()
    prob = np.full(len(train), np.nan)
    k = int(min(n_folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise InputError(f"clinical model CV: fewer than 2 patients in a class ({np.bincount(y)})")
    folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for tr, va in folds:
        d = train.iloc[tr]
        t2 = univariate_logistic(d, outcome, variables)
        candidates = t2.loc[t2["p_value"] < entry_p, "variable"].tolist()
        step = stepwise_logistic(d, outcome, candidates, entry_p, stay_p)
        if step.model is None:
            prob[va] = float(d[outcome].mean())
        else:
            prob[va] = clinical_model_predictions(step, train.iloc[va], outcome)["probability"]
    out = train[["patient_id", "cohort"]].copy()
    out["model"] = name
    out["probability"] = prob
    out["label"] = y
    return out[["patient_id", "cohort", "model", "probability", "label"]]


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN
    and does not count in the family size."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if not m:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


# --------------------------------------------------------------------------- biomarkers


def biomarker_scores(
    data: pd.DataFrame, outcome: str, biomarkers: list[str], train_cohort: str = TRAIN
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Each biomarker as a score oriented so that higher means more likely CR.

    The orientation (+1 or -1) is chosen on the training cohort (AUC of the raw value
    >= 0.5 keeps +1) and applied unchanged elsewhere: choosing it per cohort, as
    automatic ROC direction does, would flatter the test AUCs. Returns a long table
    (patient_id, cohort, comparator, score, label) and the orientation per biomarker.
    """
    from npc_radiomics.metrics import auc

    _check(data, outcome, biomarkers)
    train = data[data["cohort"] == train_cohort]
    parts, direction = [], {}
    for b in biomarkers:
        t = train[[outcome, b]].dropna()
        a = auc(t[outcome].to_numpy(), t[b].to_numpy()) if len(t) else float("nan")
        direction[b] = -1 if np.isfinite(a) and a < 0.5 else 1
        d = data[["patient_id", "cohort", outcome, b]].dropna()
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": d["patient_id"].to_numpy(),
                    "cohort": d["cohort"].to_numpy(),
                    "comparator": b,
                    "score": direction[b] * d[b].to_numpy(dtype=float),
                    "label": d[outcome].astype(int).to_numpy(),
                }
            )
        )
    columns = ["patient_id", "cohort", "comparator", "score", "label"]
    scores = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return scores[columns], direction


def comparator_aucs(scores: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """AUC with DeLong CI (logit scale) per comparator (biomarker or clinical model) and
    cohort.

    ``scores``: columns patient_id, cohort, comparator, score, label. NaN + note for a
    cohort with one class or no scored patient, and a NaN CI + note for constant scores
    or a perfect separation (see :func:`npc_radiomics.metrics.delong_ci`).
    """
    rows = []
    for comp in list(dict.fromkeys(scores["comparator"])):
        for cohort in cohort_order(scores["cohort"]):
            g = scores[(scores["comparator"] == comp) & (scores["cohort"] == cohort)]
            g = g[g["score"].notna()]
            res = delong_ci(g["label"].to_numpy(), g["score"].to_numpy(), level)
            rows.append((comp, cohort, len(g), res.auc, res.ci_low, res.ci_high, res.note))
    return pd.DataFrame(
        rows, columns=["comparator", "cohort", "n", "auc", "auc_ci_low", "auc_ci_high", "note"]
    )


DELONG_COLUMNS = [
    "model",
    "comparator",
    "cohort",
    "n",
    "auc_model",
    "auc_comparator",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "z",
    "p_value",
    "note",
    "p_holm",
    "predictions",
]


def delong_versus(
    reference: pd.DataFrame,
    scores: pd.DataFrame,
    reference_name: str = "radiomics",
    level: float = 0.95,
) -> pd.DataFrame:
    """Paired DeLong tests of one model (``reference``) against each comparator, per cohort,
    with the ``level`` CI of each AUC difference (model - comparator) and a note when a
    test cannot be made (one class, < 2 per class, zero variance of the difference).

    ``reference``: predictions of one model (patient_id, cohort, probability, label);
    ``scores``: comparators (patient_id, cohort, comparator, score, label). Each test
    uses the patients scored by both. Raises InputError if a patient's label differs
    between the two tables (they must describe the same outcome).
    """
    ref = reference[["patient_id", "cohort", "probability", "label"]].dropna(subset=["probability"])
    rows = []
    for comp in list(dict.fromkeys(scores["comparator"])):
        s = scores[(scores["comparator"] == comp) & scores["score"].notna()]
        both = ref.merge(s, on=["patient_id", "cohort"], suffixes=("_ref", "_cmp"))
        clash = both[both["label_ref"] != both["label_cmp"]]
        if len(clash):
            raise InputError(
                f"patient {clash['patient_id'].iloc[0]}: label {clash['label_ref'].iloc[0]} "
                f"in the predictions but {clash['label_cmp'].iloc[0]} in the clinical table"
            )
        for cohort in cohort_order(both["cohort"]):
            g = both[both["cohort"] == cohort]
            test = delong_test(g["label_ref"].to_numpy(), g["probability"], g["score"], level)
            rows.append(
                (
                    reference_name,
                    comp,
                    cohort,
                    len(g),
                    test.auc1,
                    test.auc2,
                    test.difference,
                    test.ci_low,
                    test.ci_high,
                    test.z,
                    test.p_value,
                    test.note,
                    np.nan,
                    "",
                )
            )
    table = pd.DataFrame(rows, columns=DELONG_COLUMNS)
    # One family: every test of the chosen model against a comparator, all cohorts.
    table["p_holm"] = holm_adjust(table["p_value"])
    return table


# --------------------------------------------------------------------------- all together


@dataclass
class ClinicalAnalysis:
    """Everything ``results/clinical/`` holds; see :func:`clinical_analysis`."""

    table1: pd.DataFrame
    table2: pd.DataFrame
    stepwise: StepwiseResult
    clinical_predictions: pd.DataFrame
    comparator_aucs: pd.DataFrame
    delong_tests: pd.DataFrame
    biomarker_direction: dict[str, int]


def clinical_analysis(
    data: pd.DataFrame,
    outcome: str,
    continuous: list[str],
    categorical: list[str],
    biomarkers: list[str],
    entry_p: float = 0.1,
    stay_p: float = 0.1,
    radiomics: pd.DataFrame | None = None,
    radiomics_name: str = "radiomics",
    seed: int = 0,
    radiomics_oof: pd.DataFrame | None = None,
    cv_folds: int = 5,
) -> ClinicalAnalysis:
    """The paper's clinical analysis from a clinical table with a ``cohort`` column.

    Table 1 over all cohorts; Table 2 and the stepwise model on the training cohort;
    the clinical model's probabilities on every cohort; AUCs of each biomarker and of the
    clinical model; and, if ``radiomics`` predictions of the chosen model are given
    (patient_id, cohort, probability, label), DeLong tests of it against each, with
    Holm-adjusted p-values over the family of tests.

    On the training cohort the comparisons never use in-sample fits: the radiomics side
    is ``radiomics_oof`` (the chosen model's nested-CV out-of-fold predictions,
    patient_id, probability, label; its train rows in ``radiomics`` are ignored) and the
    clinical model's side is :func:`clinical_cv_predictions` (``cv_folds`` folds, seeded).
    Without ``radiomics_oof`` no training-cohort test is made. The AUC table's clinical
    train row is the cross-validated one too.
    """
    from npc_radiomics.inputs.sheets import dummy_code

    t1 = table1(data, outcome, continuous, categorical, seed=seed)
    # Text-coded categorical variables enter every regression as dummies of their levels.
    data, variables = dummy_code(data, [*continuous, *categorical], list(categorical))
    _check(data, outcome, variables + [b for b in biomarkers if b not in variables])
    train = data[data["cohort"] == TRAIN]
    if train.empty:
        raise InputError("clinical analysis: no patient in the train cohort")
    t2 = univariate_logistic(train, outcome, variables)
    candidates = t2.loc[t2["p_value"] < entry_p, "variable"].tolist()
    step = stepwise_logistic(train, outcome, candidates, entry_p, stay_p)
    clinical_pred = clinical_model_predictions(step, data, outcome)
    scores, direction = biomarker_scores(data, outcome, biomarkers)
    if step.model is not None:
        cv = clinical_cv_predictions(
            train, outcome, candidates_all(t2), entry_p, stay_p, cv_folds, seed
        )
        honest = pd.concat([clinical_pred[clinical_pred["cohort"] != TRAIN], cv], ignore_index=True)
        clinical_scores = honest.rename(columns={"model": "comparator", "probability": "score"})
        scores = pd.concat([scores, clinical_scores[scores.columns]], ignore_index=True)
    aucs = comparator_aucs(scores)
    aucs.loc[(aucs["comparator"] == "clinical") & (aucs["cohort"] == TRAIN), "note"] = (
        "cross-validated: stepwise selection redone in each fold"
    )
    tests = pd.DataFrame(columns=DELONG_COLUMNS)
    if radiomics is not None:
        ref = radiomics.assign(model=radiomics_name) if "model" not in radiomics else radiomics
        ref = check_predictions(ref)
        ref = ref[ref["cohort"] != TRAIN]
        if radiomics_oof is not None:
            oof = radiomics_oof[["patient_id", "probability", "label"]].assign(
                cohort=TRAIN, model=radiomics_name
            )
            ref = pd.concat([check_predictions(oof), ref], ignore_index=True)
        tests = delong_versus(ref, scores, radiomics_name)
        train_rows = tests["cohort"] == TRAIN
        tests.loc[train_rows, "predictions"] = (
            "out-of-fold: nested CV (radiomics), cross-validated clinical model; "
            "biomarker direction fixed on the training cohort"
        )
        tests.loc[~train_rows, "predictions"] = "final models"
    return ClinicalAnalysis(t1, t2, step, clinical_pred, aucs, tests, direction)


def candidates_all(table2: pd.DataFrame) -> list[str]:
    """Every Table 2 variable: the CV folds redo the univariate screen themselves."""
    return table2["variable"].tolist()


def clinical_rule(
    clinical_path,
    split_path,
    predictions_path,
    chosen_path,
    out,
    *,
    nested_path=None,
    cv_folds: int = 5,
    outcome: str,
    continuous: list[str],
    categorical: list[str],
    biomarkers: list[str],
    entry_p: float,
    stay_p: float,
    seed: int,
    clinical_sheet: str | None = None,
) -> str:
    """Rule ``clinical_analysis``: read its inputs, run :func:`clinical_analysis` against
    the chosen radiomics model, write every output of ``out``. Returns the line to log.
    ``clinical_sheet``: the worksheet of an .xlsx clinical table (None: the first)."""
    from npc_radiomics.base.io import read_table, write_json, write_tsv
    from npc_radiomics.inputs.sheets import read_clinical

    data = merge_split(
        # The same reader as the start-up validation (common.smk): one reading of the table.
        read_clinical(
            clinical_path, outcome, continuous, categorical, biomarkers, sheet=clinical_sheet
        ),
        read_table(split_path),
    )
    chosen = json.loads(Path(chosen_path).read_text())["model"]
    predictions = read_table(predictions_path, dtype={"patient_id": str})
    oof = None
    if nested_path is not None and chosen:
        nested = read_table(nested_path, dtype={"patient_id": str})
        oof = nested[nested["model"] == chosen]
    result = clinical_analysis(
        data,
        outcome,
        list(continuous),
        list(categorical),
        list(biomarkers),
        entry_p=entry_p,
        stay_p=stay_p,
        radiomics=predictions[predictions["model"] == chosen] if chosen else None,
        radiomics_name=chosen or "radiomics",
        seed=seed,
        radiomics_oof=oof,
        cv_folds=cv_folds,
    )
    step = result.stepwise
    write_tsv(result.table1, out.table1)
    write_tsv(result.table2, out.table2)
    write_tsv(step.steps, out.stepwise_steps)
    write_tsv(step.coefficients, out.multivariable)
    write_json(
        {
            "candidates": step.candidates,
            "selected": step.selected,
            "n": step.n,
            "entry_p": step.entry_p,
            "stay_p": step.stay_p,
            "note": step.note,
            "biomarker_direction": result.biomarker_direction,
            "radiomics_model": chosen,
        },
        out.model,
    )
    write_tsv(result.clinical_predictions, out.predictions)
    write_tsv(result.comparator_aucs, out.biomarker_aucs)
    write_tsv(result.delong_tests, out.delong_tests)
    return f"clinical model: {step.selected or 'none'} {step.note}"
