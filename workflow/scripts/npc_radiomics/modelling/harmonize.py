"""ComBat harmonisation across centres as a step of the modelling Pipeline (pipeline step 8).

The centre (the batch) and the optional covariates to preserve travel as extra columns of
the design matrix (:data:`CENTRE_COLUMN`, :data:`COVARIATE_PREFIX` + name); the step
consumes them and hands only the harmonised feature columns to the selection steps. So
ComBat is refitted on the training rows of every CV fold like any other fitted step, and
a test or external patient never reaches ``fit``.

The empirical-Bayes fit is combatlearn's ``ComBatModel`` (method ``fortin``, i.e.
neuroComBat: batch dummies + covariates in one least-squares design, parametric EB
shrinkage). Its fitted numbers are copied into plain arrays and the adjustment is applied
here (the same formula as the library's transform; tests check equality), so a fitted
pipeline holds no pandas or library objects and stays loadable by skops in a bundle, and
predict mode needs no combatlearn.

A centre not seen by ``fit`` (an external centre, a centre absent from a fold, new
patients in predict mode) gets a fixed rule that depends on the fit only, never on the
other patients scored with it, so one patient scored alone gives the same result as in a
batch of any size: ``unseen="training_prior"`` (default) applies the location and scale
that ComBat's empirical-Bayes model gives a centre with no fitted rows, its prior mean:
the training centres' fitted locations and scales averaged with their fit-row counts as
weights (for a single fit centre, the reference: location 0, scale 1, i.e. the training
centre's own scale); ``unseen="none"`` leaves its rows as they are. (Estimating the
unseen centre's own location and scale from the rows being scored, as an earlier
version did, made a patient's harmonised values depend on who else was in the batch.)
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from npc_radiomics.base.errors import InputError

log = logging.getLogger(__name__)


#: Design-matrix column holding each patient's centre (consumed by :class:`CentreComBat`).
CENTRE_COLUMN = "__center__"


#: Prefix of the design-matrix columns holding a covariate ComBat preserves.
COVARIATE_PREFIX = "__covariate__"


#: ``harmonization.unseen_centre`` choices.
UNSEEN_CHOICES = ("training_prior", "none")


def is_auxiliary(column: str) -> bool:
    """True for the centre and covariate columns (never features)."""
    return column == CENTRE_COLUMN or str(column).startswith(COVARIATE_PREFIX)


def _split_columns(X: pd.DataFrame):
    if not isinstance(X, pd.DataFrame) or CENTRE_COLUMN not in X.columns:
        raise InputError(
            f"ComBat: the design matrix has no {CENTRE_COLUMN!r} column (the centre); "
            "build it with Design.subset/train when harmonization.combat is true"
        )
    features = [c for c in X.columns if not is_auxiliary(c)]
    covariates = [c for c in X.columns if str(c).startswith(COVARIATE_PREFIX)]
    centre = X[CENTRE_COLUMN].astype(str)
    return X[features].astype(float), centre, X[covariates].astype(float), features, covariates


def _fit_values(F: pd.DataFrame) -> pd.DataFrame:
    """Finite values for the EB fit: non-finite entries -> the column's finite median (0
    if none). Only the estimates see them; transform keeps non-finite entries as they are
    for the selection's own non-finite filter and imputer."""
    values = F.to_numpy(dtype=float, copy=True)
    bad = ~np.isfinite(values)
    if bad.any():
        with np.errstate(all="ignore"):
            masked = np.where(bad, np.nan, values)
            med = np.nanmedian(masked, axis=0) if len(values) else np.zeros(values.shape[1])
        med = np.where(np.isfinite(med), med, 0.0)
        values[bad] = np.take(med, np.nonzero(bad)[1])
    return pd.DataFrame(values, index=F.index, columns=F.columns)


class CentreComBat(TransformerMixin, BaseEstimator):
    """ComBat across centres (batch = :data:`CENTRE_COLUMN`), preserving the covariate
    columns; outputs the harmonised feature columns only (a DataFrame, same index).

    Parameters: ``unseen`` (:data:`UNSEEN_CHOICES`), ``parametric`` (parametric EB priors),
    ``eps`` (variance jitter, as combatlearn). ``y`` is never used: the outcome cannot
    reach the harmonisation.
    """

    def __init__(self, unseen: str = "training_prior", parametric: bool = True, eps=1e-8):
        self.unseen = unseen
        self.parametric = parametric
        self.eps = eps

    def fit(self, X: pd.DataFrame, y=None):
        from combatlearn.core import ComBatModel

        if self.unseen not in UNSEEN_CHOICES:
            raise InputError(
                f"harmonization.unseen_centre: {self.unseen!r} is not one of {UNSEEN_CHOICES}"
            )
        F, centre, cov, features, covariates = _split_columns(X)
        counts = centre.value_counts()
        small = sorted(counts[counts < 2].index)
        if small:
            # A fold can hold a single patient of a small centre: no variance to estimate.
            log.warning("ComBat: centre(s) %s with < 2 fit rows treated as unseen", small)
        keep = ~centre.isin(small).to_numpy()
        if not keep.any():
            raise InputError("ComBat: no centre has 2 or more patients among the fit rows")
        n_cov = len(covariates)
        if centre[keep].nunique() == 1:
            # One centre (e.g. a LOCO fold of two training centres): nothing between centres
            # to estimate (the EB priors need two); that centre is the reference, left as
            # it is, and an unseen centre is mapped onto its scale.
            self._fit_reference(_fit_values(F[keep]), cov[keep], str(centre[keep].iloc[0]))
        else:
            model = ComBatModel(method="fortin", parametric=self.parametric, eps=self.eps)
            with np.errstate(all="ignore"):
                model.fit(
                    _fit_values(F[keep]),
                    batch=centre[keep],
                    continuous_covariates=cov[keep] if covariates else None,
                )
            self.centres_ = [str(c) for c in model._batch_levels]
            self.gamma_ = np.asarray(model._gamma_star, dtype=float)
            self.delta_ = np.asarray(model._delta_star, dtype=float)
            self.grand_mean_ = np.asarray(model._grand_mean, dtype=float)
            self.pooled_var_ = np.asarray(model._pooled_var, dtype=float)
            self.beta_covariates_ = (
                np.asarray(model._beta_hat_nonbatch, dtype=float).reshape(n_cov, len(features))
                if n_cov
                else np.zeros((0, len(features)))
            )
        fitted = centre[keep].value_counts()
        self.centre_rows_ = np.asarray([int(fitted[c]) for c in self.centres_], dtype=float)
        self.covariates_ = list(covariates)
        self.features_ = list(features)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        self.n_fit_rows_ = int(keep.sum())
        return self

    def _fit_reference(self, F: pd.DataFrame, cov: pd.DataFrame, centre: str) -> None:
        """One fit centre: least squares on [1, covariates] as neuroComBat's design would
        be, location 0 and scale 1 for that centre."""
        values = F.to_numpy(dtype=float)
        design = np.column_stack([np.ones(len(F)), cov.to_numpy(dtype=float)])
        beta = np.linalg.lstsq(design, values, rcond=None)[0]
        resid = values - design @ beta
        self.centres_ = [centre]
        self.gamma_ = np.zeros((1, values.shape[1]))
        self.delta_ = np.ones((1, values.shape[1]))
        self.grand_mean_ = beta[0]
        self.pooled_var_ = (resid**2).sum(axis=0) / len(values) + self.eps
        self.beta_covariates_ = beta[1:]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        F, centre, cov, features, covariates = _split_columns(X)
        if features != self.features_ or covariates != self.covariates_:
            raise InputError("ComBat: the design matrix's columns differ from those at fit")
        values = F.to_numpy(dtype=float)
        stand = self.grand_mean_ + cov.to_numpy(dtype=float) @ self.beta_covariates_
        scale = np.sqrt(self.pooled_var_)
        with np.errstate(all="ignore"):
            Z = (values - stand) / scale
        out = values.copy()
        labels = centre.to_numpy()
        for c in sorted(set(labels)):
            rows = labels == c
            if c in self.centres_:
                i = self.centres_.index(c)
                gamma, delta = self.gamma_[i], self.delta_[i]
            elif self.unseen == "none":
                continue
            else:
                gamma, delta = self.unseen_location_scale()
            with np.errstate(all="ignore"):
                out[rows] = (Z[rows] - gamma) / np.sqrt(delta) * scale + stand[rows]
        return pd.DataFrame(out, index=X.index, columns=features)

    def unseen_location_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Location and scale of a centre absent from the fit (``training_prior``): the
        fit-row-weighted mean of the training centres' fitted ones (the EB prior's mean).
        Fixed at fit: no scored patient shapes it."""
        w = self.centre_rows_ / self.centre_rows_.sum()
        return w @ self.gamma_, w @ self.delta_

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.features_, dtype=object)


def harmonization_step(unseen: str) -> tuple[str, CentreComBat]:
    """The Pipeline step (name, transformer) put before the selection steps."""
    return ("combat", CentreComBat(unseen=unseen))


def covariate_columns(clinical: pd.DataFrame, covariates: list[str], categorical: list[str]):
    """The covariate columns of the design matrix from the clinical table (indexed by
    patient_id): a continuous variable as it is, a categorical one as 0/1 dummies of its
    sorted levels (first dropped). Missing values stop the run (ComBat needs them all)."""
    parts = {}
    for name in covariates:
        values = clinical[name]
        if values.isna().any():
            first = values[values.isna()].index[0]
            raise InputError(f"ComBat covariate {name}: missing for patient {first}")
        if name in categorical:
            levels = sorted(values.astype(str).unique())
            for level in levels[1:]:
                parts[f"{COVARIATE_PREFIX}{name}={level}"] = (values.astype(str) == level).astype(
                    float
                )
        else:
            parts[f"{COVARIATE_PREFIX}{name}"] = pd.to_numeric(values, errors="raise").astype(float)
    return pd.DataFrame(parts, index=clinical.index)
