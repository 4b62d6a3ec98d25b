"""Failover as pure changes to the index: taking work back, stealing, retries, silent sources.

Every attempt that ends without being the task's result (taken back before it started,
given up on a source that stopped answering, failed and retried) is kept in the task's
`history`; the task's own fields always describe its latest attempt. A late result of an
earlier attempt is ignored by `states.apply_observation`, so it is never counted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hsm.core.index import OUTCOME_FIELDS, PLACEMENT_FIELDS, Index, TaskEntry, TaskRef, ref_of
from hsm.core.states import ACTIVE, ASSIGNED, FAILED, PENDING, QUEUED, RUNNING, SUBMITTED

# Failures another attempt can cure: the task did nothing wrong, its host or scheduler did.
RETRYABLE_REASONS = frozenset({"lost", "node_fail", "preempted", "disk"})
# How often one task may be given up on silent sources before it counts as failed (`lost`).
ABANDON_LIMIT = 3
UNSTARTED = frozenset({SUBMITTED, QUEUED})


def note_attempt(entry: TaskEntry, outcome: str, reason: str, now: str) -> None:
    """Keep the task's current attempt in its history: where it ran and why it was left."""
    record: dict[str, Any] = {"attempt": entry.get("attempt", 0), "source": entry.get("source"),
                              "outcome": outcome, "reason": reason, "at": now}
    for key in ("job", "host", "start", "end", "duration", "exit_code"):
        if entry.get(key) is not None:
            record[key] = entry[key]
    entry.setdefault("history", []).append(record)


def back_to_pool(entry: TaskEntry, outcome: str, reason: str, now: str) -> None:
    """The current attempt ends without a result; the task waits for its next assignment."""
    note_attempt(entry, outcome, reason, now)
    for key in PLACEMENT_FIELDS:
        entry.pop(key, None)  # type: ignore[misc]
    entry["state"] = PENDING


# --- taking back unstarted work ------------------------------------------------------------------


def unstarted(tasks: Mapping[str, TaskEntry], source: str) -> list[TaskRef]:
    """A source's attempts that have not started: reserved, delivered or queued there."""
    return [ref_of(tid, t) for tid, t in tasks.items() if t.get("source") == source and t["state"] in UNSTARTED]


def unassign(tasks: dict[str, TaskEntry], source: str) -> list[str]:
    """A source's assigned, unreserved tasks go back to the pool (nothing was sent yet)."""
    moved = [tid for tid, t in tasks.items() if t.get("source") == source and t["state"] == ASSIGNED]
    for tid in moved:
        tasks[tid]["state"] = PENDING
        tasks[tid].pop("source", None)
    return moved


def take_back(tasks: dict[str, TaskEntry], source: str, refs: Iterable[TaskRef], outcome: str, reason: str,
              now: str) -> list[str]:
    """Attempts the source gave back (or that hsm gave up on) return to the pool.

    Only an attempt that is still the task's current one on that source moves: a poll may
    have recorded its end meanwhile.
    """
    moved = []
    for ref in refs:
        entry = tasks.get(ref.id)
        if entry is None or entry.get("source") != source or entry.get("attempt") != ref.attempt:
            continue
        if entry["state"] not in ACTIVE:
            continue
        back_to_pool(entry, outcome, reason, now)
        moved.append(ref.id)
    return moved


# --- work stealing ---------------------------------------------------------------------------------


@dataclass
class SourceLoad:
    """What a source holds now, as stealing sees it."""

    capacity: int
    running: int = 0
    waiting: int = 0  # assigned, or delivered and not started

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.running)

    @property
    def surplus(self) -> int:
        """Waiting tasks beyond what its own free slots will start next."""
        return max(0, self.waiting - self.free)


def loads(tasks: Mapping[str, TaskEntry], capacity: Mapping[str, int]) -> dict[str, SourceLoad]:
    """Each enabled source's running and waiting tasks."""
    out = {name: SourceLoad(cap) for name, cap in capacity.items()}
    for t in tasks.values():
        load = out.get(t.get("source", ""))
        if load is None:
            continue
        if t["state"] == RUNNING:
            load.running += 1
        elif t["state"] in (ASSIGNED, SUBMITTED, QUEUED):
            load.waiting += 1
    return out


def plan_steal(tasks: Mapping[str, TaskEntry], capacity: Mapping[str, int],
               silent: Collection[str] = ()) -> dict[str, int]:
    """How many waiting tasks to take from each source, so idle sources get work now.

    A source is idle when it has free slots and nothing waiting; it takes at most its free
    slots (so sources keep work in proportion to their slots), from the sources with the
    largest surplus first. A `silent` source (not answering) gives but never takes. Empty
    when nothing should move.
    """
    load = loads(tasks, capacity)
    wanted = sum(s.free for n, s in load.items() if s.waiting == 0 and n not in silent)
    plan: dict[str, int] = {}
    while wanted > 0:
        victim = max(load, key=lambda n: (load[n].surplus, -list(load).index(n)), default=None)
        if victim is None or load[victim].surplus == 0:
            break
        plan[victim] = plan.get(victim, 0) + 1
        load[victim].waiting -= 1
        wanted -= 1
    return plan


def steal_order(tasks: Mapping[str, TaskEntry], source: str, count: int) -> list[TaskRef]:
    """The `count` waiting attempts a source would start last: its queue's tail."""
    waiting = [ref_of(tid, t) for tid, t in tasks.items() if t.get("source") == source and t["state"] in UNSTARTED]
    return waiting[-count:] if count > 0 else []


def idle_sources(tasks: Mapping[str, TaskEntry], capacity: Mapping[str, int],
                 silent: Collection[str] = ()) -> dict[str, int]:
    """Sources with free slots and nothing waiting (and answering): name -> free slots."""
    return {n: s.free for n, s in loads(tasks, capacity).items() if s.waiting == 0 and s.free > 0 and n not in silent}


# --- a source whose tasks cannot start ------------------------------------------------------------

# Exit codes of a command that could not be started (not executable, not found): the
# source's setup is wrong (e.g. its python_interpreter), not the task.
CANNOT_START = frozenset({126, 127})


def cannot_start(tasks: Mapping[str, TaskEntry], failed: Iterable[str]) -> dict[str, list[str]]:
    """Of the tasks that just failed, those whose command could not start, by source."""
    out: dict[str, list[str]] = {}
    for tid in failed:
        entry = tasks.get(tid)
        if entry is not None and entry.get("reason") == "exit_code" and entry.get("exit_code") in CANNOT_START:
            out.setdefault(entry.get("source", ""), []).append(tid)
    return out


def requeue_elsewhere(tasks: dict[str, TaskEntry], tids: Iterable[str], now: str) -> None:
    """Tasks that failed through no fault of their own run again, on another source."""
    for tid in tids:
        entry = tasks[tid]
        source = entry.get("source", "")
        back_to_pool(entry, "failed", str(entry.get("reason")), now)
        entry["avoid"] = source


# --- retries ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt gets another one, and after how long."""

    attempts: int = 0
    delay: float = 60.0
    exponential: bool = False
    on_timeout: bool = False
    exit_codes: frozenset[int] = frozenset()

    @classmethod
    def of(cls, compute: Mapping[str, Any]) -> RetryPolicy:
        return cls(int(compute.get("retry_attempts", 0)), float(compute.get("retry_delay", 60.0)),
                   bool(compute.get("exponential_backoff", False)), bool(compute.get("retry_on_timeout", False)),
                   frozenset(int(c) for c in compute.get("retry_on_exit_codes", ()) or ()))

    def cures(self, entry: Mapping[str, Any]) -> bool:
        """True when another attempt may succeed where this one failed."""
        reason = entry.get("reason")
        if reason in RETRYABLE_REASONS or (reason == "timeout" and self.on_timeout):
            return True
        return reason == "exit_code" and entry.get("exit_code") in self.exit_codes

    def wait(self, retries_before: int) -> float:
        """Seconds before the next attempt, growing with each retry when exponential."""
        return self.delay * (2 ** retries_before if self.exponential else 1)


@dataclass
class Retry:
    """One task sent back to the pool for another attempt."""

    task: str
    source: str
    number: int  # 1 for the first retry
    wait: float
    reason: str


def schedule_retries(tasks: dict[str, TaskEntry], failed: Iterable[str], policy: RetryPolicy, now: str,
                     later: Any) -> list[Retry]:
    """Failed tasks that another attempt can cure go back to the pool, not before their delay.

    `later(seconds)` is the ISO time that many seconds from now (the caller owns the clock).
    The retry prefers another source than the one that failed (`avoid`).
    """
    out = []
    for tid in failed:
        entry = tasks.get(tid)
        if entry is None or entry["state"] != FAILED or not policy.cures(entry):
            continue
        done = entry.get("retries", 0)
        if done >= policy.attempts:
            continue
        source, reason = entry.get("source", ""), str(entry.get("reason"))
        wait = policy.wait(done)
        back_to_pool(entry, "failed", reason, now)
        entry["retries"] = done + 1
        entry["avoid"] = source
        if wait > 0:
            entry["retry_at"] = later(wait)
        out.append(Retry(tid, source, done + 1, wait, reason))
    return out


# --- a source that stopped answering --------------------------------------------------------------


@dataclass
class Abandoned:
    """What giving up on a silent source did."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # given up too often: failed, reason lost


def abandon(index: Index, source: str, refs: Iterable[TaskRef], now: str) -> Abandoned:
    """Give up the source's attempts without its word: they run elsewhere, this one is stopped
    there when the source answers again (the attempts are kept in its `abandoned` list)."""
    tasks, result = index["tasks"], Abandoned()
    entry = index["sources"][source]
    kept = entry.setdefault("abandoned", [])
    for ref in refs:
        task = tasks.get(ref.id)
        if task is None or task.get("source") != source or task.get("attempt") != ref.attempt \
                or task["state"] not in ACTIVE:
            continue
        kept.append([ref.id, ref.attempt, ref.job])
        given_up = sum(1 for h in task.get("history", []) if h.get("outcome") == "abandoned")
        if given_up + 1 >= ABANDON_LIMIT:
            note_attempt(task, "abandoned", "lost", now)
            for key in OUTCOME_FIELDS:
                if key not in ("job", "host", "start"):
                    task.pop(key, None)  # type: ignore[misc]
            task.update({"state": FAILED, "reason": "lost", "end": now})
            result.failed.append(ref.id)
        else:
            back_to_pool(task, "abandoned", "lost", now)
            task["avoid"] = source
            result.requeued.append(ref.id)
    return result


def silent_too_long(index: Index, grace_until: str) -> list[str]:
    """Sources with active attempts that have not answered since before `grace_until`."""
    active = {t.get("source") for t in index["tasks"].values() if t["state"] in ACTIVE}
    return [name for name, e in index.get("sources", {}).items()
            if name in active and e.get("unreachable_since") and str(e["unreachable_since"]) <= grace_until]
