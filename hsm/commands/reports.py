"""The HTML reports `hsm aggregate` writes: what they show is gathered here, drawn by hsm.core.

- `reports/completion_report.html`: counts, success rate, wall time, the best tasks by a
  metric, the metric against each parameter, and every task.
- `reports/source_utilization.html`: every attempt on a timeline of its source's slots,
  durations per source, and `logs/source_utilization.log` over time.
- `reports/error_analysis.html`: `hsm.commands.errors.analysis` as charts and tables.

Each page is one self-contained file (no script, style or font is fetched).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsm import store
from hsm.clock import now_iso
from hsm.commands import errors, export
from hsm.commands.utilization import LOG as UTILIZATION_LOG
from hsm.core import reportdata
from hsm.core.index import Index
from hsm.core.report_errors import error_page
from hsm.core.reportdata import Sample
from hsm.core.reports import completion_page, utilization_page
from hsm.errors import BadInput
from hsm.sweep import Sweep

COMPLETION, ERRORS, UTILIZATION = "completion_report.html", "error_analysis.html", "source_utilization.html"
MODES = ("max", "min")


@dataclass
class TaskTable:
    """The sweep's table (`export.task_rows`) and the metric its tasks are ranked by."""

    columns: list[str]
    rows: list[dict[str, Any]]
    params: list[str]
    metrics: list[str]
    metric: str | None
    mode: str


def task_table(sweep: Sweep, index: Index, metric: str | None = None, mode: str | None = None) -> TaskTable:
    """The tasks' parameters, outcomes and metrics, and the metric to rank them by.

    Without `metric`, the first numeric metric of the tasks' metrics.json files; without
    `mode`, lower is better for a metric named like a loss or an error. A `metric` no task
    has is BadInput when the tasks have other metrics (a typo), and kept when they have none yet.
    """
    if mode is not None and mode not in MODES:
        raise BadInput(f"--mode: '{mode}' is not one of max, min")
    columns, rows = export.task_rows(sweep, index)
    params, metrics = reportdata.split_columns(columns)
    chosen = reportdata.pick_metric(metrics, rows, metric)
    if metric and chosen is None:
        if metrics:
            raise BadInput(f"--metric: no task of {sweep.id} has a metric '{metric}' "
                           f"(its metrics: {', '.join(metrics[:20])}{', ...' if len(metrics) > 20 else ''})")
        chosen = metric
    return TaskTable(columns, rows, params, metrics, chosen,
                     mode or (reportdata.default_mode(chosen) if chosen else "max"))


def utilization_samples(sweep: Sweep) -> dict[str, list[tuple[float, Sample]]] | None:
    """logs/source_utilization.log per source, each sample with its time as epoch seconds; None
    when the sweep has no such log."""
    path = sweep.paths.log(UTILIZATION_LOG)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    out: dict[str, list[tuple[float, Sample]]] = {}
    for source, samples in reportdata.parse_utilization(text.splitlines()).items():
        for s in samples:
            try:  # the log's stamps are local time, as every log line's
                at = _dt.datetime.strptime(s.at, "%Y-%m-%d %H:%M:%S").timestamp()
            except (ValueError, OverflowError, OSError):
                continue
            out.setdefault(source, []).append((at, s))
    return out


def write_reports(sweep: Sweep, index: Index, summary: dict[str, Any], table: TaskTable) -> list[Path]:
    """Write the three HTML reports; their paths."""
    generated = now_iso()
    found = reportdata.attempts(index["tasks"], reportdata.epoch(generated))
    sources = index.get("sources", {})
    pages = {
        COMPLETION: completion_page(summary, table.params, table.metrics, table.rows, table.metric, table.mode,
                                    generated),
        ERRORS: error_page(summary, errors.analysis(sweep, index), generated),
        UTILIZATION: utilization_page(summary, index["tasks"], found, sources, utilization_samples(sweep), generated),
    }
    sweep.paths.reports.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in pages.items():
        path = sweep.paths.reports / name
        store.atomic_write(path, html)
        written.append(path)
    return written
