"""How often hsm asks Slurm: the status calls of a whole `hsm run`, counted, against the budget.

Shared clusters rate-limit their controller and admins count calls: a poll reads the tasks'
status files first, and asks squeue / sacct only about jobs those files cannot decide, at
most once per `scheduler_poll_interval`, however often the driver polls.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.test_slurm import calls, new_project, projects, read_index  # noqa: F401

pytestmark = pytest.mark.slurm

STATUS_CALLS = ("squeue", "sacct", "sinfo", "scontrol")


def test_a_run_asks_the_scheduler_once_per_interval(projects, tmp_path: Path) -> None:
    interval = 5
    project = new_project(projects, tmp_path / "p", extra={"hpc": {"system": "slurm",
                                                                   "scheduler_poll_interval": interval}})
    # About 40 s: 20 tasks of 6 s, 3 at a time; task 10 fails (exit 3) in the middle of it.
    project.sweep_config(20, "--sleep", "6", "--fail-on", "10")
    log = tmp_path / "calls.jsonl"
    began = time.monotonic()
    result = project.hsm("run", "--sources", "hpc:3", "--poll-interval", "0.5", "--no-progress",
                         calls=log, check=False, timeout=240)
    duration = time.monotonic() - began
    assert result.returncode == 1, result.stderr  # one task failed
    sweep = Path(result.stdout.strip().splitlines()[-1])
    index = read_index(sweep)
    states = {tid: t["state"] for tid, t in index["tasks"].items()}
    assert states.pop("task_010") == "failed" and set(states.values()) == {"completed"}, states
    assert index["tasks"]["task_010"].get("exit_code") == 3

    made = calls(log)
    status_calls = [c for c in made if c["program"] in STATUS_CALLS]
    budget = duration / interval + 2
    assert duration > 30, duration
    assert len(status_calls) <= budget, (f"{len(status_calls)} status calls in {duration:.0f} s "
                                         f"(budget {budget:.1f}): {[c['program'] for c in status_calls]}")
    assert sum(1 for c in made if c["program"] == "sbatch") == 1

    # The failure is recorded from the task's own status file within seconds of its end, not
    # at the next status call (both times have a resolution of one second).
    status = yaml.safe_load((sweep / "tasks" / "task_010" / "status.yaml").read_text(encoding="utf-8"))
    ended = _dt.datetime.fromisoformat(str(status["end"]).replace("Z", "+00:00"))
    line = next(line for line in (sweep / "logs" / "sweep.log").read_text(encoding="utf-8").splitlines()
                if "task_010" in line and "-> failed" in line)
    recorded = _dt.datetime.strptime(line[1:20], "%Y-%m-%d %H:%M:%S").astimezone()  # local time
    assert (recorded - ended).total_seconds() <= 3, (line, status["end"])


def test_separate_polls_share_the_budget(projects, tmp_path: Path) -> None:
    """A cron `hsm poll` every half second asks the scheduler no more often than the interval."""
    interval = 4
    project = new_project(projects, tmp_path / "p", extra={"hpc": {"system": "slurm",
                                                                   "scheduler_poll_interval": interval}})
    project.sweep_config(2, "--sleep", "10")
    sweep = project.submitted("hpc:2")
    began = time.monotonic()
    logs = []
    while time.monotonic() - began < 9:
        log = tmp_path / f"poll_{len(logs):03d}.jsonl"
        project.hsm("poll", str(sweep), calls=log)
        logs.append(calls(log))
        time.sleep(0.5)
    asked = sum(1 for log in logs for c in log if c["program"] == "squeue")
    assert len(logs) >= 8
    assert 1 <= asked <= (time.monotonic() - began) / interval + 1, (asked, len(logs))
