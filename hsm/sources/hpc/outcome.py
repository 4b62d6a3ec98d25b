"""How a poll decides a task's state from its status file, the queue and accounting (pure).

A task's outcome is what its own status file says, corrected by the scheduler where the
scheduler knows better (a walltime, memory or node kill), or what accounting says when the
task wrote nothing. A job that left the queue with neither is failed `lost`, after a grace
period: accounting and shared file systems lag behind the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hsm.core.index import TaskRef
from hsm.core.states import COMPLETED, FINAL, QUEUED, SUBMITTED

# Seconds a finished job's exit code is awaited from accounting that answers but does not list
# the job yet (sacct lags squeue by a few seconds; longer while slurmdbd catches up).
DEFAULT_ACCOUNTING_GRACE = 60.0
# Scheduler verdicts that overrule what the task wrapper recorded (it saw only a signal).
SCHEDULER_REASONS = frozenset({"timeout", "oom", "node_fail", "preempted"})
STATUS_PRIVATE = ("schema", "task_id", "source", "pid", "pid_start")


@dataclass(frozen=True)
class _Seen:
    """What one poll knows of a task: its own status file, the queue and accounting."""

    ref: TaskRef
    status: Mapping[str, Any] | None  # this attempt's status file, when it changed
    mark: Any  # that file's mark
    unchanged: bool  # the status file is the one the index folded already
    acct_state: str | None
    acct_code: int | None
    verdict: str | None  # a final state from the queue, else from accounting
    running: bool  # the scheduler still holds the job

    @property
    def state(self) -> str | None:
        """The task's own word: its status file's state (the index's when unchanged)."""
        if self.status:
            return str(self.status.get("state"))
        return self.ref.state if self.unchanged else None

    def from_status(self, **override: Any) -> dict[str, Any]:
        """The observation the status file makes, with what the scheduler corrects."""
        obs = {k: v for k, v in (self.status or {}).items() if k not in STATUS_PRIVATE}
        obs["attempt"] = self.ref.attempt
        if self.status:
            obs["seen"] = self.mark
        obs.update(override)
        return obs

    def carried(self, state: str, reason: str | None) -> dict[str, Any]:
        """An outcome the scheduler decided, with what the status file knew of the start."""
        obs: dict[str, Any] = {"state": state, "attempt": self.ref.attempt}
        if self.status:
            obs.update({k: self.status[k] for k in ("host", "start") if self.status.get(k) is not None})
        if reason:
            obs["reason"] = reason
        if self.acct_code is not None:
            obs["exit_code"] = self.acct_code
        return obs


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
    acct_state, acct_code = acct if acct else (None, None)
    seen = _Seen(
        ref=ref, status=probe.get("status"), mark=probe.get("mark"), unchanged=bool(probe.get("unchanged")),
        acct_state=acct_state, acct_code=acct_code,
        verdict=sched if sched in final else (acct_state if acct_state in final else None),
        running=sched in active or (sched is None and acct_state in active),
    )
    if seen.state in FINAL:
        return _ended_by_its_own_word(seen, final), None
    if seen.running:
        return _still_held(seen), None
    since = since if since is not None else now
    if seen.verdict is not None:
        return _ended_by_the_scheduler(seen, final, now - since, grace, accounting, accounting_grace), since
    if now - since < grace:
        return (seen.from_status() if seen.status is not None else None), since
    return seen.carried("failed", "lost"), since


def _ended_by_its_own_word(seen: _Seen, final: Mapping[str, tuple[str, str | None]]) -> dict[str, Any] | None:
    """The status file says the task ended; the scheduler may know better why."""
    status = seen.status
    if status is None:  # folded already; cannot happen for an unfinished index entry
        return None
    if seen.state == COMPLETED:
        return seen.from_status()
    outcome = final.get(seen.verdict or "")
    code = status.get("exit_code")
    signalled = seen.state == "cancelled" or (isinstance(code, int) and code > 128)
    if outcome and (outcome[1] in SCHEDULER_REASONS or (signalled and outcome[0] == "cancelled")):
        # The wrapper saw only a signal (or its command die of one); the scheduler knows why.
        return seen.from_status(state=outcome[0], reason=outcome[1])
    if seen.running and signalled:
        # Killed by a signal while the scheduler still holds the job: it may yet say why
        # (a node failure, memory, preemption). Ask again next poll.
        return None
    return seen.from_status()


def _still_held(seen: _Seen) -> dict[str, Any] | None:
    """The scheduler still holds the job: queued, or running by the status file."""
    if seen.status is not None:
        return seen.from_status()
    if not seen.unchanged and seen.ref.state == SUBMITTED:
        return {"state": QUEUED, "attempt": seen.ref.attempt}
    return None


def _ended_by_the_scheduler(seen: _Seen, final: Mapping[str, tuple[str, str | None]], gone_for: float,
                            grace: float, accounting: bool, accounting_grace: float) -> dict[str, Any] | None:
    """The scheduler says the job ended and the task's own word has not come (yet)."""
    assert seen.verdict is not None
    outcome_state, reason = final[seen.verdict]
    if reason in SCHEDULER_REASONS or outcome_state == "cancelled":
        return seen.carried(outcome_state, reason)
    # Ended normally by the scheduler's account, but the task's own word has not arrived
    # (a shared file system can lag): wait for it a while, then believe accounting. Accounting
    # that answers but lags behind the queue is worth waiting for (a bounded while, whatever
    # `grace` is): it alone has the exit code.
    lagging = accounting and seen.acct_state not in final and gone_for < max(grace, accounting_grace)
    if gone_for < grace or lagging:
        return seen.from_status() if seen.status is not None else None
    return seen.carried(outcome_state, reason)
