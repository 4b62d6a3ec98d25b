"""The task index as data: what `task_mapping.yaml` holds, and what a source sees of a task (pure).

The index stays plain dicts (it is parsed at JSON speed for 100,000 tasks); these types
name its shape for readers and for the type checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypedDict

# What a task's entry records of an attempt's outcome: cleared when a new attempt starts.
OUTCOME_FIELDS = ("host", "start", "end", "duration", "exit_code", "reason", "seen", "job")
# ... and of its placement too: cleared when a task goes back to the pool.
PLACEMENT_FIELDS = (*OUTCOME_FIELDS, "source", "submitted_at")
# What of a source's observation the index keeps.
OBSERVED_FIELDS = ("state", "attempt", "host", "start", "end", "duration", "exit_code", "reason", "seen")


class TaskEntry(TypedDict, total=False):
    """One task in the index."""

    state: str  # pending, assigned, submitted, queued, running, completed, failed, cancelled
    source: str  # the source it is assigned to
    attempt: int  # the number of its latest attempt (1 for the first)
    job: str  # what the source accepted it as: "runner", or a scheduler job id
    submitted_at: str
    host: str
    start: str
    end: str
    duration: float
    exit_code: int
    reason: str  # why it failed: exit_code, timeout, oom, node_fail, preempted, disk, lost, cancelled
    seen: list[int]  # the mark of the status file folded in last
    history: list[dict[str, Any]]  # earlier attempts that are not its result (see core.failover)
    retries: int  # automatic retries used
    retry_at: str  # not assigned again before this time
    avoid: str  # the source its last attempt failed on: a retry prefers another


class SourceEntry(TypedDict, total=False):
    """One source of a sweep in the index."""

    type: str
    max_parallel: int
    options: dict[str, Any]
    disabled: bool
    disabled_reason: str
    disabled_by: str  # "policy" (enabled again after healthy checks) or "user" (until `hsm sources enable`)
    disabled_at: str
    failsafe_base: list[int]  # [finished, failed] when it was last enabled: its failure rate counts from there
    abandoned: list[list[Any]]  # [task, attempt] given up here while it did not answer: stopped when it does
    health: dict[str, Any]
    unreachable_since: str
    unreachable_error: str


class Index(TypedDict, total=False):
    """`task_mapping.yaml`."""

    schema: int
    sweep_id: str
    sources: dict[str, SourceEntry]
    tasks: dict[str, TaskEntry]


class TaskRef(NamedTuple):
    """A task attempt as a source sees it.

    A named tuple, not a dataclass: a poll builds one per unfinished task, a million of them
    on a big sweep, and a frozen dataclass takes three times as long to make.
    """

    id: str
    attempt: int
    state: str
    seen: list[int] | None = None  # the status file's mark folded into the index
    job: str | None = None


@dataclass
class PollResult:
    """What one poll of a source saw.

    `reachable` False means the source could not be asked: no task state may change
    because of it, and it counts as a failed health check.
    """

    reachable: bool
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None


def ref_of(tid: str, entry: TaskEntry) -> TaskRef:
    """The source's view of a task's current attempt."""
    return TaskRef(tid, entry.get("attempt", 0), entry["state"], entry.get("seen"), entry.get("job"))
