"""How a poll decides a task's state from its status file, the queue and accounting (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from hsm.sources.base import TaskRef
from hsm.sources.hpc import pbs, slurm
from hsm.sources.hpc.outcome import decide

NOW = 1_000_000.0
GRACE = 60.0


def running_status(**extra: Any) -> dict[str, Any]:
    return {"schema": 1, "task_id": "task_001", "attempt": 1, "source": "c", "host": "node1", "pid": 42,
            "pid_start": 7, "start": "2026-01-01T00:00:00Z", "state": "running", **extra}


def final_status(state: str, code: int, reason: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"state": state, "exit_code": code, "end": "2026-01-01T00:01:00Z", "duration": 60.0}
    if reason:
        extra["reason"] = reason
    return running_status(**extra)


def run(state: str = "running", status: dict | None = None, unchanged: bool = False, sched: str | None = None,
        acct: tuple[str, int | None] | None = None, since: float | None = None, now: float = NOW, hooks=slurm,
        accounting: bool = False, grace: float = GRACE, accounting_grace: float = 2 * GRACE):
    ref = TaskRef("task_001", 1, state, seen=5 if unchanged else None, job="71_0")
    probe: dict[str, Any] = {}
    if status is not None:
        probe = {"status": status, "mark": [7, 120, 99]}
    elif unchanged:
        probe = {"unchanged": True}
    return decide(ref, probe, sched, acct, active=hooks.ACTIVE, final=hooks.FINAL, since=since, now=now, grace=grace,
                  accounting=accounting, accounting_grace=accounting_grace)


def test_a_completed_status_is_completed_whatever_the_queue_says() -> None:
    obs, since = run(status=final_status("completed", 0, None), sched="RUNNING")
    assert obs["state"] == "completed" and obs["exit_code"] == 0 and obs["seen"] == [7, 120, 99] and since is None
    assert "pid" not in obs and "schema" not in obs


def test_an_exit_code_failure_is_reported_at_once() -> None:
    obs, _ = run(status=final_status("failed", 3, "exit_code"), sched="RUNNING")
    assert (obs["state"], obs["exit_code"], obs["reason"]) == ("failed", 3, "exit_code")


@pytest.mark.parametrize("sched, reason", [("TIMEOUT", "timeout"), ("NODE_FAIL", "node_fail"),
                                           ("OUT_OF_MEMORY", "oom"), ("PREEMPTED", "preempted")])
def test_the_scheduler_overrules_what_a_signalled_wrapper_wrote(sched: str, reason: str) -> None:
    # The wrapper saw only a SIGTERM and wrote `cancelled`; the scheduler knows why.
    obs, _ = run(status=final_status("cancelled", 143, "cancelled"), sched=sched)
    assert (obs["state"], obs["reason"], obs["exit_code"]) == ("failed", reason, 143)


def test_a_signalled_status_waits_while_the_scheduler_still_holds_the_job() -> None:
    assert run(status=final_status("cancelled", 143, "cancelled"), sched="COMPLETING") == (None, None)
    assert run(status=final_status("failed", 137, "exit_code"), sched="RUNNING") == (None, None)


def test_a_signalled_status_stands_once_the_job_is_gone() -> None:
    obs, _ = run(status=final_status("cancelled", 143, "cancelled"), sched="CANCELLED")
    assert (obs["state"], obs["reason"]) == ("cancelled", "cancelled")
    obs, _ = run(status=final_status("failed", 137, "exit_code"), sched=None, acct=None)
    assert (obs["state"], obs["exit_code"]) == ("failed", 137)


def test_a_command_killed_by_a_cancel_is_cancelled() -> None:
    # scancel signals every process of the job: the command may die before the wrapper hears.
    obs, _ = run(status=final_status("failed", 143, "exit_code"), sched="CANCELLED")
    assert (obs["state"], obs["reason"], obs["exit_code"]) == ("cancelled", "cancelled", 143)
    obs, _ = run(status=final_status("failed", 3, "exit_code"), sched="CANCELLED")
    assert (obs["state"], obs["reason"]) == ("failed", "exit_code")


def test_the_wrapper_s_own_timeout_is_kept() -> None:
    obs, _ = run(status=final_status("failed", 143, "timeout"), sched="FAILED")
    assert (obs["state"], obs["reason"]) == ("failed", "timeout")


def test_accounting_overrules_a_status_from_sacct_when_squeue_forgot() -> None:
    obs, _ = run(status=final_status("cancelled", 143, "cancelled"), sched=None, acct=("NODE_FAIL", 0))
    assert (obs["state"], obs["reason"]) == ("failed", "node_fail")


def test_a_pending_job_makes_a_submitted_task_queued() -> None:
    assert run(state="submitted", sched="PENDING") == ({"state": "queued", "attempt": 1}, None)
    assert run(state="queued", sched="PENDING") == (None, None)


def test_a_running_status_is_reported_while_the_job_runs() -> None:
    obs, since = run(state="queued", status=running_status(), sched="RUNNING")
    assert obs["state"] == "running" and obs["host"] == "node1" and since is None
    assert run(state="running", unchanged=True, sched="RUNNING") == (None, None)


def test_a_node_failure_fails_a_task_that_wrote_nothing_final() -> None:
    obs, _ = run(state="running", unchanged=True, sched="NODE_FAIL")
    assert (obs["state"], obs["reason"]) == ("failed", "node_fail")


def test_a_walltime_kill_without_status_is_a_timeout() -> None:
    obs, _ = run(state="running", status=running_status(), sched="TIMEOUT", acct=None)
    assert (obs["state"], obs["reason"], obs["host"]) == ("failed", "timeout", "node1")


def test_a_cancel_of_a_pending_job_is_cancelled() -> None:
    obs, _ = run(state="queued", sched="CANCELLED")
    assert (obs["state"], obs["reason"]) == ("cancelled", "cancelled")


def test_leaving_the_queue_is_never_completion() -> None:
    # Gone from squeue, accounting silent: first a grace period, then lost. Never completed.
    obs, since = run(state="running", unchanged=True, sched=None, acct=None)
    assert obs is None and since == NOW
    obs, since = run(state="running", unchanged=True, sched=None, acct=None, since=NOW, now=NOW + GRACE - 1)
    assert obs is None and since == NOW
    obs, _ = run(state="running", unchanged=True, sched=None, acct=None, since=NOW, now=NOW + GRACE)
    assert (obs["state"], obs["reason"]) == ("failed", "lost")


def test_accounting_completion_waits_for_the_status_file_then_counts() -> None:
    obs, since = run(state="running", unchanged=True, sched=None, acct=("COMPLETED", 0))
    assert obs is None and since == NOW
    obs, _ = run(state="running", unchanged=True, sched=None, acct=("COMPLETED", 0), since=NOW, now=NOW + GRACE)
    assert (obs["state"], obs["exit_code"]) == ("completed", 0)
    obs, _ = run(state="running", unchanged=True, sched="FAILED", acct=("FAILED", 2), since=NOW, now=NOW + GRACE)
    assert (obs["state"], obs["reason"], obs["exit_code"]) == ("failed", "exit_code", 2)


def test_accounting_that_lags_is_awaited_for_the_exit_code_however_short_the_grace() -> None:
    # squeue says FAILED at once; sacct lists the job only seconds later. A short lost_grace
    # must not settle the task before accounting has its exit code.
    kwargs = dict(unchanged=True, sched="FAILED", since=NOW, grace=2, accounting_grace=60, accounting=True)
    assert run(acct=None, now=NOW + 5, **kwargs) == (None, NOW)
    obs, _ = run(acct=("FAILED", 3), now=NOW + 5, **kwargs)
    assert (obs["state"], obs["reason"], obs["exit_code"]) == ("failed", "exit_code", 3)
    # Bounded: accounting that never lists the job is given up on.
    obs, _ = run(acct=None, now=NOW + 60, **kwargs)
    assert (obs["state"], obs["reason"]) == ("failed", "exit_code") and "exit_code" not in obs


def test_accounting_that_lags_gets_a_little_longer_for_the_exit_code() -> None:
    later = NOW + GRACE
    assert run(unchanged=True, sched="FAILED", acct=None, since=NOW, now=later, accounting=True) == (None, NOW)
    obs, _ = run(unchanged=True, sched="FAILED", acct=("FAILED", 3), since=NOW, now=later, accounting=True)
    assert (obs["reason"], obs["exit_code"]) == ("exit_code", 3)
    obs, _ = run(unchanged=True, sched="FAILED", acct=None, since=NOW, now=NOW + 2 * GRACE, accounting=True)
    assert (obs["state"], obs["reason"]) == ("failed", "exit_code") and "exit_code" not in obs
    obs, _ = run(unchanged=True, sched="FAILED", acct=None, since=NOW, now=later, accounting=False)
    assert obs["state"] == "failed"


def test_a_late_status_file_wins_over_the_grace_period() -> None:
    obs, since = run(state="running", status=final_status("completed", 0, None), sched=None, since=NOW,
                     now=NOW + 2 * GRACE)
    assert obs["state"] == "completed" and since is None


def test_a_job_back_in_the_queue_clears_the_gone_mark() -> None:
    assert run(state="running", unchanged=True, sched="RUNNING", since=NOW - 5)[1] is None


def test_pbs_outcomes_come_from_status_files_only() -> None:
    obs, _ = run(status=final_status("failed", 3, "exit_code"), sched=None, hooks=pbs)
    assert (obs["state"], obs["exit_code"]) == ("failed", 3)
    obs, since = run(state="running", unchanged=True, sched=None, hooks=pbs)
    assert obs is None and since == NOW
    obs, _ = run(state="running", unchanged=True, sched=None, since=NOW, now=NOW + GRACE, hooks=pbs)
    assert (obs["state"], obs["reason"]) == ("failed", "lost")
    assert run(state="submitted", sched="PENDING", hooks=pbs)[0] == {"state": "queued", "attempt": 1}
