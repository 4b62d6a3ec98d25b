"""What a sweep looks like now, from its index alone (pure): counts, per source, timing, each task."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from hsm.core.index import Index
from hsm.core.states import ACTIVE, COMPLETED, FINAL, ORDER


def parse_iso(text: str | None) -> _dt.datetime | None:
    """A timestamp as hsm and task.sh write it (`2026-11-22T06:31:33Z`); None when absent or malformed."""
    if not text:
        return None
    try:
        return _dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None


def state_counts(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The number of tasks in each state, every state named (a progress line's figures)."""
    counts = Counter(map(itemgetter("state"), tasks.values()))
    return {s: counts.get(s, 0) for s in ORDER}


def task_row(tid: str, t: Mapping[str, Any], stranded: bool = False) -> dict[str, Any]:
    """One task as `hsm status --json` lists it."""
    return {"id": tid, "state": t["state"], "source": t.get("source"), "attempt": t.get("attempt"),
            "exit_code": t.get("exit_code"), "reason": t.get("reason"), "host": t.get("host"),
            "duration": t.get("duration"), "stranded": stranded}


def summarize(index: Index, sweep_id: str, path: str, created: Any = None, rows: bool = True) -> dict[str, Any]:
    """Plain data describing the sweep (what `hsm status --json` prints); with `rows` False,
    `tasks` is left empty (a summary of a million tasks without a million rows)."""
    tasks = index["tasks"]
    sources_meta = index.get("sources", {})
    # Active tasks on a source whose last poll failed: hsm cannot say what became of them.
    unreachable = {n for n, e in sources_meta.items() if e.get("unreachable_since")}
    counts: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = {}
    stranded: dict[str, list[str]] = {}
    durations: list[float] = []
    starts: list[str] = []
    ends: list[str] = []
    listed = []
    for tid, t in tasks.items():
        state, source = t["state"], t.get("source")
        counts[state] += 1
        if source:
            per_source.setdefault(source, Counter())[state] += 1
        is_stranded = source in unreachable and state in ACTIVE
        if is_stranded:
            stranded.setdefault(str(source), []).append(tid)
        if isinstance(t.get("duration"), (int, float)) and state == COMPLETED:
            durations.append(float(t["duration"]))
        if t.get("start"):
            starts.append(t["start"])
        if t.get("end"):
            ends.append(t["end"])
        if rows:
            listed.append(task_row(tid, t, is_stranded))
    total = len(tasks)
    finished = sum(counts[s] for s in FINAL)
    return {
        "sweep_id": sweep_id,
        "path": path,
        "created": created,
        "total": total,
        "finished": finished,
        "done": finished == total,
        "counts": {s: counts.get(s, 0) for s in ORDER},
        "sources": {
            name: {"type": sources_meta.get(name, {}).get("type"),
                   "max_parallel": sources_meta.get(name, {}).get("max_parallel"),
                   "counts": {s: c[s] for s in ORDER if c[s]},
                   **condition(sources_meta.get(name, {}))}
            # Every source of the sweep, also one left without tasks (disabled before it got any).
            for name, c in {**{n: Counter[str]() for n in sources_meta}, **per_source}.items()
        },
        "timing": timing(starts, ends, durations, finished == total),
        "stranded": {
            name: {"since": sources_meta[name].get("unreachable_since"),
                   "error": sources_meta[name].get("unreachable_error"), "tasks": tids}
            for name, tids in stranded.items()
        },
        "tasks": listed,
    }


def condition(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What the index knows of a source's condition: its last health check, and why it is disabled.

    Only what is known is given, so a source never checked nor disabled shows just its tasks.
    """
    out: dict[str, Any] = {}
    health = entry.get("health")
    if health:
        out["health"] = {k: health.get(k) for k in ("status", "checked", "consecutive_failures")}
    if entry.get("disabled"):
        out.update(disabled=True, disabled_reason=entry.get("disabled_reason"), disabled_by=entry.get("disabled_by"))
    return out


def timing(starts: list[str], ends: list[str], durations: list[float], done: bool) -> dict[str, Any]:
    """First start, last end, wall time (once every task is final) and the mean completed duration."""
    first, last = (min(starts) if starts else None), (max(ends) if ends else None)
    elapsed = None
    if first and last and done:
        a, b = parse_iso(first), parse_iso(last)
        elapsed = (b - a).total_seconds() if a and b else None
    return {
        "first_start": first,
        "last_end": last,
        "elapsed_seconds": elapsed,
        "mean_task_seconds": round(sum(durations) / len(durations), 3) if durations else None,
    }


def all_final(index: Mapping[str, Any]) -> bool:
    """True when every task is completed, failed or cancelled."""
    return all(t["state"] in FINAL for t in index["tasks"].values())
