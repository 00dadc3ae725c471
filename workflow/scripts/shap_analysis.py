"""Rule shap_analysis: SHAP of the chosen model on the test set, training background."""

import json
from pathlib import Path

import joblib
import pandas as pd

from npc_radiomics.config import file_sha256
from npc_radiomics.errors import InputError
from npc_radiomics.io import write_tsv
from npc_radiomics.modelling import load_rule_design
from npc_radiomics.plots import plot_shap_bar, plot_shap_beeswarm
from npc_radiomics.results import placeholder_figure, write_json
from npc_radiomics.runtime import rule_setup
from npc_radiomics.shap_analysis import explain_chosen_model, importance_table

log = rule_setup(snakemake)
out = snakemake.output
model = json.loads(Path(snakemake.input.chosen).read_text())["model"]

if model is None:
    # No model survived nested CV: say so in every output instead of failing the run.
    reason = "no chosen model (no model has a nested-CV AUC)"
    write_json({"status": "unavailable", "model": None, "note": reason}, out.summary)
    write_tsv(pd.DataFrame(columns=["patient_id"]), out.values)
    write_tsv(
        pd.DataFrame(columns=["rank", "feature", "mean_abs_shap", "mean_shap"]), out.importance
    )
    placeholder_figure(out.beeswarm, reason)
    placeholder_figure(out.bar, reason)
    log.warning(reason)
else:
    # results/models/<model>/pipeline.joblib: the folder names the model
    pipelines = {Path(p).parent.name: p for p in snakemake.input.pipelines}
    if model not in pipelines:
        raise InputError(f"chosen model {model}: no fitted pipeline among {sorted(pipelines)}")
    pipeline_path = pipelines[model]
    # The pickle is only loaded when it is the file fit_final wrote (checksum beside it).
    expected = Path(f"{pipeline_path}.sha256").read_text().split()[0]
    if file_sha256(pipeline_path) != expected:
        raise InputError(f"{pipeline_path}: SHA-256 differs from {pipeline_path}.sha256")
    design = load_rule_design(snakemake.input, snakemake.params)
    result = explain_chosen_model(
        joblib.load(pipeline_path), design.X, design.cohort, snakemake.params.seed
    )
    write_json({"status": "ok", **result.summary(model)}, out.summary)
    write_tsv(result.values_table(), out.values)
    write_tsv(importance_table(result), out.importance)
    plot_shap_beeswarm(result.values, result.feature_values, result.features, out.beeswarm)
    plot_shap_bar(result.values, result.features, out.bar)
    log.info("SHAP of %s: max additivity error %.2e", model, result.max_additivity_error)
