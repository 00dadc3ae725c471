"""Rule decision_curves: net benefit per model and cohort, useful threshold ranges, net
benefit (and differences: model - treat-all, model - clinical model) with bootstrap CIs,
figure."""

from npc_radiomics.evaluation.dca import dca_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
log.info(
    dca_rule(
        snakemake.input.predictions,
        snakemake.output,
        p.thresholds,
        ci_thresholds=p.ci_thresholds,
        n_bootstrap=p.n_bootstrap,
        seed=p.seed,
        clinical_path=snakemake.input.get("clinical"),
    )
)
