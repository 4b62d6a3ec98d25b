"""`hsm status`: counts per state and per source, timing, and each task's fate."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hsm.clock import parse_iso
from hsm.core.states import ACTIVE, ORDER, is_final
from hsm.sweep import Sweep


def summarize(sweep: Sweep, index: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain data describing the sweep now (what `hsm status --json` prints)."""
    index = index if index is not None else sweep.read_index()
    tasks = index["tasks"]
    counts = Counter(t["state"] for t in tasks.values())
    per_source: dict[str, Counter] = {}
    durations: list[float] = []
    starts, ends = [], []
    rows = []
    sources_meta = index.get("sources", {})
    # Active tasks on a source whose last poll failed: hsm cannot say what became of them.
    unreachable = {n for n, e in sources_meta.items() if e.get("unreachable_since")}
    stranded: dict[str, list[str]] = {}
    for tid, t in tasks.items():
        source = t.get("source")
        if source in unreachable and t["state"] in ACTIVE:
            stranded.setdefault(source, []).append(tid)
        if source:
            per_source.setdefault(source, Counter())[t["state"]] += 1
        if isinstance(t.get("duration"), (int, float)) and t["state"] == "completed":
            durations.append(float(t["duration"]))
        if t.get("start"):
            starts.append(t["start"])
        if t.get("end"):
            ends.append(t["end"])
        rows.append({
            "id": tid,
            "state": t["state"],
            "source": source,
            "attempt": t.get("attempt"),
            "exit_code": t.get("exit_code"),
            "reason": t.get("reason"),
            "host": t.get("host"),
            "duration": t.get("duration"),
            "stranded": source in stranded and t["state"] in ACTIVE,
        })
    total = len(tasks)
    finished = sum(counts[s] for s in ("completed", "failed", "cancelled"))
    first, last = (min(starts) if starts else None), (max(ends) if ends else None)
    elapsed = None
    if first and last and finished == total:
        a, b = parse_iso(first), parse_iso(last)
        elapsed = (b - a).total_seconds() if a and b else None
    return {
        "sweep_id": sweep.id,
        "path": str(sweep.root),
        "created": sweep.metadata.get("created"),
        "total": total,
        "finished": finished,
        "done": finished == total,
        "counts": {s: counts.get(s, 0) for s in ORDER},
        "sources": {
            name: {
                "type": sources_meta.get(name, {}).get("type"),
                "max_parallel": sources_meta.get(name, {}).get("max_parallel"),
                "counts": {s: c[s] for s in ORDER if c[s]},
            }
            for name, c in per_source.items()
        },
        "timing": {
            "first_start": first,
            "last_end": last,
            "elapsed_seconds": elapsed,
            "mean_task_seconds": round(sum(durations) / len(durations), 3) if durations else None,
        },
        "stranded": {
            name: {
                "since": sources_meta[name].get("unreachable_since"),
                "error": sources_meta[name].get("unreachable_error"),
                "tasks": tids,
            }
            for name, tids in stranded.items()
        },
        "tasks": rows,
    }


def all_final(index: dict[str, Any]) -> bool:
    """True when every task is completed, failed or cancelled."""
    return all(is_final(t["state"]) for t in index["tasks"].values())
