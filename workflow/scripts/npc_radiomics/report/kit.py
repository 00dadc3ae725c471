"""The report's shared kit: section ids, reading result files by input key, gaps for
missing inputs, number formats and figures. Every section module builds on it; none of
them imports another section module (HTML building blocks: :mod:`npc_radiomics.report.html`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from npc_radiomics.report import html

log = logging.getLogger(__name__)

#: Inputs that exist only with a clinical table (not when starting from a feature table).
CLINICAL_KEYS = {"table1", "table2", "multivariable", "clinical_model", "biomarker_aucs"}


#: Section ids of the standalone report, in order (the browser test checks them all).
SECTION_IDS = (
    "evidence",
    "cohort",
    "table1",
    "table2",
    "features",
    "selection-stability",
    "table3",
    "chosen-model",
    "curves",
    "clinical-comparison",
    "baselines",
    "permutation",
    "decision-curves",
    "shap",
    "centres",
    "checklist",
    "provenance",
)


def result_path(inputs: dict, key: str) -> Path | None:
    """The input file of ``key``, or None when not given or absent on disk."""
    value = inputs.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if not value:
        return None
    path = Path(value)
    return path if path.exists() and path.stat().st_size > 0 else None


def read_tsv(inputs: dict, key: str, dtype: dict | None = None) -> pd.DataFrame | None:
    path = result_path(inputs, key)
    if path is None:
        return None
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str, **(dtype or {})})


def read_json(inputs: dict, key: str) -> dict | None:
    path = result_path(inputs, key)
    return json.loads(path.read_text()) if path is not None else None


def missing(inputs: dict, key: str, what: str, params: dict | None = None) -> str:
    """A gap for a missing input, naming the file the report looked for."""
    if key in CLINICAL_KEYS and not inputs.get(key) and (params or {}).get("features_table"):
        return html.gap(what, "no clinical table: modelling started from a ready feature table")
    value = inputs.get(key)
    where = f" ({value})" if value else ""
    return html.gap(what, f"not produced by this run{where}")


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def png_width(path: Path) -> int | None:
    """Pixel width from a PNG's IHDR chunk (None if the file is not a PNG)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big")


def result_figure(inputs: dict, key: str, caption: str) -> str:
    """An embedded figure, or a gap naming the missing file."""
    path = result_path(inputs, key)
    if path is None:
        return missing(inputs, key, caption)
    block = html.figure(path, caption)
    width = png_width(path)
    if width:
        # 300-dpi figures at half their pixel width: about print size on screen, so a
        # one-panel figure does not fill the page and a four-panel one still fits it
        style = f'<img style="width:{(width + 1) // 2}px;max-width:100%" '
        block = block.replace("<img ", style, 1)
    return block


def format_p_values(df: pd.DataFrame) -> pd.DataFrame:
    """p-value columns (``p_value``, ``*_p``, ``hl_p``) as text, "<0.001" for the smallest."""
    out = df.copy()
    for col in out.columns:
        if col in ("p_value", "p_holm", "p") or str(col).endswith("_p"):
            values = pd.to_numeric(out[col], errors="coerce")
            out[col] = [
                "" if not np.isfinite(v) else "<0.001" if v < 0.001 else f"{v:.3f}" for v in values
            ]
    return out
