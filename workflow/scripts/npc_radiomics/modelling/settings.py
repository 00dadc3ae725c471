"""Tuning and cross-validation settings, light to import.

The workflow's start-up (``common.smk``) builds :class:`TuningSettings` in every Snakemake
process, including each cluster job's own, so this module imports nothing heavy:
scikit-learn is imported only when a selection pipeline is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from npc_radiomics.base.config import derived_seed

#: Models whose estimator runs on several threads (``n_jobs``); the others use one.
THREADED_MODELS = ("random_forest", "extra_trees", "xgboost", "lightgbm", "knn")


def model_threads(cfg: dict, model: str) -> int:
    """Threads of a tuning / nested-CV / final-fit job of ``model``: config
    ``tuning.threads_per_job`` for a threaded model, else 1. Results do not depend on it
    (tests/test_zoo.py); it is outside TuningSettings so a study resumes across it."""
    if model not in THREADED_MODELS:
        return 1
    return int(cfg["tuning"].get("threads_per_job") or 1)


@dataclass(frozen=True)
class TuningSettings:
    """Tuning and CV settings (config keys ``selection`` and ``tuning``)."""

    n_trials: int = 100
    inner_folds: int = 10
    outer_folds: int = 5
    batch_size: int = 1
    timeout_s: float | None = None
    # Pruning of hopeless trials after the first inner folds (tuning.pruning; run_slots).
    pruning: bool = False
    pruning_warmup_folds: int = 2
    pruning_startup_trials: int = 5
    pruning_percentile: float = 33.0
    mrmr_k: int = 100
    lasso_folds: int = 10
    n_lambdas: int = 50
    lasso_rule: str = "min"
    max_non_finite_share: float = 0.1
    combat: bool = False  # ComBat across centres first in the pipeline (harmonize.py)
    unseen_centre: str = "own_location_scale"

    @classmethod
    def from_config(cls, cfg: dict) -> TuningSettings:
        tun, sel = cfg["tuning"], cfg["selection"]
        harm = cfg.get("harmonization") or {}
        batch = tun.get("batch_size") or tun.get("n_jobs_per_model") or 1
        prune = tun.get("pruning") or {}
        return cls(
            n_trials=int(tun["n_trials"]),
            inner_folds=int(tun["inner_folds"]),
            outer_folds=int(tun["outer_folds"]),
            batch_size=int(batch),
            timeout_s=tun.get("timeout_s"),
            pruning=bool(prune.get("enabled", False)),
            pruning_warmup_folds=int(prune.get("n_warmup_folds", 2)),
            pruning_startup_trials=int(prune.get("n_startup_trials", 5)),
            pruning_percentile=float(prune.get("percentile", 33.0)),
            mrmr_k=int(sel["mrmr_k"]),
            lasso_folds=int(sel["lasso"]["cv_folds"]),
            n_lambdas=int(sel["lasso"].get("n_lambdas", 50)),
            lasso_rule=sel["lasso"].get("rule", "min"),
            max_non_finite_share=float(sel.get("max_non_finite_share", 0.1)),
            combat=bool(harm.get("combat", False)),
            unseen_centre=str(harm.get("unseen_centre", "own_location_scale")),
        )

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
