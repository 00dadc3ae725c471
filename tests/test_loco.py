"""Leave-one-centre-out: each held-out centre is predicted by pipelines that never saw
it (nor any test patient); the table lists every training centre once per model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from npc_radiomics.base.errors import InputError
from npc_radiomics.modelling.design import Design
from npc_radiomics.modelling.harmonize import CENTRE_COLUMN
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.validation.loco import gather_loco, loco_rows, loco_rule, loco_table

SEED = 20251121
SEARCH = {"logistic_regression": {"C": {"type": "float", "low": 1e-2, "high": 10.0, "log": True}}}


def loco_design(combat=False, seed=0, n=30, centres=("A", "B", "C"), external=("D",)):
    rng = np.random.default_rng(seed)
    ids, centre, cohort, rows, labels = [], [], [], [], []
    for k, c in enumerate([*centres, *external]):
        X = rng.normal(size=(n, 10))
        y = (X[:, 0] + rng.normal(scale=0.8, size=n) > 0).astype(int)
        rows.append(X * (1 + 0.3 * k) + k)
        labels.append(y)
        ids += [f"{c}{i:03d}" for i in range(n)]
        centre += [c] * n
        if c in centres:
            cohort += ["test" if i % 4 == 0 else "train" for i in range(n)]
        else:
            cohort += [c] * n
    X = pd.DataFrame(np.vstack(rows), index=ids, columns=[f"T1__f{j}" for j in range(10)])
    centre = pd.Series(centre, index=ids)
    aux = pd.DataFrame({CENTRE_COLUMN: centre}) if combat else None
    return Design(
        X=X,
        y=pd.Series(np.concatenate(labels), index=ids),
        cohort=pd.Series(cohort, index=ids),
        aux=aux,
        centre=centre,
    )


SETTINGS = TuningSettings.defaults(
    n_trials=2, inner_folds=2, outer_folds=2, mrmr_k=5, lasso_folds=2, n_lambdas=5
)


@pytest.mark.parametrize("combat", [False, True])
def test_held_out_centre_never_reaches_a_fit(monkeypatch, combat):
    design = loco_design(combat=combat)
    settings = TuningSettings.defaults(**{**SETTINGS.__dict__, "combat": combat})
    fitted: list[set[str]] = []
    original = Pipeline.fit

    def spy(self, X, y=None, **kw):
        fitted.append(set(map(str, X.index)))
        return original(self, X, y, **kw)

    monkeypatch.setattr(Pipeline, "fit", spy)
    test_ids = set(design.cohort.index[design.cohort == "test"])
    for centre in ("A", "B", "C"):
        fitted.clear()
        pred, info = loco_rule(
            "logistic_regression", SEARCH, design, centre, settings, SEED, n_jobs=1
        )
        held = set(design.centre.index[design.centre == centre])
        assert set(pred["patient_id"]) == held & set(design.cohort.index[design.cohort != "D"])
        assert fitted, "no pipeline was fitted"
        for rows in fitted:
            assert not rows & held, centre
            assert not rows & test_ids
            assert not any(r.startswith("D") for r in rows)
        assert info["fit_centres"] == sorted({"A", "B", "C"} - {centre})
        assert pred["probability"].between(0, 1).all()
        if combat:
            assert info["selected_features"]


def test_loco_rows_and_errors():
    design = loco_design()
    fit, held = loco_rows(design, "B")
    assert not (fit & held).any()
    assert set(design.cohort[fit]) == {"train"}
    with pytest.raises(InputError, match="centre 'Z' has no patient"):
        loco_rows(design, "Z")
    single = loco_design(centres=("A",))
    with pytest.raises(InputError, match="two or more training centres"):
        loco_rows(single, "A")


def test_table_lists_every_centre_once_per_model(tmp_path):
    design = loco_design(seed=2)
    paths, infos = [], []
    for centre in ("A", "B", "C"):
        pred, info = loco_rule("logistic_regression", SEARCH, design, centre, SETTINGS, SEED)
        p = tmp_path / f"{centre}.tsv"
        pred.to_csv(p, sep="\t", index=False)
        i = tmp_path / f"{centre}.json"
        i.write_text(__import__("json").dumps(info))
        paths.append(p)
        infos.append(i)
    out = SimpleNamespace(
        predictions=tmp_path / "predictions.tsv",
        table=tmp_path / "loco.tsv",
        forest=tmp_path / "forest.png",
    )
    gather_loco(paths, infos, out, chosen_model="logistic_regression")
    table = pd.read_csv(out.table, sep="\t")
    assert table["held_out_center"].tolist() == ["A", "B", "C"]
    assert (table["n"] == 30).all()
    assert table["auc"].between(0, 1).all() and (table["auc_ci_low"] <= table["auc"]).all()
    assert out.forest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_and_one_class_rows_are_gaps():
    preds = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "held_out_center": ["A", "A", "A"],
            "model": "m",
            "probability": [0.2, 0.4, 0.9],
            "label": [1, 1, 1],
        }
    )
    infos = [
        {"model": "m", "held_out_center": "A", "threshold": 0.5, "n_fit": 10},
        {"model": "m", "held_out_center": "B", "failed": True, "reason": "boom"},
    ]
    table = loco_table(preds, infos)
    assert table["note"].tolist() == ["one outcome class only: no AUC", "failed: boom"]
    assert table["auc"].isna().all()
