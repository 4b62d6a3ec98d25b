"""Failover as pure changes of the index: taking back, stealing, retries, silent sources, recovery."""

from __future__ import annotations

from typing import Any

from hsm.core import failover as fo
from hsm.core import transitions as tr
from hsm.core.health import is_permanent
from hsm.core.index import TaskRef

NOW = "2026-11-30T10:00:00Z"
LATER = "2026-11-30T10:05:00Z"
COMPUTE = {"health_check_failure_threshold": 3, "auto_disable_unhealthy_sources": True, "recovery_checks": 2,
           "source_failure_threshold": 0.4, "min_jobs_for_failsafe": 5, "enable_source_failsafe": True}
GOOD = {"status": "healthy", "details": "fine", "ok": True}
BAD = {"status": "unhealthy", "details": "ssh: refused", "ok": False, "reached": False}


def index(*tasks: dict[str, Any], sources: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": 1, "sweep_id": "s",
            "sources": sources or {"a": {"type": "local", "max_parallel": 2}, "b": {"type": "ssh", "max_parallel": 2}},
            "tasks": {f"task_{i:03d}": dict(t) for i, t in enumerate(tasks, start=1)}}


def test_taking_back_moves_only_the_current_unfinished_attempt_and_keeps_it_in_the_history() -> None:
    ix = index({"state": "submitted", "source": "b", "attempt": 2, "job": "runner"},
               {"state": "completed", "source": "b", "attempt": 1, "job": "runner"},
               {"state": "submitted", "source": "b", "attempt": 3, "job": "runner"})
    refs = [TaskRef("task_001", 2, "submitted"), TaskRef("task_002", 1, "submitted"), TaskRef("task_003", 2, "submitted")]
    assert fo.take_back(ix["tasks"], "b", refs, "revoked", "revoked", NOW) == ["task_001"]
    assert ix["tasks"]["task_001"] == {"state": "pending", "attempt": 2, "history": [
        {"attempt": 2, "source": "b", "outcome": "revoked", "reason": "revoked", "at": NOW, "job": "runner"}]}
    assert ix["tasks"]["task_002"]["state"] == "completed"  # ended meanwhile: its result stands
    assert ix["tasks"]["task_003"]["attempt"] == 3 and ix["tasks"]["task_003"]["state"] == "submitted"
    assert fo.unstarted(ix["tasks"], "b") == [TaskRef("task_003", 3, "submitted", None, "runner")]


def test_an_idle_source_steals_at_most_its_free_slots_from_the_largest_surplus() -> None:
    waiting = [{"state": "submitted", "source": "b", "attempt": 1, "job": f"9_{i}"} for i in range(6)]
    ix = index({"state": "running", "source": "b", "attempt": 1}, *waiting,
               sources={"a": {"max_parallel": 2}, "b": {"max_parallel": 1}})
    capacity = {"a": 2, "b": 1}
    assert fo.idle_sources(ix["tasks"], capacity) == {"a": 2}
    assert fo.plan_steal(ix["tasks"], capacity) == {"b": 2}
    # The tail of b's queue: what it would start last.
    assert [r.id for r in fo.steal_order(ix["tasks"], "b", 2)] == ["task_006", "task_007"]
    # Busy thieves or a victim that starts everything it holds: nothing moves.
    busy = index({"state": "running", "source": "a"}, {"state": "running", "source": "a"}, *waiting)
    assert fo.plan_steal(busy["tasks"], capacity) == {}
    small = index({"state": "submitted", "source": "b", "attempt": 1, "job": "runner"})
    assert fo.plan_steal(small["tasks"], {"a": 2, "b": 2}) == {}
    # A source that does not answer looks idle once its work is given up: it takes nothing.
    assert fo.plan_steal(ix["tasks"], capacity, silent={"a"}) == {}
    assert fo.idle_sources(ix["tasks"], capacity, silent={"a"}) == {}


def test_failed_attempts_another_attempt_can_cure_are_retried_elsewhere_after_their_delay() -> None:
    ix = index({"state": "failed", "source": "b", "attempt": 1, "reason": "node_fail", "exit_code": 1},
               {"state": "failed", "source": "b", "attempt": 1, "reason": "exit_code", "exit_code": 3},
               {"state": "failed", "source": "b", "attempt": 1, "reason": "exit_code", "exit_code": 75},
               {"state": "failed", "source": "b", "attempt": 1, "reason": "timeout"})
    policy = fo.RetryPolicy(attempts=2, delay=10, exponential=True, exit_codes=frozenset({75}))
    retries = fo.schedule_retries(ix["tasks"], list(ix["tasks"]), policy, NOW, lambda s: f"+{s:g}")
    assert [(r.task, r.number, r.wait) for r in retries] == [("task_001", 1, 10), ("task_003", 1, 10)]
    first = ix["tasks"]["task_001"]
    assert first["state"] == "pending" and first["retry_at"] == "+10" and first["avoid"] == "b" and first["retries"] == 1
    assert first["history"][0]["outcome"] == "failed" and first["history"][0]["reason"] == "node_fail"
    assert ix["tasks"]["task_002"]["state"] == "failed" and ix["tasks"]["task_004"]["state"] == "failed"
    # The second retry waits twice as long; a third is not given.
    first.update(state="failed", source="b", reason="lost", attempt=2)
    assert fo.schedule_retries(ix["tasks"], ["task_001"], policy, NOW, lambda s: f"+{s:g}")[0].wait == 20
    first.update(state="failed", source="b", reason="lost", attempt=3)
    assert fo.schedule_retries(ix["tasks"], ["task_001"], policy, NOW, lambda s: f"+{s:g}") == []
    assert fo.RetryPolicy(attempts=1, on_timeout=True).cures(ix["tasks"]["task_004"])


def test_assign_waits_for_the_retry_delay_and_avoids_the_source_that_failed() -> None:
    ix = index({"state": "pending", "avoid": "b", "retry_at": LATER}, {"state": "pending", "avoid": "b"},
               {"state": "pending", "avoid": "b"})
    placed = tr.assign_tasks(ix, {"a": 2, "b": 2}, "round_robin", now=NOW)
    assert placed == {"task_002": ("a", None), "task_003": ("a", None)}
    assert "avoid" not in ix["tasks"]["task_002"] and ix["tasks"]["task_001"]["state"] == "pending"
    assert tr.assign_tasks(ix, {"a": 2, "b": 2}, "round_robin", now=LATER) == {"task_001": ("a", None)}
    alone = index({"state": "pending", "avoid": "b"})
    assert tr.assign_tasks(alone, {"b": 2}, "round_robin", now=NOW) == {"task_001": ("b", None)}  # the only source


def test_work_on_a_silent_source_is_given_up_and_recorded_to_be_stopped_there() -> None:
    ix = index({"state": "running", "source": "b", "attempt": 1, "job": "runner"},
               {"state": "submitted", "source": "b", "attempt": 4, "job": "runner",
                "history": [{"outcome": "abandoned"}, {"outcome": "abandoned"}]},
               {"state": "running", "source": "a", "attempt": 1})
    ix["sources"]["b"]["unreachable_since"] = NOW
    assert fo.silent_too_long(ix, "2026-11-30T09:59:59Z") == []
    assert fo.silent_too_long(ix, NOW) == ["b"]
    refs = [TaskRef("task_001", 1, "running", None, "runner"), TaskRef("task_002", 4, "submitted", None, "runner")]
    result = fo.abandon(ix, "b", refs, LATER)
    assert result.requeued == ["task_001"] and result.failed == ["task_002"]  # given up a third time: lost
    assert ix["tasks"]["task_001"]["state"] == "pending" and ix["tasks"]["task_001"]["avoid"] == "b"
    assert ix["tasks"]["task_002"]["state"] == "failed" and ix["tasks"]["task_002"]["reason"] == "lost"
    assert ix["sources"]["b"]["abandoned"] == [["task_001", 1, "runner"], ["task_002", 4, "runner"]]


def test_a_source_disabled_for_failed_checks_recovers_after_healthy_ones_a_user_disabled_one_does_not() -> None:
    ix = index({"state": "submitted", "source": "b", "attempt": 1, "job": "runner"})
    for _ in range(3):
        fold = tr.fold_health(ix, {"b": BAD}, COMPUTE, NOW)
    assert ix["sources"]["b"]["disabled_by"] == "health" and ix["sources"]["b"]["unreachable_since"] == NOW
    assert tr.fold_health(ix, {"b": GOOD}, COMPUTE, LATER).enabled == {}
    assert "unreachable_since" not in ix["sources"]["b"]  # it answers again
    fold = tr.fold_health(ix, {"b": GOOD}, COMPUTE, LATER)
    assert fold.enabled == {"b": "Enabling source 'b' again after 2 healthy checks in a row"}
    assert not ix["sources"]["b"].get("disabled")
    tr.disable_source(ix, "b", "by hand", "user", NOW)
    for _ in range(4):
        assert tr.fold_health(ix, {"b": GOOD}, COMPUTE, LATER).enabled == {}
    assert ix["sources"]["b"]["disabled"]


def test_a_configuration_error_disables_at_once_and_enabling_restarts_the_failure_rate() -> None:
    ix = index(*[{"state": "failed", "source": "b"}] * 5)
    assert is_permanent("sbatch: error: Batch job submission failed: Invalid partition name specified")
    assert is_permanent("sbatch --parsable x.sh exited 255: sbatch: error: Invalid --time specification")
    assert is_permanent("sbatch --parsable x.sh exited 255: sbatch: error: Invalid --mem specification")
    assert not is_permanent("ssh: connect to host 10.0.0.2 port 22: Connection refused")
    assert is_permanent("server2: state: hsm-agent: 1: exec: /no/such/python3: not found")
    refused = {**BAD, "details": "Invalid partition name specified", "permanent": True}
    fold = tr.fold_health(ix, {"a": refused}, COMPUTE, NOW)
    assert fold.disabled == {"a": "Disabling source 'a': Invalid partition name specified"}
    assert ix["sources"]["a"]["disabled_by"] == "error"
    fold = tr.fold_health(ix, {"b": GOOD}, COMPUTE, NOW)
    assert fold.disabled["b"].startswith("Disabling source 'b' due to high failure rate: 5/5")
    assert tr.enable_source(ix, "b") and ix["sources"]["b"]["failsafe_base"] == [5, 5]
    assert tr.fold_health(ix, {"b": GOOD}, COMPUTE, NOW).disabled == {}  # counted from the enable
