"""Hyper-parameter tuning with fold-cached selection, nested CV and the final fit.

Selection (impute, variance filter, scaler, mRMR, LASSO) depends on the fold's rows
only, never on the classifier's hyper-parameters. So it is fitted once per inner fold
(``fit_fold_selections``) and every trial fits just the classifier on the cached,
already-selected matrices: same result as refitting the whole pipeline per trial,
an order of magnitude faster (benchmarks/bench_tuning.py).

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

import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from .config import derived_seed, file_sha256
from .errors import InputError, ModelFitError
from .layout import NESTED_PREDICTION_COLUMNS, PREDICTION_COLUMNS
from .settings import TuningSettings
from .zoo import ParamSpec, build_model, fit_for_prediction, parse_search_spaces, suggest_params

log = logging.getLogger(__name__)


def check_fold_sizes(y, settings: TuningSettings, nested: bool) -> None:
    """InputError unless every CV level has at least one patient per class and fold.

    Levels: outer folds (nested only), inner folds on the (outer-)training rows, and the
    LASSO's CV folds on an inner fold's training rows. Checked before any tuning.
    """
    counts = pd.Series(np.asarray(y)).value_counts()
    if len(counts) < 2:
        raise InputError(f"only one outcome class among the {len(y)} training patients")
    smallest, label = int(counts.min()), counts.idxmin()
    levels = []
    if nested:
        levels.append(("tuning.outer_folds", settings.outer_folds))
    # The LASSO's own CV adapts its fold count to the smallest class (at least 2 folds).
    levels += [
        ("tuning.inner_folds", settings.inner_folds),
        ("selection.lasso.cv_folds", min(2, settings.lasso_folds)),
    ]
    n = smallest
    for key, folds in levels:
        if n < folds:
            raise InputError(
                f"config key {key}: {folds} folds but only {n} patient(s) with label {label} "
                f"at that CV level ({smallest} in the training set); lower it or add patients"
            )
        n -= -(-n // folds)  # patients of that class left in a training part: n - ceil(n/k)


def stratified_folds(y, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified K-fold (train, validation) row indices."""
    y = np.asarray(y)
    skf = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros((len(y), 1)), y))


def outer_folds(y, settings: TuningSettings, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outer folds of nested CV on the training set (the same for every model)."""
    return stratified_folds(y, settings.outer_folds, derived_seed(seed, "outer_folds"))


@dataclass
class FoldCache:
    """One inner fold with its selection fitted once: the classifier's inputs."""

    X_train: np.ndarray  # (n_train, n_selected), already selected and scaled
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    features: list[str]


def fit_fold_selections(X: pd.DataFrame, y, folds, selection: Pipeline) -> list[FoldCache]:
    """Fit a clone of ``selection`` on each fold's training rows; cache the matrices."""
    y = np.asarray(y)
    cache = []
    for i, (tr, va) in enumerate(folds):
        t0 = time.perf_counter()
        sel = clone(selection).fit(X.iloc[tr], y[tr])
        names = list(sel.get_feature_names_out(list(X.columns)))
        cache.append(
            FoldCache(sel.transform(X.iloc[tr]), y[tr], sel.transform(X.iloc[va]), y[va], names)
        )
        log.info(
            "fold %d/%d: selection fitted on %d patients -> %d features (%.1f s)",
            i + 1,
            len(folds),
            len(tr),
            len(names),
            time.perf_counter() - t0,
        )
    return cache


@dataclass
class SelectionCache:
    """The selection of one CV context fitted once, for every model (rule ``cv_selection``).

    ``context`` is ``full`` (the whole training set) or ``outer<k>`` (the training part of
    outer fold k). ``folds`` are the context's inner folds with the selection fitted on
    each fold's training rows (what tuning needs), ``refit`` the selection fitted on all
    the context's rows (what the context's model is fitted behind). ``key`` hashes the
    rows, labels, inner folds, selection settings and seed it was fitted on: a model's job
    uses the cache only if its own inputs give the same key.
    """

    context: str
    key: str
    folds: list[FoldCache]
    refit: Pipeline


def selection_key(X: pd.DataFrame, y, folds, settings: TuningSettings, seed: int) -> str:
    """What a :class:`SelectionCache` depends on: data, folds, selection settings, seed."""
    h = hashlib.sha256()
    _hash_data(h, X, y, folds)
    h.update(json.dumps([seed, settings.__dict__], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def context_rows(X: pd.DataFrame, y: pd.Series, settings: TuningSettings, seed: int, context):
    """The training rows of a CV context: all of them (``full``) or outer fold k's
    training part (``outer<k>``)."""
    if context == "full":
        return X, y
    if not context.startswith("outer") or not context[5:].isdigit():
        raise ValueError(f"unknown CV context {context!r}")
    folds = outer_folds(y, settings, seed)
    fold = int(context[5:])
    if not 0 <= fold < len(folds):
        raise InputError(f"outer fold {fold} does not exist ({len(folds)} outer folds)")
    tr, _ = folds[fold]
    return X.iloc[tr], y.iloc[tr]


def inner_folds(y, settings: TuningSettings, seed: int, context: str):
    """The inner folds of tuning in ``context`` (seeded by the context's name)."""
    return stratified_folds(y, settings.inner_folds, derived_seed(seed, "inner_folds", context))


def fit_context_selection(
    X: pd.DataFrame, y: pd.Series, settings: TuningSettings, seed: int, context: str
) -> SelectionCache:
    """Rule ``cv_selection``: the selection of ``context`` on its inner folds and on all its
    rows (X, y: the whole training set)."""
    X_c, y_c = context_rows(X, y, settings, seed, context)
    folds = inner_folds(y_c, settings, seed, context)
    selection = settings.selection(seed)
    cache = fit_fold_selections(X_c, y_c, folds, selection)
    refit = clone(selection).fit(X_c, np.asarray(y_c))
    return SelectionCache(context, selection_key(X_c, y_c, folds, settings, seed), cache, refit)


def check_cache(cache: SelectionCache | None, X, y, folds, settings, seed, context):
    """``cache`` if it was fitted on exactly these rows, folds and settings, else an error
    (a stale cache would silently tune on other data)."""
    if cache is None:
        return None
    key = selection_key(X, y, folds, settings, seed)
    if cache.context != context or cache.key != key:
        raise RuntimeError(
            f"selection cache of {cache.context} ({cache.key}) does not match "
            f"{context} ({key}): rerun rule cv_selection"
        )
    return cache


def pipeline_on_selection(
    model: str, params: dict, fitted: Pipeline, X, y, seed: int, n_jobs: int = 1
) -> Pipeline:
    """The fitted selection ``fitted`` (a copy) followed by the classifier fitted on its
    output: the same pipeline as fitting :func:`model_pipeline` on (X, y), without
    refitting the selection (every step's fit_transform is its fit, then transform)."""
    import copy

    clf = fit_for_prediction(build_model(model, params, seed, n_jobs), fitted.transform(X), y)
    return Pipeline([*copy.deepcopy(fitted).steps, ("model", clf)])


def save_selection_cache(cache: SelectionCache, path) -> None:
    import joblib

    joblib.dump(cache, path)


def load_selection_cache(path) -> SelectionCache | None:
    """The cache at ``path`` (None for no path)."""
    if not path:
        return None
    import joblib

    return joblib.load(path)


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
# Slot claims shared between worker jobs
# ---------------------------------------------------------------------------------
class _NoClaims:
    """Single worker: nothing to coordinate."""

    def active(self, slot: int) -> bool:
        return False

    def claim(self, slot: int) -> bool:
        return True

    def release(self, slot: int) -> None:
        pass

    def heartbeat(self, slot: int):
        return _Heartbeat(None, 0)


class _Heartbeat:
    """Touches a claim file periodically while a slot is being computed."""

    def __init__(self, path: Path | None, every_s: float):
        self.path, self.every_s = path, every_s
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.path is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class _FileClaims:
    """Claim files, each held under an OS lock (``flock``) by the worker computing the slot.

    The OS drops a process's locks when it exits, however it dies (kill -9, a cancelled
    SLURM job, an out-of-memory kill), so a claim whose lock can be taken belongs to a
    dead worker and is taken over at once, with no waiting. A claim appears already
    locked: it is written under a private name, locked, then hard-linked into place
    (atomic; fails if the slot is claimed). On a file system without ``flock`` (some NFS
    set-ups) claims fall back to their heartbeat: stale after ``stale_after_s``.
    """

    def __init__(self, folder: Path, stale_after_s: float, heartbeat_s: float):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self._held: dict[int, int] = {}  # slot -> fd holding the lock of our claim

    def _path(self, slot: int) -> Path:
        return self.folder / f"slot{slot:05d}.claim"

    def _aged_out(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime >= self.stale_after_s
        except FileNotFoundError:
            return True

    def active(self, slot: int) -> bool:
        """True while a live worker holds the slot's claim."""
        if slot in self._held:
            return True
        path = self._path(slot)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False  # nobody holds it: the owner is gone
        except BlockingIOError:
            return True
        except OSError:  # no flock here: trust the heartbeat
            return not self._aged_out(path)
        finally:
            os.close(fd)

    def _take_over(self, path: Path) -> bool:
        """Remove the claim at ``path`` if its owner is dead; False if it is alive."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                if not self._aged_out(path):
                    return False
            owner = os.read(fd, 200).decode(errors="replace").strip()
            try:  # still the same claim file (not a new one made since we opened it)?
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    return False
                os.unlink(path)
            except FileNotFoundError:
                return True
            log.warning("%s: owner %s is gone, claim taken over", path.name, owner or "?")
            return True
        finally:
            os.close(fd)

    def claim(self, slot: int) -> bool:
        path = self._path(slot)
        if path.exists() and not self._take_over(path):
            return False
        private = self.folder / f".slot{slot:05d}.{uuid.uuid4().hex}"
        fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # no flock on this file system: the heartbeat covers it
                pass
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            os.link(private, path)
        except FileExistsError:
            os.close(fd)
            return False
        finally:
            os.unlink(private)
        self._held[slot] = fd
        return True

    def release(self, slot: int) -> None:
        # Unlink before unlocking: a visible claim is always locked while its owner lives.
        try:
            os.unlink(self._path(slot))
        except FileNotFoundError:
            pass
        fd = self._held.pop(slot, None)
        if fd is not None:
            os.close(fd)

    def heartbeat(self, slot: int):
        return _Heartbeat(self._path(slot), self.heartbeat_s)


# ---------------------------------------------------------------------------------
# The tuning loop
# ---------------------------------------------------------------------------------
def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _hash_data(h, X: pd.DataFrame, y, folds) -> None:
    """Feed the design matrix, labels and folds into the hash ``h``."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    h.update(np.ascontiguousarray(X[numeric].to_numpy(dtype=float)).tobytes())
    if len(numeric) < X.shape[1]:  # ComBat's centre column (text)
        h.update(json.dumps(X.drop(columns=numeric).astype(str).to_numpy().tolist()).encode())
    h.update(json.dumps(list(map(str, X.columns))).encode())
    h.update(json.dumps(list(map(str, X.index))).encode())
    h.update(np.asarray(y, dtype=np.int64).tobytes())
    for tr, va in folds:
        h.update(np.asarray(tr, dtype=np.int64).tobytes() + b"|" + np.asarray(va).tobytes())


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
    _hash_data(h, X, y, folds)
    h.update(repr(sorted((k, repr(v)) for k, v in space.items())).encode())
    fixed = {k: v for k, v in settings.__dict__.items() if k not in ("n_trials", "timeout_s")}
    h.update(json.dumps([model, seed, context, fixed], sort_keys=True).encode())
    h.update(_code_version().encode())
    return h.hexdigest()[:16]


def _code_version() -> str:
    """Source of the modules that shape a trial's result, and the libraries' versions:
    a journal written by other code or library versions is never reused."""
    import lightgbm
    import optuna
    import sklearn
    import xgboost

    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for module in ("zoo.py", "selection.py", "tuning.py", "harmonize.py"):
        h.update((here / module).read_bytes())
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
    claims = claims or _NoClaims()
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
        claims = _FileClaims(
            Path(storage_path).parent / "claims" / name, stale_after_s, heartbeat_s
        )
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


# ---------------------------------------------------------------------------------
# Nested CV and the final model
# ---------------------------------------------------------------------------------
def nested_cv_fold(
    model: str,
    space: dict[str, ParamSpec],
    X: pd.DataFrame,
    y: pd.Series,
    fold: int,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One outer fold: selection + tuning on its training part, predictions on the rest.

    X, y: the training set only (indexed by patient_id). Returns the out-of-fold
    predictions (patient_id, model, outer_fold, probability, label) and the fold's best
    parameters. cache: the fold's selection fitted once for every model (context
    ``outer<fold>``).
    """
    selection = selection if selection is not None else settings.selection(seed)
    check_fold_sizes(y, settings, nested=True)
    folds = outer_folds(y, settings, seed)
    if not 0 <= fold < len(folds):
        raise InputError(f"outer fold {fold} does not exist ({len(folds)} outer folds)")
    tr, va = folds[fold]
    X_tr, y_tr = X.iloc[tr], y.iloc[tr]
    context = f"outer{fold}"
    study, _ = tune(
        model, space, X_tr, y_tr, settings, seed, context, selection, n_jobs=n_jobs, cache=cache
    )
    best = best_params(study, model, settings.n_trials)
    mseed = model_seed(seed, model)
    if cache is not None:
        pipe = pipeline_on_selection(
            model, best["params"], cache.refit, X_tr, y_tr.to_numpy(), mseed, n_jobs
        )
    else:
        pipe = model_pipeline(model, best["params"], selection, mseed, n_jobs)
        fit_for_prediction(pipe, X_tr, y_tr.to_numpy())
    prob = pipe.predict_proba(X.iloc[va])[:, 1]
    pred = pd.DataFrame(
        {
            "patient_id": X.index[va],
            "model": model,
            "outer_fold": fold,
            "probability": prob,
            "label": y.iloc[va].to_numpy(),
        }
    ).sort_values("patient_id", kind="mergesort")
    best["outer_fold"] = fold
    best["selected_features"] = list(pipe[:-1].get_feature_names_out(list(X.columns)))
    best["outer_auc"] = (
        float(roc_auc_score(pred["label"], pred["probability"]))
        if pred["label"].nunique() == 2
        else None
    )
    return pred.reset_index(drop=True), best


def fit_final(
    model: str,
    params: dict,
    design,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[Pipeline, pd.DataFrame]:
    """Fit selection + classifier on the whole training set; predict every cohort.

    Returns the fitted pipeline and a tidy table (patient_id, cohort, model,
    probability, label), cohorts in the order train, test, external centres. cache: the
    ``full`` context's selection fitted once for every model.
    """
    selection = selection if selection is not None else settings.selection(seed)
    X, y = design.train()
    mseed = model_seed(seed, model)
    if cache is not None:
        check_cache(cache, X, y, inner_folds(y, settings, seed, "full"), settings, seed, "full")
        pipe = pipeline_on_selection(model, params, cache.refit, X, y.to_numpy(), mseed, n_jobs)
    else:
        pipe = model_pipeline(model, params, selection, mseed, n_jobs)
        fit_for_prediction(pipe, X, y.to_numpy())
    rows = []
    for cohort in design.cohorts():
        Xc, yc = design.subset(cohort)
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": Xc.index,
                    "cohort": cohort,
                    "model": model,
                    "probability": pipe.predict_proba(Xc)[:, 1],
                    "label": yc.to_numpy(),
                }
            )
        )
    return pipe, pd.concat(rows, ignore_index=True)


#: thresholds.tsv ``source`` of a threshold from :func:`final_cv_threshold`.
FINAL_CV_SOURCE = (
    "Youden J on {k}-fold cross-validated predictions of the final configuration "
    "(tuned parameters, selection refitted in each fold; training set)"
)


def final_cv_threshold(
    model: str,
    params: dict,
    X: pd.DataFrame,
    y: pd.Series,
    settings: TuningSettings,
    seed: int,
    selection: Pipeline | None = None,
    n_jobs: int = 1,
    caches: dict[str, SelectionCache] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """The decision threshold on the final model's own probability scale.

    The final configuration (``params`` and the selection, refitted on each fold's
    training rows) is cross-validated on the training set over the outer folds of nested
    CV; Youden's J on the pooled out-of-fold probabilities gives the cut-off. Only the
    training patients ``X, y`` are used. Returns (threshold record, out-of-fold
    predictions patient_id, model, fold, probability, label). caches: context name ->
    the selection fitted once for every model; fold k's is ``outer<k>``'s refit (the
    same rows).
    """
    from .metrics import youden_threshold

    selection = selection if selection is not None else settings.selection(seed)
    folds = outer_folds(y, settings, seed)
    rows = []
    mseed = model_seed(seed, model)
    for k, (tr, va) in enumerate(folds):
        cache = (caches or {}).get(f"outer{k}")
        if cache is not None:
            X_k, y_k = X.iloc[tr], y.iloc[tr]
            context = f"outer{k}"
            folds_k = inner_folds(y_k, settings, seed, context)
            check_cache(cache, X_k, y_k, folds_k, settings, seed, context)
            pipe = pipeline_on_selection(
                model, params, cache.refit, X_k, y_k.to_numpy(), mseed, n_jobs
            )
        else:
            pipe = model_pipeline(model, params, selection, mseed, n_jobs)
            fit_for_prediction(pipe, X.iloc[tr], y.iloc[tr].to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": X.index[va],
                    "model": model,
                    "fold": k,
                    "probability": pipe.predict_proba(X.iloc[va])[:, 1],
                    "label": y.iloc[va].to_numpy(),
                }
            )
        )
    oof = pd.concat(rows, ignore_index=True).sort_values("patient_id", kind="mergesort")
    threshold = youden_threshold(oof["label"].to_numpy(), oof["probability"].to_numpy())
    record = {
        "model": model,
        "threshold": None if not np.isfinite(threshold) else float(threshold),
        "source": FINAL_CV_SOURCE.format(k=len(folds)),
        "n_folds": len(folds),
        "n": len(oof),
        "cv_auc": float(roc_auc_score(oof["label"], oof["probability"]))
        if oof["label"].nunique() == 2
        else None,
    }
    return record, oof.reset_index(drop=True)


# ---------------------------------------------------------------------------------
# The modelling rules' entry points (one call per rule script)
# ---------------------------------------------------------------------------------
def tune_part(
    model: str,
    search_spaces: dict,
    design,
    settings: TuningSettings,
    seed: int,
    journal: str | Path,
    worker: str,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> dict:
    """Rule ``tune_model_part``: one worker of a model's study on the whole training set.

    Returns the part record (study name, journal, part) that rule ``tune_model`` gathers.
    cache: the ``full`` context's selection (rule ``cv_selection``).
    """
    space = parse_search_spaces(search_spaces, [model])[model]
    X, y = design.train()
    check_fold_sizes(y, settings, nested=True)
    _, name = tune(
        model,
        space,
        X,
        y,
        settings,
        seed,
        "full",
        storage_path=journal,
        worker=worker,
        n_jobs=n_jobs,
        cache=cache,
    )
    return {"study_name": name, "journal": str(journal), "part": worker}


def gather_tuning(parts: list[dict], model: str, n_trials: int) -> tuple[dict, pd.DataFrame]:
    """Rule ``tune_model``: the best parameters and the trials table of a finished study.

    A model whose every trial failed numerically is recorded (``failed: true`` and the
    reason), so the other models go on and the report shows the gap. Either way the
    record counts the failed trials and their reasons, and the table lists every trial.
    """
    names = {part["study_name"] for part in parts}
    if len(names) != 1:
        raise RuntimeError(f"{model}: tuning parts disagree on the study: {sorted(names)}")
    study = open_study(parts[0]["journal"], names.pop())
    done = {s: t for s, t in finished_slots(study).items() if s < n_trials}
    try:
        best = best_params(study, model, n_trials)
    except ModelFitError as err:
        log.error("%s failed: %s", model, err)
        failed = {"model": model, "failed": True, "reason": str(err), **failure_summary(done)}
        return failed, trials_table(done, model)
    log.info(
        "%s: best inner-CV AUC %.4f at slot %d (%d of %d trials failed): %s",
        model,
        best["inner_cv_auc"],
        best["slot"],
        best["n_failed"],
        len(done),
        best["params"],
    )
    return best, trials_table(done, model)


def nested_cv_rule(
    model: str,
    search_spaces: dict,
    design,
    fold: int,
    settings: TuningSettings,
    seed: int,
    n_jobs: int = 1,
    cache: SelectionCache | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Rule ``nested_cv_fold``: :func:`nested_cv_fold` on the design's training set.

    A numerical failure of the model (:data:`NUMERICAL_FAILURES`: every trial failed, or
    the fold's refit did) is recorded, not raised: empty predictions and ``failed: true``
    with the reason; such a model cannot be chosen. Bad input and programming errors stop
    the run.
    """
    space = parse_search_spaces(search_spaces, [model])[model]
    X, y = design.train()
    try:
        pred, info = nested_cv_fold(
            model, space, X, y, fold, settings, seed, n_jobs=n_jobs, cache=cache
        )
        log.info("%s outer fold %s: AUC %s", model, fold, info["outer_auc"])
    except InputError:
        raise
    except NUMERICAL_FAILURES as err:
        log.error("%s outer fold %s failed: %s", model, fold, err)
        pred = pd.DataFrame(columns=NESTED_PREDICTION_COLUMNS)
        info = {"model": model, "outer_fold": fold, "failed": True, "reason": str(err)}
    return pred, info


def final_model(
    model: str,
    best: dict,
    design,
    settings: TuningSettings,
    seed: int,
    n_jobs: int = 1,
    caches: dict[str, SelectionCache] | None = None,
) -> tuple[Pipeline | None, pd.DataFrame, dict]:
    """Rule ``fit_final``: :func:`fit_final` with the tuned parameters ``best``, and the
    model's threshold from :func:`final_cv_threshold` (training set only).

    A model whose tuning failed has no pipeline (None), an empty predictions table and a
    threshold record with ``failed: true``.
    """
    if best.get("failed"):
        log.error("%s: not fitted, tuning failed: %s", model, best["reason"])
        record = {"model": model, "threshold": None, "failed": True, "reason": best["reason"]}
        return None, pd.DataFrame(columns=PREDICTION_COLUMNS), record
    caches = caches or {}
    pipe, pred = fit_final(
        model, best["params"], design, settings, seed, n_jobs=n_jobs, cache=caches.get("full")
    )
    X, y = design.train()
    record, _ = final_cv_threshold(
        model, best["params"], X, y, settings, seed, n_jobs=n_jobs, caches=caches
    )
    log.info(
        "%s: %d selected features; predictions for %s; threshold %s (CV AUC %s)",
        model,
        len(pipe[:-1].get_feature_names_out(design.features)),
        design.cohorts(),
        record["threshold"],
        record["cv_auc"],
    )
    return pipe, pred, record


def save_pipeline(pipe: Pipeline | None, path: str | Path, checksum_path: str | Path) -> None:
    """The fitted pipeline as joblib (this workflow's own use) and its SHA-256 beside it."""
    import joblib

    joblib.dump(pipe, path)
    Path(checksum_path).write_text(f"{file_sha256(path)}  {Path(path).name}\n")


def load_pipeline(path: str | Path) -> Pipeline:
    """Load a pipeline that :func:`save_pipeline` wrote; refuses one whose SHA-256 differs
    from its ``.sha256`` file (the pickle is only trusted as the file this run wrote)."""
    import joblib

    expected = Path(f"{path}.sha256").read_text().split()[0]
    if file_sha256(path) != expected:
        raise InputError(f"{path}: SHA-256 differs from {path}.sha256")
    return joblib.load(path)


def selection_rule(design, settings: TuningSettings, seed: int, out) -> str:
    """Rule ``select_features``: the selection fitted on the whole training set, for the
    report (mRMR ranking, LASSO CV curve and path, lambda, selected features in ``out``).
    The model rules refit the same selection inside every CV fold."""
    from .io import write_json, write_tsv
    from .selection import non_finite_tables, selection_summary

    X, y = design.train()
    check_fold_sizes(y, settings, nested=True)
    features, patients = non_finite_tables(design.X, design.cohort, settings.max_non_finite_share)
    write_tsv(features, out.non_finite)
    write_tsv(patients, out.non_finite_patients)
    selection = settings.selection(seed).fit(X, y.to_numpy())
    summary = selection_summary(selection, list(X.columns))
    write_tsv(summary["mrmr_ranking"], out.mrmr_ranking)
    write_tsv(summary["lasso_cv"], out.lasso_cv)
    write_tsv(summary["lasso_path"], out.lasso_path)
    write_tsv(summary["selected"], out.selected)
    write_json(summary["lambda"], out.lambda_json)
    dropped = int((features["action"] == "dropped").sum())
    return (
        f"{len(features)} feature(s) with non-finite values ({dropped} dropped); "
        f"selected {len(summary['selected'])} features at lambda {summary['lambda']['lambda']:.4g}"
    )
