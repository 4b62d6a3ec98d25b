"""A sweep at a glance, from its index alone (pure): progress, status, ETA, and each source's load.

What `hsm monitor watch`, `recent` and `source` show. The clock is an argument (`now`), and
so is the time the index last changed: nothing here reads a file or the clock.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from hsm.core.index import Index, TaskEntry
from hsm.core.states import ASSIGNED, CANCELLED, COMPLETED, FAILED, FINAL, ORDER, PENDING, QUEUED, RUNNING, SUBMITTED
from hsm.core.summary import parse_iso

RUNNING_STATUS, FINISHED_STATUS, STALLED_STATUS = "running", "finished", "stalled"
# A sweep with unfinished tasks, none of them active, and an index unchanged this long: nobody drives it.
STALL_SECONDS = 120.0


def seconds_between(start: _dt.datetime | None, end: _dt.datetime | None) -> float | None:
    """`end - start` in seconds (never negative); None when either is unknown."""
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _stamps(values: Iterable[Any]) -> list[str]:
    """The values that look like hsm's timestamps (`2026-11-22T06:31:33Z`): in that form, string order
    is time order, so the earliest and latest are found without parsing 100,000 of them."""
    return [v for v in values if isinstance(v, str) and len(v) == 20 and v[10] == "T" and v[-1] == "Z"]


def _starts(tasks: Iterable[TaskEntry]) -> list[str]:
    """Every start the index knows: current attempts and those kept in their history."""
    found: list[Any] = []
    for t in tasks:
        found.append(t.get("start"))
        found += [h.get("start") for h in t.get("history", [])]
    return _stamps(found)


def mean_duration(tasks: Iterable[TaskEntry]) -> float | None:
    """Mean duration of the finished (completed or failed) tasks that have one; None before the first."""
    values = [float(t["duration"]) for t in tasks
              if t["state"] in (COMPLETED, FAILED) and isinstance(t.get("duration"), (int, float))]
    return sum(values) / len(values) if values else None


def enabled_slots(index: Index) -> int:
    """The slots of the sweep's enabled sources, all together."""
    return sum(int(e.get("max_parallel", 1) or 1) for e in index.get("sources", {}).values() if not e.get("disabled"))


def eta_seconds(tasks: Mapping[str, TaskEntry], mean: float | None, slots: int, now: _dt.datetime) -> float | None:
    """Seconds until every task is final: the unfinished tasks' work (each the mean duration, less what a
    running task has done already) spread over the slots it can use. None while no task has finished."""
    unfinished = [t for t in tasks.values() if t["state"] not in FINAL]
    if not unfinished:
        return 0.0
    if mean is None or slots <= 0:
        return None
    work = len(unfinished) * mean
    for t in unfinished:
        if t["state"] == RUNNING:
            done = seconds_between(parse_iso(t.get("start")), now)
            work -= min(done or 0.0, mean)
    return max(0.0, work) / min(slots, len(unfinished))


def sweep_status(counts: Mapping[str, int], total: int, slots: int, idle_seconds: float | None,
                 retry_waiting: bool) -> tuple[str, str]:
    """(running | finished | stalled, why it is stalled)."""
    if sum(counts.get(s, 0) for s in FINAL) >= total:
        return FINISHED_STATUS, ""
    if sum(counts.get(s, 0) for s in (SUBMITTED, QUEUED, RUNNING)):
        return RUNNING_STATUS, ""
    if slots <= 0:
        return STALLED_STATUS, "no enabled source left"
    if not retry_waiting and idle_seconds is not None and idle_seconds >= STALL_SECONDS:
        return STALLED_STATUS, f"no task active, nothing recorded for {int(idle_seconds // 60)} min"
    return RUNNING_STATUS, ""


def overview(index: Index, now: _dt.datetime, created: _dt.datetime | None = None,
             changed: _dt.datetime | None = None) -> dict[str, Any]:
    """Counts, status, success rate, elapsed time and ETA of a sweep (`changed`: when its index was last written)."""
    tasks = index["tasks"]
    counts = Counter(t["state"] for t in tasks.values())
    total = len(tasks)
    finished = sum(counts[s] for s in FINAL)
    decided = counts[COMPLETED] + counts[FAILED]
    slots = enabled_slots(index)
    retry_waiting = any((parse_iso(t.get("retry_at")) or now) > now for t in tasks.values()
                        if t["state"] == PENDING and t.get("retry_at"))
    status, why = sweep_status(counts, total, slots, seconds_between(changed, now), retry_waiting)
    starts = _starts(tasks.values())
    first = parse_iso(min(starts)) if starts else None
    ends = _stamps(t.get("end") for t in tasks.values())
    until = (parse_iso(max(ends)) if status == FINISHED_STATUS and ends else None) or now
    mean = mean_duration(tasks.values())
    return {
        "total": total,
        "counts": {s: counts.get(s, 0) for s in ORDER},
        "finished": finished,
        "completed": counts[COMPLETED],
        "failed": counts[FAILED],
        "cancelled": counts[CANCELLED],
        "active": counts[SUBMITTED] + counts[QUEUED] + counts[RUNNING],
        "pending": counts[PENDING] + counts[ASSIGNED],
        "success_rate": counts[COMPLETED] / decided if decided else None,
        "status": status,
        "stalled_because": why,
        "first_start": first.strftime("%Y-%m-%dT%H:%M:%SZ") if first else None,
        "elapsed_seconds": seconds_between(first or created, until),
        "mean_task_seconds": mean,
        "slots": slots,
        "eta_seconds": eta_seconds(tasks, mean, slots, now),
    }


def source_rows(index: Index) -> list[dict[str, Any]]:
    """Each source of the sweep: its slots, its tasks per state, and what the index says of its condition."""
    per: dict[str, Counter[str]] = {name: Counter() for name in index.get("sources", {})}
    for t in index["tasks"].values():
        if t.get("source"):
            per.setdefault(str(t["source"]), Counter())[t["state"]] += 1
    rows = []
    for name, counts in per.items():
        entry = index.get("sources", {}).get(name, {})
        health = entry.get("health") or {}
        rows.append({
            "name": name,
            "type": entry.get("type"),
            "slots": int(entry.get("max_parallel", 0) or 0),
            "active": counts[SUBMITTED] + counts[QUEUED] + counts[RUNNING],
            "running": counts[RUNNING],
            "queued": counts[SUBMITTED] + counts[QUEUED],  # delivered, not started
            "waiting": counts[ASSIGNED] + counts[SUBMITTED] + counts[QUEUED],
            "completed": counts[COMPLETED],
            "failed": counts[FAILED],
            "health": health.get("status"),
            "checked": health.get("checked"),
            "consecutive_failures": int(health.get("consecutive_failures") or 0),
            "disabled": bool(entry.get("disabled")),
            "disabled_by": entry.get("disabled_by"),
            "disabled_reason": entry.get("disabled_reason"),
            "unreachable_since": entry.get("unreachable_since"),
            "in_sweep": name in index.get("sources", {}),
        })
    return rows


def source_stats(index: Index, name: str) -> dict[str, Any]:
    """One source's record in a sweep: attempts delivered there (earlier ones too), outcomes, durations."""
    submitted = completed = failed = running = 0
    durations: list[float] = []
    for t in index["tasks"].values():
        for h in t.get("history", []):
            if h.get("source") == name:
                submitted += 1
                failed += h.get("outcome") == "failed"
        if t.get("source") != name:
            continue
        state = t["state"]
        submitted += bool(t.get("submitted_at")) or state in (SUBMITTED, QUEUED, RUNNING, COMPLETED, FAILED)
        completed += state == COMPLETED
        failed += state == FAILED
        running += state == RUNNING
        if state == COMPLETED and isinstance(t.get("duration"), (int, float)):
            durations.append(float(t["duration"]))
    entry = index.get("sources", {}).get(name, {})
    return {
        "submitted": submitted, "completed": completed, "failed": failed, "running": running,
        "slots": int(entry.get("max_parallel", 0) or 0),
        "success_rate": completed / (completed + failed) if completed + failed else None,
        "mean_task_seconds": sum(durations) / len(durations) if durations else None,
        "health": dict(entry.get("health") or {}),
        "disabled": bool(entry.get("disabled")),
        "disabled_by": entry.get("disabled_by"),
        "disabled_reason": entry.get("disabled_reason"),
    }


def ago_text(seconds: float | None) -> str:
    """`just now`, `42 seconds ago`, `2 minutes ago`, `3 hours ago`, `2 days ago`; `never` for None."""
    if seconds is None:
        return "never"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now" if seconds < 5 else f"{int(seconds)} seconds ago"
