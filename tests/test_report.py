"""The standalone report: built from small synthetic result files, opened in headless Chromium.

The result files are made by the package's own functions (evaluation tables, clinical
analysis, decision curves, SHAP, provenance), so this is also an integration test of the
report stage without running the workflow. The synthetic cohort has the awkward cases a
reviewer must see as gaps: a configured model without predictions (failed to fit) and an
external centre whose patients all have one outcome.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from npc_radiomics import figures as plots
from npc_radiomics.base import io
from npc_radiomics.base.io import write_tsv
from npc_radiomics.evaluation import performance as evaluation
from npc_radiomics.evaluation.clinical import clinical_analysis
from npc_radiomics.evaluation.dca import (
    beneficial_ranges,
    decision_curves,
    net_benefit_ci,
    threshold_grid,
)
from npc_radiomics.evaluation.shap_analysis import explain_chosen_model, importance_table
from npc_radiomics.glue.provenance import provenance_record, write_provenance
from npc_radiomics.report import assemble, kit

MODELS = ["logistic_regression", "random_forest", "svm"]  # svm "failed": no predictions
COHORTS = {"train": 60, "test": 30, "ND": 14, "XC": 4}  # XC: one class only
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _synthetic_patients(rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split table and raw radiomics features of every patient."""
    rows = []
    for cohort, n in COHORTS.items():
        centre = cohort if cohort not in ("train", "test") else "QZ"
        for i in range(n):
            label = 1 if cohort == "XC" else int(i % 2 == 0)
            rows.append((f"{cohort[:2].upper()}{i:03d}", centre, cohort, label))
    split = pd.DataFrame(rows, columns=["patient_id", "center", "cohort", "label"])
    signal = split["label"].to_numpy() * 1.2
    features = pd.DataFrame(
        {
            "CET1__original_firstorder_Mean": signal + rng.normal(size=len(split)),
            "T2__wavelet-LLH_glcm_Contrast": -0.6 * signal + rng.normal(size=len(split)),
            "T1__log-sigma-3-0-mm-3D_gldm_DependenceEntropy": rng.normal(size=len(split)),
        },
        index=pd.Index(split["patient_id"], name="patient_id"),
    )
    return split, features


def build_results(root: Path, seed: int = 0) -> dict[str, str]:
    """Write a full set of small result files under ``root``; return the report's inputs."""
    rng = np.random.default_rng(seed)
    split, features = _synthetic_patients(rng)
    out = {}

    def path(name: str) -> str:
        out_path = root / name
        out_path.parent.mkdir(parents=True, exist_ok=True)
        return str(out_path)

    write_tsv(split, out.setdefault("split", path("split/split.tsv")))
    qc = pd.DataFrame(
        [
            (pid, c, seq, "pass", "", "included")
            for pid, c in zip(split["patient_id"], split["center"], strict=True)
            for seq in ("T1", "T2", "CET1")
        ]
        + [("QZ999", "QZ", "T2", "fail", "QZ999 T2: mask is empty", "excluded")],
        columns=["patient_id", "center", "sequence", "status", "reason", "patient_status"],
    )
    write_tsv(qc, out.setdefault("qc", path("qc/qc.tsv")))

    # final-model predictions of two models, nested-CV out-of-fold predictions on train
    y = split["label"].to_numpy()
    predictions, nested = [], []
    for k, model in enumerate(MODELS[:2]):
        score = 1 / (1 + np.exp(-(1.5 * (y - 0.5) + rng.normal(scale=1.0 + k / 2, size=len(y)))))
        predictions.append(
            split[["patient_id", "cohort"]].assign(model=model, probability=score, label=y)
        )
        train = split["cohort"] == "train"
        oof = 1 / (1 + np.exp(-(1.2 * (y[train] - 0.5) + rng.normal(size=train.sum()))))
        nested.append(
            pd.DataFrame(
                {
                    "patient_id": split.loc[train, "patient_id"],
                    "model": model,
                    "outer_fold": np.arange(train.sum()) % 3,
                    "probability": oof,
                    "label": y[train],
                }
            )
        )
    predictions = pd.concat(predictions, ignore_index=True)
    records = [
        {"model": m, "threshold": 0.4 + k / 10, "source": "Youden J on CV predictions of the final"}
        for k, m in enumerate(MODELS[:2])
    ] + [{"model": m, "threshold": None, "failed": True, "reason": "x"} for m in MODELS[2:]]
    tables = evaluation.evaluation_tables(
        predictions, pd.concat(nested), MODELS, threshold_records=records
    )
    write_tsv(tables.metrics, out.setdefault("metrics", path("evaluation/metrics.tsv")))
    out["best_params"] = []
    for k, model in enumerate(MODELS[:2]):
        reasons = {"ValueError: degenerate fold": k} if k else {}
        best = {"model": model, "n_trials_finished": 10, "n_failed": k, "failure_reasons": reasons}
        io.write_json(best, path(f"models/{model}/best_params.json"))
        out["best_params"].append(path(f"models/{model}/best_params.json"))
    io.write_json(tables.chosen, out.setdefault("chosen", path("evaluation/chosen.json")))
    final = tables.metrics[tables.metrics["cohort"] != evaluation.NESTED_CV]
    plots.plot_roc_curves(tables.roc, out.setdefault("roc", path("figures/roc.png")), final)
    plots.plot_pr_curves(tables.pr, out.setdefault("pr", path("figures/pr.png")), final)
    plots.plot_calibration_curves(
        tables.calibration, out.setdefault("calibration", path("figures/calibration.png"))
    )
    curves = decision_curves(predictions, threshold_grid(0.05, 0.95, 0.05))
    write_tsv(beneficial_ranges(curves), out.setdefault("dca_ranges", path("evaluation/dca.tsv")))
    write_tsv(
        net_benefit_ci(predictions, [0.3, 0.5], n_bootstrap=50, seed=2),
        out.setdefault("net_benefit_ci", path("evaluation/net_benefit_ci.tsv")),
    )
    plots.plot_decision_curves(curves, out.setdefault("dca", path("figures/dca.png")))

    # clinical table: EBV-DNA carries the signal, so a multivariable model exists
    clinical = split[["patient_id", "cohort"]].assign(
        response=y,
        age=rng.normal(48, 10, len(y)).round(),
        ebv_dna=np.exp(rng.normal(6 - 1.5 * y, 1.0)),
        ldh=rng.normal(190, 40, len(y)),
        clinical_stage=rng.integers(2, 5, len(y)),
    )
    chosen = tables.chosen["model"]
    analysis = clinical_analysis(
        clinical,
        "response",
        ["age", "ebv_dna", "ldh"],
        ["clinical_stage"],
        ["ebv_dna", "ldh", "clinical_stage"],
        radiomics=predictions[predictions["model"] == chosen],
        radiomics_name=chosen,
    )
    write_tsv(analysis.table1, out.setdefault("table1", path("clinical/table1.tsv")))
    write_tsv(analysis.table2, out.setdefault("table2", path("clinical/table2.tsv")))
    write_tsv(
        analysis.stepwise.coefficients, out.setdefault("multivariable", path("clinical/mv.tsv"))
    )
    io.write_json(
        {"selected": analysis.stepwise.selected, "note": analysis.stepwise.note, "n": 60},
        out.setdefault("clinical_model", path("clinical/clinical_model.json")),
    )
    write_tsv(analysis.comparator_aucs, out.setdefault("biomarker_aucs", path("clinical/auc.tsv")))
    write_tsv(analysis.delong_tests, out.setdefault("delong_tests", path("clinical/delong.tsv")))

    # selection figures and table
    selected = pd.DataFrame({"feature": features.columns[:2], "coefficient": [0.8, -0.5]})
    write_tsv(selected, out.setdefault("selected_features", path("selection/selected.tsv")))
    io.write_json(
        {"lambda": 0.05, "rule": "min", "n_input": 3000, "n_mrmr": 100, "n_selected": 2},
        out.setdefault("lasso_lambda", path("selection/lambda.json")),
    )
    lambdas = np.logspace(-3, 0, 12)
    plots.plot_lasso_path(
        lambdas,
        np.outer(1 - lambdas, [0.8, -0.5, 0.1]) * (lambdas[:, None] < 0.5),
        0.05,
        out.setdefault("lasso_path", path("figures/lasso_path.png")),
    )
    plots.plot_lasso_cv(
        lambdas,
        1.2 + (np.log10(lambdas) + 1.3) ** 2 / 5,
        np.full(12, 0.05),
        0.05,
        out.setdefault("lasso_cv", path("figures/lasso_cv.png")),
    )
    train_features = features[(split["cohort"] == "train").to_numpy()]
    plots.plot_correlation_heatmap(
        train_features, out.setdefault("correlation", path("figures/correlation.png"))
    )
    icc = pd.DataFrame({"feature": features.columns, "icc": [0.95, 0.9, 0.5]})
    plots.plot_icc_histogram(icc, 0.85, out.setdefault("icc_histogram", path("figures/icc.png")))
    icc = icc.assign(robust=icc["icc"] > 0.85, n_patients=[7, 7, 6], reference="train")
    write_tsv(icc, out.setdefault("icc", path("features/icc.tsv")))
    non_finite = pd.DataFrame(
        {
            "feature": ["T1__shape_Flatness"],
            "n_nan_train": [4],
            "n_inf_train": [1],
            "share_train": [0.12],
            "n_nan_other": [2],
            "n_inf_other": [0],
            "action": ["dropped"],
        }
    )
    write_tsv(non_finite, out.setdefault("non_finite", path("selection/non_finite.tsv")))

    # SHAP of a small fitted pipeline, explained on the test patients
    train = (split["cohort"] == "train").to_numpy()
    pipe = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    pipe.fit(features[train], y[train])
    shap = explain_chosen_model(pipe, features, split.set_index("patient_id")["cohort"], seed=1)
    io.write_json(
        {"status": "ok", **shap.summary(chosen)},
        out.setdefault("shap_summary", path("shap/shap.json")),
    )
    write_tsv(
        importance_table(shap), out.setdefault("shap_importance", path("shap/importance.tsv"))
    )
    plots.plot_shap_beeswarm(
        shap.values,
        shap.feature_values,
        shap.features,
        out.setdefault("shap_beeswarm", path("figures/beeswarm.png")),
    )
    plots.plot_shap_bar(
        shap.values, shap.features, out.setdefault("shap_bar", path("figures/bar.png"))
    )

    config = {"seed": 20251121, "models": MODELS, "evaluation": {"ci_method": "delong"}}
    record = provenance_record(config, [out["split"], out["qc"]])
    # inputs by relative name, so two builds in different folders give the same record
    record["inputs"] = {
        Path(k).relative_to(root).as_posix(): v for k, v in record["inputs"].items()
    }
    write_provenance(record, out.setdefault("provenance", path("report/provenance.json")))
    return out


PARAMS = {"positive_label": "CR", "negative_label": "non-CR", "entry_p": 0.1}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    inputs = build_results(root)
    return assemble.write_standalone_report(root / "report" / "index.html", inputs, PARAMS), inputs


def section_ids(document: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', document)


def test_every_section_is_present_in_order(report):
    path, _ = report
    assert section_ids(path.read_text()) == list(kit.SECTION_IDS)


def test_gaps_say_what_is_missing_and_why(report):
    document = report[0].read_text()
    assert "Model svm" in document and "failed to fit" in document
    assert "one class only" in document  # external centre XC
    assert "Chosen model: " in document
    assert "nested cross-validation" in document


def test_report_shows_net_benefit_with_cis(report):
    document = report[0].read_text()
    assert "Net benefit of the chosen model and treat-all" in document


def test_report_lists_non_finite_features(report):
    document = report[0].read_text()
    assert "1 feature(s) have NaN or infinite values: 1 dropped" in document
    assert "T1__shape_Flatness" in document


def test_report_counts_failed_trials_per_model(report):
    document = report[0].read_text()
    assert "failed trials" in document and "1 x ValueError: degenerate fold" in document


def test_report_says_how_many_patients_the_icc_rests_on(report):
    document = report[0].read_text()
    assert "ICC(2,1) rests on 7 training-cohort patients" in document
    assert "2 of 3 features are robust" in document


def test_chosen_model_comes_from_nested_cv_only(report):
    _, inputs = report
    chosen = json.loads(Path(inputs["chosen"]).read_text())
    nested = pd.read_csv(inputs["metrics"], sep="\t").query("cohort == 'nested_cv'")
    best = nested.sort_values("auc", ascending=False)["model"].iloc[0]
    assert chosen["model"] == best
    assert [r["model"] for r in chosen["ranking"]] == list(
        nested.sort_values("auc", ascending=False)["model"]
    )


def test_report_is_byte_stable(report, tmp_path):
    """Same inputs, built again elsewhere: the same bytes (no timestamp, stable PNGs)."""
    again = assemble.write_standalone_report(
        tmp_path / "index.html", build_results(tmp_path), PARAMS
    )
    assert again.read_bytes() == report[0].read_bytes()


def test_report_with_almost_nothing_still_has_every_section(tmp_path):
    """A run where most stages produced nothing: every section is there, as a gap."""
    model = tmp_path / "clinical_model.json"
    model.write_text(
        json.dumps({"selected": [], "note": "no clinical variable had univariate p < 0.1"})
    )
    inputs = {"clinical_model": str(model), "metrics": str(tmp_path / "absent.tsv")}
    path = assemble.write_standalone_report(tmp_path / "index.html", inputs, PARAMS)
    document = path.read_text()
    assert section_ids(document) == list(kit.SECTION_IDS)
    assert "no clinical variable had univariate p &lt; 0.1" in document
    assert document.count('class="gap"') >= 8


def test_a_broken_file_costs_one_section_only(report, tmp_path):
    inputs = dict(report[1], metrics=str(tmp_path / "metrics.tsv"))
    Path(inputs["metrics"]).write_text("not\ta\tmetrics\ttable\n1\t2\t3\t4\n")
    document = assemble.write_standalone_report(tmp_path / "index.html", inputs, PARAMS).read_text()
    assert section_ids(document) == list(kit.SECTION_IDS)
    table3 = document.split('<section id="table3">')[1].split("</section>")[0]
    assert 'class="gap"' in table3
    assert "data:image/png;base64" in document.split('<section id="shap">')[1]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium not found: the report browser test needs Debian's chromium package "
            "(apt-get install -y chromium)"
        )
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_report_opens_in_headless_chromium(report, tmp_path):
    path, _ = report
    proc = _run_chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", path.as_uri())
    dom = proc.stdout
    assert "<body" in dom, (
        f"chromium printed no DOM (exit {proc.returncode}): {proc.stderr[-2000:]}"
    )
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert total and loaded, "the page's load handler did not run"
    # 10 figures: ROC, PR, calibration, DCA, ICC, LASSO path + CV, correlation, 2 x SHAP
    assert int(total.group(1)) == 10
    assert int(loaded.group(1)) == int(total.group(1)), "some images did not load"
    assert section_ids(dom) == list(kit.SECTION_IDS)


def test_report_screenshot(report, tmp_path):
    path, _ = report
    shot = tmp_path / "report.png"
    proc = _run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,4000",
        "--virtual-time-budget=10000",
        path.as_uri(),
    )
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        # a rendered page, not a blank one: many distinct colours
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def _toy_predictions(rng, shift: float = 0.0):
    """Two models on train/test, and their nested-CV out-of-fold predictions (3 folds)."""
    y = np.tile([0, 1], 30)
    rows, oof = [], []
    for model, noise in (("knn", 1.5), ("logistic_regression", 0.8)):
        for cohort in ("train", "test"):
            p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=noise, size=y.size) + shift)))
            rows.append(
                pd.DataFrame(
                    {
                        "patient_id": [f"{cohort}{i}" for i in range(y.size)],
                        "cohort": cohort,
                        "model": model,
                        "probability": p,
                        "label": y,
                    }
                )
            )
        p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=noise, size=y.size))))
        oof.append(
            pd.DataFrame(
                {
                    "patient_id": [f"train{i}" for i in range(y.size)],
                    "model": model,
                    "outer_fold": np.arange(y.size) % 3,
                    "probability": p,
                    "label": y,
                }
            )
        )
    return pd.concat(rows, ignore_index=True), pd.concat(oof, ignore_index=True)


def test_nested_cv_rows_are_mean_and_sd_of_outer_fold_aucs():
    from sklearn.metrics import roc_auc_score

    predictions, nested = _toy_predictions(np.random.default_rng(1))
    tables = evaluation.evaluation_tables(
        predictions, nested, ["knn", "logistic_regression"], threshold_method="youden_nested_cv"
    )
    rows = tables.metrics[tables.metrics["cohort"] == evaluation.NESTED_CV].set_index("model")
    for model, g in nested.groupby("model"):
        folds = [roc_auc_score(f["label"], f["probability"]) for _, f in g.groupby("outer_fold")]
        assert rows.loc[model, "auc"] == pytest.approx(np.mean(folds))
        assert rows.loc[model, "auc_sd"] == pytest.approx(np.std(folds, ddof=1))
        assert rows.loc[model, "n_folds"] == 3
    # nested-CV row first per model, then train, test
    assert list(tables.metrics["cohort"][:3]) == [evaluation.NESTED_CV, "train", "test"]


def test_thresholds_and_choice_ignore_test_predictions():
    predictions, nested = _toy_predictions(np.random.default_rng(2))
    shifted, _ = _toy_predictions(np.random.default_rng(2), shift=3.0)
    shifted = shifted.assign(cohort=predictions["cohort"])
    # only the test rows change: train rows stay as they were
    shifted.loc[shifted["cohort"] == "train"] = predictions.loc[predictions["cohort"] == "train"]
    kw = {"models": ["knn", "logistic_regression"], "threshold_method": "youden_nested_cv"}
    one = evaluation.evaluation_tables(predictions, nested, **kw)
    two = evaluation.evaluation_tables(shifted, nested, **kw)
    pd.testing.assert_frame_equal(one.thresholds, two.thresholds)
    assert one.chosen == two.chosen
    assert one.chosen["model"] == "logistic_regression"


def test_final_models_are_judged_at_the_fit_final_thresholds():
    predictions, nested = _toy_predictions(np.random.default_rng(3))
    records = [
        {"model": "knn", "threshold": 0.31, "source": "final CV"},
        {"model": "logistic_regression", "threshold": 0.62, "source": "final CV"},
    ]
    tables = evaluation.evaluation_tables(
        predictions, nested, ["knn", "logistic_regression"], threshold_records=records
    )
    assert list(tables.thresholds.columns[:3]) == ["model", "threshold", "source"]
    assert tables.thresholds.set_index("model")["threshold"].to_dict() == {
        "knn": 0.31,
        "logistic_regression": 0.62,
    }
    final = tables.metrics[tables.metrics["cohort"] != evaluation.NESTED_CV]
    assert final.groupby("model")["threshold"].unique().map(list).to_dict() == {
        "knn": [0.31],
        "logistic_regression": [0.62],
    }
    # the nested-CV rows keep their own out-of-fold threshold, listed beside it
    nested_rows = tables.metrics[tables.metrics["cohort"] == evaluation.NESTED_CV]
    assert (
        nested_rows.set_index("model")["threshold"]
        == tables.thresholds.set_index("model")["nested_cv_threshold"]
    ).all()


def test_feature_table_runs_say_why_clinical_parts_are_missing(tmp_path):
    params = dict(PARAMS, features_table=True)
    document = assemble.write_standalone_report(tmp_path / "index.html", {}, params).read_text()
    for section in ("table1", "table2"):
        body = document.split(f'<section id="{section}">')[1].split("</section>")[0]
        assert "no clinical table: modelling started from a ready feature table" in body
    assert "No image QC" in document


def test_a_model_missing_an_outer_fold_cannot_be_chosen():
    predictions, nested = _toy_predictions(np.random.default_rng(2))
    kw = {"models": ["knn", "logistic_regression"], "threshold_method": "youden_nested_cv"}
    full = evaluation.evaluation_tables(predictions, nested, **kw)
    assert full.chosen["model"] == "logistic_regression"
    # the best model's outer fold 2 failed: its mean over 2 folds must not win
    gap = nested[~((nested["model"] == "logistic_regression") & (nested["outer_fold"] == 2))]
    tables = evaluation.evaluation_tables(predictions, gap, **kw)
    assert tables.chosen["model"] == "knn"
    assert tables.chosen["models_missing_outer_folds"] == ["logistic_regression"]
    # with the configured fold count, even a model missing a fold everyone lacks is out
    again = evaluation.evaluation_tables(predictions, gap, outer_folds=4, **kw)
    assert again.chosen["model"] is None


def test_evaluate_rule_draws_the_chosen_models_smoothed_calibration(tmp_path):
    from types import SimpleNamespace

    from npc_radiomics.metrics import CALIBRATION_COLUMNS, METRICS_COLUMNS

    predictions, nested = _toy_predictions(np.random.default_rng(4))
    write_tsv(predictions, tmp_path / "predictions.tsv")
    write_tsv(nested, tmp_path / "nested.tsv")
    paths = []
    for model in ("knn", "logistic_regression"):
        paths.append(tmp_path / f"{model}.json")
        io.write_json({"model": model, "threshold": 0.5, "source": "final CV"}, paths[-1])
    names = ["metrics", "thresholds", "roc", "pr", "calibration", "calibration_smooth"]
    out = SimpleNamespace(
        **{n: tmp_path / f"{n}.tsv" for n in names},
        chosen=tmp_path / "chosen.json",
        **{f: tmp_path / f"{f}.png" for f in ("roc_figure", "pr_figure", "calibration_figure")},
    )
    evaluation.evaluation_rule(
        tmp_path / "predictions.tsv",
        tmp_path / "nested.tsv",
        out,
        threshold_paths=paths,
        models=["knn", "logistic_regression"],
        ci_method="delong",
        n_bootstrap=50,
        calibration_bins=5,
        seed=1,
    )
    chosen = json.loads(out.chosen.read_text())["model"]
    smooth = pd.read_csv(out.calibration_smooth, sep="\t")
    assert set(smooth["model"]) == {chosen} and set(smooth["cohort"]) == {"train", "test"}
    assert out.calibration_figure.stat().st_size > 5000
    metrics = pd.read_csv(out.metrics, sep="\t")
    assert list(metrics.columns[: len(METRICS_COLUMNS)]) == METRICS_COLUMNS
    assert metrics[CALIBRATION_COLUMNS].notna().all().all()
    thresholds = pd.read_csv(out.thresholds, sep="\t")
    assert list(thresholds.columns[:3]) == ["model", "threshold", "source"]


def test_nested_model_choice_scores_the_fold_winner_on_held_out_patients():
    from npc_radiomics.metrics import auc

    predictions, nested = _toy_predictions(np.random.default_rng(5))
    # inner-CV AUCs (outer-training part only): knn wins fold 0, logistic regression 1-2
    inner = {("knn", 0): 0.9, ("logistic_regression", 0): 0.7}
    infos = [
        {
            "model": m,
            "outer_fold": k,
            "inner_cv_auc": inner.get((m, k), 0.8 if m == "knn" else 0.85),
        }
        for m in ("knn", "logistic_regression")
        for k in range(3)
    ]
    tables = evaluation.evaluation_tables(
        predictions,
        nested,
        ["knn", "logistic_regression"],
        threshold_method="youden_nested_cv",
        fold_infos=infos,
    )
    honest = tables.chosen["nested_choice"]
    assert [f["model"] for f in honest["folds"]] == [
        "knn",
        "logistic_regression",
        "logistic_regression",
    ]
    expected = []
    for f in honest["folds"]:
        g = nested[(nested["model"] == f["model"]) & (nested["outer_fold"] == f["outer_fold"])]
        expected.append(auc(g["label"], g["probability"]))
    assert honest["auc_mean"] == pytest.approx(np.mean(expected))
    best = tables.chosen["ranking"][0]["auc_mean"]
    assert honest["auc_mean"] <= best + 1e-12  # the max of the per-model means is optimistic
    assert "optimistic" in tables.chosen["optimism_note"]
    # test-cohort labels play no part in it
    flipped = predictions.assign(
        label=np.where(
            predictions["cohort"] == "test", 1 - predictions["label"], predictions["label"]
        )
    )
    again = evaluation.evaluation_tables(
        flipped,
        nested,
        ["knn", "logistic_regression"],
        threshold_method="youden_nested_cv",
        fold_infos=infos,
    )
    assert again.chosen == tables.chosen
