"""The HPC source against the test bed's PBS commands (qsub, qstat, qdel over Slurm).

PBS keeps no exit status anywhere: every outcome here comes from the tasks' own status files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.integration.test_slurm import (
    SILENT_WRAPPER,
    calls,
    count,
    max_overlap,
    new_project,
    projects,  # noqa: F401  (fixture)
    read_index,
    read_status,
    running_tasks,
    states,
    throttled_sweep_completes,
    wait_for,
)

pytestmark = pytest.mark.pbs


def test_a_40_task_sweep_never_runs_more_than_n_at_once(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    sweep = throttled_sweep_completes(project, "pbs:4", n=40, limit=4)
    jobs = {t["job"] for t in read_index(sweep)["tasks"].values()}
    assert len({j.split("[")[0] for j in jobs}) == 1 and all(j.endswith("]") for j in jobs)
    # The scheduler's own output files, one per element, land in logs/jobs/.
    assert len(list((sweep / "logs" / "jobs").glob("*.o*"))) == 40


def test_counted_calls_chunks_submits_and_polls(projects, tmp_path: Path) -> None:
    sources = {"cluster": {"type": "hpc", "system": "pbs", "max_parallel_tasks": 3, "max_array_size": 6}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    n = 14
    project.sweep_config(n, "--sleep", "0.3")
    submit_log = tmp_path / "submit.jsonl"
    sweep = project.submitted("cluster", calls=submit_log)
    submit_calls = calls(submit_log)
    assert count(submit_calls, "qsub") == -(-n // 6) == 3, submit_calls
    assert count(submit_calls, "qstat") == 1  # qstat -f: jobs a crashed submit left
    polls = tmp_path / "polls"
    polls.mkdir()
    index = project.poll_until_final(sweep, calls_dir=polls)
    for log in (calls(p) for p in sorted(polls.iterdir())):
        assert [c["program"] for c in log] == ["qstat"], log
    assert set(states(index).values()) == {"completed"}
    peak, started = max_overlap(project.events)
    assert started == n and peak <= 3


def test_exit_code_and_walltime(projects, tmp_path: Path) -> None:
    # PBS sends only SIGTERM at the walltime: the job script warns the wrapper first, at most
    # half the walltime before its end (the default warning, 60 s, is longer than this walltime).
    sources = {"cluster": {"type": "hpc", "system": "pbs", "max_parallel_tasks": 4,
                           "default_walltime": "00:00:20"}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    (project.root / "sweeps" / "sweep_config.yaml").write_text(yaml.safe_dump({
        "grid": {"x": [1, 2, 3]},
        "command": "{python} job.py --x {x} --sleep 0.2 --fail-on 2 --code 3",
    }), encoding="utf-8")
    (project.root / "sweeps" / "long.yaml").write_text(yaml.safe_dump(
        {"grid": {"x": [1]}, "command": "{python} job.py --x {x} --sleep 600"}), encoding="utf-8")
    long = Path(project.hsm("expand", "sweeps/long.yaml").stdout.strip())
    project.hsm("assign", str(long), "--sources", "cluster")
    project.hsm("submit", str(long))
    quick = project.submitted("cluster")

    index = project.poll_until_final(quick, timeout=60)
    assert [index["tasks"][t]["state"] for t in ("task_001", "task_002", "task_003")] == \
        ["completed", "failed", "completed"]
    assert (index["tasks"]["task_002"]["reason"], index["tasks"]["task_002"]["exit_code"]) == ("exit_code", 3)

    index = project.poll_until_final(long, timeout=60)
    task = index["tasks"]["task_001"]
    assert (task["state"], task["reason"]) == ("failed", "timeout"), task
    assert read_status(long / "tasks" / "task_001")["reason"] == "timeout"
    assert 8 <= task["duration"] <= 20, task  # told at about 10 s, not the moment it started


def test_a_job_gone_without_a_final_status_is_lost_never_completed(projects, tmp_path: Path) -> None:
    sources = {"cluster": {"type": "hpc", "system": "pbs", "max_parallel_tasks": 2, "lost_grace": 2}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    (project.root / "templates").mkdir()
    (project.root / "templates" / "task.sh").write_text(SILENT_WRAPPER, encoding="utf-8")
    project.sweep_config(2)
    sweep = project.submitted("cluster")
    started = time.monotonic()
    index = project.poll_until_final(sweep, timeout=60)
    for tid, t in index["tasks"].items():
        assert (t["state"], t["reason"]) == ("failed", "lost"), (tid, t)
        # The task's own status agrees with the index, and keeps what the wrapper last said.
        status = read_status(sweep / "tasks" / tid)
        assert (status["state"], status["reason"], status["observed_state"]) == ("failed", "lost", "running")
    assert time.monotonic() - started >= 2  # not on the first poll that found the job gone


def test_cancel_stops_running_and_pending_tasks(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(5, "--sleep", "600")
    sweep = project.submitted("pbs:2")
    wait_for(lambda: len(running_tasks(sweep)) == 2, 60, "two running tasks")
    running = running_tasks(sweep)
    log = tmp_path / "cancel.jsonl"
    project.hsm("cancel", str(sweep), calls=log)
    assert [c["program"] for c in calls(log) if c["program"] != "qstat"] == ["qdel"]
    assert set(states(read_index(sweep)).values()) == {"cancelled"}

    def stopped(task: str) -> bool:
        status = read_status(sweep / "tasks" / task)
        return status["state"] == "cancelled" or (status["state"] == "failed" and status["exit_code"] > 128)

    wait_for(lambda: all(stopped(t) for t in running), 30, "the running tasks to stop")
    assert not (sweep / "tasks" / "task_005" / "status.yaml").exists()


def test_health_asks_qstat_once(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(1)
    sweep = Path(project.hsm("expand", "sweeps/sweep_config.yaml").stdout.strip())
    project.hsm("assign", str(sweep), "--sources", "pbs:2")
    log = tmp_path / "health.jsonl"
    result = project.hsm("health", str(sweep), calls=log)
    assert "pbs: healthy" in result.stderr, result.stderr
    assert [c["argv"] for c in calls(log)] == [["qstat", "-q"]]
