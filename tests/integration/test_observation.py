"""No final status is ever missed: quick tasks, and a file system with one-second timestamps.

A task that writes `running` and then its final status within one timestamp tick leaves
a status file whose mtime did not move. These sweeps run where that happens all the time
(tasks of milliseconds; ext4 with 128-byte inodes, as Lustre and many NFS servers keep
mtimes) and must end with every task completed, the index agreeing with every task's own
status file, and never more tasks shown running than the source has slots.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.hsmproc import Project, hsm_argv, hsm_env, make_project, read_status


def read_index_fast(sweep: Path) -> dict[str, Any] | None:
    """The index as JSON (its flow style is JSON); None when it is not there yet."""
    try:
        return json.loads((sweep / "task_mapping.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def folded_from_status(entry: dict[str, Any], task_dir: Path) -> bool:
    """True when the index entry holds the end and duration of the task's own final status."""
    raw = yaml.load((task_dir / "status.yaml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    return entry.get("end") == raw["end"] and entry.get("duration") == float(raw["duration"])


def assert_all_completed(sweep: Path, n: int) -> None:
    index = read_index_fast(sweep)
    assert index is not None
    states = {tid: t["state"] for tid, t in index["tasks"].items()}
    assert len(states) == n
    assert set(states.values()) == {"completed"}, {s: list(states.values()).count(s) for s in set(states.values())}
    for tid, entry in index["tasks"].items():
        status = read_status(sweep / "tasks" / tid)
        assert status is not None and status["state"] == "completed", (tid, status)
        assert folded_from_status(entry, sweep / "tasks" / tid), (tid, entry)


@pytest.fixture
def coarse_project(coarse_dir: Path) -> Iterator[Project]:
    p = make_project(coarse_dir / "proj")
    try:
        yield p
    finally:
        p.stop_leftovers()


def test_quick_tasks_on_one_second_timestamps_all_complete(coarse_project: Project) -> None:
    coarse_project.sweep_config("grid:\n  i: [" + ", ".join(str(i) for i in range(60)) + "]\n"
                                'command: "sleep 0.2"\n')
    result = coarse_project.hsm("run", "--sources", "local:4", "--poll-interval", "0.5", timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "✓ Sweep completed successfully: 60 tasks" in result.stderr
    sweep = Path(result.stdout.strip())
    assert_all_completed(sweep, 60)
    # It did run where mtimes have whole seconds only.
    assert all(os.stat(p).st_mtime_ns % 1_000_000_000 == 0 for p in sweep.glob("tasks/*/status.yaml"))


def test_a_thousand_no_op_tasks_complete_and_never_show_more_running_than_slots(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    try:
        project.sweep_config("grid:\n  i: [" + ", ".join(str(i) for i in range(1000)) + "]\n"
                             'command: "true"\n')
        # Output to files: a pipe nobody reads would stop the driver once full.
        out_file, err_file = tmp_path / "run.out", tmp_path / "run.err"
        with open(out_file, "w") as out_fh, open(err_file, "w") as err_fh:
            driver = subprocess.Popen(hsm_argv("run", "--sources", "local:2", "--poll-interval", "0.5"),
                                      cwd=project.root, env=hsm_env(), stdin=subprocess.DEVNULL,
                                      stdout=out_fh, stderr=err_fh)
        most_running = 0
        deadline = time.monotonic() + 300
        try:
            while driver.poll() is None:
                assert time.monotonic() < deadline, "hsm run did not finish 1000 no-op tasks in 300 s"
                sweeps = [p for p in project.outputs.glob("sweep_*") if p.is_dir()] if project.outputs.exists() else []
                index = read_index_fast(sweeps[0]) if sweeps else None
                if index is not None:
                    running = sum(1 for t in index["tasks"].values() if t["state"] == "running")
                    most_running = max(most_running, running)
                time.sleep(0.02)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(timeout=30)
        out, err = out_file.read_text(), err_file.read_text()
        assert driver.returncode == 0, err[-2000:]
        assert "✓ Sweep completed successfully: 1000 tasks" in err
        assert most_running <= 2, f"the index showed {most_running} tasks running on 2 slots"
        assert_all_completed(Path(out.strip()), 1000)
    finally:
        project.stop_leftovers()


def test_the_index_folds_the_final_status_of_a_task_whose_mtime_did_not_move(tmp_path: Path) -> None:
    # The same race, made certain: the wrapper writes `running`, then its final status and
    # sets the final file's mtime back to that of the running one before hsm looks again.
    project = make_project(tmp_path / "proj")
    try:
        project.write("templates/task.sh", SAME_MTIME_WRAPPER)
        project.sweep_config('grid:\n  i: [1, 2, 3]\ncommand: "true"\n')
        result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:3 | hsm-submit")
        assert result.returncode == 0, result.stderr
        sweep = Path(result.stdout.strip())
        # The first poll sees every task running (the wrapper waits for it).
        deadline = time.monotonic() + 60
        while True:
            assert project.hsm("poll", str(sweep)).returncode == 0
            index = read_index_fast(sweep)
            assert index is not None
            if all(t["state"] == "running" for t in index["tasks"].values()):
                break
            assert time.monotonic() < deadline, index
            time.sleep(0.1)
        for tid in index["tasks"]:
            (sweep / "tasks" / tid / "go").write_text("", encoding="ascii")
        deadline = time.monotonic() + 60
        while not all((sweep / "tasks" / tid / "done").exists() for tid in index["tasks"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for tid in index["tasks"]:
            status = yaml.safe_load((sweep / "tasks" / tid / "status.yaml").read_text())
            assert status["state"] == "completed"
            seen = index["tasks"][tid]["seen"]
            assert os.stat(sweep / "tasks" / tid / "status.yaml").st_mtime_ns == seen[2]
        assert project.hsm("poll", str(sweep)).returncode == 0
        assert_all_completed(sweep, 3)
    finally:
        project.stop_leftovers()


# The real wrapper, then: wait for a `go` file, and put the running status's mtime on the final one.
SAME_MTIME_WRAPPER = """\
#!/usr/bin/env bash
set -u
task_dir=$1
attempt=$2
status=$task_dir/status.yaml
read -r -a stat_fields < /proc/$$/stat
write() { printf 'schema: 1\\ntask_id: %s\\nattempt: %s\\nsource: local\\nhost: h\\npid: %s\\npid_start: %s\\n%b' \\
  "${task_dir##*/}" "$attempt" "$$" "${stat_fields[21]}" "$1" > "$status.tmp" && mv -f "$status.tmp" "$status"; }
write 'state: running\\n'
stamp=$(stat -c %y "$status")
while [[ ! -e $task_dir/go ]]; do sleep 0.05; done
write 'state: completed\\nexit_code: 0\\nend: 2026-01-01T00:00:01Z\\nduration: 0.1\\n'
touch -d "$stamp" "$status"
touch "$task_dir/done"
"""
