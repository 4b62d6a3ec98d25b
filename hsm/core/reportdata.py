"""What the reports show, computed from the index, the tasks' rows and the logs (pure).

An attempt is one run of a task on a source: the earlier ones are in the task's `history`
(see core.failover), the latest is the task's own entry. The timeline packs each source's
attempts into slots, the way a source runs them; the completion report ranks tasks by a
metric of their metrics.json.
"""

from __future__ import annotations

import heapq
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hsm.core.summary import parse_iso

T = TypeVar("T")

# The task columns between a row's parameters and its metrics (hsm.commands.export.task_rows).
TASK_COLUMNS = ("state", "reason", "exit_code", "source", "host", "attempts", "start", "end", "duration")
# A metric whose name contains one of these is better when lower.
LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "perplexity")
# What became of an earlier attempt (history `outcome`) as the reports name it.
_HISTORY_OUTCOME = {"failed": "retried", "abandoned": "abandoned"}


def number(value: Any) -> float | None:
    """`value` as a finite float (numbers and numeric text); None otherwise (booleans too)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def epoch(text: Any) -> float | None:
    """An ISO timestamp of the index as seconds since the epoch; None when absent or malformed."""
    moment = parse_iso(text) if isinstance(text, str) else None
    return moment.timestamp() if moment else None


def thin(items: Sequence[T], limit: int) -> list[T]:
    """At most `limit` of `items`, evenly spread over them, in their order."""
    if len(items) <= limit:
        return list(items)
    if limit <= 0:
        return []
    return [items[int(i * len(items) / limit)] for i in range(limit)]


# --- attempts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task on a source, with its outcome and times (epoch seconds)."""

    task: str
    attempt: Any
    source: str
    host: str | None
    outcome: str  # completed, failed, retried, abandoned, running, cancelled, or what history says
    reason: str | None
    exit_code: Any
    start: float | None
    end: float | None
    duration: float | None

    def tip(self) -> str:
        """The attempt in one line, for a tooltip."""
        parts = [f"{self.task} attempt {self.attempt}", f"{self.outcome} on {self.source}"]
        if self.host:
            parts.append(f"host {self.host}")
        if self.duration is not None:
            parts.append(f"{self.duration:.1f} s")
        if self.outcome not in ("completed", "running") and (self.reason or self.exit_code is not None):
            parts.append(f"reason {self.reason}, exit code {self.exit_code}")
        return ", ".join(parts)


def _attempt(tid: str, record: Mapping[str, Any], outcome: str, now: float | None) -> Attempt:
    start, end = epoch(record.get("start")), epoch(record.get("end"))
    duration = number(record.get("duration"))
    if end is None and start is not None:
        if duration is not None:
            end = start + duration
        elif outcome == "running":
            end = now
        else:
            end = epoch(record.get("at"))
    if duration is None and start is not None and end is not None and outcome != "running":
        duration = max(0.0, end - start)
    return Attempt(tid, record.get("attempt"), str(record.get("source") or "(none)"), record.get("host"), outcome,
                   record.get("reason"), record.get("exit_code"), start, end, duration)


def attempts(tasks: Mapping[str, Mapping[str, Any]], now: float | None = None) -> list[Attempt]:
    """Every attempt of every task: its history, then its current attempt (when it has a source).

    A running attempt ends `now` on the timeline; one that never started has no times.
    """
    out = []
    for tid, entry in tasks.items():
        for past in entry.get("history") or []:
            if isinstance(past, Mapping) and past.get("source"):
                outcome = str(past.get("outcome") or "other")
                out.append(_attempt(tid, past, _HISTORY_OUTCOME.get(outcome, outcome), now))
        if entry.get("source"):
            out.append(_attempt(tid, entry, str(entry.get("state")), now))
    return out


def pack_slots(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """A slot (0, 1, ...) for each interval, so intervals in one slot do not overlap.

    Greedy: by start time, each interval takes the lowest slot free at its start; this uses
    as few slots as the most intervals overlapping at once.
    """
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i][0], intervals[i][1]))
    busy: list[tuple[float, int]] = []  # (end, slot)
    free: list[int] = []
    slots = [0] * len(intervals)
    used = 0
    for i in order:
        start, end = intervals[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            slot = heapq.heappop(free)
        else:
            slot, used = used, used + 1
        slots[i] = slot
        heapq.heappush(busy, (max(start, end), slot))
    return slots


@dataclass
class Layout:
    """Timeline rows (one per source slot) and the attempts placed on them."""

    rows: list[str]
    group_of: list[int]
    placed: list[tuple[int, Attempt]]


def timeline_layout(found: Sequence[Attempt], sources: Sequence[str]) -> Layout:
    """Each source's started attempts packed into slots, the sources in the given order."""
    layout = Layout([], [], [])
    order = list(dict.fromkeys([*sources, *(a.source for a in found)]))
    for group, source in enumerate(order):
        mine = [a for a in found if a.source == source and a.start is not None and a.end is not None]
        if not mine:
            continue
        slots = pack_slots([(a.start or 0.0, a.end or 0.0) for a in mine])
        base = len(layout.rows)
        count = max(slots) + 1
        layout.rows += [f"{source} · slot {k + 1}" for k in range(count)]
        layout.group_of += [group] * count
        layout.placed += [(base + s, a) for s, a in zip(slots, mine)]
    return layout


def duration_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, median and max of durations (None when there are none), rounded to milliseconds."""
    if not values:
        return {"mean_duration": None, "median_duration": None, "max_duration": None}
    return {"mean_duration": round(statistics.fmean(values), 3), "median_duration": round(statistics.median(values), 3),
            "max_duration": round(max(values), 3)}


def source_stats(tasks: Mapping[str, Mapping[str, Any]], found: Sequence[Attempt],
                 sources: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Per source: its tasks and their outcomes, its attempts, retries and abandoned ones, durations."""
    stats: dict[str, dict[str, Any]] = {}

    def of(name: str) -> dict[str, Any]:
        return stats.setdefault(name, {"tasks": 0, "completed": 0, "failed": 0, "attempts": 0, "retries": 0,
                                       "abandoned": 0, "busy_seconds": 0.0, "durations": []})

    for name in sources:
        of(name)
    for entry in tasks.values():
        s = of(str(entry.get("source") or "(unassigned)"))
        s["tasks"] += 1
        if entry.get("state") in ("completed", "failed"):
            s[str(entry["state"])] += 1
    for a in found:
        s = of(a.source)
        s["attempts"] += 1
        s["retries"] += a.outcome == "retried"
        s["abandoned"] += a.outcome == "abandoned"
        if a.duration is not None:
            s["durations"].append(a.duration)
            s["busy_seconds"] += a.duration
    for s in stats.values():
        finished = s["completed"] + s["failed"]
        s["success_rate"] = round(s["completed"] / finished, 3) if finished else None
        s["busy_seconds"] = round(s["busy_seconds"], 3)
        s.update(duration_stats(s.pop("durations")))
    return stats


# --- the utilization log --------------------------------------------------------------------------

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)\]")
_FIELD = re.compile(r"\b(source|active|slots|queued|load)=(\S+)")


@dataclass(frozen=True)
class Sample:
    """One line of logs/source_utilization.log: a source's use at a time (fields may be missing)."""

    at: str  # "YYYY-MM-DD HH:MM:SS", local time as the log writes it
    active: float | None
    slots: float | None
    queued: float | None
    load: float | None


def parse_utilization(lines: Iterable[str]) -> dict[str, list[Sample]]:
    """Samples per source, in the log's order; lines without a time or a source are skipped."""
    out: dict[str, list[Sample]] = {}
    for line in lines:
        stamp = _STAMP.match(line.strip())
        if not stamp:
            continue
        fields = dict(_FIELD.findall(line[stamp.end():]))
        if not fields.get("source"):
            continue
        out.setdefault(fields["source"], []).append(Sample(
            stamp.group(1).replace("T", " "), *(number(fields.get(k)) for k in ("active", "slots", "queued", "load"))))
    return out


# --- metrics --------------------------------------------------------------------------------------


def split_columns(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The parameter and the metric columns of `task_rows` (before and after its task columns)."""
    n = len(TASK_COLUMNS)
    for i in range(len(columns) - n + 1):
        if tuple(columns[i:i + n]) == TASK_COLUMNS:
            return [c for c in columns[:i] if c != "task_id"], list(columns[i + n:])
    known = {*TASK_COLUMNS, "task_id"}
    return [c for c in columns if c not in known], []


def default_mode(metric: str) -> str:
    """"min" for a metric whose name says lower is better (loss, error, ...), else "max"."""
    return "min" if any(word in metric.lower() for word in LOWER_IS_BETTER) else "max"


def pick_metric(metrics: Sequence[str], rows: Sequence[Mapping[str, Any]], wanted: str | None) -> str | None:
    """The metric column to rank by: `wanted` (also without a `metrics.` prefix), else the first
    one with a numeric value; None when there is none (or `wanted` is not a metric)."""
    if wanted:
        for column in metrics:
            if column == wanted or column.split(".", 1)[-1] == wanted and column.split(".", 1)[0] in ("metric", "metrics"):
                return column
        return None
    for column in metrics:
        if any(number(row.get(column)) is not None for row in rows):
            return column
    return None


def ranked(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> list[Mapping[str, Any]]:
    """The rows with a numeric value of `metric`, best first (ties in their order)."""
    valued = [(number(row.get(metric)), i, row) for i, row in enumerate(rows)]
    scored = [(v, i, row) for v, i, row in valued if v is not None]
    scored.sort(key=lambda item: (-item[0] if mode == "max" else item[0], item[1]))
    return [row for _, _, row in scored]


@dataclass(frozen=True)
class Axis:
    """How a parameter is charted: numbers (log scale when they span decades), or categories."""

    categories: list[str] | None
    log: bool = False


def param_axis(values: Sequence[Any]) -> Axis:
    """The axis of a parameter, from its values (empty ones ignored)."""
    present = [v for v in values if v is not None and v != ""]
    numbers = [number(v) for v in present]
    if present and all(n is not None for n in numbers):
        positive = [n for n in numbers if n is not None and n > 0]
        log = len(positive) == len(numbers) and len(set(positive)) > 2 and max(positive) / min(positive) >= 100
        return Axis(None, log)
    return Axis(sorted({str(v) for v in present}, key=lambda s: (len(s), s)))
