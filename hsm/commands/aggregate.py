"""`hsm aggregate`: the aggregated log, metrics table, error analysis and reports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hsm import store
from hsm.clock import log_stamp
from hsm.commands import errors
from hsm.commands.reports import TaskTable, task_table, write_reports
from hsm.commands.status import summarize
from hsm.core import reportdata
from hsm.core.index import Index
from hsm.sweep import Sweep


def aggregate(sweep: Sweep, metric: str | None = None, mode: str | None = None) -> list[Path]:
    """Write logs/sweep_aggregated.log, logs/errors/*.yaml and reports/*; return their paths.

    `metric` and `mode` choose how the completion report ranks tasks (see `reports.task_table`);
    an unknown metric is BadInput, raised before anything is written.
    """
    index = sweep.read_index()
    summary = summarize(sweep, index)
    table = task_table(sweep, index, metric, mode)
    errors_written = write_error_analysis(sweep, index)
    return [
        write_aggregated_log(sweep),
        *errors_written,
        write_metrics_table(sweep, table),
        write_performance(sweep, summary, index),
        *write_reports(sweep, index, summary, table),
    ]


def write_aggregated_log(sweep: Sweep) -> Path:
    """One log of everything, in time order (lines start with "[YYYY-MM-DD HH:MM:SS]"), each tagged with its log."""
    paths = sweep.paths
    entries: list[tuple[str, int, str]] = []
    logs = [paths.log("sweep.log"), paths.log("task_assignments.log"), paths.log("health_status.log")]
    logs += sorted(paths.source_logs.glob("*.log"))
    for order, log in enumerate(logs):
        label = log.stem if log.parent == paths.source_logs else log.name
        try:
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                entries.append((line[:21], order, f"{line} [{label}]"))
        except OSError:
            continue
    entries.sort(key=lambda e: (e[0], e[1]))
    store.atomic_write(paths.log("sweep_aggregated.log"), "".join(e[2] + "\n" for e in entries))
    return paths.log("sweep_aggregated.log")


def write_error_analysis(sweep: Sweep, index: Index) -> list[Path]:
    """logs/errors/failed_tasks.yaml and error_patterns.yaml, with every failed attempt the index knows.

    Failures are written down when a step records them (`hsm.commands.errors`); this adds the
    ones it missed (a sweep from an older hsm, a step killed in between) and announces their
    patterns in sweep.log, as a poll would have.
    """
    with sweep.lock().held():
        announced = errors.refresh(sweep, index)
        if announced:
            stamp = log_stamp()
            sweep.append_log("sweep.log", [f"[{stamp}] WARNING - {line}" for line in announced])
    found = [sweep.paths.error_logs / errors.FAILED_TASKS, sweep.paths.error_logs / errors.ERROR_PATTERNS]
    return [path for path in found if path.exists()]


def write_metrics_table(sweep: Sweep, table: TaskTable) -> Path:
    """reports/metrics.csv: outcome, parameters and the task's metrics.json, one row per task.

    Columns: task_id, state, source, duration, the parameters, then `metric.NAME` per metric.
    """
    paths = sweep.paths
    columns = ["task_id", "state", "source", "duration", *table.params, *(f"metric.{m}" for m in table.metrics)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in table.rows:
        writer.writerow([row.get(c) for c in ("task_id", "state", "source", "duration", *table.params)]
                        + [row.get(m) for m in table.metrics])
    paths.reports.mkdir(parents=True, exist_ok=True)
    store.atomic_write(paths.reports / "metrics.csv", buffer.getvalue())
    return paths.reports / "metrics.csv"


def write_performance(sweep: Sweep, summary: dict[str, Any], index: Index) -> Path:
    """reports/performance_analysis.yaml: per source, its tasks and their outcomes, success rate,
    attempts, retries, abandoned attempts, busy time and attempt durations (mean, median, max)."""
    found = reportdata.attempts(index["tasks"])
    perf = reportdata.source_stats(index["tasks"], found, index.get("sources", {}))
    path = sweep.paths.reports / "performance_analysis.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_yaml(path, {"sweep_id": sweep.id, "sources": perf, "counts": summary["counts"],
                            "timing": summary["timing"]})
    return path
