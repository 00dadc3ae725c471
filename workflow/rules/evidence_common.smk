# Constants and input functions of the evidence rules (baselines, permutation, evidence,
# stability, checklist, runcrate): kept apart from the rules, as in bundle_common.smk.
import subprocess

# ---- baselines.smk
# Baselines on the same footing as the radiomics models (pipeline step 22): volume only,
# the stepwise clinical model and radiomics score + clinical, with the same split, outer
# folds, threshold rule, Table 3 rows and DeLong tests against the chosen model.

# Start-up: the volume's sequence must be a configured one (images runs); a ready feature
# table without the volume column gets a warning and the report shows the gap.
# baselines.volume_sequence null: the first configured sequence.
VOLUME_SEQUENCE = config["baselines"]["volume_sequence"] or SEQUENCES[0]
if config["baselines"]["enabled"] and not PREDICT and MAIN_PROCESS:
    _volume = f"{VOLUME_SEQUENCE}__{config['baselines']['volume_feature']}"
    if not FEATURES_IN and VOLUME_SEQUENCE not in SEQUENCES:
        _stop(
            InputError(
                f"config key baselines.volume_sequence: {VOLUME_SEQUENCE!r} is not one of "
                f"the sequences {SEQUENCES}"
            )
        )
    if FEATURES_IN:
        from npc_radiomics.validation.baselines import table_has_column

        if not table_has_column(config["features_table"], _volume, FEATURES_SHEET):
            _warn(
                [
                    f"baselines: no column {_volume} in the feature table: no volume-only "
                    "baseline (the report shows the gap)"
                ]
            )


def baselines_inputs(wildcards):
    """Features (no robust filter: the volume may fail the ICC), split, the chosen model's
    predictions and, when the run has one, the clinical table."""
    inputs = {
        "features": all_features(),
        "split": SPLIT_TSV,
        "predictions": PREDICTIONS_TSV,
        "nested": NESTED_CV_TSV,
        "chosen": CHOSEN_MODEL_JSON,
    }
    if CLINICAL_TSV is not None:
        inputs["clinical"] = CLINICAL_TSV
    inputs["inner_scores"] = INNER_SCORES_TSV
    return inputs


# The chosen model's inner out-of-fold scores in each outer fold (made by inner_scores), what
# the combined baseline stacks, so no training row's score saw the fold's held-out patients.
INNER_SCORES_TSV = f"{BASELINES_DIR}/inner_scores.tsv"


def inner_scores_inputs(wildcards):
    """The design, the chosen model, every model's outer-fold parameters and the outer
    folds' selection caches (rule cv_selection)."""
    inputs = modelling_inputs(wildcards)
    folds = range(TUNING_SETTINGS["outer_folds"])
    inputs.update(
        chosen=CHOSEN_MODEL_JSON,
        fold_params=expand(NESTED_FOLD_PARAMS, model=config["models"], fold=folds),
        selection=[CV_SELECTION.format(context=f"outer{k}") for k in folds],
    )
    return inputs


def baselines_targets():
    if not config["baselines"]["enabled"]:
        return []
    return [f"{BASELINES_DIR}/metrics.tsv"]


# ---- permutation.smk
# Negative control (pipeline step 22): the whole procedure (every configured model, the
# model chosen inside each outer fold) rerun on permuted training labels, one job per
# permutation; the null distribution of the procedure's nested-CV AUC (the headline) and
# the permutation p-value of the real one.


def permutation_outputs():
    if not config["permutation"]["n"]:
        return []
    return [f"{PERMUTATION_DIR}/permutation.tsv"]


# ---- evidence.smk
# Is there anything to show? (pipeline step 22): events per candidate variable, Riley et
# al.'s minimum sample size, the headline (the procedure's nested-CV AUC, model chosen in
# each outer fold, with its 95% CI), the permutation p-value of the same statistic and its
# floor 1/(n+1), and a plain verdict for the report's first screen.


def evidence_inputs(wildcards):
    inputs = modelling_inputs(wildcards)
    inputs.update(
        chosen=CHOSEN_MODEL_JSON,
        selected=f"{SELECTION_DIR}/selected_features.tsv",
    )
    inputs.update(
        {"permutation": permutation_outputs()[0]} if permutation_outputs() else {}
    )
    return inputs


def evidence_report_inputs():
    """The standalone report's inputs of the step-22 sections (evidence_report.py)."""
    inputs = {
        "evidence": EVIDENCE_JSON,
        "stability_frequency": f"{STABILITY_DIR}/selection_frequency.tsv",
        "stability_jaccard": f"{STABILITY_DIR}/jaccard.tsv",
        "stability_figure": f"{FIGURES_DIR}/selection_frequency.png",
        "checklist": f"{REPORT_DIR}/checklist.tsv",
    }
    if config["baselines"]["enabled"]:
        inputs.update(
            baselines_metrics=f"{BASELINES_DIR}/metrics.tsv",
            baselines_summary=f"{BASELINES_DIR}/baselines.json",
            baselines_delong=f"{BASELINES_DIR}/delong_tests.tsv",
            baselines_reclassification=f"{BASELINES_DIR}/reclassification.tsv",
        )
    if permutation_outputs():
        inputs.update(
            permutation=f"{PERMUTATION_DIR}/permutation.tsv",
            permutation_figure=f"{FIGURES_DIR}/permutation_null.png",
        )
    return inputs


# ---- stability.smk
# Selection stability (pipeline step 22): the selection refitted on stability.n_bootstrap
# bootstrap resamples of the training set and on the whole training set; how often each
# feature survived mRMR and LASSO, and the mean pairwise Jaccard index of the selected sets.


# ---- checklist.smk
# Reporting checklist (pipeline step 22): TRIPOD+AI, CLEAR and METRICS items filled from
# this run's result files, each linked to its report section; the rest marked for the user.


# ---- runcrate.smk
# A Workflow Run RO-Crate of the run (pipeline step 22): results/ro-crate-metadata.json,
# every result file with its checksum linked to the rule that made it, the inputs with
# checksums, the config, the code version and the software versions.


def _git_commit():
    """The repository's commit (``-dirty`` with uncommitted changes), or None."""
    try:
        git = ["git", "-C", str(BASEDIR)]
        commit = subprocess.run(
            git + ["rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            git + ["status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


GIT_COMMIT = _git_commit()
