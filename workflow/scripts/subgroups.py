"""Rule subgroups: the chosen model's AUC and calibration-in-the-large per subgroup."""

from npc_radiomics.evaluation.subgroups import subgroups_rule
from npc_radiomics.glue.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
log.info(
    subgroups_rule(
        snakemake.input.predictions,
        snakemake.input.chosen,
        snakemake.input.split,
        snakemake.output[0],
        snakemake.input.get("clinical"),
        variables=p.variables,
        outcome=p.outcome,
        continuous=p.continuous,
        categorical=p.categorical,
        ci_method=p.ci_method,
        n_bootstrap=p.n_bootstrap,
        seed=p.seed,
        clinical_sheet=p.get("clinical_sheet"),
    )
)
