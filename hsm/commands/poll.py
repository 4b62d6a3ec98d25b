"""`hsm poll`: observe every source once and fold what it saw into the index."""

from __future__ import annotations

from dataclasses import dataclass, field

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.states import ACTIVE, FAILED, SUBMITTED, apply_observation
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sources.base import PollResult, TaskRef
from hsm.sweep import Sweep

# What of an observation the index keeps.
KEPT = ("state", "attempt", "host", "start", "end", "duration", "exit_code", "reason", "seen")


@dataclass
class PollSummary:
    """The transitions this poll recorded, and the sources it could not reach."""

    transitions: list[tuple[str, str, str, str]] = field(default_factory=list)  # (task, source, from, to)
    unreachable: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # task -> "reason R, exit code N"


def active_refs(index: dict) -> dict[str, list[TaskRef]]:
    """Delivered, unfinished task attempts, grouped by source."""
    out: dict[str, list[TaskRef]] = {}
    for tid, entry in index["tasks"].items():
        state = entry["state"]
        if state in ACTIVE and not (state == SUBMITTED and not entry.get("job")):
            out.setdefault(entry["source"], []).append(
                TaskRef(tid, entry["attempt"], state, entry.get("seen"), entry.get("job"))
            )
    return out


def observe(sweep: Sweep, project: ProjectConfig, sources: dict, refs: dict[str, list[TaskRef]]) -> dict[str, PollResult]:
    """Ask each source about its tasks: O(1) calls per source, none under the lock."""
    results: dict[str, PollResult] = {}
    for name, tasks in refs.items():
        if name not in sources:
            continue
        try:
            results[name] = make_source(name, sources[name], sweep, project).poll(tasks)
        except HsmError as exc:
            results[name] = PollResult(reachable=False, error=str(exc))
    return results


def record(sweep: Sweep, results: dict[str, PollResult], index: dict | None = None) -> PollSummary:
    """Fold observations into the index under the lock; log every transition.

    A source that did not answer gets `unreachable_since` in its index entry (its active
    tasks are stranded there); the first answer after that removes it. `index`, when
    given, is what the caller read before polling: it says whether any source is back.
    """
    summary = PollSummary()
    known = (index or {}).get("sources", {})
    back = [n for n, r in results.items() if r.reachable and known.get(n, {}).get("unreachable_since")]
    if not any(r.observations for r in results.values()) and all(r.reachable for r in results.values()) and not back:
        return summary
    now = now_iso()
    recovered: list[str] = []
    with sweep.update() as u:
        for name, result in results.items():
            entry = u.index.get("sources", {}).get(name)
            if not result.reachable:
                summary.unreachable[name] = result.error or "unreachable"
                if entry is not None:
                    entry.setdefault("unreachable_since", now)
                    entry["unreachable_error"] = summary.unreachable[name]
                    u.changed = True
                continue
            if entry is not None and entry.get("unreachable_since"):
                entry.pop("unreachable_since", None)
                entry.pop("unreachable_error", None)
                recovered.append(name)
                u.changed = True
            for tid, observed in result.observations.items():
                entry = u.tasks.get(tid)
                if entry is None or entry.get("source") != name:
                    continue
                before = entry["state"]
                kept = {k: observed[k] for k in KEPT if k in observed}
                if apply_observation(entry, kept):
                    u.changed = True
                    if entry["state"] != before:
                        summary.transitions.append((tid, name, before, entry["state"]))
        stamp = log_stamp()
        per_source: dict[str, list[str]] = {}
        sweep_lines = []
        for tid, name, before, after in summary.transitions:
            entry = u.tasks[tid]
            detail = ""
            if after == FAILED:
                summary.failures[tid] = f"reason {entry.get('reason', '?')}, exit code {entry.get('exit_code', '?')}"
                detail = f" ({summary.failures[tid]})"
            line = f"[{stamp}] INFO - {tid} {before} -> {after} on {name}{detail}"
            per_source.setdefault(name, []).append(line)
            if after in ("completed", "failed", "cancelled"):
                sweep_lines.append(line)
        for name, lines in per_source.items():
            sweep.append_log(f"sources/{name}.log", lines)
        for name in recovered:
            sweep_lines.append(f"[{stamp}] INFO - poll: source {name} answers again")
            sweep.append_log("health_status.log", [f"[{stamp}] INFO - Source {name} answers again"])
        for name, message in summary.unreachable.items():
            sweep_lines.append(f"[{stamp}] WARNING - poll: source {name} did not answer: {message}")
            sweep.append_log("health_status.log", [f"[{stamp}] WARNING - Health check failed for {name}: {message}"])
        sweep.append_log("sweep.log", sweep_lines)
    return summary


def poll(sweep: Sweep, project: ProjectConfig) -> PollSummary:
    """One poll of every source that has unfinished tasks of this sweep."""
    index = sweep.read_index()
    return record(sweep, observe(sweep, project, index.get("sources", {}), active_refs(index)), index)
