"""Is there anything to show? The report's first screen (rule ``evidence``, step 22).

Events per candidate variable, the minimum sample size of Riley et al. (BMJ 2020;368:m441,
Stat Med 2019;38:1276) for a binary outcome as the R package ``pmsampsize`` computes it,
and a plain verdict: "no evidence that the images predict the outcome in this cohort"
when the chosen model's nested-CV AUC has a 95% interval that includes 0.5 or its
permutation p-value (``permutation.py``) is not small.

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


def evidence_summary(
    labels: pd.Series,
    n_candidates: int,
    n_selected: int | None,
    chosen: str | None,
    nested: pd.DataFrame,
    permutation: pd.DataFrame | None,
    anticipated_auc: float,
    alpha: float = 0.05,
) -> dict:
    """The first-screen record: training events, events per candidate variable, Riley's
    minimum n for the candidate and the selected features, the chosen model's nested-CV
    AUC with a DeLong 95% CI on its pooled out-of-fold predictions, the permutation
    p-value and the verdict."""
    from npc_radiomics.metrics import delong_ci

    y = labels.astype(int)
    n, events = len(y), int(y.sum())
    minority = min(events, n - events)
    prevalence = events / n if n else float("nan")
    record: dict = {
        "n_train": n,
        "events": events,
        "non_events": n - events,
        "n_candidate_features": int(n_candidates),
        "events_per_candidate": minority / n_candidates if n_candidates else None,
        "n_selected_features": n_selected,
        "events_per_selected": minority / n_selected if n_selected else None,
        "anticipated_auc": anticipated_auc,
        "chosen_model": chosen,
    }
    sizes = {}
    r2 = cstatistic_to_r2_cs(anticipated_auc, prevalence) if 0 < prevalence < 1 else None
    for key, p in (("candidates", n_candidates), ("selected", n_selected)):
        if p and r2 is not None:
            try:
                sizes[key] = riley_sample_size(p, prevalence, r2_cs=r2)
            except InputError as err:
                sizes[key] = {"note": str(err)}
    record["riley"] = sizes
    reasons = []
    if chosen:
        g = nested[(nested["model"] == chosen) & nested["probability"].notna()]
        res = delong_ci(g["label"].to_numpy(), g["probability"].to_numpy())
        record.update(
            nested_auc_pooled=res.auc, nested_auc_ci_low=res.ci_low, nested_auc_ci_high=res.ci_high
        )
        if not res.ci_low > 0.5:  # includes 0.5, lies below it, or is undefined
            where = "lies below" if res.ci_high < 0.5 else "includes"
            reasons.append(
                f"the nested-CV AUC's 95% CI ({res.ci_low:.2f}-{res.ci_high:.2f}) {where} 0.5"
            )
    else:
        reasons.append("no model could be chosen")
    p_value, too_few = None, None
    if permutation is not None and chosen and chosen in set(permutation["model"]):
        row = permutation.set_index("model").loc[chosen]
        p_value = float(row["p_value"])
        n_perm = int(row["n_permutations"])
        record.update(permutation_p=p_value, permutation_n=n_perm)
        smallest = 1.0 / (n_perm + 1)
        if not p_value < alpha and p_value <= smallest and smallest >= alpha:
            # every permuted run scored below the real one, yet n permutations cannot give
            # p < alpha: too few to decide, not a negative result
            too_few = (
                f"{n_perm} permutations cannot give a permutation p-value below {alpha} "
                f"(the smallest possible is 1/{n_perm + 1} = {smallest:.3f}; every permuted "
                f"run scored below the real one): set permutation.n to at least "
                f"{math.ceil(1 / alpha) - 1}"
            )
        elif not p_value < alpha:
            reasons.append(
                f"the permutation p-value ({p_value:.3f}, {n_perm} permutations) is not "
                f"below {alpha}"
            )
    record["alpha"] = alpha
    record["evidence"] = not reasons and too_few is None
    if reasons:
        record["verdict"] = f"{NO_EVIDENCE}: " + "; ".join(reasons)
    elif too_few is not None:
        record["verdict"] = (
            f"inconclusive: the nested-CV AUC's 95% CI lies above 0.5, but {too_few}"
        )
    else:
        record["verdict"] = "the nested-CV AUC's 95% CI lies above 0.5" + (
            f" and the permutation p-value is {p_value:.3f}" if p_value is not None else ""
        )
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
    chosen = json.loads(Path(inputs.chosen).read_text())["model"]
    selected = read_table(inputs.selected)
    permutation = read_table(inputs.permutation) if inputs.get("permutation") else None
    record = evidence_summary(
        design.y[design.cohort == "train"],
        design.X.shape[1],
        len(selected) or None,
        chosen,
        read_table(inputs.nested, dtype={"patient_id": str}),
        permutation,
        float(params.anticipated_auc),
        float(params.alpha),
    )
    write_json(record, out[0])
    return record["verdict"]
