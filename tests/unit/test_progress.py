"""The pure parts of `hsm monitor`: a sweep's overview and ETA (core.progress), its activity (core.activity)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hsm.core import activity, progress

NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.timezone.utc)


def iso(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def index(tasks: dict[str, dict[str, Any]], slots: int = 2, **source: Any) -> dict[str, Any]:
    return {"sources": {"local": {"type": "local", "max_parallel": slots, **source}}, "tasks": tasks}


def test_eta_spreads_the_remaining_work_over_the_slots() -> None:
    tasks = {
        "task_001": {"state": "completed", "source": "local", "duration": 10.0, "start": iso(100), "end": iso(90)},
        "task_002": {"state": "failed", "source": "local", "duration": 20.0, "start": iso(100), "end": iso(80)},
        "task_003": {"state": "running", "source": "local", "start": iso(5)},
        "task_004": {"state": "queued", "source": "local"},
        "task_005": {"state": "pending"},
    }
    data = progress.overview(index(tasks), NOW)
    assert data["mean_task_seconds"] == 15.0
    # 3 unfinished x 15 s, less the 5 s task_003 has run, over 2 slots.
    assert data["eta_seconds"] == (3 * 15.0 - 5) / 2
    assert (data["completed"], data["failed"], data["active"], data["pending"]) == (1, 1, 2, 1)
    assert data["success_rate"] == 0.5 and data["status"] == "running"
    assert data["elapsed_seconds"] == 100.0


def test_no_eta_before_a_task_finished_and_none_left_when_all_are_final() -> None:
    assert progress.overview(index({"task_001": {"state": "running", "start": iso(5)}}), NOW)["eta_seconds"] is None
    done = progress.overview(index({"task_001": {"state": "completed", "duration": 3.0, "start": iso(60),
                                                 "end": iso(50)}}), NOW)
    assert done["eta_seconds"] == 0.0 and done["status"] == "finished" and done["elapsed_seconds"] == 10.0


def test_a_sweep_stalls_without_active_tasks_or_without_sources() -> None:
    pending = {"task_001": {"state": "assigned", "source": "local"}}
    assert progress.overview(index(pending), NOW, changed=NOW - dt.timedelta(seconds=30))["status"] == "running"
    stalled = progress.overview(index(pending), NOW, changed=NOW - dt.timedelta(seconds=600))
    assert (stalled["status"], stalled["stalled_because"]) == ("stalled", "no task active, nothing recorded for 10 min")
    waiting = {"task_001": {"state": "pending", "retry_at": iso(-30)}}
    assert progress.overview(index(waiting), NOW, changed=NOW - dt.timedelta(seconds=600))["status"] == "running"
    gone = progress.overview(index(pending, disabled=True), NOW)
    assert (gone["status"], gone["stalled_because"]) == ("stalled", "no enabled source left")


def test_a_sources_record_counts_earlier_attempts() -> None:
    tasks = {
        "task_001": {"state": "completed", "source": "local", "submitted_at": iso(9), "duration": 4.0,
                     "history": [{"attempt": 1, "source": "local", "outcome": "failed"},
                                 {"attempt": 2, "source": "other", "outcome": "revoked"}]},
        "task_002": {"state": "running", "source": "local", "submitted_at": iso(5)},
        "task_003": {"state": "assigned", "source": "local"},
    }
    stats = progress.source_stats(index(tasks), "local")
    assert (stats["submitted"], stats["completed"], stats["failed"], stats["running"]) == (3, 1, 1, 1)
    assert stats["success_rate"] == 0.5 and stats["mean_task_seconds"] == 4.0
    assert progress.source_stats(index(tasks), "other")["submitted"] == 1


def test_log_lines_become_events_once_and_in_order() -> None:
    sweep_log = [
        "[2026-11-22 12:00:01] INFO - task_002 running -> failed on server1 (reason timeout, exit code 124)",
        "[2026-11-22 12:00:00] INFO - expand: 3 tasks (3 combinations) from sweeps/sweep_config.yaml",
        "[2026-11-22 12:00:00] INFO - submit: 3 tasks to server1",
        "[2026-11-22 12:00:02] ERROR - Disabling source 'server1' due to 3 consecutive health check failures",
    ]
    source_log = [
        "[2026-11-22 12:00:00] INFO - submitted task_001",
        "[2026-11-22 12:00:00] INFO - task_001 submitted -> running on server1",
        "[2026-11-22 12:00:01] INFO - task_001 running -> completed on server1",
        "[2026-11-22 12:00:01] INFO - task_002 running -> failed on server1 (reason timeout, exit code 124)",
        "[2026-11-22 12:00:01] INFO - task_003 submitted -> queued on server1",
    ]
    health_log = [
        "[2026-11-22 12:00:02] INFO - Health check passed for local: 10GB free",
        "[2026-11-22 12:00:02] ERROR - Disabling source 'server1' due to 3 consecutive health check failures",
    ]
    assignments = ["[2026-11-22 12:00:03] task_003 -> local (from server1) strategy=round_robin",
                   "[2026-11-22 12:00:00] task_001 -> server1 strategy=round_robin", "not a log line"]
    events = activity.recent([assignments, source_log, sweep_log, health_log], 20, {"task_001": 3.25})
    assert [(e.clock, e.text, e.took) for e in events] == [
        ("12:00:00", "sweep created: 3 tasks", None),
        ("12:00:00", "submitted 3 tasks to server1", None),
        ("12:00:00", "started task_001 on server1", None),
        ("12:00:01", "completed task_001 on server1", 3.25),
        ("12:00:01", "failed task_002 on server1 (timeout)", None),
        ("12:00:02", "disabled source server1: 3 consecutive health check failures", None),
        ("12:00:03", "reassigned task_003 from server1 to local", None),
    ]
    assert [e.text for e in activity.recent([source_log], 1)] == ["failed task_002 on server1 (timeout)"]


def test_an_exit_code_failure_names_its_code() -> None:
    event = activity.event_of("[2026-11-22 12:00:01] INFO - task_009 running -> failed on local (reason exit_code, exit code 3)")
    assert event is not None and event.text == "failed task_009 on local (exit code 3)"
