"""The text of `hsm monitor watch`, `recent`, `source` and `errors` (tabulate, plain text).

`watch_frame(sweep)` is the whole live view of one sweep as text, for any caller that
draws it (`hsm monitor watch`, `hsm run` on standard error); `in_place(text, ...)` wraps
a frame in the escape codes that redraw a terminal screen without flicker.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tabulate import tabulate

from hsm.cli.render import disabled_text, duration_text, local_clock
from hsm.commands import monitor as monitor_logic
from hsm.core.progress import ago_text
from hsm.core.summary import parse_iso
from hsm.sweep import Sweep

BAR_WIDTH = 24
CELL_WIDTH = 48  # characters of a reason a table cell shows
DEFAULT_WIDTH = 100


def shorten(text: str, width: int) -> str:
    """`text`, cut to `width` characters with `…` when longer."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`████████████░░░░░░░░░░░░ 48/100 (48%)`."""
    share = done / total if total else 1.0
    filled = min(width, int(round(share * width)))
    return "█" * filled + "░" * (width - filled) + f" {done}/{total} ({share * 100:.0f}%)"


def tasks_text(n: int) -> str:
    return f"{n} task{'s' if n != 1 else ''}"


def status_text(data: Mapping[str, Any]) -> str:
    """`Running`, `Finished`, `Stalled (no enabled source left)`."""
    text = str(data["status"]).capitalize()
    return text + (f" ({data['stalled_because']})" if data.get("stalled_because") else "")


def eta_text(data: Mapping[str, Any]) -> str:
    """`~2h 15m remaining`, `done`, or `unknown` until a task has finished."""
    if data["status"] == "finished":
        return "done"
    eta = data.get("eta_seconds")
    if eta is None:
        return "unknown (no enabled source)" if not data.get("slots") else "unknown (no task finished yet)"
    return f"~{duration_text(max(1.0, float(eta)))} remaining"


def active_text(data: Mapping[str, Any]) -> str:
    """`3 tasks (2 running, 1 queued)`."""
    counts = data["counts"]
    parts = [f"{counts[s]} {s}" for s in ("running", "queued", "submitted") if counts.get(s)]
    return tasks_text(data["active"]) + (f" ({', '.join(parts)})" if len(parts) > 1 else "")


def progress_table(data: Mapping[str, Any]) -> str:
    """Overall Progress: Status, Progress bar, Completed, Failed, Active, Pending, Success Rate, Elapsed, ETA."""
    rate = data.get("success_rate")
    rows = [
        ["Status", status_text(data)],
        ["Progress", bar(data["finished"], data["total"])],
        ["Completed", tasks_text(data["completed"])],
        ["Failed", tasks_text(data["failed"])],
        ["Active", active_text(data)],
        ["Pending", tasks_text(data["pending"])],
    ]
    if data.get("cancelled"):
        rows.append(["Cancelled", tasks_text(data["cancelled"])])
    rows += [
        ["Success Rate", f"{rate * 100:.1f}%" if rate is not None else "-"],
        ["Elapsed", duration_text(data.get("elapsed_seconds"))],
        ["ETA", eta_text(data)],
    ]
    return tabulate(rows, headers=["Metric", "Value"], tablefmt="simple_outline", disable_numparse=True)


def health_cell(row: Mapping[str, Any]) -> str:
    """What the index says of a source: `Healthy`, `Degraded (2 failed checks)`, `Disabled (by user: ...)`."""
    if row.get("disabled"):
        return "Disabled (" + shorten(disabled_text(row.get("disabled_by"), row.get("disabled_reason")) or "disabled",
                                      CELL_WIDTH) + ")"
    if row.get("unreachable_since"):
        return f"Unreachable since {local_clock(str(row['unreachable_since']))}"
    if not row.get("health"):
        return "Not checked"
    failures = row.get("consecutive_failures") or 0
    return str(row["health"]).capitalize() + (f" ({failures} failed checks)" if failures else "")


def active_cell(row: Mapping[str, Any]) -> str:
    """`2/4`: tasks running of the source's slots, and `+3 queued` for those delivered but not started."""
    return f"{row['running']}/{row['slots']}" + (f" +{row['queued']} queued" if row.get("queued") else "")


def sources_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Source Utilization: Source, Active (`2/4 +3 queued`), Completed, Failed, Health."""
    table = [[r["name"], active_cell(r), r["completed"], r["failed"], health_cell(r)] for r in rows]
    return tabulate(table, headers=["Source", "Active", "Completed", "Failed", "Health"], tablefmt="simple_outline",
                    disable_numparse=True)


def event_line(event: Mapping[str, Any], width: int) -> str:
    """`[14:45:23] completed task_045 on cluster (3.2s)`, at most `width` characters."""
    took = f" ({duration_text(event['took'])})" if event.get("took") is not None else ""
    return shorten(f"[{event['clock']}] {event['text']}{took}", width)


def render_watch(data: Mapping[str, Any], width: int = DEFAULT_WIDTH, refresh: float | None = None) -> str:
    """One sweep's live view: header, Overall Progress, Source Utilization, Recent Activity."""
    lines = [f"Sweep Monitor - {data['sweep_id']} - {status_text(data)}"]
    if refresh is not None:
        lines.append(f"Live updates every {refresh:g}s - Ctrl-C to exit")
    lines += ["", "Overall Progress:", progress_table(data), "", "Source Utilization:"]
    lines.append(sources_table(data["sources"]) if data["sources"] else "  (no source assigned yet)")
    lines += ["", "Recent Activity:"]
    lines += [event_line(e, width) for e in data["activity"]] or ["  (nothing yet)"]
    return "\n".join(lines)


def screen_size(stream: TextIO | None = None) -> tuple[int, int]:
    """The columns and lines of the terminal `stream` (default: standard output) shows, as it is now
    (COLUMNS and LINES, else DEFAULT_WIDTH x 50, when it is not a terminal)."""
    try:
        size = os.get_terminal_size((stream or sys.stdout).fileno())
    except (AttributeError, ValueError, OSError):
        size = shutil.get_terminal_size((DEFAULT_WIDTH, 50))
    return size.columns or DEFAULT_WIDTH, size.lines or 50


def watch_frame(sweep: Sweep, width: int | None = None, refresh: float | None = None) -> str:
    """The live view of `sweep` now, as plain text (no escape codes): what `hsm monitor watch SWEEP` draws.

    `refresh` adds the line `Live updates every Ns - Ctrl-C to exit`. Only reads files.
    """
    return render_watch(monitor_logic.watch_data(sweep), width or screen_size()[0], refresh)


def in_place(text: str, first: bool = False, columns: int | None = None, lines: int | None = None) -> str:
    """`text` as a terminal redraw: cursor home, each line cut to the screen and cleared to its end,
    the rest of the screen cleared; the first frame clears the screen first.

    To draw the live view on standard error: `stream.write(in_place(watch_frame(sweep, columns), first,
    columns, lines))` with `columns, lines = screen_size(sys.stderr)`, when `sys.stderr.isatty()`.
    """
    rows = text.split("\n")
    if lines:
        rows = rows[: max(1, lines - 1)]
    if columns:
        rows = [shorten(r, columns) for r in rows]
    return ("\x1b[2J" if first else "") + "\x1b[H" + "".join(r + "\x1b[K\n" for r in rows) + "\x1b[J"


# --- recent ----------------------------------------------------------------------------------------


def local_time(iso: str | None) -> str:
    """`2026-11-22 14:30` on this machine's clock."""
    when = parse_iso(iso)
    return when.astimezone().strftime("%Y-%m-%d %H:%M") if when else (iso or "-")


def render_recent(rows: Sequence[Mapping[str, Any]], days: float) -> str:
    """`hsm monitor recent`: one row per sweep, newest first."""
    if not rows:
        return f"No sweeps in the last {days:g} days"
    table = [[r["sweep_id"], local_time(r["created"]), r["total"], r["completed"], r["failed"], r["active"],
              status_text(r), ", ".join(s["name"] + (" (disabled)" if s["disabled"] else "") for s in r["sources"]) or "-"]
             for r in rows]
    return tabulate(table, headers=["Sweep", "Created", "Tasks", "Completed", "Failed", "Active", "Status", "Sources"],
                    tablefmt="simple_outline", disable_numparse=True)


# --- one source ------------------------------------------------------------------------------------


def load_text(metrics: Mapping[str, Any]) -> str:
    """`3.20 on 4 CPUs (high)`."""
    load, cpus = float(metrics.get("load1") or 0.0), int(metrics.get("cpus") or 1)
    per = load / cpus
    word = "low" if per < 0.5 else "moderate" if per <= 1.0 else "high" if per <= 2.0 else "overloaded"
    return f"{load:.2f} on {cpus} CPU{'s' if cpus != 1 else ''} ({word})"


def memory_text(metrics: Mapping[str, Any]) -> str:
    """`28.4GB/32.0GB (89%)`."""
    total, avail = metrics.get("mem_total"), metrics.get("mem_available")
    if not total or avail is None:
        return "-"
    used = total - avail
    return f"{used / 2**30:.1f}GB/{total / 2**30:.1f}GB ({100 * used / total:.0f}%)"


def metrics_of(probe: Mapping[str, Any]) -> dict[str, Any]:
    """The probe's load and memory figures; read from its details when it gives no figures."""
    if isinstance(probe.get("metrics"), Mapping):
        return dict(probe["metrics"])
    found = re.search(r"load ([\d.]+) on (\d+) CPUs", str(probe.get("details", "")))
    return {"load1": float(found.group(1)), "cpus": int(found.group(2))} if found else {}


def utilization_text(data: Mapping[str, Any]) -> str:
    """`6/8 slots (75%)`."""
    if not data["slots"]:
        return "-"
    return f"{data['running']}/{data['slots']} slots ({100 * data['running'] / data['slots']:.0f}%)"


def last_check_text(data: Mapping[str, Any]) -> str:
    """`2 minutes ago (healthy)`, or `never (in sweep_...)`."""
    health = data.get("health") or {}
    if not health.get("checked"):
        return f"never (in {data['sweep_id']})" if data.get("sweep_id") else "never"
    failures = health.get("consecutive_failures") or 0
    extra = f", {failures} failed in a row" if failures else ""
    return f"{ago_text(data.get('last_check_seconds_ago'))} ({health.get('status')}{extra})"


def render_source(data: Mapping[str, Any]) -> str:
    """`hsm monitor source NAME`: its record in the sweep, and what one probe says now."""
    metrics = metrics_of(data["probe"])
    rate = data.get("success_rate")
    latency = "n/a (this machine)" if data["type"] == "local" else f"{data['probe_seconds'] * 1000:.0f}ms (one health call)"
    rows = [
        ["Tasks Submitted", data["submitted"]],
        ["Tasks Completed", data["completed"]],
        ["Tasks Failed", data["failed"]],
        ["Success Rate", f"{rate * 100:.1f}%" if rate is not None else "-"],
        ["Average Task Duration", duration_text(data.get("mean_task_seconds"))],
        ["Current Utilization", utilization_text(data)],
        ["Health Now", shorten(f"{data['status_now']}: {data['probe'].get('details', '')}", 2 * CELL_WIDTH)],
        ["CPU Load", load_text(metrics) if "load1" in metrics else "-"],
        ["Memory Usage", memory_text(metrics)],
        ["Network Latency", latency],
        ["Last Health Check", last_check_text(data)],
    ]
    if data.get("disabled"):
        rows.append(["Disabled", shorten(disabled_text(data.get("disabled_by"), data.get("disabled_reason")), 2 * CELL_WIDTH)])
    where = f" in {data['sweep_id']}" if data.get("sweep_id") else " (no sweep has used it)"
    table = tabulate([[k, str(v)] for k, v in rows], headers=["Metric", "Value"], tablefmt="simple_outline",
                     disable_numparse=True)
    return f"{data['source']} ({data['type']}) Performance{where}:\n{table}"


# --- errors ----------------------------------------------------------------------------------------


def _filters(report: Mapping[str, Any]) -> str:
    f = report.get("filters") or {}
    parts = ([f"source {f['source']}"] if f.get("source") else []) + ([", ".join(f["tasks"])] if f.get("tasks") else [])
    return f" ({'; '.join(parts)})" if parts else ""


def categories_table(patterns: Sequence[Mapping[str, Any]], failed: Sequence[Mapping[str, Any]]) -> str:
    """Error Type, Count (`3 tasks`, and the attempts when a task failed more than once), Affected Sources."""
    rows = []
    for p in patterns:
        unique = len(dict.fromkeys(p["tasks"]))
        attempts = sum(1 for f in failed if f.get("category") == p["key"])
        count = tasks_text(unique) + (f" ({attempts} attempts)" if attempts > unique else "")
        rows.append([p["category"], count, ", ".join(p["sources"]) or "-"])
    return tabulate(rows, headers=["Error Type", "Count", "Affected Sources"], tablefmt="simple_outline",
                    disable_numparse=True)


def by_source_table(failed: Sequence[Mapping[str, Any]]) -> str:
    """Source, Failed Tasks: `task_023, task_045 (CUDA out of memory); task_012 (Import error)`."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for f in failed:
        ids = grouped.setdefault(str(f.get("source") or "(none)"), {}).setdefault(str(f.get("title")), [])
        if f["id"] not in ids:
            ids.append(f["id"])
    rows = [[name, "; ".join(f"{', '.join(ids)} ({title})" for title, ids in kinds.items())]
            for name, kinds in grouped.items()]
    return tabulate(rows, headers=["Source", "Failed Tasks"], tablefmt="simple_outline", disable_numparse=True)


def failure_text(f: Mapping[str, Any]) -> list[str]:
    """One failed attempt in full: category, reason, exit code, evidence, suggestion, the end of stderr."""
    where = f"on {f.get('source')}" + (f" ({f['host']})" if f.get("host") else "")
    retried = ", retried" if f.get("outcome") == "retried" else ""
    tail = list(f.get("stderr_tail") or [])
    return [
        f"  attempt {f.get('attempt')} {where}, failed at {f.get('at') or '?'}{retried}",
        f"    Category:   {f.get('title')}",
        f"    Reason:     {f.get('reason')}",
        f"    Exit code:  {f.get('exit_code')}",
        f"    Evidence:   {f.get('evidence')}",
        f"    Suggestion: {f.get('suggestion')}",
        "    Last lines of stderr:" if tail else "    stderr was empty or could not be read",
        *(f"      {line}" for line in tail),
    ]


def render_errors(report: Mapping[str, Any]) -> str:
    """`hsm monitor errors`: Error Categories, Failed Tasks by Source, Recommendations, task details."""
    lines = [f"Error Analysis for {report['sweep_id']}{_filters(report)}:"]
    if report["failed"]:
        lines += ["", "Error Categories:", categories_table(report["patterns"], report["failed"]),
                  "", "Failed Tasks by Source:", by_source_table(report["failed"]),
                  "", "Recommendations:", *(f"- {r}" for r in report["recommendations"])]
    else:
        lines.append("No failed tasks.")
    for task in report.get("details") or []:
        lines += ["", f"{task['id']} ({task['state']} on {task.get('source') or '-'}):"]
        lines += [line for f in task["failures"] for line in failure_text(f)] or ["  no failed attempt"]
    return "\n".join(lines)
