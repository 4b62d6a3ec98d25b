"""Polling an HPC source: the tasks' own status files first, the scheduler last.

A poll reads every task's status file (here, or in one ssh call to the login host): a task
that says it ended, and was not killed by a signal, is decided by its own word. The queue
(squeue / qstat) and accounting (sacct) are asked only about the jobs whose files cannot
decide — still queued or running, silent, or killed by a signal the scheduler can explain —
and at most once per `scheduler_poll_interval` per source, however many polls run and however
often: the time of the last status call is claimed in a file under a lock before the call,
so a `hsm run`, a cron `hsm poll` and a `hsm status` loop share one budget. Shared clusters
rate-limit their controller, and admins count calls; a status file costs them nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from hsm import store
from hsm.core.states import FINAL
from hsm.errors import SourceError
from hsm.sources.base import PollResult, TaskRef
from hsm.sources.hpc.outcome import STATUS_PRIVATE, decide

if TYPE_CHECKING:
    from hsm.sources.hpc.source import HpcSource

LAST_CALL = "scheduler_call.json"  # {"at": epoch seconds of the last status call claimed}


def poll(src: HpcSource, tasks: list[TaskRef]) -> PollResult:
    """Observe the tasks: files always, the scheduler when files cannot decide and a call is due."""
    refs = [t for t in tasks if t.job]
    if not refs:
        return PollResult(reachable=True)
    try:
        files = src.probe(refs)
    except SourceError as exc:
        return PollResult(reachable=False, error=str(exc))
    undecided = [t for t in refs if not decided_by_its_file(files.get(t.id, {}))]
    if undecided and claim_call(src.state_dir, src.cfg.scheduler_poll_interval, time.time()):
        try:
            return PollResult(reachable=True, observations=_with_scheduler(src, refs, files))
        except SourceError as exc:
            return PollResult(reachable=False, error=str(exc))
    return PollResult(reachable=True, observations=_from_files(refs, files))


def decided_by_its_file(probe: Mapping[str, Any]) -> bool:
    """The status file says the task ended, and not by a signal (which the scheduler may explain)."""
    status = probe.get("status")
    if not status or status.get("state") not in FINAL or status.get("state") == "cancelled":
        return False
    code = status.get("exit_code")
    return not (isinstance(code, int) and code > 128)


def claim_call(state_dir: Path, interval: float, now: float) -> bool:
    """True, and the call recorded, when no status call was claimed in the last `interval` seconds.

    Claimed before the call, under a lock: two polls at once make one call between them. A
    clock that went back (the file in the future) counts as due.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LAST_CALL
    with FileLock(str(state_dir / "scheduler_call.lock")):
        last = _last_call(path)
        if last is not None and 0 <= now - last < interval:
            return False
        store.atomic_write(path, json.dumps({"at": now}))
        return True


def _last_call(path: Path) -> float | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("at")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _from_files(refs: list[TaskRef], files: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the status files alone say: an end in the task's own word, or that it runs.

    Nothing here starts or clears a job's 'gone' clock: only the scheduler can say a job left.
    """
    observations: dict[str, dict[str, Any]] = {}
    for t in refs:
        probe = files.get(t.id, {})
        status = probe.get("status")
        if not status:
            continue
        if decided_by_its_file(probe) or status.get("state") not in FINAL:
            obs = {k: v for k, v in status.items() if k not in STATUS_PRIVATE}
            observations[t.id] = {**obs, "attempt": t.attempt, "seen": probe.get("mark")}
    return observations


def _with_scheduler(src: HpcSource, refs: list[TaskRef], files: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One status call about the undecided tasks' arrays, at most one accounting call; every task decided."""
    hooks = src.hooks
    jobs = {t.id: str(t.job) for t in refs}
    asked = sorted({hooks.array_of(jobs[t.id]) for t in refs if not decided_by_its_file(files.get(t.id, {}))})
    answer = src.call(hooks.status_argv(asked))
    error = hooks.status_error(answer)
    if error:
        raise SourceError(error)
    table = hooks.parse_status(answer.stdout)
    sched = {t.id: hooks.task_state(jobs[t.id], files.get(t.id, {}).get("job_id"), table) for t in refs}
    acct: dict[str, tuple[str, int | None]] | None = None
    asking = [t for t in refs if _needs_accounting(src, files.get(t.id, {}), sched[t.id])]
    if asking:
        acct = _accounting(src, sorted({hooks.array_of(jobs[t.id]) for t in asking}))
    gone = _load_gone(src.state_dir)
    now = time.time()
    observations: dict[str, dict[str, Any]] = {}
    still_gone: dict[str, list[Any]] = {}
    for t in refs:
        previous = gone.get(t.id)
        since = previous[1] if previous and previous[0] == t.attempt else None
        obs, since = decide(t, files.get(t.id, {}), sched[t.id], (acct or {}).get(jobs[t.id]),
                            active=hooks.active, final=hooks.final, since=since, now=now,
                            grace=src.cfg.lost_grace, accounting=acct is not None,
                            accounting_grace=src.cfg.accounting_grace)
        if obs is not None:
            observations[t.id] = obs
        if since is not None and not (obs and obs.get("state") in FINAL):
            still_gone[t.id] = [t.attempt, since]
    if still_gone != gone:
        store.atomic_write(src.state_dir / "gone.json", json.dumps(still_gone))
    return observations


def _needs_accounting(src: HpcSource, probe: Mapping[str, Any], sched: str | None) -> bool:
    status = probe.get("status")
    if status and status.get("state") in FINAL:
        return False
    return sched is None or src.hooks.final.get(sched, ("", "x"))[1] in (None, "exit_code")


def _accounting(src: HpcSource, arrays: list[str]) -> dict[str, tuple[str, int | None]] | None:
    """Accounting's word on the arrays; None when it fails or is switched off."""
    argv = src.hooks.accounting_argv(arrays)
    if not argv:
        return None
    try:
        answer = src.call(argv)
    except SourceError:
        return None
    return src.hooks.parse_accounting(answer.stdout) if answer.ok else None


def _load_gone(state_dir: Path) -> dict[str, list[Any]]:
    try:
        data = json.loads((state_dir / "gone.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
