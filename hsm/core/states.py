"""Task states and the rules for moving between them (pure)."""

from __future__ import annotations

from typing import Any

PENDING, ASSIGNED, SUBMITTED, QUEUED, RUNNING = "pending", "assigned", "submitted", "queued", "running"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"

ORDER = (PENDING, ASSIGNED, SUBMITTED, QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
FINAL = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE = frozenset({SUBMITTED, QUEUED, RUNNING})
_RANK = {PENDING: 0, ASSIGNED: 1, SUBMITTED: 2, QUEUED: 3, RUNNING: 4, COMPLETED: 5, FAILED: 5, CANCELLED: 5}

# Why a task failed: its own exit code, or what its source saw.
REASONS = ("exit_code", "timeout", "oom", "node_fail", "preempted", "disk", "lost", "cancelled", "submit_error")


def is_final(state: str) -> bool:
    """True for completed, failed and cancelled."""
    return state in FINAL


def moves_forward(current: str, observed: str) -> bool:
    """True when `observed` is later than `current`: states never go back, finals never change."""
    if current in FINAL:
        return False
    return _RANK[observed] > _RANK[current]


def apply_observation(entry: dict[str, Any], observed: dict[str, Any]) -> bool:
    """Fold what a source saw of a task into its index entry; True when it changed.

    An observation of another attempt (a late result of a revoked one) is ignored, and so
    is one that would move the task backwards or names no state hsm knows (a damaged
    status file is no news).
    """
    attempt = observed.get("attempt")
    if attempt is not None and attempt != entry.get("attempt"):
        return False
    state = observed.get("state")
    if state not in _RANK:
        return False
    changed = False
    if moves_forward(entry["state"], state):
        entry["state"] = state
        changed = True
    for key, value in observed.items():
        if key in ("state", "attempt") or value is None:
            continue
        if entry.get(key) != value and (changed or not is_final(entry["state"])):
            entry[key] = value
            changed = True
    return changed
