"""A disk that fills while a sweep runs (a small tmpfs): hsm ends with one line and exit 1, leaves
no temporary file, and the tasks the disk floor stopped are recorded `disk` once there is room."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.hsmproc import Project, hsm_argv, hsm_env, job_command, make_project, read_status, wait_for

CONFIG = """\
paths:
  training_script: train.py
compute:
  disk_min_free_gb: 0.001
  disk_floor_mb: 2
  disk_check_interval: 1
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs (root: the suite runs as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, f"cannot mount a tmpfs (the suite runs as root): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Write zeros until the file system has no byte left."""
    # Unbuffered: a buffered file would try its unwritten tail again on close and raise there.
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass


def test_a_full_disk_ends_the_run_with_one_line_and_the_tasks_are_recorded_disk(small_disk: Path) -> None:
    project: Project = make_project(small_disk / "proj", CONFIG)
    project.sweep_config(f"grid:\n  x: [1, 2, 3]\ncommand: \"{job_command('--sleep 60')}\"\n")
    err = small_disk.parent / "run.err"
    with open(err, "w") as stderr:
        run = subprocess.Popen(hsm_argv("run", "--sources", "local:3", "--poll-interval", "0.2"), cwd=project.root,
                               env=hsm_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        sweep = wait_for(lambda: next(iter(project.outputs.glob("*/task_mapping.yaml")), None), 60, "the sweep").parent
        # Each task has written what it writes at its start (then it sleeps): the disk fills under
        # tasks that are running, not under one still starting.
        wait_for(lambda: all("stderr of" in (sweep / "tasks" / t / "stderr.log").read_text(errors="replace")
                             for t in ("task_001", "task_002", "task_003")
                             if (sweep / "tasks" / t / "stderr.log").exists())
                 and len(list(sweep.glob("tasks/*/stderr.log"))) == 3, 60, "three tasks started")
        filler = small_disk / "filler"
        fill(filler)
        code = run.wait(timeout=90)
        text = err.read_text()
        assert code == 1 and "Traceback" not in text, text
        last = text.splitlines()[-1]
        assert last.startswith("hsm: error: ") and "No space left on device" in last and "disk is full" in last, text
        leftovers = [p for p in sweep.rglob("*") if ".tmp" in p.name]
        assert leftovers == [], leftovers
        for tid in ("task_001", "task_002", "task_003"):  # written in place over the running status
            status = wait_for(lambda t=tid: (s := read_status(sweep / "tasks" / t)) and s["state"] != "running" and s,
                              30, f"{tid} to be stopped by the disk floor")
            assert (status["state"], status["reason"]) == ("failed", "disk"), (tid, status)

        filler.unlink()
        index = project.poll_until_final(sweep, timeout=60)
        for tid, entry in index["tasks"].items():
            assert (entry["state"], entry["reason"]) == ("failed", "disk"), (tid, entry)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
        project.stop_leftovers()
