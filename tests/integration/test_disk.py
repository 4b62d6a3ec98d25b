"""The free-disk policy (minimum to start, floor while running) on this machine's real disk.

The thresholds are set around the disk's actual free space: a minimum above it refuses
to start a task, a floor above it stops a running one. Both end failed, reason `disk`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.hsmproc import Project, job_command, read_index, read_status, wait_for
from tests.integration.conftest_local import local_project  # noqa: F401  (the `project` fixture)


def free_gb(path: Path) -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2**30


def test_a_task_does_not_start_without_the_minimum_free_disk(project: Project) -> None:
    needed = free_gb(project.root) * 4 + 1
    project.write("hsm_config.yaml", f"paths: {{training_script: train.py}}\ncompute: {{disk_min_free_gb: {needed}}}\n")
    project.sweep_config(f"grid:\n  x: [1, 2]\ncommand: \"{job_command()}\"\n")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 1, result.stderr
    sweep = Path(result.stdout.strip())
    for entry in read_index(sweep)["tasks"].values():
        assert (entry["state"], entry["reason"]) == ("failed", "disk")
    task = sweep / "tasks" / "task_001"
    # Why, where the task's own records are: its status (with the free disk it saw) and its stderr.log.
    status = read_status(task)
    assert status is not None and status["reason"] == "disk" and status["disk_free_kb"] < needed * 2**20
    assert "hsm: task not started" in (task / "stderr.log").read_text()
    assert not (task / "stdout.log").exists()  # the command never ran
    assert not (task / "task_info.txt").exists()


def test_a_running_task_is_stopped_below_the_floor(project: Project) -> None:
    floor_mb = int(free_gb(project.root) * 1024 * 4) + 1024
    project.write("hsm_config.yaml", "paths: {training_script: train.py}\n"
                  f"compute: {{disk_min_free_gb: 0.01, disk_floor_mb: {floor_mb}, disk_check_interval: 1}}\n")
    project.sweep_config(f"grid:\n  x: [1]\ncommand: \"{job_command('--sleep', '60')}\"\n")
    sweep = project.expand("sweeps/sweep_config.yaml")
    assert project.hsm("assign", str(sweep), "--sources", "local:1").returncode == 0
    assert project.hsm("submit", str(sweep)).returncode == 0
    task = sweep / "tasks" / "task_001"
    status = wait_for(lambda: (s := read_status(task)) and s.get("state") != "running" and s, 30,
                      "the task to be stopped by the disk floor")
    assert (status["state"], status["reason"]) == ("failed", "disk")
    index = project.poll_until_final(sweep, timeout=30)
    assert index["tasks"]["task_001"]["reason"] == "disk"
    log = (sweep / ".hsm" / "runners" / "local" / "runner.log").read_text()
    assert "disk below floor" in log
