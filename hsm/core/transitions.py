"""Every change a step makes to the task index, as pure functions (the caller holds the lock).

A command reads the index, calls one of these on it, acts outside the lock, and records
what happened with another; it renders log lines from what they return. Time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hsm.core.assign import Slot
from hsm.core.assign import assign as place
from hsm.core.health import decide
from hsm.core.index import OBSERVED_FIELDS, OUTCOME_FIELDS, PLACEMENT_FIELDS, Index, PollResult, TaskEntry, TaskRef
from hsm.core.states import (
    ACTIVE,
    ASSIGNED,
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    SUBMITTED,
    apply_observation,
    is_final,
)

# --- assign ------------------------------------------------------------------------------------


def register_sources(index: Index, sources: Mapping[str, Mapping[str, Any]]) -> bool:
    """Add or update the given sources' entries (name -> index entry); True when any changed.

    A source keeps what the index already knows of it (health, disabled) under its new settings.
    """
    known = index.setdefault("sources", {})
    changed = False
    for name, entry in sources.items():
        merged = {**known.get(name, {}), **entry}
        if known.get(name) != merged:
            known[name] = merged  # type: ignore[assignment]
            changed = True
    return changed


def assign_tasks(index: Index, capacity: Mapping[str, int], strategy: str,
                 seed: int | None = None) -> dict[str, tuple[str, str | None]]:
    """Give pending tasks (and assigned ones of sources not named now) to the named sources.

    `capacity` is source name -> parallel slots, in the order the strategy sees them.
    Returns task -> (source, previous source).
    """
    tasks = index["tasks"]
    candidates = [tid for tid, t in tasks.items()
                  if t["state"] == PENDING or (t["state"] == ASSIGNED and t.get("source") not in capacity)]
    if not candidates:
        return {}
    load = dict.fromkeys(capacity, 0)
    for t in tasks.values():
        if t.get("source") in load and (t["state"] == ASSIGNED or t["state"] in ACTIVE):
            load[t["source"]] += 1
    slots = [Slot(name, cap, load[name]) for name, cap in capacity.items()]
    placed: dict[str, tuple[str, str | None]] = {}
    for tid, name in place(candidates, slots, strategy, seed).items():
        entry = tasks[tid]
        placed[tid] = (name, entry.get("source"))
        entry["state"] = ASSIGNED
        entry["source"] = name
    return placed


# --- submit ------------------------------------------------------------------------------------


def reserve_attempts(tasks: dict[str, TaskEntry], now: str) -> list[str]:
    """Every assigned task becomes submitted with a new attempt number; the tasks reserved."""
    reserved = []
    for tid, entry in tasks.items():
        if entry["state"] == ASSIGNED:
            for key in OUTCOME_FIELDS:
                entry.pop(key, None)  # type: ignore[misc]
            entry["state"] = SUBMITTED
            entry["attempt"] = entry.get("attempt", 0) + 1
            entry["submitted_at"] = now
            reserved.append(tid)
    return reserved


def undelivered(tasks: Mapping[str, TaskEntry]) -> dict[str, list[TaskRef]]:
    """Reserved attempts no source has accepted yet, by source (a crash or a refusal left them)."""
    out: dict[str, list[TaskRef]] = {}
    for tid, entry in tasks.items():
        if entry["state"] == SUBMITTED and not entry.get("job"):
            out.setdefault(entry["source"], []).append(TaskRef(tid, entry["attempt"], entry["state"]))
    return out


def fold_accepted(tasks: dict[str, TaskEntry], accepted: Mapping[str, Mapping[str, Any]]) -> bool:
    """Record what a source accepted (its job ids) for attempts still waiting for it; True when any."""
    changed = False
    for tid, fields in accepted.items():
        entry = tasks.get(tid)
        if entry is not None and entry["state"] == SUBMITTED and not entry.get("job") \
                and fields.get("attempt", entry.get("attempt")) == entry.get("attempt"):
            entry.update(fields)  # type: ignore[typeddict-item]
            changed = True
    return changed


# --- poll --------------------------------------------------------------------------------------


def delivered_unfinished(tasks: Mapping[str, TaskEntry]) -> dict[str, list[TaskRef]]:
    """Attempts a source has accepted and that have not ended, by source: what a poll asks about."""
    out: dict[str, list[TaskRef]] = {}
    for tid, entry in tasks.items():
        state = entry["state"]
        if state in ACTIVE and not (state == SUBMITTED and not entry.get("job")):
            out.setdefault(entry["source"], []).append(
                TaskRef(tid, entry["attempt"], state, entry.get("seen"), entry.get("job")))
    return out


@dataclass
class PollFold:
    """What folding one poll into the index did."""

    transitions: list[tuple[str, str, str, str]] = field(default_factory=list)  # (task, source, from, to)
    unreachable: dict[str, str] = field(default_factory=dict)  # source -> why
    recovered: list[str] = field(default_factory=list)  # sources that answer again
    failures: dict[str, str] = field(default_factory=dict)  # task -> "reason R, exit code N"
    changed: bool = False


def poll_has_news(index: Index, results: Mapping[str, PollResult]) -> bool:
    """False when folding `results` would change nothing: no observation, every source answered as before."""
    known = index.get("sources", {})
    return (any(r.observations for r in results.values()) or not all(r.reachable for r in results.values())
            or any(r.reachable and known.get(n, {}).get("unreachable_since") for n, r in results.items()))


def fold_observations(index: Index, results: Mapping[str, PollResult], now: str) -> PollFold:
    """Fold what each source saw into the index; a source that did not answer changes no task."""
    fold = PollFold()
    for name, result in results.items():
        entry = index.get("sources", {}).get(name)
        if not result.reachable:
            fold.unreachable[name] = result.error or "unreachable"
            if entry is not None:
                entry.setdefault("unreachable_since", now)
                entry["unreachable_error"] = fold.unreachable[name]
                fold.changed = True
            continue
        if entry is not None and entry.get("unreachable_since"):
            entry.pop("unreachable_since", None)
            entry.pop("unreachable_error", None)
            fold.recovered.append(name)
            fold.changed = True
        for tid, observed in result.observations.items():
            task = index["tasks"].get(tid)
            if task is None or task.get("source") != name:
                continue
            before = task["state"]
            if apply_observation(task, {k: observed[k] for k in OBSERVED_FIELDS if k in observed}):  # type: ignore[arg-type]
                fold.changed = True
                if task["state"] != before:
                    fold.transitions.append((tid, name, before, task["state"]))
                    if task["state"] == FAILED:
                        fold.failures[tid] = f"reason {task.get('reason', '?')}, exit code {task.get('exit_code', '?')}"
    return fold


# --- cancel, complete ----------------------------------------------------------------------------


def cancel_unfinished(tasks: dict[str, TaskEntry], keep_sources: Iterable[str], now: str) -> list[str]:
    """Every unfinished task becomes cancelled, except those of `keep_sources` (not reached)."""
    keep = set(keep_sources)
    cancelled = []
    for tid, entry in tasks.items():
        if entry.get("source") in keep or is_final(entry["state"]):
            continue
        entry["state"] = CANCELLED
        entry["reason"] = "cancelled"
        entry.setdefault("end", now)
        cancelled.append(tid)
    return cancelled


# Exit codes of a command that the cancel's own signals stopped (INT, KILL, TERM) before its
# wrapper could record `cancelled`: a scheduler may signal every process of a job at once.
_CANCEL_SIGNALS = frozenset({128 + 2, 128 + 9, 128 + 15})


def killed_by_the_cancel(results: Mapping[str, PollResult]) -> dict[str, PollResult]:
    """The poll right after a cancel, with the attempts its signals killed counted as cancelled."""
    out = {}
    for name, result in results.items():
        observations = {}
        for tid, obs in result.observations.items():
            signalled = obs.get("exit_code") in _CANCEL_SIGNALS and obs.get("reason") in (None, "exit_code")
            if obs.get("state") == FAILED and signalled:
                obs = {**obs, "state": CANCELLED, "reason": "cancelled"}
            observations[tid] = obs
        out[name] = PollResult(result.reachable, observations, result.error)
    return out


def missing_tasks(tasks: Mapping[str, TaskEntry], retry_failed: bool, chosen: Iterable[str]) -> list[str]:
    """Tasks that have not completed and are not running: pending, assigned, cancelled (and failed)."""
    wanted = {PENDING, ASSIGNED, CANCELLED} | ({FAILED} if retry_failed else set())
    chosen = set(chosen)
    return [tid for tid, t in tasks.items() if tid in chosen and t["state"] in wanted]


def reopen(tasks: dict[str, TaskEntry], retry_failed: bool, chosen: Iterable[str]) -> list[str]:
    """Put the missing tasks back in the pool; their next submission is a new attempt."""
    reopened = missing_tasks(tasks, retry_failed, chosen)
    for tid in reopened:
        entry = tasks[tid]
        for key in PLACEMENT_FIELDS:
            entry.pop(key, None)  # type: ignore[misc]
        entry["state"] = PENDING
    return reopened


# --- health --------------------------------------------------------------------------------------


@dataclass
class HealthFold:
    """What recording one round of health checks did, source by source."""

    checked: dict[str, tuple[bool, str, int]] = field(default_factory=dict)  # name -> (ok, details, failures in a row)
    disabled: dict[str, str] = field(default_factory=dict)  # name -> why
    redistributed: dict[str, list[str]] = field(default_factory=dict)  # name -> tasks back in the pool


def fold_health(index: Index, probes: Mapping[str, Mapping[str, Any]], compute: Mapping[str, Any],
                now: str) -> HealthFold:
    """Record each enabled source's probe and apply the failsafe policy; a disabled source's
    unsubmitted tasks go back to the pool for the next `assign`."""
    fold = HealthFold()
    for name, probe in probes.items():
        entry = index.get("sources", {}).get(name)
        if entry is None or entry.get("disabled"):
            continue
        record = entry.setdefault("health", {})
        record["consecutive_failures"] = 0 if probe["ok"] else record.get("consecutive_failures", 0) + 1
        record["status"] = probe["status"]
        record["checked"] = now
        fold.checked[name] = (bool(probe["ok"]), str(probe["details"]), record["consecutive_failures"])
        finished, failed = finished_and_failed(index["tasks"], name)
        decision = decide(name, finished, failed, record["consecutive_failures"], compute)
        if decision.disable:
            fold.disabled[name] = decision.message
            fold.redistributed[name] = disable_source(index, name, decision.message)
    return fold


def finished_and_failed(tasks: Mapping[str, TaskEntry], source: str) -> tuple[int, int]:
    """How many of a source's tasks completed or failed, and how many of those failed."""
    states = [t["state"] for t in tasks.values() if t.get("source") == source]
    return sum(1 for s in states if s in (COMPLETED, FAILED)), sum(1 for s in states if s == FAILED)


def disable_source(index: Index, name: str, reason: str) -> list[str]:
    """Mark a source disabled; its assigned, unsubmitted tasks go back to the pool. The tasks moved."""
    entry = index["sources"][name]
    entry["disabled"] = True
    entry["disabled_reason"] = reason
    moved = [tid for tid, t in index["tasks"].items() if t.get("source") == name and t["state"] == ASSIGNED]
    for tid in moved:
        index["tasks"][tid]["state"] = PENDING
        index["tasks"][tid].pop("source", None)
    return moved
