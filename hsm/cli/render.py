"""Tables and lines the commands show (tabulate, plain text)."""

from __future__ import annotations

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
    """Per source: tasks in each state, and the total."""
    states = ("pending", "assigned", "submitted", "queued", "running", "completed", "failed", "cancelled")
    used = [s for s in states if summary["counts"].get(s)]
    rows = []
    for name, info in summary["sources"].items():
        counts = info["counts"]
        rows.append([name, info.get("type") or "", *[counts.get(s, 0) for s in used], sum(counts.values())])
    unassigned = {s: summary["counts"].get(s, 0) - sum(i["counts"].get(s, 0) for i in summary["sources"].values()) for s in used}
    if any(unassigned.values()):
        rows.append(["(unassigned)", "", *[unassigned[s] for s in used], sum(unassigned.values())])
    rows.append(["total", "", *[summary["counts"].get(s, 0) for s in used], summary["total"]])
    return tabulate(rows, headers=["Source", "Type", *used, "Tasks"], tablefmt="simple_outline")


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
