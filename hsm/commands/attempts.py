"""Each attempt of a task keeps its own record: `tasks/task_NNN/attempts/N/`.

The latest attempt's status.yaml, stdout.log and stderr.log stay where the sweep layout puts
them (`tasks/task_NNN/`). When a failed attempt is retried, its files move to
`attempts/N/` before the next attempt can start (the poll that schedules the retry does it
under the sweep lock; the task wrapper does the same on a host where files of an earlier
attempt are still in place). A source whose files are not here (an SSH host) leaves what its
poll brought: the attempt's final status and the last lines of its stderr.

The index decides how an attempt ended when the task's own word is not the whole story (a
scheduler's time limit that the wrapper saw as a plain TERM, a host that vanished): the
task's status.yaml is then rewritten to say what the index says, keeping the wrapper's word
as `observed_state`, so the two agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hsm import store
from hsm.agent.status import read_status
from hsm.core.states import FINAL
from hsm.sweep import Sweep

LOGS = ("status.yaml", "stdout.log", "stderr.log")
# What a final status line carries, in the order task.sh writes it.
_STATUS_KEYS = ("schema", "task_id", "attempt", "source", "host", "pid", "pid_start", "start", "state",
                "exit_code", "reason", "end", "duration", "observed_state", "recorded_by")


def attempt_dir(sweep: Sweep, tid: str, attempt: Any) -> Path:
    """Where attempt `attempt` of task `tid` keeps its files once another attempt follows it."""
    return sweep.paths.task(tid) / "attempts" / str(attempt)


def archive(sweep: Sweep, tid: str, entry: Mapping[str, Any], tail: Sequence[str] | None) -> Path:
    """Move a finished attempt's files out of the way of the next one (see the module's docstring)."""
    target = attempt_dir(sweep, tid, entry.get("attempt"))
    task_dir = sweep.paths.task(tid)
    status = read_status(task_dir / "status.yaml")
    target.mkdir(parents=True, exist_ok=True)
    if status is not None and status.get("attempt") == entry.get("attempt"):
        for name in LOGS:
            try:
                os.replace(task_dir / name, target / name)
            except FileNotFoundError:
                pass
        agree(target / "status.yaml", entry)
    elif not (target / "status.yaml").exists():  # (the next attempt's wrapper may have moved it there)
        # The attempt ran where its files are not (another host): keep what hsm knows of it.
        store.atomic_write(target / "status.yaml", status_text({**_known(entry), "task_id": tid, "schema": 1,
                                                                "recorded_by": "hsm"}))
        if tail:
            store.atomic_write(target / "stderr_tail.log", "\n".join(tail) + "\n")
    return target


def agree(path: Path, entry: Mapping[str, Any]) -> bool:
    """Rewrite a final status.yaml whose state or reason differ from the index's; True when rewritten.

    Only the file of the index's attempt, and only once the index holds it final (the task
    wrapper, its only other writer, has ended by then).
    """
    if entry.get("state") not in FINAL:
        return False
    status = read_status(path)
    if status is None or status.get("attempt") != entry.get("attempt"):
        return False
    wanted = {"state": entry.get("state"), "reason": entry.get("reason")}
    if all(status.get(k) == v for k, v in wanted.items()):
        return False
    merged = {**status, **{k: v for k, v in _known(entry).items() if k in ("state", "reason", "exit_code", "end")}}
    merged.setdefault("observed_state", status.get("state"))
    merged["recorded_by"] = "hsm"
    store.atomic_write(path, status_text(merged))
    return True


def agree_all(sweep: Sweep, index: Mapping[str, Any], tids: Sequence[str]) -> list[str]:
    """`agree` for these tasks' current attempts; the ids of those rewritten."""
    return [tid for tid in tids if tid in index["tasks"]
            and agree(sweep.paths.status(tid), index["tasks"][tid])]


def status_text(status: Mapping[str, Any]) -> str:
    """A status.yaml as task.sh writes it: flat `key: value` lines, strings single-quoted."""
    keys = [k for k in _STATUS_KEYS if k in status] + sorted(k for k in status if k not in _STATUS_KEYS)
    lines = []
    for key in keys:
        value = status[key]
        if value is None:
            continue
        if isinstance(value, str) and key not in ("start", "end", "state"):
            value = "'" + value.replace("'", "''") + "'"
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def _known(entry: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("attempt", "source", "host", "start", "state", "exit_code", "reason", "end", "duration")
    return {k: entry.get(k) for k in keys if entry.get(k) is not None}


def history(sweep: Sweep, tid: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every attempt of a task, the earliest first: what the index kept and where its files are."""
    rows = []
    for past in entry.get("history", []):
        rows.append({**past, "files": _files(attempt_dir(sweep, tid, past.get("attempt")))})
    if entry.get("attempt"):
        current = {"attempt": entry.get("attempt"), "source": entry.get("source"), "outcome": entry.get("state"),
                   **{k: entry.get(k) for k in ("reason", "host", "start", "end", "duration", "exit_code", "job")
                      if entry.get(k) is not None}}
        rows.append({**current, "files": _files(sweep.paths.task(tid))})
    return rows


def _files(directory: Path) -> dict[str, str]:
    names = (*LOGS, "stderr_tail.log")
    return {name: str(directory / name) for name in names if (directory / name).exists()}
