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


def assign_tasks(index: Index, capacity: Mapping[str, int], strategy: str, seed: int | None = None,
                 now: str | None = None, move_assigned: bool = True) -> dict[str, tuple[str, str | None]]:
    """Give pending tasks (and, with `move_assigned`, assigned ones of sources not named now) to
    the named sources.

    `capacity` is source name -> parallel slots, in the order the strategy sees them. A task
    waiting for its retry delay (`retry_at` after `now`) stays pending; one whose last attempt
    failed on a source goes elsewhere when there is another. Returns task -> (source, previous source).
    """
    tasks = index["tasks"]
    candidates = [tid for tid, t in tasks.items()
                  if (t["state"] == PENDING and (now is None or str(t.get("retry_at", "")) <= now))
                  or (move_assigned and t["state"] == ASSIGNED and t.get("source") not in capacity)]
    if not candidates or not capacity:
        return {}
    load = dict.fromkeys(capacity, 0)
    for t in tasks.values():
        if t.get("source") in load and (t["state"] == ASSIGNED or t["state"] in ACTIVE):
            load[t["source"]] += 1
    # Tasks that avoid a source are placed over the others, group by group, sharing the load.
    groups: dict[str | None, list[str]] = {}
    for tid in candidates:
        avoid = tasks[tid].get("avoid")
        groups.setdefault(avoid if avoid in capacity and len(capacity) > 1 else None, []).append(tid)
    placed: dict[str, tuple[str, str | None]] = {}
    for avoid, group in groups.items():
        slots = [Slot(name, cap, load[name]) for name, cap in capacity.items() if name != avoid]
        for tid, name in place(group, slots, strategy, seed).items():
            entry = tasks[tid]
            placed[tid] = (name, entry.get("source"))
            entry["state"] = ASSIGNED
            entry["source"] = name
            entry.pop("retry_at", None)
            entry.pop("avoid", None)
            load[name] += 1
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
        if state in ACTIVE:
            job = entry.get("job")
            if job or state != SUBMITTED:  # a reserved attempt not delivered yet is not asked about
                out.setdefault(entry["source"], []).append(TaskRef(tid, entry["attempt"], state, entry.get("seen"), job))
    return out


@dataclass
class PollFold:
    """What folding one poll into the index did."""

    transitions: list[tuple[str, str, str, str]] = field(default_factory=list)  # (task, source, from, to)
    unreachable: dict[str, str] = field(default_factory=dict)  # source -> why
    recovered: list[str] = field(default_factory=list)  # sources that answer again
    failures: dict[str, str] = field(default_factory=dict)  # task -> "reason R, exit code N"
    changed: bool = False
    disabled: dict[str, str] = field(default_factory=dict)  # sources the policy disabled -> why
    retried: list[str] = field(default_factory=list)  # failed tasks sent back for another attempt
    announced: list[str] = field(default_factory=list)  # error patterns the failures showed, and what to do


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
    """What recording one round of health checks (or failed calls) did, source by source."""

    checked: dict[str, tuple[bool, str, int]] = field(default_factory=dict)  # name -> (ok, details, failures in a row)
    disabled: dict[str, str] = field(default_factory=dict)  # name -> why
    enabled: dict[str, str] = field(default_factory=dict)  # name -> why (healthy again)
    redistributed: dict[str, list[str]] = field(default_factory=dict)  # name -> assigned tasks back in the pool


def fold_health(index: Index, probes: Mapping[str, Mapping[str, Any]], compute: Mapping[str, Any],
                now: str) -> HealthFold:
    """Record each source's probe (or failed call) and apply the failsafe policy.

    A probe is {"ok", "status", "details"}, and "permanent" when the failure is the source's
    own configuration (disabled at once). A source the policy disabled for failed checks
    is enabled again after `recovery_checks` healthy ones in a row.
    """
    fold = HealthFold()
    for name, probe in probes.items():
        entry = index.get("sources", {}).get(name)
        if entry is None:
            continue
        record = entry.setdefault("health", {})
        record.update(status=probe["status"], checked=now, details=str(probe["details"]))
        if probe.get("reached", probe["ok"]):
            entry.pop("unreachable_since", None)
            entry.pop("unreachable_error", None)
        else:
            entry.setdefault("unreachable_since", now)
        if entry.get("disabled"):
            _probe_disabled(index, name, bool(probe["ok"]), compute, now, fold)
            continue
        record["consecutive_failures"] = 0 if probe["ok"] else record.get("consecutive_failures", 0) + 1
        fold.checked[name] = (bool(probe["ok"]), str(probe["details"]), record["consecutive_failures"])
        if probe.get("permanent") and not probe["ok"]:
            _disable(index, name, f"Disabling source '{name}': {probe['details']}", "error", now, fold)
        else:
            judge(index, name, compute, now, fold)
    return fold


def judge(index: Index, name: str, compute: Mapping[str, Any], now: str, fold: HealthFold) -> None:
    """Apply the policy to one enabled source: failed checks in a row, then its failure rate."""
    entry = index["sources"][name]
    if entry.get("disabled"):
        return
    finished, failed = finished_and_failed(index["tasks"], name)
    base_finished, base_failed = entry.get("failsafe_base", [0, 0])
    failures = entry.get("health", {}).get("consecutive_failures", 0)
    decision = decide(name, finished - base_finished, failed - base_failed, failures, compute)
    if decision.disable:
        _disable(index, name, decision.message, decision.rule, now, fold)


def _probe_disabled(index: Index, name: str, ok: bool, compute: Mapping[str, Any], now: str, fold: HealthFold) -> None:
    entry = index["sources"][name]
    if entry.get("disabled_by") != "health":
        return  # a person's decision, a failure rate or a configuration error: no probe undoes it
    record = entry["health"]
    record["healthy_streak"] = record.get("healthy_streak", 0) + 1 if ok else 0
    needed = int(compute.get("recovery_checks", 3))
    if record["healthy_streak"] >= needed:
        enable_source(index, name)
        fold.enabled[name] = f"Enabling source '{name}' again after {needed} healthy checks in a row"


def _disable(index: Index, name: str, reason: str, by: str, now: str, fold: HealthFold) -> None:
    fold.disabled[name] = reason
    fold.redistributed[name] = disable_source(index, name, reason, by, now)


def finished_and_failed(tasks: Mapping[str, TaskEntry], source: str) -> tuple[int, int]:
    """How many of a source's tasks completed or failed, and how many of those failed."""
    states = [t["state"] for t in tasks.values() if t.get("source") == source]
    return sum(1 for s in states if s in (COMPLETED, FAILED)), sum(1 for s in states if s == FAILED)


def disable_source(index: Index, name: str, reason: str, by: str = "policy", now: str = "") -> list[str]:
    """Mark a source disabled; its assigned, unsent tasks go back to the pool (the tasks moved).

    Its delivered, unstarted attempts are taken back by the caller, outside the lock
    (`failover.unstarted`): that needs the source.
    """
    entry = index["sources"][name]
    entry.update({"disabled": True, "disabled_reason": reason, "disabled_by": by, "disabled_at": now})
    entry.setdefault("health", {})["healthy_streak"] = 0
    moved = [tid for tid, t in index["tasks"].items() if t.get("source") == name and t["state"] == ASSIGNED]
    for tid in moved:
        index["tasks"][tid]["state"] = PENDING
        index["tasks"][tid].pop("source", None)
    return moved


def enable_source(index: Index, name: str) -> bool:
    """Enable a disabled source; its failure rate counts from now. True when it was disabled."""
    entry = index["sources"][name]
    if not entry.get("disabled"):
        return False
    for key in ("disabled", "disabled_reason", "disabled_by", "disabled_at"):
        entry.pop(key, None)  # type: ignore[misc]
    entry["health"] = {**entry.get("health", {}), "consecutive_failures": 0, "healthy_streak": 0}
    entry["failsafe_base"] = list(finished_and_failed(index["tasks"], name))
    return True
