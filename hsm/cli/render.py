"""Tables and lines the commands show (tabulate, plain text)."""

from __future__ import annotations

import re
from typing import Any

from tabulate import tabulate

from hsm.commands.expand import Plan


def plan_text(p: Plan, sources: list[Any] | None = None) -> str:
    """The dry-run report: parameter table and execution plan."""
    rows = p.describe()
    lines = [
        f"Total parameter combinations: {p.total}",
        "",
        "Dry Run Information",
        tabulate(rows, headers=["Parameter", "Values"], tablefmt="simple_outline"),
        "",
        "Execution Plan:",
        f"  Total combinations: {p.total}",
        f"  Tasks to execute: {p.tasks}",
    ]
    if sources:
        per = p.tasks / len(sources)
        lines.append(f"  Tasks per source: ~{per:.0f} ({', '.join(f'{s.name}:{s.max_parallel}' for s in sources)})")
    return "\n".join(lines)


def progress_line(counts: dict[str, int], total: int) -> str:
    """`Progress: 10/24 (41.7%) - ✓ 8 completed, ✗ 2 failed` (finished tasks of all)."""
    done = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
    pct = 100.0 * done / total if total else 100.0
    line = f"Progress: {done}/{total} ({pct:.1f}%) - ✓ {counts.get('completed', 0)} completed, ✗ {counts.get('failed', 0)} failed"
    if counts.get("cancelled"):
        line += f", {counts['cancelled']} cancelled"
    running = counts.get("running", 0)
    if running:
        line += f", {running} running"
    return line


def summary_table(summary: dict[str, Any]) -> str:
    """Per source: tasks in each state, the total, and its health (disabled: by whom and why)."""
    states = ("pending", "assigned", "submitted", "queued", "running", "completed", "failed", "cancelled")
    used = [s for s in states if summary["counts"].get(s)]
    rows = []
    for name, info in summary["sources"].items():
        counts = info["counts"]
        rows.append([name, info.get("type") or "", *[counts.get(s, 0) for s in used], sum(counts.values()),
                     condition_text(info)])
    unassigned = {s: summary["counts"].get(s, 0) - sum(i["counts"].get(s, 0) for i in summary["sources"].values()) for s in used}
    if any(unassigned.values()):
        rows.append(["(unassigned)", "", *[unassigned[s] for s in used], sum(unassigned.values()), ""])
    rows.append(["total", "", *[summary["counts"].get(s, 0) for s in used], summary["total"], ""])
    return tabulate(rows, headers=["Source", "Type", *used, "Tasks", "Health"], tablefmt="simple_outline")


MARKS = {"healthy": "✅ Healthy", "degraded": "⚠️ Degraded", "unhealthy": "❌ Unhealthy", "disabled": "⛔ Disabled"}


def status_mark(status: str) -> str:
    """`✅ Healthy`, `⚠️ Degraded`, `❌ Unhealthy`, `⛔ Disabled`."""
    return MARKS.get(status, f"? {status}")


REASON_WIDTH = 80  # characters of a disable reason a table shows (the health log has all of it)


def disabled_text(by: str | None, reason: str | None) -> str:
    """`by user: maintenance`, `by health: 3 consecutive health check failures`, or the reason alone."""
    head = f"by {by}" if by else ""
    if reason:
        # The log line's head says what the table's columns say already.
        reason = re.sub(r"^Disabling source '[^']*'(: | due to )", "", reason)
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 1] + "…"
    if head and reason:
        return f"{head}: {reason}"
    return head or reason or ""


def condition_text(info: dict[str, Any]) -> str:
    """A source's condition in a sweep's summary: disabled (by whom, why), or its last health check."""
    if info.get("disabled"):
        return "⛔ disabled " + disabled_text(info.get("disabled_by"), info.get("disabled_reason"))
    health = info.get("health")
    if not health:
        return "-"
    text = status_mark(str(health.get("status"))).split(" ", 1)[0] + " " + str(health.get("status"))
    failures = health.get("consecutive_failures") or 0
    return text + (f" ({failures} failed checks in a row)" if failures else "")


def duration_text(seconds: float | None) -> str:
    """`2h 15m`, `3m 05s`, `4.2s`."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


# --- sources -----------------------------------------------------------------------------------------


def local_clock(iso: str) -> str:
    """`14:30:22` on this machine's clock, from an ISO-8601 UTC timestamp."""
    from hsm.core.summary import parse_iso

    when = parse_iso(iso)
    return when.astimezone().strftime("%H:%M:%S") if when else iso


def slots_text(row: Any) -> str:
    """`2/4 tasks, 3 waiting` with a sweep; `-/4` without one."""
    if row.running is None:
        return f"-/{row.max_parallel}"
    return f"{row.running}/{row.max_parallel} tasks" + (f", {row.waiting} waiting" if row.waiting else "")


def why_disabled(row: Any) -> str:
    """Why a source is out of service: the sweep's word (by whom, why), or its config; empty when it is not."""
    if row.disabled:
        return disabled_text(row.disabled_by, row.disabled_reason) or "disabled"
    if row.configured_enabled is False:
        return "enabled: false in hsm_config.yaml"
    return ""


def probe_text(row: Any) -> str:
    """The probe's details, with how many checks the sweep saw fail in a row."""
    failures = row.recorded.get("consecutive_failures") or 0
    return str(row.probe.get("details", "")) + (f" ({failures} failed checks in a row)" if failures else "")


def health_details(row: Any) -> str:
    """The Details cell of `hsm monitor health`: slots, load and disk, and the time of the check."""
    parts = [slots_text(row)] if row.running is not None else []
    why = why_disabled(row)
    if why:
        parts.append(f"disabled {why}; probe: {row.probe.get('status')}")
    parts += [probe_text(row), f"checked {local_clock(row.checked)}"]
    return ", ".join(p for p in parts if p)


def health_table(rows: list[Any]) -> str:
    """`Source Health Status:` and one row per source: Source, Status, Details."""
    table = [[r.name, status_mark(r.status), health_details(r)] for r in rows]
    return "Source Health Status:\n" + tabulate(table, headers=["Source", "Status", "Details"], tablefmt="simple_outline")


def sources_status_table(rows: list[Any]) -> str:
    """`hsm sources status`: each source's health now, its slots in the sweep, and whether it is disabled."""
    table = [[r.name, r.type, status_mark(str(r.probe.get("status"))), slots_text(r), why_disabled(r) or "no",
              probe_text(r)] for r in rows]
    return tabulate(table, headers=["Source", "Type", "Health", "Slots", "Disabled", "Details"], tablefmt="simple_outline")


def sources_table(infos: list[Any]) -> str:
    """`hsm sources list`: name, type, slots, enabled, where it runs, where it is configured."""
    table = [[i.name, i.type, i.max_parallel, "yes" if i.enabled else "no", i.where, i.section] for i in infos]
    return tabulate(table, headers=["Source", "Type", "Slots", "Enabled", "Host/partition", "Defined in"],
                    tablefmt="simple_outline")
