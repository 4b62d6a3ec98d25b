"""The frame of hsm's HTML reports: one self-contained page, its tables and figures (pure).

A page loads nothing: its style and its one small script (sorting a table by a clicked
header) are inline, and its Content-Security-Policy forbids any fetch, so it opens the
same from a cluster's file system as from a laptop. Every text given here is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hsm.core.svg import clip, esc, fmt

MAX_CELL = 120  # characters shown in a table cell (the whole text is its tooltip)
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f7f7f9}
header{background:#243447;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d3df}nav{float:right;color:#c9d3df;font-size:13px}nav a{color:#9cc3ff}
nav b{color:#fff}main{padding:8px 28px 40px;max-width:1500px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{background:#fff;border:1px solid #e2e2e6;
border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
.figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;border:1px solid #e2e2e6;border-radius:6px;
padding:8px}figcaption{font-size:12px;color:#555;margin-bottom:4px}svg.chart{display:block;max-width:100%;height:auto}
.note{color:#666;font-size:12.5px}.legend span{display:inline-block;margin-right:14px;font-size:12.5px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border-radius:2px}
table{border-collapse:collapse;background:#fff;font-size:12.5px}th,td{border:1px solid #e2e2e6;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#eef1f5;position:sticky;top:0}td.n{text-align:right;
font-variant-numeric:tabular-nums}table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
.scroll{max-height:720px;overflow:auto;border:1px solid #e2e2e6;display:inline-block;max-width:100%}
.s-completed{color:#2d7d3f}.s-failed{color:#c0392b}.s-retried{color:#b9770e}.s-running{color:#2e6bc4}
pre{background:#1e1e1e;color:#ddd;padding:8px;overflow:auto;font-size:12px;margin:4px 0;max-height:260px}
details{background:#fff;border:1px solid #e2e2e6;border-radius:6px;margin:6px 0;padding:6px 10px}
summary{cursor:pointer}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}dt{color:#666}
dd{margin:0}footer{color:#888;font-size:12px;padding:0 28px 20px}
"""

# Sorts a table.sortable by the clicked header: numbers as numbers, empty cells last.
SCRIPT = """
(function(){
function key(c){var v=c.getAttribute('data-v');return v===null?c.textContent.trim():v;}
function cmp(a,b){if(a===''&&b==='')return 0;if(a==='')return 1;if(b==='')return -1;
var x=Number(a),y=Number(b);if(!isNaN(x)&&!isNaN(y))return x-y;return a<b?-1:a>b?1:0;}
var heads=document.querySelectorAll('table.sortable th');
Array.prototype.forEach.call(heads,function(th){th.addEventListener('click',function(){
var row=th.parentNode,table=row.closest('table'),body=table.tBodies[0],
i=Array.prototype.indexOf.call(row.children,th),dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
Array.prototype.forEach.call(row.children,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(p,q){var a=key(p.cells[i]),b=key(q.cells[i]);if(a===''||b==='')return cmp(a,b);return dir*cmp(a,b);});
rows.forEach(function(r){body.appendChild(r);});});});
})();
"""


# The reports of one sweep, side by side in its reports/ directory.
REPORTS = (("Completion", "completion_report.html"), ("Sources", "source_utilization.html"),
           ("Errors", "error_analysis.html"))


def nav(current: str) -> str:
    """Links to the sweep's other reports (relative: they lie in the same directory)."""
    return '<nav>' + " · ".join(f"<b>{esc(label)}</b>" if name == current else f'<a href="{esc(name)}">{esc(label)}</a>'
                                for label, name in REPORTS) + "</nav>"


def page(title: str, subtitle: str, body: str, footer: str = "", current: str = "") -> str:
    """A whole HTML document: header (with links to the other reports), body, footer, with the
    style and the sorting script inline."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header>{nav(current)}<h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>{body}</main>"
        f"<footer>{esc(footer)}</footer><script>{SCRIPT}</script></body></html>\n"
    )


@dataclass(frozen=True)
class Cell:
    """A table cell: what it shows, the value it sorts by, and whether it is a number."""

    text: str
    sort: str | None = None
    numeric: bool = False
    css: str = ""
    title: str = ""  # the whole text, when `text` is cut


def cell(value: Any, digits: int = 4) -> Cell:
    """A cell for a plain value: numbers right-aligned and sorted as numbers, None empty."""
    if value is None:
        return Cell("", "")
    if isinstance(value, bool):
        return Cell(str(value).lower())
    if isinstance(value, (int, float)):
        text = fmt(float(value)) if digits == 4 else f"{value:.{digits}f}"
        return Cell(text, repr(float(value)) if math.isfinite(value) else "", True)
    text = str(value)
    return Cell(clip(text, MAX_CELL), title=text) if len(text) > MAX_CELL else Cell(text)


def table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], sortable: bool = True, scroll: bool = True) -> str:
    """An HTML table; a sortable one sorts by the header clicked."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in row:
            attrs = ""
            if c.sort is not None:
                attrs += f' data-v="{esc(c.sort)}"'
            classes = " ".join(x for x in ("n" if c.numeric else "", c.css) if x)
            if classes:
                attrs += f' class="{classes}"'
            if c.title:
                attrs += f' title="{esc(c.title)}"'
            cells.append(f"<td{attrs}>{esc(c.text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    html = (f'<table{" class=sortable" if sortable else ""}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")
    return f'<div class="scroll">{html}</div>' if scroll else html


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Big numbers with a caption: (value, caption) pairs."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{esc(value)}</b><span>{esc(caption)}</span></div>' for value, caption in items) + "</div>"


def figure(svg: str, caption: str = "") -> str:
    """A chart in a frame, with a caption above it."""
    return f"<figure>{f'<figcaption>{esc(caption)}</figcaption>' if caption else ''}{svg}</figure>"


def legend(colors: Sequence[tuple[str, str]]) -> str:
    """Colour keys: (label, colour) pairs; the colour "ring" keys the ringed marks of a chart."""
    ring = "background:#fff;border:1.5px solid #333;border-radius:50%;width:9px;height:9px"
    return '<p class="legend">' + "".join(
        f'<span><i style="{ring if color == "ring" else f"background:{esc(color)}"}"></i>{esc(label)}</span>'
        for label, color in colors) + "</p>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def seconds(value: float | None) -> str:
    """A duration for people: `42.0 s`, `3m 05s`, `2h 04m`, `1d 03h`."""
    if value is None or not math.isfinite(value):
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    whole = int(round(value))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"
