"""Optuna studies: hyper-parameter tuning of one model on fold-cached selections
(pipeline step 12; the caches: :mod:`npc_radiomics.modelling.folds`; the claims of
parallel jobs: :mod:`npc_radiomics.modelling.claims`).

Determinism with parallel workers
---------------------------------
Plain Optuna with several workers on one storage is not reproducible: what TPE
proposes depends on which trials happened to finish first. Here each trial has a
*slot* number 0..n_trials-1 and slots are grouped in batches of ``batch_size``. The
parameters of slot s are drawn by a TPE sampler seeded with (seed, model, context, s)
and conditioned on exactly the trials of the earlier batches, replayed in slot order
into a private in-memory study. A slot's result therefore depends only on the seed,
the data and ``batch_size``, never on the number of workers, their speed or
``--cores``. Workers (Snakemake jobs) share the finished slots through an Optuna
``JournalStorage`` file and claim slots with claim files held under an OS lock, so any
number of jobs (including one job at a time, as with ``--cores 1``) completes the same
study. A worker waits only for slots that another live worker is computing: the OS
releases a killed worker's lock, and its claim is taken over at once (where the file
system has no ``flock``, once its heartbeat is older than ``stale_after_s``). ``batch_size`` 1 is
sequential TPE (best sample efficiency); a batch as large as the number of parallel
jobs keeps them all busy. ``timeout_s`` stops claiming new slots: reproducible only if
the timeout is not reached (a warning is logged when it is).

Pruning (``tuning.pruning``) follows the same rule: after each inner fold from the
warm-up on, a trial reports its running mean AUC to its private study, whose pruner
compares it with the completed trials of the earlier batches only. A pruned slot is
stored as PRUNED with its fold AUCs and running means (the reference of later slots).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from npc_radiomics.base.config import derived_seed
from npc_radiomics.base.errors import InputError, ModelFitError
from npc_radiomics.modelling.claims import FileClaims, NoClaims
from npc_radiomics.modelling.folds import (
    FoldCache,
    SelectionCache,
    check_cache,
    check_fold_sizes,
    fit_fold_selections,
    hash_data,
    inner_folds,
)
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.zoo import (
    ParamSpec,
    build_model,
    fit_for_prediction,
    suggest_params,
)

log = logging.getLogger(__name__)


class TrialPruned(Exception):
    """A trial stopped after some inner folds by the pruner; carries those folds' AUCs."""

    def __init__(self, fold_aucs: list[float]):
        super().__init__(f"pruned after {len(fold_aucs)} inner fold(s)")
        self.fold_aucs = fold_aucs


def cv_auc(
    model: str,
    params: dict,
    cache: list[FoldCache],
    seed: int,
    n_jobs: int = 1,
    should_prune=None,
):
    """Mean validation AUC over the cached folds, and the per-fold AUCs.

    should_prune: called after each fold with (folds done, running mean AUC); True stops
    the trial with :class:`TrialPruned` (see :func:`run_slots`).
    """
    aucs = []
    for fold in cache:
        clf = fit_for_prediction(
            build_model(model, params, seed, n_jobs), fold.X_train, fold.y_train
        )
        aucs.append(float(roc_auc_score(fold.y_val, clf.predict_proba(fold.X_val)[:, 1])))
        if should_prune is not None and len(aucs) < len(cache):
            if should_prune(len(aucs), float(np.mean(aucs))):
                raise TrialPruned(aucs)
    return float(np.mean(aucs)), aucs


def running_means(fold_aucs: list[float], n_warmup_folds: int) -> dict[int, float]:
    """{folds done: mean AUC of those folds} from ``n_warmup_folds`` folds on: the
    intermediate values a trial reports to the pruner (steps before warm-up are not
    reported, so the pruner compares only means of at least that many folds)."""
    return {
        k: float(np.mean(fold_aucs[:k])) for k in range(max(1, n_warmup_folds), len(fold_aucs) + 1)
    }


def make_pruner(settings: TuningSettings):
    """The Optuna pruner of ``settings`` (a PercentilePruner), or None when pruning is off.

    A trial is stopped after inner fold k (k >= ``pruning_warmup_folds``) when its best
    running mean AUC so far is below the (100 - ``pruning_percentile``)-th percentile of
    the running means at fold k of the completed trials of earlier batches, once at least
    ``pruning_startup_trials`` such trials exist: it goes on only while it is among the top
    ``pruning_percentile`` per cent. 50 is median pruning; a lower percentile prunes more
    (Optuna's PercentilePruner for a maximised objective).
    """
    if not settings.pruning:
        return None
    optuna = _quiet_optuna()
    return optuna.pruners.PercentilePruner(
        percentile=settings.pruning_percentile,
        n_startup_trials=settings.pruning_startup_trials,
        n_warmup_steps=settings.pruning_warmup_folds,
        interval_steps=1,
    )


def model_pipeline(
    model: str, params: dict, selection: Pipeline, seed: int, n_jobs: int = 1
) -> Pipeline:
    """One unfitted Pipeline: the selection steps, then the classifier."""
    steps = list(clone(selection).steps)
    return Pipeline(steps + [("model", build_model(model, params, seed, n_jobs))])


def model_seed(seed: int, model: str) -> int:
    """The classifier's random seed: one per model, the same for every trial and fold."""
    return derived_seed(seed, "model", model)


# ---------------------------------------------------------------------------------
# The tuning loop
# ---------------------------------------------------------------------------------
def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study_fingerprint(
    model: str,
    X: pd.DataFrame,
    y,
    folds,
    space: dict,
    settings: TuningSettings,
    seed: int,
    context: str,
) -> str:
    """A short hash of everything a slot's result depends on (names the stored study)."""
    h = hashlib.sha256()
    hash_data(h, X, y, folds)
    h.update(repr(sorted((k, repr(v)) for k, v in space.items())).encode())
    fixed = {k: v for k, v in settings.__dict__.items() if k not in ("n_trials", "timeout_s")}
    h.update(json.dumps([model, seed, context, fixed], sort_keys=True).encode())
    h.update(_code_version().encode())
    return h.hexdigest()[:16]


def study_code_modules(scripts_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """(module, SHA-256) of this module and every package module it imports, transitively
    (read from the source by :class:`~npc_radiomics.glue.codehash.CodeIndex`, lazy imports
    included): the code that shapes a trial's result. ``scripts_dir``: the folder holding
    the package (default: this installation's)."""
    from npc_radiomics.glue.codehash import CodeIndex

    if scripts_dir is None:
        scripts_dir = Path(__file__).resolve().parents[2]
    index = CodeIndex(scripts_dir)
    return [(name, index.digest(name)) for name in sorted(index.closure(__name__))]


def _code_version() -> str:
    """The modules that shape a trial's result and the libraries' versions: a journal
    written by other code or library versions is never reused."""
    import lightgbm
    import optuna
    import sklearn
    import xgboost

    h = hashlib.sha256()
    for name, digest in study_code_modules():
        h.update(f"{name}:{digest};".encode())
    for lib in (np, pd, sklearn, optuna, xgboost, lightgbm):
        h.update(f"{lib.__name__}={lib.__version__};".encode())
    return h.hexdigest()


def open_study(storage_path: str | Path | None, study_name: str):
    """The shared record of finished slots: a journal-file study, or in memory."""
    optuna = _quiet_optuna()
    storage = None
    if storage_path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(storage_path).parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(storage_path)))
    return optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True
    )


def finished_slots(study) -> dict[int, object]:
    """{slot: FrozenTrial} of the finished (complete, pruned or failed) slots; first record
    wins."""
    from optuna.trial import TrialState

    done: dict[int, object] = {}
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=states):
        slot = t.user_attrs.get("slot")
        if slot is not None and slot not in done:
            done[int(slot)] = t
    return done


#: Exceptions of a trial that mean "this model cannot fit this combination or fold"
#: (convergence, a degenerate fold, a singular matrix): the trial is recorded as failed
#: and tuning goes on. Anything else (TypeError, NameError, AttributeError, KeyError,
#: ImportError, ...) is a programming error and stops the run with its traceback.
NUMERICAL_FAILURES = (ModelFitError, ValueError, ArithmeticError, np.linalg.LinAlgError)


def failure_summary(done: dict) -> dict:
    """Failed and pruned trials of a study:
    ``{"n_failed": k, "failure_reasons": {reason: count}, "n_pruned": m}``."""
    reasons: dict[str, int] = {}
    n_pruned = 0
    for t in done.values():
        if t.state.name == "PRUNED":
            n_pruned += 1
        elif t.value is None:
            reason = str(t.user_attrs.get("error", "unknown"))
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "n_failed": sum(reasons.values()),
        "failure_reasons": dict(sorted(reasons.items())),
        "n_pruned": n_pruned,
    }


def _reporter(trial, settings: TuningSettings):
    """cv_auc's should_prune: report the running mean to the slot's private trial and
    ask its pruner (None when pruning is off)."""
    if not settings.pruning:
        return None

    def should_prune(folds_done: int, running_mean: float) -> bool:
        if folds_done < settings.pruning_warmup_folds:
            return False
        trial.report(running_mean, folds_done)
        return trial.should_prune()

    return should_prune


def run_slots(
    model: str,
    space: dict[str, ParamSpec],
    cache: list[FoldCache],
    settings: TuningSettings,
    seed: int,
    context: str,
    study,
    claims=None,
    worker: str = "0",
    n_jobs: int = 1,
    poll_s: float = 2.0,
) -> int:
    """Evaluate unfinished slots until all ``settings.n_trials`` are done; returns how many
    this worker evaluated. See the module docstring for the determinism scheme.

    Pruning (``settings.pruning``) is decided in the slot's private study, which holds
    exactly the trials of the earlier batches: whether a slot is pruned depends on the
    same trials as its parameters, never on which trials of its own batch finished first.
    """
    optuna = _quiet_optuna()
    claims = claims or NoClaims()
    n, batch = settings.n_trials, max(1, settings.batch_size)
    deadline = time.monotonic() + settings.timeout_s if settings.timeout_s else None
    mseed = model_seed(seed, model)
    pruner = make_pruner(settings)
    evaluated = 0
    while True:
        done = finished_slots(study)
        pending = [s for s in range(n) if s not in done]
        if not pending:
            return evaluated
        if deadline is not None and time.monotonic() > deadline:
            log.warning(
                "timeout_s reached with %d/%d slots finished: results are not reproducible",
                n - len(pending),
                n,
            )
            return evaluated
        slot = None
        for s in pending:
            if claims.active(s):
                continue
            if any(d not in done for d in range(s // batch * batch)):
                break  # its earlier batches are still being computed by other workers
            slot = s
            break
        if slot is None or not claims.claim(slot):
            time.sleep(poll_s)
            continue
        if slot in finished_slots(study):  # finished between our read and our claim
            claims.release(slot)
            continue
        history = [done[d] for d in range(slot // batch * batch)]
        sampler = optuna.samplers.TPESampler(seed=derived_seed(seed, "tpe", model, context, slot))
        private = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        private.add_trials(history)
        trial = private.ask()
        params = suggest_params(trial, space)
        t0 = time.perf_counter()
        attrs = {"slot": slot, "worker": worker, "params": params}
        intermediate: dict[int, float] = {}
        try:
            with claims.heartbeat(slot):
                value, fold_aucs = cv_auc(
                    model, params, cache, mseed, n_jobs, _reporter(trial, settings)
                )
            attrs["fold_aucs"] = fold_aucs
            state = optuna.trial.TrialState.COMPLETE
        except TrialPruned as pruned:
            value, state = None, optuna.trial.TrialState.PRUNED
            attrs["fold_aucs"] = fold_aucs = pruned.fold_aucs
        except InputError:
            claims.release(slot)
            raise
        except NUMERICAL_FAILURES as err:  # the model cannot fit this combination / fold
            value, state = None, optuna.trial.TrialState.FAIL
            attrs["error"] = f"{type(err).__name__}: {err}"
        except BaseException:  # a programming error: stop the run, with the traceback
            claims.release(slot)
            log.error("%s %s slot %d: not a numerical failure, stopping", model, context, slot)
            raise
        attrs["seconds"] = round(time.perf_counter() - t0, 3)
        if state != optuna.trial.TrialState.FAIL and pruner is not None:
            # Replayed into later slots' private studies: the pruner's reference.
            intermediate = running_means(fold_aucs, settings.pruning_warmup_folds)
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=attrs,
                intermediate_values=intermediate,
            )
        )
        claims.release(slot)
        evaluated += 1
        best = best_slot(finished_slots(study))
        log.info(
            "%s %s slot %d (%d/%d finished): AUC %s [best %.4f at slot %s] %.1f s %s",
            model,
            context,
            slot,
            len(done) + 1,
            n,
            f"{value:.4f}"
            if value is not None
            else f"pruned after {len(fold_aucs)} folds"
            if state == optuna.trial.TrialState.PRUNED
            else f"failed ({attrs['error']})",
            best["value"] if best else float("nan"),
            best["slot"] if best else "-",
            attrs["seconds"],
            json.dumps(params, sort_keys=True),
        )


def best_slot(done: dict) -> dict | None:
    """The best finished slot: highest mean inner-CV AUC, ties to the lowest slot."""
    complete = [(s, t) for s, t in sorted(done.items()) if t.value is not None]
    if not complete:
        return None
    slot, trial = max(complete, key=lambda st: (st[1].value, -st[0]))
    return {"slot": slot, "value": float(trial.value), "params": trial.user_attrs["params"]}


def trials_table(done: dict, model: str) -> pd.DataFrame:
    """One row per slot: slot, state (COMPLETE, PRUNED or FAIL), auc (mean over the inner
    folds; empty when pruned or failed), folds (inner folds evaluated), fold_aucs,
    params (JSON), error."""
    rows = []
    columns = ["model", "slot", "state", "auc", "folds", "fold_aucs", "params", "error"]
    if not done:
        return pd.DataFrame(columns=columns)
    for slot, t in sorted(done.items()):
        rows.append(
            {
                "model": model,
                "slot": slot,
                "state": t.state.name,
                "auc": t.value,
                "folds": len(t.user_attrs.get("fold_aucs") or []),
                "fold_aucs": json.dumps(t.user_attrs.get("fold_aucs")),
                "params": json.dumps(t.user_attrs["params"], sort_keys=True),
                "error": t.user_attrs.get("error", ""),
            }
        )
    return pd.DataFrame(rows)


def tune(
    model: str,
    space: dict[str, ParamSpec],
    X: pd.DataFrame,
    y,
    settings: TuningSettings,
    seed: int,
    context: str = "full",
    selection: Pipeline | None = None,
    storage_path: str | Path | None = None,
    worker: str = "0",
    n_jobs: int = 1,
    stale_after_s: float = 900.0,
    heartbeat_s: float = 30.0,
    poll_s: float = 2.0,
    cache: SelectionCache | None = None,
) -> tuple[object, str]:
    """Tune one model on (X, y) with inner CV; returns (study, study_name).

    context: ``full`` (whole training set) or ``outer<k>`` (nested CV); it seeds the
    inner folds and names the study. storage_path: a journal file shared by the
    worker jobs of this model (None: in memory, one worker). cache: the context's
    selection fitted once for every model (:func:`fit_context_selection`), used instead
    of fitting it here.
    """
    selection = selection if selection is not None else settings.selection(seed)
    check_fold_sizes(y, settings, nested=False)
    folds = inner_folds(y, settings, seed, context)
    cache = check_cache(cache, X, y, folds, settings, seed, context)
    name = f"{model}-{context}-" + study_fingerprint(
        model, X, y, folds, space, settings, seed, context
    )
    study = open_study(storage_path, name)
    pending = settings.n_trials - len([s for s in finished_slots(study) if s < settings.n_trials])
    if pending <= 0:
        log.info("%s: all %d slots already finished in %s", name, settings.n_trials, storage_path)
        return study, name
    log.info(
        "%s: %d patients x %d features, %d inner folds, %d slots to go (batch %d, worker %s)",
        name,
        len(X),
        X.shape[1],
        len(folds),
        pending,
        settings.batch_size,
        worker,
    )
    if cache is not None:
        log.info("selection of %s: from the shared cache (%s)", context, cache.key)
        cache = cache.folds
    else:
        cache = fit_fold_selections(X, y, folds, selection)
    claims = None
    if storage_path is not None:
        claims = FileClaims(Path(storage_path).parent / "claims" / name, stale_after_s, heartbeat_s)
    run_slots(model, space, cache, settings, seed, context, study, claims, worker, n_jobs, poll_s)
    return study, name


def best_params(study, model: str, n_trials: int) -> dict:
    """Best parameters of a finished study as a JSON-ready dict (ModelFitError if none)."""
    done = {s: t for s, t in finished_slots(study).items() if s < n_trials}
    best = best_slot(done)
    if best is None:
        errors = {t.user_attrs.get("error") for t in done.values()}
        raise ModelFitError(
            f"{model}: every tuning trial failed, e.g. {sorted(map(str, errors))[:1]}"
        )
    return {
        "model": model,
        "params": best["params"],
        "inner_cv_auc": best["value"],
        "slot": best["slot"],
        "n_trials_finished": len(done),
        "n_trials": n_trials,
        **failure_summary(done),
    }
