"""The standalone report (rule ``standalone_report``): a paper-style results section
assembled from the result files.

Every piece is optional: a missing file, a model that failed, a cohort with one class or
no clinical variable passing the entry p shows as a gap with its reason, and the rest of
the report is still made. The sections live in :mod:`npc_radiomics.report.sections`,
:mod:`npc_radiomics.report.evidence` and :mod:`npc_radiomics.report.checklist`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from npc_radiomics.report import html
from npc_radiomics.report.checklist import checklist_section
from npc_radiomics.report.evidence import (
    baselines_section,
    evidence_section,
    permutation_section,
    stability_section,
)
from npc_radiomics.report.kit import SECTION_IDS, read_json
from npc_radiomics.report.sections import (
    centres_section,
    chosen_section,
    clinical_comparison_section,
    cohort_section,
    curves_section,
    decision_curves_section,
    features_section,
    provenance_section,
    shap_section,
    table1_section,
    table2_section,
    table3_section,
)

log = logging.getLogger(__name__)


SECTION_BUILDERS = (
    evidence_section,
    cohort_section,
    table1_section,
    table2_section,
    features_section,
    stability_section,
    table3_section,
    chosen_section,
    curves_section,
    clinical_comparison_section,
    baselines_section,
    permutation_section,
    decision_curves_section,
    shap_section,
    centres_section,
    checklist_section,
    provenance_section,
)


def report_sections(inputs: dict, params: dict) -> list[html.Section]:
    """All sections of the standalone report, in :data:`SECTION_IDS` order.

    inputs: key -> path (or a 0/1-element list) of each result file; missing keys or
    files become gaps. params: positive_label, negative_label, features_table, entry_p.
    A section whose files cannot be read becomes one gap with the error, so one broken
    file never costs the whole report.
    """
    sections = []
    for builder, key in zip(SECTION_BUILDERS, SECTION_IDS, strict=True):
        try:
            section = builder(inputs, params)
        except Exception as err:  # noqa: BLE001 - a broken section must not sink the report
            log.exception("report section %s failed", key)
            title = key.replace("-", " ").capitalize()
            section = html.Section(key, title, [html.gap(title, f"{type(err).__name__}: {err}")])
        assert section.key == key
        sections.append(section)
    return sections


def write_standalone_report(path: str | Path, inputs: dict, params: dict) -> Path:
    """Write results/report/index.html: no timestamp, so the bytes depend on inputs only."""
    chosen = read_json(inputs, "chosen") or {}
    subtitle = (
        "Multimodal MRI radiomics for short-term response (CR vs non-CR) in nasopharyngeal "
        "carcinoma. "
        + (f"Chosen model: {chosen['model']}." if chosen.get("model") else "No chosen model.")
    )
    return html.write_report(
        path,
        params.get("title", "npc-radiomics results"),
        subtitle,
        report_sections(inputs, params),
    )
