"""`hsm aggregate`: the aggregated log, metrics table, error analysis and reports."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from hsm import store
from hsm.commands.status import summarize
from hsm.sweep import Sweep

# Known failure signatures, tried in order on the tail of a failed task's stderr.
PATTERNS = (
    ("CUDA out of memory", re.compile(r"CUDA out of memory", re.I)),
    ("Out of memory", re.compile(r"\b(MemoryError|out of memory|OOM|Killed)\b")),
    ("Disk full", re.compile(r"No space left on device|Disk space below floor")),
    ("Import error", re.compile(r"\b(ModuleNotFoundError|ImportError)\b")),
    ("File not found", re.compile(r"\b(FileNotFoundError|No such file or directory)\b")),
    ("Connection error", re.compile(r"Connection (refused|reset|timed out)|timeout", re.I)),
)
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception))\b")


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def categorize(stderr_tail: list[str], reason: str | None) -> str:
    """The error category of one failed task."""
    if reason and reason not in ("exit_code",):
        return {"timeout": "Walltime exceeded", "oom": "Out of memory", "node_fail": "Node failure",
                "preempted": "Preempted", "disk": "Disk full", "lost": "Lost (process vanished)"}.get(reason, reason)
    text = "\n".join(stderr_tail)
    for name, pattern in PATTERNS:
        if pattern.search(text):
            return name
    for line in reversed(stderr_tail):
        match = _EXCEPTION.match(line.strip())
        if match:
            return match.group(1)
    return "Non-zero exit code"


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def aggregate(sweep: Sweep) -> list[Path]:
    """Write logs/sweep_aggregated.log, logs/errors/*.yaml and reports/*; return their paths."""
    summary = summarize(sweep)
    return [
        write_aggregated_log(sweep),
        *write_error_analysis(sweep, summary),
        write_metrics_table(sweep, summary),
        write_performance(sweep, summary),
        write_completion_report(sweep, summary),
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


def write_error_analysis(sweep: Sweep, summary: dict[str, Any]) -> list[Path]:
    """logs/errors/failed_tasks.yaml (each failure, its category, its stderr's tail) and error_patterns.yaml."""
    paths = sweep.paths
    failed: list[dict[str, Any]] = []
    categories: Counter[str] = Counter()
    by_category: dict[str, list[str]] = {}
    for task in summary["tasks"]:
        if task["state"] != "failed":
            continue
        tail = _tail(paths.task(task["id"]) / "stderr.log")
        category = categorize(tail, task.get("reason"))
        categories[category] += 1
        by_category.setdefault(category, []).append(task["id"])
        failed.append({**{k: task[k] for k in ("id", "source", "host", "attempt", "exit_code", "reason")},
                       "category": category, "stderr_tail": tail[-5:]})
    paths.error_logs.mkdir(parents=True, exist_ok=True)
    store.write_yaml(paths.error_logs / "failed_tasks.yaml", {"sweep_id": sweep.id, "failed": failed})
    store.write_yaml(paths.error_logs / "error_patterns.yaml", {
        "sweep_id": sweep.id,
        "patterns": [{"category": c, "count": n, "tasks": by_category[c]} for c, n in categories.most_common()],
    })
    return [paths.error_logs / "failed_tasks.yaml", paths.error_logs / "error_patterns.yaml"]


def write_metrics_table(sweep: Sweep, summary: dict[str, Any]) -> Path:
    """reports/metrics.csv: parameters, outcome and the task's metrics.json, one row per task."""
    paths = sweep.paths
    rows, columns = [], ["task_id", "state", "source", "duration"]
    seen = set(columns)
    for task in summary["tasks"]:
        row: dict[str, Any] = {"task_id": task["id"], "state": task["state"], "source": task["source"],
                               "duration": task["duration"]}
        params = store.read_yaml(paths.params(task["id"])) or {}
        metrics: dict[str, Any] = {}
        try:
            _flat("", json.loads((paths.task(task["id"]) / "metrics.json").read_text(encoding="utf-8")), metrics)
        except (OSError, ValueError):
            pass
        for key, value in [*params.items(), *((f"metric.{k}", v) for k, v in metrics.items())]:
            row[key] = value if not isinstance(value, (list, dict)) else json.dumps(value)
            if key not in seen:
                seen.add(key)
                columns.append(key)
        rows.append(row)
    paths.reports.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    store.atomic_write(paths.reports / "metrics.csv", buffer.getvalue())
    return paths.reports / "metrics.csv"


def write_performance(sweep: Sweep, summary: dict[str, Any]) -> Path:
    """reports/performance_analysis.yaml: per source, tasks, outcomes, success rate and durations."""
    perf: dict[str, Any] = {}
    for task in summary["tasks"]:
        stats = perf.setdefault(task["source"] or "(unassigned)",
                                {"tasks": 0, "completed": 0, "failed": 0, "durations": []})
        stats["tasks"] += 1
        if task["state"] in ("completed", "failed"):
            stats[task["state"]] += 1
        if isinstance(task["duration"], (int, float)):
            stats["durations"].append(float(task["duration"]))
    for stats in perf.values():
        d = stats.pop("durations")
        finished = stats["completed"] + stats["failed"]
        stats["success_rate"] = round(stats["completed"] / finished, 3) if finished else None
        stats["mean_duration"] = round(sum(d) / len(d), 3) if d else None
        stats["max_duration"] = max(d) if d else None
    path = sweep.paths.reports / "performance_analysis.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_yaml(path, {"sweep_id": sweep.id, "sources": perf, "counts": summary["counts"],
                            "timing": summary["timing"]})
    return path


def write_completion_report(sweep: Sweep, summary: dict[str, Any]) -> Path:
    """reports/completion_report.html: every task's outcome in one table."""
    cells = "".join(
        f"<tr><td>{html.escape(t['id'])}</td><td>{html.escape(t['state'])}</td>"
        f"<td>{html.escape(str(t['source'] or ''))}</td>"
        f"<td>{html.escape(str(t['exit_code'] if t['exit_code'] is not None else ''))}</td>"
        f"<td>{html.escape(str(t['reason'] or ''))}</td><td>{html.escape(str(t['duration'] or ''))}</td></tr>"
        for t in summary["tasks"]
    )
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items() if n)
    page = (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(sweep.id)}</title>"
        f"<h1>Sweep {html.escape(sweep.id)}</h1>"
        f"<p>{summary['finished']}/{summary['total']} finished: {html.escape(counts)}</p>"
        "<table border=1 cellpadding=3><tr><th>Task</th><th>State</th><th>Source</th><th>Exit code</th><th>Reason</th>"
        f"<th>Duration (s)</th></tr>{cells}</table>\n"
    )
    path = sweep.paths.reports / "completion_report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, page)
    return path
