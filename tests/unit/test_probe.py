"""The status-file probes never take an unchanged mtime for an unchanged file.

A task may write `running` and its final status within one timestamp tick (one second on
Lustre, many NFS servers and ext4 with small inodes). These tests write both versions and
then give the final one the very mtime of the running one, as such a file system would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hsm.agent.probe import probe, probe_statuses
from hsm.agent.status import file_mark, proc_start

HEAD = "schema: 1\ntask_id: 'task_001'\nattempt: 1\nsource: 'local'\nhost: 'vm'\n"


def write_status(task_dir: Path, lines: str, pid: int, pid_start: int) -> None:
    """As task.sh does: a temp file renamed over the status file."""
    tmp = task_dir / "status.yaml.tmp"
    tmp.write_text(f"{HEAD}pid: {pid}\npid_start: {pid_start}\nstart: 2026-01-01T00:00:00Z\n{lines}",
                   encoding="utf-8")
    os.replace(tmp, task_dir / "status.yaml")


def same_mtime_as(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def make_runner(tmp_path: Path, tasks: list[str]) -> tuple[Path, Path]:
    runner_dir, tasks_dir = tmp_path / "runner", tmp_path / "tasks"
    runner_dir.mkdir()
    me, start = os.getpid(), proc_start(os.getpid())
    # Started by a runner, with this (live) process standing in for the task wrappers.
    (runner_dir / "started").write_text("".join(f"S {t} 1\nP {t} 1 {me} {start}\n" for t in tasks), encoding="utf-8")
    for t in tasks:
        (tasks_dir / t).mkdir(parents=True)
    return runner_dir, tasks_dir


def ask(runner_dir: Path, tasks_dir: Path, state: str, seen: object, task: str = "task_001") -> dict:
    request = {"runner_dir": str(runner_dir), "tasks_dir": str(tasks_dir), "tasks": [[task, 1, state, seen]]}
    return probe(request)["tasks"]


def test_a_final_status_with_the_running_status_mtime_is_seen(tmp_path: Path) -> None:
    runner_dir, tasks_dir = make_runner(tmp_path, ["task_001"])
    task_dir = tasks_dir / "task_001"
    me, start = os.getpid(), proc_start(os.getpid()) or 0
    write_status(task_dir, "state: running\n", me, start)
    first = ask(runner_dir, tasks_dir, "queued", None)["task_001"]
    assert first["state"] == "running"
    seen = first["seen"]
    assert seen == file_mark(task_dir / "status.yaml")
    mtime = os.stat(task_dir / "status.yaml").st_mtime_ns

    write_status(task_dir, "state: completed\nexit_code: 0\nend: 2026-01-01T00:00:01Z\nduration: 0.1\n", me, start)
    same_mtime_as(task_dir / "status.yaml", mtime)
    assert os.stat(task_dir / "status.yaml").st_mtime_ns == mtime

    second = ask(runner_dir, tasks_dir, "running", seen)["task_001"]
    assert second["state"] == "completed" and second["exit_code"] == 0
    assert second["seen"] != seen
    # Folded into the index, the same file is news no more.
    assert ask(runner_dir, tasks_dir, "completed", second["seen"]) == {}


def test_a_running_task_is_reported_when_the_index_still_says_queued(tmp_path: Path) -> None:
    # The index may hold the mark of a status it never folded (an older hsm kept only the mtime).
    runner_dir, tasks_dir = make_runner(tmp_path, ["task_001"])
    task_dir = tasks_dir / "task_001"
    write_status(task_dir, "state: running\n", os.getpid(), proc_start(os.getpid()) or 0)
    mark = file_mark(task_dir / "status.yaml")
    assert ask(runner_dir, tasks_dir, "running", mark) == {}
    assert ask(runner_dir, tasks_dir, "queued", mark)["task_001"]["state"] == "running"


def test_the_hpc_probe_sees_a_final_status_with_the_same_mtime(tmp_path: Path) -> None:
    task_dir = tmp_path / "tasks" / "task_001"
    task_dir.mkdir(parents=True)
    write_status(task_dir, "state: running\n", 4242, 7)
    request = {"tasks_dir": str(tmp_path / "tasks"), "job_ids": False, "tasks": [["task_001", 1, None]]}
    first = probe_statuses(request)["task_001"]
    assert first["status"]["state"] == "running"
    mtime = os.stat(task_dir / "status.yaml").st_mtime_ns

    write_status(task_dir, "state: failed\nexit_code: 3\nreason: 'exit_code'\nend: x\nduration: 1.0\n", 4242, 7)
    same_mtime_as(task_dir / "status.yaml", mtime)
    request["tasks"] = [["task_001", 1, first["mark"]]]
    second = probe_statuses(request)["task_001"]
    assert "unchanged" not in second
    assert second["status"]["state"] == "failed" and second["status"]["exit_code"] == 3

    request["tasks"] = [["task_001", 1, second["mark"]]]
    assert probe_statuses(request)["task_001"] == {"unchanged": True}


def test_a_mark_differs_for_a_new_version_of_equal_size_and_mtime(tmp_path: Path) -> None:
    # Rewritten by rename while the old version still exists: another inode, whatever else agrees.
    path = tmp_path / "status.yaml"
    path.write_text("state: running\n", encoding="utf-8")
    before = file_mark(path)
    tmp = tmp_path / "status.yaml.tmp"
    tmp.write_text("state: zzzzzzz\n", encoding="utf-8")
    os.replace(tmp, path)
    assert before is not None
    same_mtime_as(path, before[2])
    after = file_mark(path)
    assert after is not None and after[1:] == before[1:] and after != before
    assert file_mark(tmp_path / "missing") is None


def test_the_hpc_probe_takes_the_job_id_from_the_status_file(tmp_path: Path) -> None:
    """The wrapper writes which job ran the attempt into status.yaml; a job script of an earlier
    hsm wrote a `job_id` file ("ATTEMPT JOBID"), still read when the status has none."""
    tasks = tmp_path / "tasks"
    for tid in ("task_001", "task_002", "task_003"):
        (tasks / tid).mkdir(parents=True)
    me, start = os.getpid(), proc_start(os.getpid()) or 0
    write_status(tasks / "task_001", "job_id: '82[1].server'\nstate: running\n", me, start)
    (tasks / "task_002" / "job_id").write_text("1 81[2]\n", encoding="utf-8")  # the earlier layout
    write_status(tasks / "task_003", "job_id: '80[0]'\nstate: running\n", me, start)  # attempt 1's
    mark = file_mark(tasks / "task_001" / "status.yaml")
    request = {"tasks_dir": str(tasks), "job_ids": True,
               "tasks": [["task_001", 1, mark], ["task_002", 1, None], ["task_003", 2, None]]}
    answer = probe_statuses(request)
    assert answer["task_001"] == {"unchanged": True, "job_id": "82[1].server"}  # read although unchanged
    assert answer["task_002"] == {"job_id": "81[2]"}
    assert "job_id" not in answer["task_003"]  # another attempt's
    assert "job_id" not in probe_statuses({**request, "job_ids": False})["task_001"]


def ended_process() -> tuple[int, int]:
    """The pid and start time of a process that has ended (reaped): not alive."""
    proc = subprocess.Popen(["sleep", "30"])
    start = proc_start(proc.pid) or 0
    proc.kill()
    proc.wait()
    return proc.pid, start


def direct_runner(tmp_path: Path, command: tuple[int, int], runner: tuple[int, int]) -> tuple[Path, Path]:
    """task_001 started directly by `runner` (its P line names it), its command being `command`."""
    runner_dir, tasks_dir = tmp_path / "runner", tmp_path / "tasks"
    runner_dir.mkdir()
    (tasks_dir / "task_001").mkdir(parents=True)
    (runner_dir / "started").write_text(f"S task_001 1\nP task_001 1 {command[0]} {command[1]} {runner[0]} {runner[1]}\n",
                                        encoding="utf-8")
    return runner_dir, tasks_dir


def test_a_direct_task_whose_command_ended_is_not_lost_while_its_runner_lives(tmp_path: Path) -> None:
    # Between the command's end and the runner's final status, the command is gone (a zombie
    # counts as gone): its runner, alive, writes the status next.
    command = ended_process()
    me = (os.getpid(), proc_start(os.getpid()) or 0)
    runner_dir, tasks_dir = direct_runner(tmp_path, command, me)
    assert ask(runner_dir, tasks_dir, "queued", None) == {}  # no status yet
    write_status(tasks_dir / "task_001", "state: running\n", *command)
    seen = ask(runner_dir, tasks_dir, "queued", None)["task_001"]
    assert seen["state"] == "running"
    assert ask(runner_dir, tasks_dir, "running", seen["seen"]) == {}


def test_a_direct_task_is_lost_when_its_command_and_its_runner_are_gone(tmp_path: Path) -> None:
    command, runner = ended_process(), ended_process()
    runner_dir, tasks_dir = direct_runner(tmp_path, command, runner)
    assert ask(runner_dir, tasks_dir, "queued", None)["task_001"]["reason"] == "lost"  # no status at all
    write_status(tasks_dir / "task_001", "state: running\n", *command)
    observed = ask(runner_dir, tasks_dir, "running", None)["task_001"]
    assert (observed["state"], observed["reason"]) == ("failed", "lost")


def test_a_direct_task_still_running_after_its_runner_died_is_running(tmp_path: Path) -> None:
    runner = ended_process()
    me = (os.getpid(), proc_start(os.getpid()) or 0)  # this process stands in for the command
    runner_dir, tasks_dir = direct_runner(tmp_path, me, runner)
    write_status(tasks_dir / "task_001", "state: running\n", *me)
    assert ask(runner_dir, tasks_dir, "queued", None)["task_001"]["state"] == "running"


def test_a_direct_task_whose_p_line_came_after_the_probe_read_started_is_not_lost(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    # The probe reads `started` first: it may see the S line only, and then read the running
    # status the runner wrote after the P line, with the command already ended (a no-op task).
    # The P line, there by then, names the live runner: the task is running, not lost.
    import hsm.agent.probe as probe_module

    command = ended_process()
    me = (os.getpid(), proc_start(os.getpid()) or 0)
    runner_dir, tasks_dir = direct_runner(tmp_path, command, me)
    write_status(tasks_dir / "task_001", "state: running\n", *command)
    real = probe_module.read_started
    reads = []

    def stale_first(path: Path):
        reads.append(path)
        started = real(path)
        return {key: None for key in started} if len(reads) == 1 else started  # S lines only, the first time

    monkeypatch.setattr(probe_module, "read_started", stale_first)
    seen = ask(runner_dir, tasks_dir, "queued", None)["task_001"]
    assert seen["state"] == "running" and len(reads) == 2
