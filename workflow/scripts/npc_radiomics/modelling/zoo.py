"""The model zoo and its hyper-parameter search spaces, defined in one place.

Search spaces come from ``config["search_spaces"]``: for each model a mapping of
parameter name to a spec

    {type: float, low: 1.0e-3, high: 1.0e3, log: true}
    {type: int, low: 3, high: 25, step: 2}
    {type: categorical, choices: [rbf, linear]}
    a plain scalar (number, string, bool) = fixed value, not tuned

``parse_search_spaces`` validates them all up front (unknown model or parameter, bad
bounds, empty choices, values the estimator rejects) and raises ``InputError`` naming
the config key, so a typo stops the run before any tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.neighbors import KNeighborsClassifier

from npc_radiomics.base.errors import InputError

MODEL_NAMES = (
    "svm",
    "knn",
    "random_forest",
    "extra_trees",
    "xgboost",
    "lightgbm",
    "mlp",
    "logistic_regression",
)

# Parameters set by the workflow itself (seed, threads, probabilities): not tunable.
_RESERVED = {"random_state", "seed", "n_jobs", "nthread", "num_threads", "probability", "verbose"}
# MLP parameters that are not estimator arguments: they build hidden_layer_sizes.
_MLP_VIRTUAL = {"n_layers", "n_units"}


@dataclass(frozen=True)
class ParamSpec:
    """One hyper-parameter's search range (or a fixed value)."""

    name: str
    kind: str  # float | int | categorical | fixed
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = field(default_factory=tuple)
    value: Any = None

    def suggest(self, trial) -> Any:
        """Draw this parameter from an Optuna trial."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        return self.value

    def corners(self) -> list:
        """Representative values (bounds, every choice) for validating the estimator."""
        if self.kind in ("float", "int"):
            cast = int if self.kind == "int" else float
            return [cast(self.low), cast(self.high)]
        if self.kind == "categorical":
            return list(self.choices)
        return [self.value]


class CappedKNeighborsClassifier(KNeighborsClassifier):
    """k-NN whose k is capped at the training-set size.

    A k tuned on a large fold may exceed a small inner fold of a nested CV; capping
    (instead of failing the trial) keeps every trial of a small cohort usable.
    """

    def fit(self, X, y):
        self.n_neighbors = int(min(self.n_neighbors, len(y)))
        return super().fit(X, y)


class PlattSVC(CalibratedClassifierCV):
    """SVC with Platt-scaled probabilities: sigmoid calibration on min(5, smallest class
    count) unshuffled stratified folds and one refit SVC (scikit-learn 1.9's replacement
    for ``SVC(probability=True)``); the folds adapt so small classes still calibrate."""

    def fit(self, X, y, **fit_params):
        smallest = int(np.bincount(np.asarray(y, dtype=int)).min())
        self.cv = max(2, min(5, smallest))
        return super().fit(X, y, **fit_params)


def _estimator_class(model: str):
    """The estimator class of a model name (imports heavy libraries lazily)."""
    if model == "svm":
        from sklearn.svm import SVC

        return SVC
    if model == "knn":
        return CappedKNeighborsClassifier
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier
    if model == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier
    if model == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier
    if model == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier
    if model == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier
    if model == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression
    raise InputError(f"unknown model {model!r}: known models are {', '.join(MODEL_NAMES)}")


def build_model(model: str, params: dict, seed: int, n_jobs: int = 1):
    """An unfitted classifier with ``predict_proba`` from a model name and parameters.

    seed: random seed of the estimator; n_jobs: threads it may use (the rule's threads).
    Defaults chosen for determinism: LightGBM ``deterministic``, XGBoost ``hist``.
    """
    params = dict(params)
    cls = _estimator_class(model)
    if model == "svm":
        # Platt scaling on unshuffled stratified folds (deterministic).
        return PlattSVC(cls(random_state=seed, **params), method="sigmoid", cv=5, ensemble=False)
    if model == "knn":
        return cls(n_jobs=n_jobs, **params)
    if model in ("random_forest", "extra_trees"):
        return cls(random_state=seed, n_jobs=n_jobs, **params)
    if model == "xgboost":
        params.setdefault("tree_method", "hist")
        params.setdefault("eval_metric", "logloss")
        return cls(random_state=seed, n_jobs=n_jobs, verbosity=0, **params)
    if model == "lightgbm":
        params.setdefault("deterministic", True)
        params.setdefault("force_col_wise", True)
        return cls(random_state=seed, n_jobs=n_jobs, verbose=-1, **params)
    if model == "mlp":
        n_layers = int(params.pop("n_layers", 1))
        n_units = int(params.pop("n_units", 32))
        params.setdefault("max_iter", 1000)
        return cls(hidden_layer_sizes=(n_units,) * n_layers, random_state=seed, **params)
    # logistic_regression
    params.setdefault("max_iter", 5000)
    return cls(random_state=seed, **params)


def fit_for_prediction(estimator, X, y):
    """Fit ``estimator`` (a classifier of :func:`build_model` or a Pipeline ending in one),
    then make a forest predict on one thread; returns it.

    scikit-learn's forests fit identically whatever ``n_jobs`` (every tree's seed is drawn
    before the threads start) but sum the trees' probabilities under a lock in whatever
    order the threads finish, so with n_jobs > 1 probabilities differ in the last bit
    from run to run (measured: 1.1e-16), which can reorder tied patients. Predicting a
    fold's few patients on one thread costs nothing; XGBoost (hist) and LightGBM
    (deterministic, col-wise) predicted bit-identically on 1 and 2 threads
    (tests/test_zoo.py).
    """
    estimator.fit(X, y)
    clf = estimator[-1] if hasattr(estimator, "steps") else estimator
    if type(clf).__name__ in ("RandomForestClassifier", "ExtraTreesClassifier"):
        clf.set_params(n_jobs=1)
    return estimator


def _spec_error(key: str, problem: str) -> InputError:
    return InputError(f"config key search_spaces.{key}: {problem}")


def _number(key: str, spec: dict, name: str) -> float:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _spec_error(key, f"'{name}' must be a number, got {value!r}")
    return value


def parse_param(model: str, name: str, spec: Any) -> ParamSpec:
    """Validate one parameter spec of config ``search_spaces.<model>.<name>``."""
    key = f"{model}.{name}"
    if not isinstance(spec, dict):
        if isinstance(spec, (list, tuple)):
            raise _spec_error(key, "a list is not a spec; use {type: categorical, choices: [...]}")
        return ParamSpec(name, "fixed", value=spec)
    kind = spec.get("type")
    allowed = {
        "float": {"type", "low", "high", "log", "step"},
        "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"},
    }
    if kind not in allowed:
        raise _spec_error(key, f"'type' must be float, int or categorical, got {kind!r}")
    extra = set(spec) - allowed[kind]
    if extra:
        raise _spec_error(key, f"unknown field(s) {sorted(extra)} for type {kind}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _spec_error(key, "'choices' must be a non-empty list")
        for c in choices:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise _spec_error(key, f"choice {c!r} must be a number, string, bool or null")
        if len(set(map(repr, choices))) != len(choices):
            raise _spec_error(key, "'choices' has duplicates")
        return ParamSpec(name, kind, choices=tuple(choices))
    low, high = _number(key, spec, "low"), _number(key, spec, "high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _spec_error(key, f"'log' must be true or false, got {log!r}")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise _spec_error(key, f"int bounds must be integers, got {low!r}..{high!r}")
    if not low < high:
        raise _spec_error(key, f"'low' ({low}) must be smaller than 'high' ({high})")
    if log and low <= 0:
        raise _spec_error(key, f"a log scale needs 'low' > 0, got {low}")
    step = spec.get("step")
    if step is not None:
        step = _number(key, spec, "step")
        if step <= 0:
            raise _spec_error(key, f"'step' must be > 0, got {step}")
        if log:
            raise _spec_error(key, "'step' and 'log: true' cannot be combined")
        if kind == "int" and step != int(step):
            raise _spec_error(key, f"int 'step' must be an integer, got {step}")
    return ParamSpec(name, kind, low=low, high=high, log=log, step=step)


def _check_estimator_accepts(model: str, specs: dict[str, ParamSpec]) -> None:
    """Build the estimator at every bound / choice; sklearn validates values at fit only,
    so call its parameter validation now to catch e.g. ``kernel: rbff`` before tuning."""
    base = {name: s.corners()[0] for name, s in specs.items()}
    for name, spec in specs.items():
        for value in spec.corners():
            params = dict(base, **{name: value})
            try:
                est = build_model(model, params, seed=0)
                est = getattr(est, "estimator", None) or est  # the SVC inside its calibrator
                if hasattr(est, "_parameter_constraints"):
                    est._validate_params()
            except InputError:
                raise
            except Exception as err:  # noqa: BLE001 - any rejection is a config error
                raise _spec_error(
                    f"{model}.{name}", f"value {value!r} rejected by the estimator: {err}"
                ) from None


def parse_search_spaces(spaces: Any, models: list[str]) -> dict[str, dict[str, ParamSpec]]:
    """Validate ``config["search_spaces"]`` for the configured ``models``.

    Returns {model: {param: ParamSpec}}. Raises InputError on an unknown model (in
    ``models`` or in the spaces), a model without a space, an unknown or reserved
    parameter name, or a malformed spec.
    """
    if not isinstance(spaces, dict):
        raise InputError("config key search_spaces: must be a mapping of model name to parameters")
    for model in list(models) + list(spaces):
        if model not in MODEL_NAMES:
            raise InputError(f"unknown model {model!r}: known models are {', '.join(MODEL_NAMES)}")
    parsed = {}
    for model in models:
        space = spaces.get(model)
        if not isinstance(space, dict) or not space:
            raise InputError(f"config key search_spaces.{model}: missing or empty search space")
        valid = set(_estimator_class(model)().get_params()) - _RESERVED
        if model == "mlp":
            valid = (valid - {"hidden_layer_sizes"}) | _MLP_VIRTUAL
        specs = {}
        for name, spec in space.items():
            if name in _RESERVED:
                raise _spec_error(
                    f"{model}.{name}", "set by the workflow (seed/threads), not tunable"
                )
            if name not in valid:
                raise _spec_error(
                    f"{model}.{name}",
                    f"not a parameter of {model} (valid: {', '.join(sorted(valid))})",
                )
            specs[name] = parse_param(model, name, spec)
        _check_estimator_accepts(model, specs)
        parsed[model] = specs
    return parsed


def suggest_params(trial, space: dict[str, ParamSpec]) -> dict:
    """Draw one parameter set from an Optuna trial (fixed values included)."""
    return {name: spec.suggest(trial) for name, spec in space.items()}
