"""The error analysis report as HTML (pure): categories, failures per source, each failure's
evidence and stderr, and what to do.

Its data is `hsm.commands.errors.analysis`: `failed` (each failed attempt with its category,
evidence, suggestion, stderr tail and outcome), `patterns`, `by_source`, `recommendations`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hsm.core import charts
from hsm.core.charts import OUTCOME_COLORS, Bar
from hsm.core.htmlpage import cell, figure, legend, note, page, section, table
from hsm.core.reports import header_cards, palette_of
from hsm.core.svg import esc

MAX_FAILURES = 300  # failures shown in full
MAX_IDS = 25  # task ids listed in one cell


def _ids(ids: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS])
    return shown + (f" … ({len(ids)} in all)" if len(ids) > MAX_IDS else "")


def categories_section(patterns: Sequence[Mapping[str, Any]]) -> str:
    colors = palette_of([str(p.get("category")) for p in patterns])
    bars = [Bar(str(p.get("category")), float(p.get("count") or 0),
                f"{p.get('category')}: {p.get('count')} failed attempts on {', '.join(map(str, p.get('sources') or []))}",
                colors[str(p.get("category"))]) for p in patterns]
    rows = [[cell(p.get("category")), cell(p.get("count")), cell(", ".join(map(str, p.get("sources") or []))),
             cell(_ids(list(p.get("tasks") or []))), cell(p.get("suggestion"))] for p in patterns]
    return section("Error categories", figure(charts.hbars(bars, value_label="failed attempts", width=760)),
                   table(["category", "count", "affected sources", "tasks", "suggestion"], rows))


def sources_section(failed: Sequence[Mapping[str, Any]], by_source: Mapping[str, Sequence[Any]]) -> str:
    per: dict[str, dict[str, int]] = {}
    for f in failed:
        counts = per.setdefault(str(f.get("source") or "(none)"), {"failed": 0, "retried": 0})
        counts["retried" if f.get("outcome") == "retried" else "failed"] += 1
    bars = [Bar(name, c["failed"] + c["retried"], parts=(
        Bar(name, c["failed"], f"{name}: {c['failed']} final failures", OUTCOME_COLORS["failed"]),
        Bar(name, c["retried"], f"{name}: {c['retried']} failed attempts retried", OUTCOME_COLORS["retried"])))
        for name, c in per.items()]
    rows = [[cell(name), cell(per.get(name, {}).get("failed", 0)), cell(per.get(name, {}).get("retried", 0)),
             cell(_ids(list(ids)))] for name, ids in by_source.items()]
    return section("Failed tasks by source", legend([("final failures", OUTCOME_COLORS["failed"]),
                                                     ("retried", OUTCOME_COLORS["retried"])]),
                   figure(charts.hbars(bars, value_label="failed attempts", width=760)),
                   table(["source", "final failures", "retried", "tasks"], rows))


def failure_block(f: Mapping[str, Any], open_it: bool) -> str:
    """One failed attempt: what it is, the evidence, the suggestion and the end of its stderr."""
    outcome = str(f.get("outcome") or "failed")
    head = (f"{f.get('id')} · attempt {f.get('attempt')} · {f.get('source')} · {f.get('title') or f.get('category')} · "
            f"{outcome}")
    fields = [("host", f.get("host")), ("failed at", f.get("at")), ("exit code", f.get("exit_code")),
              ("reason", f.get("reason")), ("category", f.get("title") or f.get("category")),
              ("evidence", f.get("evidence")), ("suggestion", f.get("suggestion"))]
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v if v is not None else '–')}</dd>" for k, v in fields)
    tail = [str(line) for line in f.get("stderr_tail") or []]
    stderr = f"<pre>{esc(chr(10).join(tail))}</pre>" if tail else note("stderr was empty or could not be read.")
    return (f"<details{' open' if open_it else ''}><summary class=\"s-{esc(outcome)}\">{esc(head)}</summary>"
            f"<dl>{facts}</dl>{stderr}</details>")


def error_page(summary: Mapping[str, Any], analysis: Mapping[str, Any], generated: str) -> str:
    """reports/error_analysis.html."""
    failed: Sequence[Mapping[str, Any]] = analysis.get("failed") or []
    patterns: Sequence[Mapping[str, Any]] = analysis.get("patterns") or []
    retried = sum(1 for f in failed if f.get("outcome") == "retried")
    extra = [(str(len(failed)), "failed attempts"), (str(retried), "retried"), (str(len(patterns)), "error categories")]
    parts = [header_cards(summary, extra)]
    if not failed:
        parts.append(note("No attempt of this sweep has failed."))
    else:
        recs = analysis.get("recommendations") or []
        parts += [categories_section(patterns), sources_section(failed, analysis.get("by_source") or {}),
                  section("Recommendations", "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in recs) + "</ul>"
                          if recs else note("None."))]
        ordered = sorted(failed, key=lambda f: (f.get("outcome") == "retried", str(f.get("id")), f.get("attempt") or 0))
        blocks = [failure_block(f, i < 10) for i, f in enumerate(ordered[:MAX_FAILURES])]
        more = note(f"Showing {MAX_FAILURES} of {len(failed)} failed attempts; all are in logs/errors/failed_tasks.yaml "
                    "and logs/errors/task_NNN_error.txt.") if len(failed) > MAX_FAILURES else ""
        parts.append(section("Each failure", note("Final failures first, then the attempts that were retried."),
                             more, "".join(blocks)))
    return page(f"Sweep {analysis.get('sweep_id') or summary.get('sweep_id')}: error analysis",
                str(summary.get("path", "")), "".join(parts), f"Written by hsm aggregate at {generated}.",
                "error_analysis.html")
