"""Is there anything to show? The report's first screen (rule ``evidence``, step 22).

Events per candidate variable, the minimum sample size of Riley et al. (BMJ 2020;368:m441,
Stat Med 2019;38:1276) for a binary outcome as the R package ``pmsampsize`` computes it,
and a plain verdict (:func:`verdict`): "evidence" only when the headline, the
procedure's nested-CV AUC with the model choice inside each outer fold
(``evaluation.procedure``), has a 95% CI above 0.5 AND the permutation p-value of the
same statistic (``permutation.py``) is below alpha; "inconclusive" when the permutation
count cannot reach alpha; else "no evidence that the images predict the outcome in this
cohort". Riley et al.'s criteria are computed for the candidate features, the model's
real degrees of freedom before selection; the number of selected features is shown as a
count, not as a sample-size justification (selection spent the candidates' degrees of
freedom already).

The criteria are implemented here (checked against pmsampsize's worked example in
tests/test_evidence.py): the Python port ``pmsampsize`` 0.1.0 is a single GPL-3.0 release.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.base.errors import InputError

NO_EVIDENCE = "no evidence that the images predict the outcome in this cohort"


def max_r2_cs(prevalence: float) -> float:
    """Largest Cox-Snell R^2 a binary outcome with this prevalence allows (Riley eq. 23)."""
    ln_null = prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence)
    return 1 - math.exp(2 * ln_null)


def cstatistic_to_r2_cs(
    cstatistic: float, prevalence: float, n: int = 1_000_000, seed: int = 123456
) -> float:
    """Cox-Snell R^2 anticipated from a C statistic (Riley et al. 2021, as pmsampsize's
    ``cstat2rsq``): simulate a large sample whose linear predictor is N(0, 1) in
    non-events and N(sqrt(2) Phi^-1(C), 1) in events, fit a logistic regression on it and
    take 1 - exp(-LR / n)."""
    from scipy.stats import norm
    from sklearn.linear_model import LogisticRegression

    if not 0.5 < cstatistic < 1:
        raise InputError(f"anticipated C statistic {cstatistic}: must lie in (0.5, 1)")
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    mu = math.sqrt(2) * norm.ppf(cstatistic)
    lp = rng.normal(0, 1, n) + mu * y
    fit = LogisticRegression(C=np.inf).fit(lp[:, None], y)
    p = np.clip(fit.predict_proba(lp[:, None])[:, 1], 1e-12, 1 - 1e-12)
    ll = np.sum(np.where(y, np.log(p), np.log(1 - p)))
    q = y.mean()
    ll0 = n * (q * math.log(q) + (1 - q) * math.log(1 - q))
    return float(1 - math.exp(-2 * (ll - ll0) / n))


def riley_sample_size(
    parameters: int,
    prevalence: float,
    r2_cs: float | None = None,
    cstatistic: float | None = None,
    shrinkage: float = 0.9,
    delta: float = 0.05,
    margin: float = 0.05,
) -> dict:
    """Minimum development sample size for a binary-outcome model (pmsampsize ``type="b"``).

    Criterion 1: expected uniform shrinkage >= ``shrinkage``; 2: apparent and adjusted
    Nagelkerke R^2 differ by <= ``delta``; 3: overall risk within +/- ``margin`` (95%).
    ``r2_cs``: the anticipated Cox-Snell R^2, or ``cstatistic`` to derive it. Returns
    n per criterion, the final n (their maximum), its events and events per parameter.
    """
    if r2_cs is None:
        if cstatistic is None:
            raise InputError("riley_sample_size: give r2_cs or cstatistic")
        r2_cs = cstatistic_to_r2_cs(cstatistic, prevalence)
    max_r2 = max_r2_cs(prevalence)
    if not 0 < r2_cs < max_r2:
        raise InputError(f"anticipated Cox-Snell R2 {r2_cs:.3f} not in (0, {max_r2:.3f})")

    def n_for(s: float) -> int:
        return math.ceil(parameters / ((s - 1) * math.log(1 - r2_cs / s)))

    n1 = n_for(shrinkage)
    s2 = r2_cs / (r2_cs + delta * max_r2)
    n2 = n_for(s2)
    n3 = math.ceil((1.96 / margin) ** 2 * prevalence * (1 - prevalence))
    n = max(n1, n2, n3)
    return {
        "parameters": int(parameters),
        "prevalence": float(prevalence),
        "r2_cs": float(r2_cs),
        "max_r2_cs": float(max_r2),
        "r2_nagelkerke": float(r2_cs / max_r2),
        "n_criterion1": n1,
        "n_criterion2": n2,
        "n_criterion3": n3,
        "shrinkage_criterion2": float(s2),
        "n_required": n,
        "events_required": math.ceil(n * prevalence),
        "epp_required": n * prevalence / parameters,
    }


#: ``status`` values of the verdict.
EVIDENCE, NO, INCONCLUSIVE = "evidence", "no evidence", "inconclusive"


def verdict(headline: dict | None, p_value: float | None, n_perm: int | None, alpha: float):
    """The first screen's verdict from the headline (the procedure's AUC with its 95% CI,
    :func:`~npc_radiomics.evaluation.procedure.procedure_estimate`) and the permutation
    p-value of the same statistic: (status, text).

    "evidence" only when both agree: the CI lies above 0.5 AND p < ``alpha``. "no
    evidence" when the CI includes 0.5 (or lies below it, or is undefined) or when a
    permutation count that could reach ``alpha`` gives p >= alpha. "inconclusive" when
    the CI lies above 0.5 but no permutation test ran, or its smallest attainable p-value,
    1 / (n + 1), is not below ``alpha`` (n permutations cannot decide).
    """
    reasons = []
    if headline is None or headline.get("auc") is None:
        reasons.append("no estimate of the procedure (no model chosen in an outer fold)")
    elif headline.get("auc_ci_low") is None:
        note = headline.get("ci_note") or "undefined"
        reasons.append(f"the procedure's AUC ({headline['auc']:.2f}) has no 95% CI ({note})")
    elif not headline["auc_ci_low"] > 0.5:
        low, high = headline["auc_ci_low"], headline["auc_ci_high"]
        where = "lies below" if high < 0.5 else "includes"
        reasons.append(f"the procedure's nested-CV AUC 95% CI ({low:.2f}-{high:.2f}) {where} 0.5")
    floor = None if not n_perm else 1.0 / (n_perm + 1)
    enough = floor is not None and floor < alpha
    if enough and p_value is not None and not p_value < alpha:
        reasons.append(
            f"the permutation p-value ({p_value:.3f}, {n_perm} permutations) is not below {alpha}"
        )
    if reasons:
        return NO, f"{NO_EVIDENCE}: " + "; ".join(reasons)
    ci = f"{headline['auc_ci_low']:.2f}-{headline['auc_ci_high']:.2f}"
    above = f"the procedure's nested-CV AUC {headline['auc']:.2f} (95% CI {ci}) lies above 0.5"
    if floor is None or p_value is None:
        return INCONCLUSIVE, (
            f"inconclusive: {above}, but no permutation test ran (permutation.n = 0): "
            "evidence needs both"
        )
    if not enough:
        return INCONCLUSIVE, (
            f"inconclusive: {above}, but {n_perm} permutations cannot give a permutation "
            f"p-value below {alpha} (the smallest possible is 1/{n_perm + 1} = {floor:.3f}; "
            f"here p = {p_value:.3f}): set permutation.n to at least {math.ceil(1 / alpha)}"
        )
    return EVIDENCE, (
        f"evidence that the images predict the outcome in this cohort: {above} and the "
        f"permutation p-value is {p_value:.3f} ({n_perm} permutations; the smallest possible "
        f"is {floor:.3f})"
    )


def evidence_summary(
    labels: pd.Series,
    n_candidates: int,
    n_selected: int | None,
    chosen: dict,
    permutation: pd.DataFrame | None,
    anticipated_auc: float,
    alpha: float = 0.05,
) -> dict:
    """The first-screen record: training events, events per candidate variable, Riley's
    minimum n for the candidate features, the headline (the procedure's nested-CV AUC,
    model choice included, with its 95% CI: ``chosen["nested_choice"]``), the chosen
    model's own nested-CV AUC (optimistic: the best of the models), the permutation
    p-value of the procedure's AUC (row ``nested_cv_procedure`` of permutation.tsv), the
    smallest p-value the permutation count allows, and the :func:`verdict`.
    ``chosen``: chosen_model.json."""
    from npc_radiomics.evaluation.procedure import PROCEDURE

    y = labels.astype(int)
    n, events = len(y), int(y.sum())
    minority = min(events, n - events)
    prevalence = events / n if n else float("nan")
    ranking = chosen.get("ranking") or []
    record: dict = {
        "n_train": n,
        "events": events,
        "non_events": n - events,
        "n_candidate_features": int(n_candidates),
        "events_per_candidate": minority / n_candidates if n_candidates else None,
        "n_selected_features": n_selected,
        "events_per_selected": minority / n_selected if n_selected else None,
        "anticipated_auc": anticipated_auc,
        "chosen_model": chosen.get("model"),
        "chosen_model_nested_auc": ranking[0]["auc_mean"] if ranking else None,
        "chosen_model_note": f"optimistic: best of {len(ranking)} models" if ranking else None,
    }
    sizes = {}
    r2 = cstatistic_to_r2_cs(anticipated_auc, prevalence) if 0 < prevalence < 1 else None
    if n_candidates and r2 is not None:
        try:
            sizes["candidates"] = riley_sample_size(n_candidates, prevalence, r2_cs=r2)
        except InputError as err:
            sizes["candidates"] = {"note": str(err)}
    record["riley"] = sizes
    headline = chosen.get("nested_choice")
    if headline:
        record.update(
            headline_auc=headline.get("auc"),
            headline_ci_low=headline.get("auc_ci_low"),
            headline_ci_high=headline.get("auc_ci_high"),
            headline_ci_method=headline.get("ci_method"),
            headline_folds=headline.get("folds"),
        )
    p_value, n_perm = None, None
    if permutation is not None and PROCEDURE in set(permutation["model"]):
        row = permutation.set_index("model").loc[PROCEDURE]
        if pd.notna(row["p_value"]):
            p_value, n_perm = float(row["p_value"]), int(row["n_permutations"])
    record.update(
        permutation_p=p_value,
        permutation_n=n_perm,
        permutation_p_min=None if not n_perm else 1.0 / (n_perm + 1),
    )
    record["alpha"] = alpha
    record["status"], record["verdict"] = verdict(headline, p_value, n_perm, alpha)
    record["evidence"] = record["status"] == EVIDENCE
    if sizes.get("candidates", {}).get("n_required") and n < sizes["candidates"]["n_required"]:
        record["sample_size_note"] = (
            f"{n} training patients, fewer than the {sizes['candidates']['n_required']} that "
            f"Riley et al.'s criteria ask for {n_candidates} candidate features at an "
            f"anticipated AUC of {anticipated_auc}"
        )
    return record


def evidence_rule(inputs, params, out) -> str:
    """Rule ``evidence``: :func:`evidence_summary` from the run's files; writes the JSON."""
    from npc_radiomics.base.io import read_table, write_json
    from npc_radiomics.modelling.design import load_rule_design

    design = load_rule_design(inputs, params)
    chosen = json.loads(Path(inputs.chosen).read_text())
    selected = read_table(inputs.selected)
    permutation = read_table(inputs.permutation) if inputs.get("permutation") else None
    record = evidence_summary(
        design.y[design.cohort == "train"],
        design.X.shape[1],
        len(selected) or None,
        chosen,
        permutation,
        float(params.anticipated_auc),
        float(params.alpha),
    )
    write_json(record, out[0])
    return record["verdict"]
