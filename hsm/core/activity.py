"""A sweep's recent activity, from the lines its steps append to its logs (pure).

The steps write `[2026-11-22 06:31:33] LEVEL - message` (task_assignments.log has no
level). Each line becomes one event in a few words (`completed task_045 on cluster (3.2s)`)
or nothing when it is routine (a passed health check, a task queued); the same line kept
in two logs (a failure in sweep.log and in its source's log) is one event.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

LINE = re.compile(r"^\[(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (?:(?:INFO|WARNING|ERROR|DEBUG) - )?(?P<msg>.*\S)\s*$")
TRANSITION = re.compile(r"^(?P<task>\S+) (?P<before>\w+) -> (?P<after>\w+) on (?P<source>\S+?)(?: \((?P<detail>.*)\))?$")
ASSIGNMENT = re.compile(r"^(?P<task>\S+) -> (?P<source>\S+)(?: \(from (?P<previous>\S+)\))? strategy=\S+"
                        r"(?P<again> \(reassigned\))?$")
HEALTH_FAILED = re.compile(r"^Health check failed for (?P<source>[^:]+): (?P<details>.*?)"
                           r"(?: \(consecutive failures: (?P<n>\d+)\))?$")
DISABLING = re.compile(r"^Disabling source '(?P<source>[^']+)'(?:: | due to )(?P<why>.*)$")
SUBMIT = re.compile(r"^submit: (?P<n>\d+) tasks to (?P<source>\S+)$")
EXPAND = re.compile(r"^expand: (?P<n>\d+) tasks")
ANSWERS = re.compile(r"^(?:poll: )?[Ss]ource (?P<source>\S+) answers again$")
SILENT = re.compile(r"^poll: source (?P<source>\S+) did not answer: (?P<why>.*)$")
FAILURE = re.compile(r"^reason (?P<reason>[^,]+), exit code (?P<code>\S+)$")
# Log stamps have one-second precision; within a second, events are shown in this order.
RANK_START, RANK_SUBMIT, RANK_TASK, RANK_OTHER, RANK_MOVE = range(5)
# Routine lines: each task's submission (sweep.log counts them per source), passed checks.
ROUTINE = re.compile(r"^(submitted task_\S+|Health check passed for .*)$")


@dataclass(frozen=True)
class Event:
    """One thing that happened: when (`YYYY-MM-DD HH:MM:SS`, this machine's clock), what, and for a
    completed task how long it took (seconds)."""

    stamp: str
    text: str
    took: float | None = None
    rank: int = RANK_OTHER  # orders the events of one second: a sweep starts, tasks move, policy reacts


    @property
    def clock(self) -> str:
        """`14:45:23`."""
        return self.stamp[11:]


def _failure_detail(detail: str | None) -> str:
    """`exit code 3` for a plain non-zero exit, else the reason (`timeout`, `oom`, `lost`)."""
    match = FAILURE.match(detail or "")
    if not match:
        return f" ({detail})" if detail else ""
    reason, code = match.group("reason"), match.group("code")
    return f" (exit code {code})" if reason == "exit_code" else f" ({reason})"


def _transition(m: re.Match[str]) -> str | None:
    task, after, source = m.group("task"), m.group("after"), m.group("source")
    if after == "running":
        return f"started {task} on {source}"
    if after == "completed":
        return f"completed {task} on {source}"
    if after == "failed":
        return f"failed {task} on {source}{_failure_detail(m.group('detail'))}"
    if after == "cancelled":
        return f"cancelled {task} on {source}"
    return None  # submitted, queued: the next event says more


def _assignment(m: re.Match[str]) -> str | None:
    if m.group("previous") and m.group("previous") != m.group("source"):
        return f"reassigned {m.group('task')} from {m.group('previous')} to {m.group('source')}"
    if m.group("again"):
        return f"reassigned {m.group('task')} to {m.group('source')}"
    return None  # the first assignment of a task: the sweep's start says it


def _health(m: re.Match[str]) -> str:
    n = m.group("n")
    return f"health check failed on {m.group('source')}" + (f" ({n} in a row)" if n else "") + f": {m.group('details')}"


_RULES: tuple[tuple[re.Pattern[str], int, Callable[[re.Match[str]], str | None]], ...] = (
    (ASSIGNMENT, RANK_MOVE, _assignment),
    (HEALTH_FAILED, RANK_OTHER, _health),
    (DISABLING, RANK_OTHER, lambda m: f"disabled source {m.group('source')}: {m.group('why')}"),
    (SUBMIT, RANK_SUBMIT, lambda m: f"submitted {m.group('n')} tasks to {m.group('source')}"),
    (EXPAND, RANK_START, lambda m: f"sweep created: {m.group('n')} tasks"),
    (ANSWERS, RANK_OTHER, lambda m: f"source {m.group('source')} answers again"),
    (SILENT, RANK_OTHER, lambda m: f"source {m.group('source')} did not answer: {m.group('why')}"),
)


def event_of(line: str, durations: Mapping[str, float] | None = None) -> Event | None:
    """The event a log line records, None when it records nothing worth showing.

    `durations`: the completed tasks' durations in seconds, by task id.
    """
    head = LINE.match(line)
    if not head:
        return None
    stamp, msg = head.group("stamp"), head.group("msg")
    if ROUTINE.match(msg):
        return None
    move = TRANSITION.match(msg)
    if move:
        text = _transition(move)
        took = (durations or {}).get(move.group("task")) if move.group("after") == "completed" else None
        return Event(stamp, text, took, RANK_TASK) if text else None
    for pattern, rank, describe in _RULES:
        match = pattern.match(msg)
        if match:
            text = describe(match)
            return Event(stamp, text, None, rank) if text else None
    return Event(stamp, msg[:1].lower() + msg[1:] if msg[1:2].islower() else msg)


def recent(lines_by_log: Iterable[Iterable[str]], limit: int, durations: Mapping[str, float] | None = None) -> list[Event]:
    """The last `limit` events of several logs, oldest first; an event kept in two logs is shown once."""
    shown: Counter[Event] = Counter()
    events: list[Event] = []
    for lines in lines_by_log:
        here: Counter[Event] = Counter()
        for line in lines:
            event = event_of(line, durations)
            if event is None:
                continue
            here[event] += 1
            if here[event] > shown[event]:  # not yet shown from another log
                shown[event] += 1
                events.append(event)
    events.sort(key=lambda e: (e.stamp, e.rank))  # stable: one log's lines of one second keep their order
    return events[-limit:] if limit > 0 else []
