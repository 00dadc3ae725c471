"""The standalone HTML report: a paper-style results section in one self-contained file.

Figures are embedded as base64 PNG, tables as HTML, so the file can be mailed or archived
alone. A section whose input is missing (a model that failed, a cohort with one class)
shows the gap and its reason; the rest of the report is still made.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """
body{font-family:Georgia,'DejaVu Serif',serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.7em;border-bottom:2px solid #333;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #bbb}
h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0 1.2em;font-family:sans-serif}
th,td{border-top:1px solid #ccc;border-bottom:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#444}
.gap{background:#fff4e5;border-left:4px solid #e69500;padding:.5em 1em;font-size:.9em}
.note{font-size:.9em;color:#444}
pre{background:#f7f7f7;padding:.6em;font-size:.78em;overflow-x:auto}
nav ol{columns:2;font-size:.9em}
"""

# Marks the page as fully loaded with every image decoded; the browser test reads it.
LOAD_CHECK = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', imgs.length);
  document.body.setAttribute('data-images-loaded', ok);
});
</script>
"""


@dataclass
class Section:
    """One numbered section of the report: an id, a title and its HTML blocks."""

    key: str
    title: str
    blocks: list[str] = field(default_factory=list)

    def add(self, block: str) -> Section:
        self.blocks.append(block)
        return self


def text(paragraph: str, cls: str = "") -> str:
    """A paragraph of escaped text."""
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{html.escape(paragraph)}</p>"


def gap(what: str, reason: str) -> str:
    """A visible gap: what is missing and why."""
    return f'<div class="gap"><b>{html.escape(what)}</b>: {html.escape(reason)}</div>'


def table(df: pd.DataFrame | None, caption: str = "", digits: int = 3, max_rows: int = 400) -> str:
    """An HTML table with numbers rounded to ``digits``; a gap when ``df`` is None/empty."""
    if df is None or df.empty:
        return gap(caption or "table", "no rows")
    shown = df.head(max_rows).copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    body = shown.to_html(index=False, escape=True, border=0, na_rep="")
    cap = f"<p class='note'><b>{html.escape(caption)}</b></p>" if caption else ""
    more = text(f"({len(df) - max_rows} more rows not shown)", "note") if len(df) > max_rows else ""
    return cap + body + more


def figure(path: str | Path | None, caption: str) -> str:
    """A figure embedded as base64 PNG; a gap when the file is missing."""
    if path is None or not Path(path).exists() or Path(path).stat().st_size == 0:
        return gap(caption, f"figure not available ({path})")
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def preformatted(content: str) -> str:
    return f"<pre>{html.escape(content)}</pre>"


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole HTML document: title, table of contents, numbered sections."""
    toc = "".join(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{s.key}"><h2>{k}. {html.escape(s.title)}</h2>{"".join(s.blocks)}</section>'
        for k, s in enumerate(sections, start=1)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{text(subtitle, 'note')}<nav><ol>{toc}</ol></nav>"
        f"{body}{LOAD_CHECK}</body></html>\n"
    )


def write_report(path: str | Path, title: str, subtitle: str, sections: list[Section]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(title, subtitle, sections), encoding="utf-8")
    return path
