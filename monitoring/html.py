"""Small self-contained HTML pages: inline CSS, images as base64 data URIs, no external resources.

Used by the monitoring summary page and the compliance pack, which must open anywhere (an email
attachment, an air-gapped review machine) and render the same: no scripts, fonts, stylesheets or
images are fetched. Writes nothing itself.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #d9e2ec;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}p,li{line-height:1.45}.muted{color:#627d98;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;width:auto;max-width:100%}
th,td{border:1px solid #d9e2ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:700;font-size:13px;color:#fff}
.ok{background:#2f9e44}.warn{background:#f08c00}.alert{background:#e03131}.na{background:#868e96}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:10px 14px;min-width:170px;background:#fbfcfe}
.card .v{font-size:22px;font-weight:700}.card .k{font-size:12px;color:#627d98}
details{margin:8px 0}summary{cursor:pointer;color:#334e68}
img{max-width:100%;border:1px solid #d9e2ec;margin:6px 0}
pre{background:#f0f4f8;padding:10px;font-size:12px;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
.bar{display:inline-block;height:10px;background:#4c6ef5;vertical-align:middle}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers rounded for reading; None and NaN as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def badge(level: str | None) -> str:
    cls = level if level in ("ok", "warn", "alert") else "na"
    return f'<span class="badge {cls}">{esc(level or "n/a")}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped except the columns whose indices are in `raw` (HTML)."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            if i in raw:
                out.append(f"<td>{cell}</td>")
            elif isinstance(cell, int | float) and not isinstance(cell, bool):
                out.append(f'<td class="num">{esc(fmt(cell))}</td>')
            else:
                out.append(f"<td>{esc(fmt(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Key figures: (label, value HTML) pairs."""
    body = "".join(f'<div class="card"><div class="v">{v}</div><div class="k">{esc(k)}</div></div>'
                   for k, v in items)
    return f'<div class="cards">{body}</div>'


def png_img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure_img(fig: Any, alt: str, dpi: int = 100) -> str:
    """A matplotlib figure as an inline PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return png_img(buf.getvalue(), alt)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed), chosen when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def pre_json(value: Any, summary: str | None = None) -> str:
    """JSON in a <pre>; with `summary`, folded in a <details> element (no script needed)."""
    body = f"<pre>{esc(json.dumps(value, indent=2, default=str, ensure_ascii=False))}</pre>"
    return f"<details><summary>{esc(summary)}</summary>{body}</details>" if summary else body


def page(title: str, body: str) -> str:
    """A complete page: inline CSS, no scripts, no external resources."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
