"""How busy each source of a sweep is, from its index (pure): one line per source for
`logs/source_utilization.log`, sampled while a sweep runs."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from hsm.core.states import QUEUED, RUNNING, SUBMITTED

_LOAD = re.compile(r"\bload(?: average)?[^0-9-]{0,12}(-?\d+(?:\.\d+)?)", re.I)


def load_of(details: Any) -> float | None:
    """The load a health check's details report (`load 1.25, ...`), None when they do not."""
    match = _LOAD.search(str(details or ""))
    return float(match.group(1)) if match else None


def utilization(index: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per source: active (running) tasks, slots, queued (handed over, not started), its load."""
    running: Counter[str] = Counter()
    queued: Counter[str] = Counter()
    for task in index["tasks"].values():
        source, state = task.get("source"), task["state"]
        if source and state == RUNNING:
            running[source] += 1
        elif source and state in (SUBMITTED, QUEUED):
            queued[source] += 1
    rows = []
    for name, entry in index.get("sources", {}).items():
        health = entry.get("health") or {}
        rows.append({"source": name, "active": running[name], "slots": entry.get("max_parallel"),
                     "queued": queued[name], "load": load_of(health.get("details")),
                     "disabled": bool(entry.get("disabled"))})
    return rows


def utilization_lines(rows: list[dict[str, Any]], stamp: str) -> list[str]:
    """`[stamp] source=NAME active=A slots=S queued=Q load=L` (load `-` when unknown)."""
    out = []
    for r in rows:
        load = "-" if r["load"] is None else f"{r['load']:g}"
        extra = " disabled" if r["disabled"] else ""
        out.append(f"[{stamp}] source={r['source']} active={r['active']} slots={r['slots']} "
                   f"queued={r['queued']} load={load}{extra}")
    return out
