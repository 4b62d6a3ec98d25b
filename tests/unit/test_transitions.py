"""The pure changes of the task index: each step's read-modify-write, without files or sources."""

from __future__ import annotations

import copy
from typing import Any

from hsm.core import transitions as tr
from hsm.core.index import PollResult, TaskRef
from hsm.core.summary import all_final, summarize

NOW = "2026-11-30T10:00:00Z"
COMPUTE = {"health_check_failure_threshold": 3, "auto_disable_unhealthy_sources": True,
           "source_failure_threshold": 0.4, "min_jobs_for_failsafe": 5, "enable_source_failsafe": True}


def index(*tasks: dict[str, Any], sources: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": 1, "sweep_id": "s", "sources": sources or {"a": {"type": "local", "max_parallel": 2}},
            "tasks": {f"task_{i:03d}": dict(t) for i, t in enumerate(tasks, start=1)}}


def test_reserve_makes_assigned_tasks_new_attempts_and_clears_the_old_outcome() -> None:
    ix = index({"state": "assigned", "source": "a"},
               {"state": "assigned", "source": "a", "attempt": 1, "exit_code": 3, "reason": "exit_code",
                "job": "runner", "seen": [1, 2, 3], "host": "h"},
               {"state": "running", "source": "a", "attempt": 1, "job": "runner"})
    assert tr.reserve_attempts(ix["tasks"], NOW) == ["task_001", "task_002"]
    first, second, third = ix["tasks"].values()
    assert first == {"state": "submitted", "source": "a", "attempt": 1, "submitted_at": NOW}
    assert second == {"state": "submitted", "source": "a", "attempt": 2, "submitted_at": NOW}
    assert third["state"] == "running" and third["attempt"] == 1
    assert tr.reserve_attempts(ix["tasks"], NOW) == []


def test_undelivered_attempts_and_what_a_source_accepted() -> None:
    ix = index({"state": "submitted", "source": "a", "attempt": 2},
               {"state": "submitted", "source": "b", "attempt": 1, "job": "7_0"},
               {"state": "queued", "source": "a", "attempt": 1, "job": "runner"})
    assert tr.undelivered(ix["tasks"]) == {"a": [TaskRef("task_001", 2, "submitted")]}
    # An acceptance of another attempt, or of a task that has a job already, changes nothing.
    assert not tr.fold_accepted(ix["tasks"], {"task_001": {"job": "x", "attempt": 1}, "task_002": {"job": "8_0"}})
    assert tr.fold_accepted(ix["tasks"], {"task_001": {"job": "runner"}})
    assert ix["tasks"]["task_001"]["job"] == "runner" and ix["tasks"]["task_002"]["job"] == "7_0"
    assert tr.undelivered(ix["tasks"]) == {}


def test_a_poll_asks_about_delivered_unfinished_attempts_only() -> None:
    ix = index({"state": "submitted", "source": "a", "attempt": 1},
               {"state": "submitted", "source": "a", "attempt": 1, "job": "runner"},
               {"state": "running", "source": "b", "attempt": 2, "job": "9_1", "seen": [1, 2, 3]},
               {"state": "completed", "source": "a", "attempt": 1, "job": "runner"})
    assert tr.delivered_unfinished(ix["tasks"]) == {
        "a": [TaskRef("task_002", 1, "submitted", None, "runner")],
        "b": [TaskRef("task_003", 2, "running", [1, 2, 3], "9_1")],
    }


def test_folding_observations_moves_tasks_forward_only_and_ignores_other_attempts() -> None:
    ix = index({"state": "queued", "source": "a", "attempt": 2, "job": "runner"},
               {"state": "running", "source": "a", "attempt": 1, "job": "runner"},
               {"state": "completed", "source": "a", "attempt": 1, "job": "runner", "exit_code": 0},
               {"state": "running", "source": "b", "attempt": 1, "job": "runner"})
    results = {"a": PollResult(True, {
        "task_001": {"state": "completed", "attempt": 1, "exit_code": 0},  # a late result of attempt 1
        "task_002": {"state": "failed", "attempt": 1, "exit_code": 3, "reason": "exit_code", "pid": 5},
        "task_003": {"state": "running", "attempt": 1},  # backwards: ignored
        "task_004": {"state": "completed", "attempt": 1},  # not this source's task
    })}
    assert tr.poll_has_news(ix, results)
    fold = tr.fold_observations(ix, results, NOW)
    assert fold.transitions == [("task_002", "a", "running", "failed")]
    assert fold.failures == {"task_002": "reason exit_code, exit code 3"}
    tasks = ix["tasks"]
    assert tasks["task_001"]["state"] == "queued" and tasks["task_003"]["state"] == "completed"
    assert tasks["task_004"]["state"] == "running"
    assert "pid" not in tasks["task_002"]  # only what the index keeps


def test_a_source_that_does_not_answer_changes_no_task_and_is_marked_until_it_answers() -> None:
    ix = index({"state": "running", "source": "a", "attempt": 1, "job": "runner"})
    before = copy.deepcopy(ix["tasks"])
    fold = tr.fold_observations(ix, {"a": PollResult(False, error="ssh: timeout")}, NOW)
    assert fold.unreachable == {"a": "ssh: timeout"} and fold.changed
    assert ix["tasks"] == before
    assert ix["sources"]["a"]["unreachable_since"] == NOW
    tr.fold_observations(ix, {"a": PollResult(False, error="again")}, "2026-11-30T10:05:00Z")
    assert ix["sources"]["a"]["unreachable_since"] == NOW  # since the first failure
    assert tr.poll_has_news(ix, {"a": PollResult(True)})  # back: worth recording
    fold = tr.fold_observations(ix, {"a": PollResult(True)}, NOW)
    assert fold.recovered == ["a"] and "unreachable_since" not in ix["sources"]["a"]
    assert not tr.poll_has_news(ix, {"a": PollResult(True)})


def test_cancel_marks_unfinished_tasks_except_on_sources_it_did_not_reach() -> None:
    ix = index({"state": "running", "source": "a"}, {"state": "completed", "source": "a"},
               {"state": "queued", "source": "b"}, {"state": "pending"})
    assert tr.cancel_unfinished(ix["tasks"], {"b"}, NOW) == ["task_001", "task_004"]
    assert ix["tasks"]["task_001"] == {"state": "cancelled", "source": "a", "reason": "cancelled", "end": NOW}
    assert ix["tasks"]["task_003"]["state"] == "queued"


def test_a_task_the_cancel_killed_counts_as_cancelled() -> None:
    seen = {"a": PollResult(True, {
        "task_001": {"state": "failed", "attempt": 1, "exit_code": 143, "reason": "exit_code"},  # TERM
        "task_002": {"state": "failed", "attempt": 1, "exit_code": 139, "reason": "exit_code"},  # its own segfault
        "task_003": {"state": "failed", "attempt": 1, "exit_code": 137, "reason": "oom"},  # the scheduler knew why
    })}
    after = tr.killed_by_the_cancel(seen)["a"].observations
    assert (after["task_001"]["state"], after["task_001"]["reason"]) == ("cancelled", "cancelled")
    assert after["task_002"]["state"] == after["task_003"]["state"] == "failed"
    assert seen["a"].observations["task_001"]["state"] == "failed"  # the poll's own result is left alone


def test_reopen_puts_missing_tasks_back_in_the_pool() -> None:
    ix = index({"state": "failed", "source": "a", "attempt": 1, "reason": "exit_code", "job": "runner"},
               {"state": "cancelled", "source": "a", "attempt": 1},
               {"state": "completed", "source": "a", "attempt": 1},
               {"state": "running", "source": "a", "attempt": 1})
    every = list(ix["tasks"])
    assert tr.missing_tasks(ix["tasks"], False, every) == ["task_002"]
    assert tr.reopen(ix["tasks"], True, ["task_001"]) == ["task_001"]
    # The attempt number stays: the next submit makes attempt 2.
    assert ix["tasks"]["task_001"] == {"state": "pending", "attempt": 1}


def test_consecutive_failed_health_checks_disable_a_source_and_free_its_unsubmitted_tasks() -> None:
    ix = index({"state": "assigned", "source": "b"}, {"state": "running", "source": "b"},
               sources={"a": {"type": "local"}, "b": {"type": "ssh"}})
    bad = {"status": "unhealthy", "details": "ssh: refused", "ok": False}
    good = {"status": "healthy", "details": "fine", "ok": True}
    for n in (1, 2):
        fold = tr.fold_health(ix, {"a": good, "b": bad}, COMPUTE, NOW)
        assert fold.checked["b"] == (False, "ssh: refused", n) and not fold.disabled
    fold = tr.fold_health(ix, {"a": good, "b": bad}, COMPUTE, NOW)
    assert fold.disabled == {"b": "Disabling source 'b' due to 3 consecutive health check failures"}
    assert fold.redistributed == {"b": ["task_001"]}
    assert ix["tasks"]["task_001"] == {"state": "pending"} and ix["tasks"]["task_002"]["state"] == "running"
    assert ix["sources"]["b"]["disabled"] and ix["sources"]["a"]["health"]["consecutive_failures"] == 0
    # A disabled source is not checked again by the policy.
    assert "b" not in tr.fold_health(ix, {"a": good, "b": bad}, COMPUTE, NOW).checked


def test_a_high_failure_rate_disables_a_source_once_enough_tasks_finished() -> None:
    tasks = [{"state": "failed", "source": "b"}] * 2 + [{"state": "completed", "source": "b"}] * 2
    good = {"status": "healthy", "details": "fine", "ok": True}
    ix = index(*tasks, sources={"b": {"type": "local"}})
    assert not tr.fold_health(ix, {"b": good}, COMPUTE, NOW).disabled  # 4 finished < 5
    ix = index(*tasks, {"state": "completed", "source": "b"}, sources={"b": {"type": "local"}})
    assert tr.fold_health(ix, {"b": good}, COMPUTE, NOW).disabled == {
        "b": "Disabling source 'b' due to high failure rate: 2/5 (40%) >= 40%"}


def test_assign_spreads_pending_tasks_and_moves_those_of_sources_not_named() -> None:
    ix = index({"state": "pending"}, {"state": "pending"}, {"state": "assigned", "source": "gone"},
               {"state": "running", "source": "a"})
    assert tr.register_sources(ix, {"a": {"type": "local", "max_parallel": 2}}) is False
    assert tr.register_sources(ix, {"b": {"type": "ssh", "max_parallel": 1}}) is True
    placed = tr.assign_tasks(ix, {"a": 2, "b": 1}, "least_loaded")
    assert placed == {"task_001": ("b", None), "task_002": ("a", None), "task_003": ("a", "gone")}
    assert tr.assign_tasks(ix, {"a": 2, "b": 1}, "least_loaded") == {}


def test_summary_counts_states_sources_timing_and_stranded_tasks() -> None:
    ix = index({"state": "completed", "source": "a", "duration": 2.0, "start": "2026-11-30T10:00:00Z",
                "end": "2026-11-30T10:00:02Z"},
               {"state": "running", "source": "b", "start": "2026-11-30T10:00:01Z"},
               sources={"a": {"type": "local", "max_parallel": 2},
                        "b": {"type": "ssh", "max_parallel": 1, "unreachable_since": NOW, "unreachable_error": "x"}})
    s = summarize(ix, "s", "/p/s")
    assert (s["total"], s["finished"], s["done"]) == (2, 1, False)
    assert s["counts"]["completed"] == 1 and s["counts"]["running"] == 1
    assert s["sources"]["b"] == {"type": "ssh", "max_parallel": 1, "counts": {"running": 1}}
    assert s["stranded"] == {"b": {"since": NOW, "error": "x", "tasks": ["task_002"]}}
    assert s["timing"]["mean_task_seconds"] == 2.0 and s["timing"]["elapsed_seconds"] is None
    assert not all_final(ix)
    ix["tasks"]["task_002"].update(state="completed", end="2026-11-30T10:00:05Z", duration=4.0)
    assert summarize(ix, "s", "/p/s")["timing"]["elapsed_seconds"] == 5.0 and all_final(ix)
