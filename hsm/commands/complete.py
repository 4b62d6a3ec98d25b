"""`hsm complete`: put a sweep's missing (and, if asked, failed) tasks back in the pool."""

from __future__ import annotations

import re

from hsm.clock import log_stamp
from hsm.core import transitions
from hsm.core.index import Index
from hsm.errors import BadInput
from hsm.sweep import Sweep

_RANGE = re.compile(r"^(task_)?(\d+)(?::(task_)?(\d+))?$")


def select_tasks(spec: str | None, ids: list[str]) -> set[str]:
    """Task ids named by `task_050:task_100`, `7,9,12:15` or None (all)."""
    if spec is None:
        return set(ids)
    numbers = {int(tid.rsplit("_", 1)[1]): tid for tid in ids}
    chosen: set[str] = set()
    for part in spec.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise BadInput(f"--tasks: '{part}' is not a task or range (e.g. task_050:task_100)")
        low = int(match.group(2))
        high = int(match.group(4)) if match.group(4) else low
        if low > high:
            raise BadInput(f"--tasks: '{part}': the range is empty")
        chosen |= {numbers[n] for n in range(low, high + 1) if n in numbers}
    if not chosen:
        raise BadInput(f"--tasks: '{spec}' names no task of this sweep")
    return chosen


def missing_tasks(index: Index, retry_failed: bool, chosen: set[str]) -> list[str]:
    """Tasks that have not completed and are not running: pending, assigned, cancelled (and failed)."""
    return transitions.missing_tasks(index["tasks"], retry_failed, chosen)


def reopen(sweep: Sweep, retry_failed: bool, tasks: str | None = None) -> list[str]:
    """Make the missing tasks pending again; their next submission is a new attempt."""
    with sweep.update() as u:
        reopened = transitions.reopen(u.tasks, retry_failed, select_tasks(tasks, list(u.tasks)))
        u.changed |= bool(reopened)
        if reopened:
            sweep.append_log("sweep.log", [f"[{log_stamp()}] INFO - complete: {len(reopened)} tasks reopened"])
    return reopened
