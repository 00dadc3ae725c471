"""The modelling design: feature table + split -> X / y per cohort, checked before tuning.

Works the same for features extracted by the workflow (results/features/features.parquet)
and for a ready table given as ``features_table`` (text, gzipped text, .xlsx or Parquet,
read by :func:`npc_radiomics.base.io.read_features_table`): feature columns are the
numeric columns other than the ID, outcome, centre, cohort and label columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import as_paths, read_features_table, read_table
from npc_radiomics.base.layout import POOL_COHORTS, POOLED_EXTERNAL, cohort_order

log = logging.getLogger(__name__)

SPLIT_COLUMNS = ("patient_id", "center", "cohort", "label")


@dataclass
class Design:
    """Features and labels of every patient, with their cohort.

    X: DataFrame indexed by patient_id (sorted), one column per feature (float);
    y: Series of 0/1 labels (1 = positive class, e.g. complete response);
    cohort: Series of ``train``, ``test`` or an external centre's name.
    """

    X: pd.DataFrame
    y: pd.Series
    cohort: pd.Series
    #: Columns the modelling Pipeline consumes besides the features (ComBat's centre and
    #: covariates, npc_radiomics.modelling.harmonize), indexed like X; None without harmonisation.
    aux: pd.DataFrame | None = None
    #: Each patient's centre (the split's ``center``), indexed like X; None if unknown.
    centre: pd.Series | None = None

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)

    @property
    def model_X(self) -> pd.DataFrame:
        """What the modelling Pipeline takes: the features, then the ``aux`` columns."""
        return self.X if self.aux is None else self.X.join(self.aux)

    def cohorts(self) -> list[str]:
        """``train``, ``test``, then external centres in sorted order (those present), then
        the pooled ``external`` cohort when there are two or more external centres."""
        order = cohort_order(self.cohort)
        if len([c for c in order if c not in POOL_COHORTS]) >= 2:
            order.append(POOLED_EXTERNAL)
        return order

    def subset(self, cohort: str) -> tuple[pd.DataFrame, pd.Series]:
        if cohort == POOLED_EXTERNAL:
            keep = ~self.cohort.isin(POOL_COHORTS)
        else:
            keep = self.cohort == cohort
        return self.model_X[keep], self.y[keep]

    def train(self) -> tuple[pd.DataFrame, pd.Series]:
        return self.subset("train")


def read_feature_list(path: str | Path | None) -> list[str] | None:
    """Feature names, one per line (e.g. results/features/robust_features.txt); None if no file."""
    if not path:
        return None
    lines = Path(path).read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


def feature_columns(table: pd.DataFrame, exclude: set[str]) -> list[str]:
    """Numeric columns not in ``exclude`` (ID / outcome / centre / cohort columns)."""
    return [
        c
        for c in table.columns
        if c not in exclude
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]


def load_design(
    features_path: str | Path,
    split_path: str | Path,
    robust_path: str | Path | None = None,
    id_column: str = "patient_id",
    outcome_column: str = "response",
    extra_excluded: tuple[str, ...] = (),
    combat_covariates: list[str] | None = None,
    clinical_path: str | Path | None = None,
    categorical: tuple[str, ...] = (),
    features_sheet: str | None = None,
    clinical_sheet: str | None = None,
) -> Design:
    """Read the feature table and the split; return the checked Design.

    features_path: CSV/TSV/Parquet with ``id_column`` and feature columns (and possibly
    the outcome, centre, cohort columns, which are never features), or several such
    tables (the training pool's, then external centres'), read as one;
    split_path: results/split/pool.tsv (patient_id, center, cohort, label), or several
    such tables (the pool's, then external cohorts');
    robust_path: optional list of features to keep (ICC filter);
    combat_covariates: None = no harmonisation; a list (possibly empty) = ComBat on: the
    design carries each patient's centre (the split's ``center``) and these covariates
    (from ``clinical_path``, else from the feature table; ``categorical`` ones as dummies);
    ``features_sheet`` / ``clinical_sheet``: the worksheets of .xlsx tables. Raises
    InputError on a missing ID or outcome column, duplicate IDs, split patients without
    features, labels that are not 0/1, or no usable (non-constant) feature.
    """
    features_paths = as_paths(features_path)
    tables = [
        read_features_table(path, {"id": id_column}, features_sheet) for path in features_paths
    ]
    # Several tables (the training pool's, then external centres'): one, by row.
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    name = Path(features_paths[0]).name
    if id_column not in table.columns:
        raise InputError(f"feature table {name}: no ID column {id_column!r}")
    table[id_column] = table[id_column].astype(str)
    dup = table[id_column][table[id_column].duplicated()]
    if len(dup):
        raise InputError(f"feature table {name}: duplicate patient id(s) {sorted(set(dup))[:5]}")
    split_paths = as_paths(split_path)
    split_path = split_paths[0]
    split = pd.concat(
        [read_table(path, dtype={"patient_id": str}) for path in split_paths], ignore_index=True
    )
    missing = [c for c in ("patient_id", "cohort") if c not in split.columns]
    if missing:
        raise InputError(f"split table {Path(split_path).name}: missing column(s) {missing}")
    if "label" in split.columns:
        labels = split.set_index("patient_id")["label"]
    elif outcome_column in table.columns:
        labels = table.set_index(id_column)[outcome_column]
    else:
        raise InputError(
            f"no outcome: neither a 'label' column in {Path(split_path).name} nor an outcome "
            f"column {outcome_column!r} in {name}"
        )
    exclude = {id_column, outcome_column, "patient_id", "label", *SPLIT_COLUMNS, *extra_excluded}
    exclude |= set(combat_covariates or ())
    columns = feature_columns(table, exclude)
    robust = read_feature_list(robust_path)
    if robust is not None:
        unknown = sorted(set(robust) - set(columns))
        if unknown:
            log.warning(
                "%d robust feature(s) not in the table, ignored: %s", len(unknown), unknown[:5]
            )
        columns = [c for c in columns if c in set(robust)]
        if not columns:
            raise InputError(f"no feature of {name} is in the robust feature list {robust_path}")
    if not columns:
        raise InputError(f"feature table {name}: no numeric feature column")

    table = table.set_index(id_column)
    patients = sorted(split["patient_id"])
    absent = [p for p in patients if p not in table.index]
    if absent:
        raise InputError(
            f"feature table {name}: {len(absent)} patient(s) of the split have no features, "
            f"e.g. {absent[:5]}"
        )
    X = table.loc[patients, columns].astype(float)
    y_raw = labels.reindex(patients)
    if y_raw.isna().any():
        raise InputError(f"outcome missing for patient(s) {list(y_raw[y_raw.isna()].index[:5])}")
    if not set(pd.unique(y_raw)) <= {0, 1}:
        raise InputError(f"outcome must be 0/1, got values {sorted(map(str, pd.unique(y_raw)))}")
    y = y_raw.astype(int)
    cohort = split.set_index("patient_id")["cohort"].reindex(patients).astype(str)
    X.index.name = y.index.name = cohort.index.name = "patient_id"

    train = (cohort == "train").to_numpy()
    if not train.any():
        raise InputError(f"split table {Path(split_path).name}: no patient in cohort 'train'")
    Xt = X[train]
    usable = Xt.notna().any() & (Xt.nunique(dropna=True) > 1)
    if not usable.any():
        raise InputError(
            f"feature table {name}: every feature is constant or all-NaN on the training patients"
        )
    n_dropped = int((~usable).sum())
    if n_dropped:
        # The pipeline drops them too (fitted on training folds); logged for the user.
        log.info("%d feature(s) constant or all-NaN on the training patients", n_dropped)
    log.info(
        "design: %d patients x %d features; cohorts %s",
        len(X),
        X.shape[1],
        cohort.value_counts().sort_index().to_dict(),
    )
    aux = None
    if combat_covariates is not None:
        aux = _harmonization_columns(
            split,
            table,
            patients,
            combat_covariates,
            clinical_path,
            categorical,
            clinical_sheet,
        )
    centre = None
    if "center" in split.columns:
        centre = split.set_index("patient_id")["center"].reindex(patients).astype(str)
        centre.index.name = "patient_id"
    return Design(X=X, y=y, cohort=cohort, aux=aux, centre=centre)


def _harmonization_columns(
    split, table, patients, covariates, clinical_path, categorical, clinical_sheet
):
    """The centre column and covariate columns ComBat consumes (modelling.harmonize)."""
    from npc_radiomics.modelling.harmonize import CENTRE_COLUMN, covariate_columns

    if "center" not in split.columns:
        raise InputError("harmonization.combat: the split table has no 'center' column")
    centre = split.set_index("patient_id")["center"].reindex(patients).astype(str)
    aux = pd.DataFrame({CENTRE_COLUMN: centre})
    if covariates:
        if clinical_path:
            from npc_radiomics.inputs.sheets import read_clinical

            # The one clinical reader: missing markers, text levels as the start-up saw them.
            source = read_clinical(
                clinical_path,
                None,
                [c for c in covariates if c not in categorical],
                [c for c in covariates if c in categorical],
                sheet=clinical_sheet,
            ).set_index("patient_id")
            for c in set(covariates) & set(categorical):  # codes 1, 2 name levels "1", "2"
                values = source[c]
                if pd.api.types.is_float_dtype(values) and values.notna().all():
                    if (values == values.round()).all():
                        source[c] = values.astype("int64")
        else:
            source = table
        missing = [c for c in covariates if c not in source.columns]
        if missing:
            raise InputError(f"harmonization.covariates: no column {missing} in the clinical data")
        absent = [p for p in patients if p not in source.index]
        if absent:
            raise InputError(f"harmonization.covariates: no clinical row for patient {absent[0]}")
        aux = aux.join(covariate_columns(source.loc[patients], covariates, list(categorical)))
    aux.index.name = "patient_id"
    return aux


def load_rule_design(inputs, params) -> Design:
    """``load_design`` from a modelling rule's ``input`` (features, split[, robust]) and
    ``params`` (id_column, outcome[, exclude: more non-feature columns]). The robust list
    may be absent, a path or a 0/1-element list."""
    robust = inputs.get("robust", None) if hasattr(inputs, "get") else None
    if robust is not None and not isinstance(robust, str):
        robust = list(robust)[0] if len(robust) else None
    exclude = getattr(params, "exclude", None) or ()
    settings = getattr(params, "settings", None) or {}
    harmonization = getattr(params, "harmonization", None) or {}
    combat = bool(settings.get("combat")) if isinstance(settings, dict) else False
    clinical = inputs.get("clinical", None) if hasattr(inputs, "get") else None
    return load_design(
        inputs.features,
        inputs.split,
        robust or None,
        params.id_column,
        params.outcome,
        extra_excluded=tuple(exclude),
        combat_covariates=list(harmonization.get("covariates") or []) if combat else None,
        clinical_path=clinical or None,
        categorical=tuple(harmonization.get("categorical") or ()),
        features_sheet=getattr(params, "features_sheet", None),
        clinical_sheet=getattr(params, "clinical_sheet", None),
    )
