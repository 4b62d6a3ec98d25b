"""How a poll decides a task's state from its status file, the queue and accounting (pure).

A task's outcome is what its own status file says, corrected by the scheduler where the
scheduler knows better (a walltime, memory or node kill), or what accounting says when the
task wrote nothing. A job that left the queue with neither is failed `lost`, after a grace
period: accounting and shared file systems lag behind the queue.
"""

from __future__ import annotations

from typing import Any, Mapping

from hsm.core.states import COMPLETED, FINAL, QUEUED, SUBMITTED
from hsm.sources.base import TaskRef

# Seconds a finished job's exit code is awaited from accounting that answers but does not list
# the job yet (sacct lags squeue by a few seconds; longer while slurmdbd catches up).
DEFAULT_ACCOUNTING_GRACE = 60.0
# Scheduler verdicts that overrule what the task wrapper recorded (it saw only a signal).
SCHEDULER_REASONS = frozenset({"timeout", "oom", "node_fail", "preempted"})
_STATUS_PRIVATE = ("schema", "task_id", "source", "pid", "pid_start")


def decide(
    ref: TaskRef,
    probe: Mapping[str, Any],
    sched: str | None,
    acct: tuple[str, int | None] | None,
    *,
    active: frozenset[str],
    final: Mapping[str, tuple[str, str | None]],
    since: float | None,
    now: float,
    grace: float,
    accounting: bool = False,
    accounting_grace: float = DEFAULT_ACCOUNTING_GRACE,
) -> tuple[dict[str, Any] | None, float | None]:
    """What one poll makes of a task: (observation or None, when its job was first seen gone).

    `probe` is what the status-file probe found (`status` of this attempt, its `mark`, or
    `unchanged`); `sched` the queue's state of the task's job (None: not listed); `acct`
    accounting's (state, exit code); `accounting` whether accounting answered at all this
    poll, and `accounting_grace` how long a finished job's record is awaited from it.
    Pure: `now` and the first time seen gone are passed in.
    """
    status = probe.get("status")
    unchanged = bool(probe.get("unchanged"))
    state = status.get("state") if status else (ref.state if unchanged else None)
    acct_state, acct_code = acct if acct else (None, None)
    verdict = sched if sched in final else (acct_state if acct_state in final else None)
    running = sched in active or (sched is None and acct_state in active)

    def from_status(**override: Any) -> dict[str, Any]:
        obs = {k: v for k, v in (status or {}).items() if k not in _STATUS_PRIVATE}
        obs["attempt"] = ref.attempt
        if status:
            obs["seen"] = probe.get("mark")
        obs.update(override)
        return obs

    def carried(state: str, reason: str | None) -> dict[str, Any]:
        obs: dict[str, Any] = {"state": state, "attempt": ref.attempt}
        if status:
            obs.update({k: status[k] for k in ("host", "start") if status.get(k) is not None})
        if reason:
            obs["reason"] = reason
        if acct_code is not None:
            obs["exit_code"] = acct_code
        return obs

    if state in FINAL:
        if status is None:  # folded already; cannot happen for an unfinished index entry
            return None, None
        if state == COMPLETED:
            return from_status(), None
        outcome = final.get(verdict or "")
        code = status.get("exit_code")
        signalled = state == "cancelled" or (isinstance(code, int) and code > 128)
        if outcome and (outcome[1] in SCHEDULER_REASONS or (signalled and outcome[0] == "cancelled")):
            # The wrapper saw only a signal (or its command die of one); the scheduler knows why.
            return from_status(state=outcome[0], reason=outcome[1]), None
        if running and signalled:
            # Killed by a signal while the scheduler still holds the job: it may yet say why
            # (a node failure, memory, preemption). Ask again next poll.
            return None, None
        return from_status(), None

    if running:
        if status is not None:
            return from_status(), None
        if not unchanged and ref.state == SUBMITTED:
            return {"state": QUEUED, "attempt": ref.attempt}, None
        return None, None

    if verdict is not None:
        outcome_state, reason = final[verdict]
        if reason in SCHEDULER_REASONS or outcome_state == "cancelled":
            return carried(outcome_state, reason), None
        # Ended normally by the scheduler's account, but the task's own word has not
        # arrived (a shared file system can lag): wait for it a while, then believe accounting.
        since = since if since is not None else now
        # Accounting that answers but lags behind the queue is worth waiting for (a bounded
        # while, whatever `grace` is): it alone has the exit code.
        lagging = accounting and acct_state not in final and now - since < max(grace, accounting_grace)
        if now - since < grace or lagging:
            return (from_status() if status is not None else None), since
        return carried(outcome_state, reason), since

    since = since if since is not None else now
    if now - since < grace:
        return (from_status() if status is not None else None), since
    return carried("failed", "lost"), since
