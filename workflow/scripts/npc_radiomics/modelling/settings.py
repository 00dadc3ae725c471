"""Tuning and cross-validation settings, light to import.

The workflow's start-up (``common.smk``) builds :class:`TuningSettings` in every Snakemake
process, including each cluster job's own, so this module imports nothing heavy:
scikit-learn is imported only when a selection pipeline is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from npc_radiomics.base.config import derived_seed

#: The repository's defaults (every key of the config), read by :meth:`TuningSettings.defaults`.
DEFAULT_CONFIG = Path(__file__).resolve().parents[4] / "config" / "config.yaml"

#: Models whose estimator runs on several threads (``n_jobs``); the others use one.
THREADED_MODELS = ("random_forest", "extra_trees", "xgboost", "lightgbm", "knn")


def model_threads(cfg: dict, model: str) -> int:
    """Threads of a tuning / nested-CV / final-fit job of ``model``: config
    ``tuning.threads_per_job`` for a threaded model, else 1. Results do not depend on it
    (tests/test_zoo.py); it is outside TuningSettings so a study resumes across it."""
    if model not in THREADED_MODELS:
        return 1
    return int(cfg["tuning"]["threads_per_job"])


@dataclass(frozen=True)
class TuningSettings:
    """Tuning and CV settings (config keys ``selection`` and ``tuning``)."""

    n_trials: int
    inner_folds: int
    outer_folds: int
    batch_size: int
    timeout_s: float | None
    # Pruning of hopeless trials after the first inner folds (tuning.pruning; run_slots).
    pruning: bool
    pruning_warmup_folds: int
    pruning_startup_trials: int
    pruning_percentile: float
    mrmr_k: int
    lasso_folds: int
    n_lambdas: int
    lasso_rule: str
    max_non_finite_share: float
    combat: bool  # ComBat across centres first in the pipeline (modelling.harmonize)
    unseen_centre: str

    @classmethod
    def from_config(cls, cfg: dict) -> TuningSettings:
        """From a validated config holding every key (``base.config.with_defaults``): the
        defaults are stated once, in the repository's config/config.yaml."""
        tun, sel, harm = cfg["tuning"], cfg["selection"], cfg["harmonization"]
        prune = tun["pruning"]
        return cls(
            n_trials=int(tun["n_trials"]),
            inner_folds=int(tun["inner_folds"]),
            outer_folds=int(tun["outer_folds"]),
            batch_size=int(tun["batch_size"]),
            timeout_s=tun["timeout_s"],
            pruning=bool(prune["enabled"]),
            pruning_warmup_folds=int(prune["n_warmup_folds"]),
            pruning_startup_trials=int(prune["n_startup_trials"]),
            pruning_percentile=float(prune["percentile"]),
            mrmr_k=int(sel["mrmr_k"]),
            lasso_folds=int(sel["lasso"]["cv_folds"]),
            n_lambdas=int(sel["lasso"]["n_lambdas"]),
            lasso_rule=sel["lasso"]["rule"],
            max_non_finite_share=float(sel["max_non_finite_share"]),
            combat=bool(harm["combat"]),
            unseen_centre=str(harm["unseen_centre"]),
        )

    @classmethod
    def defaults(cls, **overrides) -> TuningSettings:
        """The repository's default settings (config/config.yaml), with ``overrides``."""
        from dataclasses import replace

        from npc_radiomics.base.config import load_yaml

        return replace(cls.from_config(load_yaml(DEFAULT_CONFIG)), **overrides)

    def selection(self, seed: int):
        """The unfitted selection pipeline (its LASSO CV seeded from the master seed),
        preceded by ComBat across centres when ``combat`` is on (so it is refitted
        wherever the selection is: every CV fold, the final fit)."""
        from npc_radiomics.modelling.selection import selection_pipeline

        selection = selection_pipeline(
            self.mrmr_k,
            self.lasso_folds,
            self.n_lambdas,
            self.lasso_rule,
            derived_seed(seed, "lasso"),
            self.max_non_finite_share,
        )
        if not self.combat:
            return selection
        from sklearn.pipeline import Pipeline

        from npc_radiomics.modelling.harmonize import harmonization_step

        return Pipeline([harmonization_step(self.unseen_centre), *selection.steps])
