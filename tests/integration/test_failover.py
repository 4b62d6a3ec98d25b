"""Failover during `hsm run`, on the test bed: hosts that crash, drop off the network or freeze,
a source whose every task fails, a partition that does not exist, and work stealing.

Each run is a real `hsm run` process; faults are the test bed's own (crash-host, partition,
freeze). The thresholds are scaled to seconds: a health check every second, work on a
silent host given up after 4 s.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from hsm.commands import failover
from hsm.config import load_project
from hsm.core import failover as fo
from hsm.core.index import ref_of
from hsm.sweep import Sweep
from tests.integration.test_slurm import calls, count, new_project, projects, read_index, running_tasks  # noqa: F401
from tests.integration.test_ssh import SshProject, job_sweep, project, read_status, remote_base, wait_for  # noqa: F401

FAST_FAILOVER = {"disk_min_free_gb": 0.05, "health_check_interval": 1, "unreachable_grace": 4,
                 "health_check_failure_threshold": 3, "recovery_checks": 2}
THREE_SOURCES = "local:2,ssh:server1:2,ssh:server2:2"


def parse_iso(value: Any) -> float:
    """A status file's time (YAML reads it as a datetime) as seconds since the epoch."""
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def start_run(project: SshProject, *args: str) -> subprocess.Popen:
    """`hsm run ARGS` as a background process of the project."""
    return subprocess.Popen([sys.executable, "-m", "hsm", "run", *args], cwd=project.root, env=project.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(run: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate()
        raise AssertionError(f"hsm run did not end within {timeout} s:\n{err[-3000:]}") from None
    return run.returncode, out, err


def the_sweep(project: SshProject) -> Path:
    outputs = project.root / "sweeps" / "outputs"
    found = wait_for(lambda: sorted(p for p in outputs.iterdir() if (p / "task_mapping.yaml").exists())
                     if outputs.is_dir() else None, 60, "the sweep dir")
    return found[-1]


def running_on(project: SshProject, sweep: Path, source: str) -> list[str]:
    index = project.index(sweep)
    return [t for t, e in index["tasks"].items() if e.get("source") == source and e["state"] == "running"]


def assert_each_task_completed_once(project: SshProject, sweep: Path) -> dict[str, Any]:
    """Every task completed, and its counted result is its latest attempt's own status."""
    index = project.index(sweep)
    for tid, entry in index["tasks"].items():
        status = read_status(sweep / "tasks" / tid)
        assert entry["state"] == status["state"] == "completed", (tid, entry, status)
        assert status["attempt"] == entry["attempt"], (tid, entry, status)
        assert status["source"] == entry["source"], (tid, entry, status)
        for earlier in entry.get("history", []):
            assert earlier["attempt"] < entry["attempt"], (tid, entry)
    return index


def tasks_alive_on(project: SshProject, host: str, sweep: Path) -> list[str]:
    """Task wrappers of this sweep still running on a host."""
    found = project.on_host(host, f"pgrep -af 'task.sh .*{sweep.name}' || true").stdout.split("\n")
    return [line for line in found if line.strip() and "pgrep" not in line]


@pytest.mark.ssh
@pytest.mark.parametrize("fault,undo", [("crash-host", "restart-host"), ("partition", "heal"), ("freeze", "thaw")])
def test_a_run_over_three_sources_survives_losing_one(project: SshProject, fault: str, undo: str) -> None:
    project.config(extra={"compute": FAST_FAILOVER})
    # 30 tasks of 2 s, and one of 45 s that keeps the run going until a frozen host is detected
    # (a call to it fails after ssh's keepalives and connect timeout: about 20 s).
    sleeps = [2] * 30 + [45]
    project.write("sweeps/sweep_config.yaml", yaml.safe_dump({
        "sweep": {"paired": [{"x": list(range(31)), "sleep": sleeps}]},
        "command": "{python} job.py --x {x} --sleep {sleep}"}))
    run = start_run(project, "--sources", THREE_SOURCES, "--poll-interval", "0.5")
    try:
        sweep = the_sweep(project)
        wait_for(lambda: len(running_on(project, sweep, "server2")) == 2, 60, "server2 to run two tasks")
        project.testbed.fault(fault, "server2")
        faulted, fault_at = time.monotonic(), time.time()
        code, out, err = finish(run, 240)
        after_fault = time.monotonic() - faulted
    finally:
        if run.poll() is None:
            run.kill()
        project.testbed.fault(undo, "server2")
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    index = assert_each_task_completed_once(project, sweep)
    health = (sweep / "logs" / "health_status.log").read_text()
    assert "Disabling source 'server2' due to 3 consecutive health check failures" in health, health[-2000:]
    assert "pending tasks from disabled source 'server2'" in health or "giving up" in health, health[-2000:]
    assert "Tasks reassigned: " in health
    moved = [t for t, e in index["tasks"].items() if any(h["source"] == "server2" for h in e.get("history", []))]
    assert moved and all(index["tasks"][t]["source"] != "server2" for t in moved)
    # The long task (45 s) ends the run; it started before the fault. The short ones are all
    # done (each task's own end, one-second resolution) well before.
    short_done = max(parse_iso(read_status(sweep / "tasks" / f"task_{i:03d}")["end"]) for i in range(1, 31)) - fault_at
    assert after_fault < 60 and short_done < 50, (after_fault, short_done)
    print(f"\n{fault}: the 30 short tasks were done {short_done:.0f} s after the fault, the run ended after "
          f"{after_fault:.1f} s; {len(moved)} tasks moved off server2")
    # The host answers again: the next health check stops whatever was given up there.
    wait_for(lambda: project.on_host("server2", "true", check=False).returncode == 0, 60, "server2 to answer")
    project.ok("health", str(sweep))
    wait_for(lambda: not tasks_alive_on(project, "server2", sweep), 30, "abandoned tasks on server2 to stop")
    assert not project.index(sweep)["sources"]["server2"].get("abandoned")


@pytest.mark.ssh
def test_a_source_whose_tasks_all_fail_is_disabled_after_five(project: SshProject) -> None:
    project.config(extra={"compute": FAST_FAILOVER})
    project.write("fails_on_server2.py", "import socket, sys, time\ntime.sleep(1.5)\n"
                                         "sys.exit(3 if socket.gethostname() == 'server2' else 0)\n")
    project.write("sweeps/sweep_config.yaml",
                  f"grid:\n  i: {json.dumps(list(range(24)))}\ncommand: \"{{python}} fails_on_server2.py\"\n")
    result = project.hsm("run", "--sources", "local:2,ssh:server2:2", "--poll-interval", "0.3", timeout=240)
    assert result.returncode == 1, result.stderr  # the five that failed
    sweep = Path(result.stdout.strip())
    index = project.index(sweep)
    states = Counter((e["source"], e["state"]) for e in index["tasks"].values())
    failed_on_2 = states[("server2", "failed")]
    # Five, plus one more that ended with the fifth (two slots) and the two running when the source
    # was disabled (left to end): tasks of 1.5 s do not run through a queue between two polls.
    assert 5 <= failed_on_2 <= 8, states
    assert states[("local", "completed")] == 24 - failed_on_2, states
    line = re.search(r"Disabling source 'server2' due to high failure rate: (\d+)/(\d+) \(100%\) >= 40%", result.stderr)
    assert line and 5 <= int(line.group(1)) == int(line.group(2)) <= failed_on_2, result.stderr
    assert index["sources"]["server2"]["disabled_by"] == "failure_rate"


@pytest.mark.ssh
def test_one_source_that_dies_ends_the_run_with_a_hint_that_finishes_the_sweep(project: SshProject) -> None:
    project.config(extra={"compute": FAST_FAILOVER})
    job_sweep(project, list(range(6)), sleep=2)
    run = start_run(project, "--sources", "ssh:server2:2", "--poll-interval", "0.5")
    try:
        sweep = the_sweep(project)
        wait_for(lambda: len(running_on(project, sweep, "server2")) == 2, 60, "server2 to run two tasks")
        project.testbed.fault("crash-host", "server2")
        code, out, err = finish(run, 120)
    finally:
        if run.poll() is None:
            run.kill()
        project.testbed.fault("restart-host", "server2")
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("hsm: error: no enabled source left for the ") and "server2" in last, last
    hint = last.split("to finish the sweep: ", 1)[1]
    assert hint == f"hsm complete {sweep.name} --sources local", hint
    done = project.ok("complete", sweep.name, "--sources", "local:2", "--poll-interval", "0.3")
    assert "✓ Sweep completed successfully: 6 tasks" in done.stderr, done.stderr
    index = assert_each_task_completed_once(project, sweep)
    assert {e["source"] for e in index["tasks"].values()} == {"local"}


@pytest.mark.ssh
def test_a_host_down_at_the_start_is_refused_unless_degraded_is_allowed(project: SshProject) -> None:
    project.config(extra={"compute": FAST_FAILOVER})
    job_sweep(project, list(range(4)), sleep=0)
    project.testbed.fault("crash-host", "server2")
    try:
        refused = project.hsm("run", "--sources", "local:2,ssh:server2:2", "--poll-interval", "0.3")
        assert refused.returncode == 1 and not refused.stdout
        assert "source 'server2' is not usable" in refused.stderr and "--allow-degraded" in refused.stderr
        assert not (project.root / "sweeps" / "outputs").exists() or not list((project.root / "sweeps" / "outputs").iterdir())
        result = project.ok("run", "--sources", "local:2,ssh:server2:2", "--poll-interval", "0.3", "--allow-degraded")
    finally:
        project.testbed.fault("restart-host", "server2")
    sweep = Path(result.stdout.strip())
    index = assert_each_task_completed_once(project, sweep)
    assert {e["source"] for e in index["tasks"].values()} == {"local"}
    assert index["sources"]["server2"]["disabled_by"] == "health"


@pytest.mark.ssh
def test_retries_move_a_lost_task_to_another_source(project: SshProject) -> None:
    project.config(extra={"compute": {**FAST_FAILOVER, "retry_attempts": 2, "retry_delay": 1}})
    job_sweep(project, list(range(4)), sleep=4)
    run = start_run(project, "--sources", "local:1,ssh:server2:2", "--poll-interval", "0.3", "--strategy", "round_robin")
    try:
        sweep = the_sweep(project)
        wait_for(lambda: len(running_on(project, sweep, "server2")) == 2, 60, "server2 to run two tasks")
        project.testbed.fault("crash-host", "server2")
        time.sleep(1)
        project.testbed.fault("restart-host", "server2")  # back at once: its runner and tasks are gone
        code, out, err = finish(run, 180)
    finally:
        if run.poll() is None:
            run.kill()
    assert code == 0, err[-3000:]
    index = assert_each_task_completed_once(project, sweep)
    retried = {t: e for t, e in index["tasks"].items() if e.get("retries")}
    assert retried, index["tasks"]
    assignments = (sweep / "logs" / "task_assignments.log").read_text()
    for tid, entry in retried.items():
        assert ("server2", "failed", "lost") in [(h["source"], h["outcome"], h["reason"]) for h in entry["history"]]
        assert f"{tid} failed on server2 (reason lost): retry 1 of 2" in (sweep / "logs" / "sweep.log").read_text()
        # The retry went to another source first (server2 may steal it back once it is idle again).
        assert f"{tid} -> local strategy=round_robin (reassigned)" in assignments, assignments


@pytest.mark.ssh
def test_disabling_a_source_by_hand_during_a_run_moves_its_waiting_tasks(project: SshProject) -> None:
    job_sweep(project, list(range(16)), sleep=1)
    project.config(extra={"compute": FAST_FAILOVER})
    run = start_run(project, "--sources", "local:2,ssh:server2:1", "--poll-interval", "0.3", "--strategy", "round_robin")
    try:
        sweep = the_sweep(project)
        wait_for(lambda: running_on(project, sweep, "server2"), 60, "server2 to run a task")
        before = Counter(e.get("source") for e in project.index(sweep)["tasks"].values())
        disabled = project.ok("sources", "disable", "server2", "--temporary")
        assert "Redistributing" in disabled.stderr or "Redistributing" in disabled.stdout, disabled.stderr
        code, out, err = finish(run, 180)
    finally:
        if run.poll() is None:
            run.kill()
    assert code == 0, err[-3000:]
    index = assert_each_task_completed_once(project, sweep)
    after = Counter(e["source"] for e in index["tasks"].values())
    assert after["server2"] <= 2 < before["server2"], (before, after)
    assert yaml.safe_load((project.root / "hsm_config.yaml").read_text()).get("compute_sources") is None  # --temporary


# --- Slurm: a partition that does not exist, and work stealing ----------------------------------


REFUSED_SETUPS = {
    "a partition that does not exist": ({"partition": "nosuchpartition"}, "Invalid partition name specified"),
    "an option value sbatch cannot read": ({"resources": "--time=forever"}, "Invalid --time specification"),
}


@pytest.mark.slurm
@pytest.mark.parametrize("setup", list(REFUSED_SETUPS))
def test_a_setup_the_scheduler_refuses_disables_the_source_at_its_first_refusal(projects, tmp_path: Path,
                                                                                setup: str) -> None:
    options, refusal = REFUSED_SETUPS[setup]
    project = new_project(projects, tmp_path / "p", sources={"bad": {"type": "hpc", **options}},
                          extra={"compute": FAST_FAILOVER})
    project.sweep_config(8, "--sleep", "0.2")
    log = tmp_path / "calls.jsonl"
    result = project.hsm("run", "--sources", "local:2,bad:2", "--poll-interval", "0.3", calls=log, timeout=180)
    assert "✓ Sweep completed successfully: 8 tasks" in result.stderr, result.stderr
    assert 1 <= count(calls(log), "sbatch") <= FAST_FAILOVER["health_check_failure_threshold"], calls(log)
    disabling = [line for line in result.stderr.splitlines() if "Disabling source 'bad': " in line]
    assert len(disabling) == 1 and refusal in disabling[0], result.stderr
    sweep = Path(result.stdout.strip())
    index = read_index(sweep)
    assert index["sources"]["bad"]["disabled_by"] == "error"
    assert {t["source"] for t in index["tasks"].values()} == {"local"}


@pytest.mark.slurm
def test_pending_array_elements_are_taken_back_and_running_ones_are_left(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p", extra={"compute": FAST_FAILOVER})
    project.sweep_config(6, "--sleep", "30")
    sweep = project.submitted("slurm:1")
    wait_for(lambda: running_tasks(sweep), 60, "the first element to run")
    project.hsm("poll", str(sweep))
    hsm_sweep = Sweep.open(sweep)
    tasks = hsm_sweep.read_index()["tasks"]
    asked = fo.unstarted(tasks, "slurm")[-2:] + [ref_of(t, e) for t, e in tasks.items() if e["state"] == "running"]
    moved = failover.take_back(hsm_sweep, load_project(project.root / "hsm_config.yaml"), "slurm", asked)
    assert len(moved.started) == 1 and moved.revoked == ["task_005", "task_006"], moved
    index = read_index(sweep)
    assert [t for t, e in index["tasks"].items() if e["state"] == "pending"] == moved.revoked
    table = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True).stdout
    jobs = {line.split()[0]: line.split()[1] for line in table.splitlines()}
    for tid in moved.revoked:
        assert jobs.get(index["tasks"][tid]["history"][-1]["job"]) == "CANCELLED", (tid, jobs)
    assert jobs[index["tasks"][moved.started[0]]["job"]] == "RUNNING"
    # The other pending elements were not touched.
    assert sorted(jobs[index["tasks"][t]["job"]] for t in ("task_002", "task_003", "task_004")) == ["PENDING"] * 3, jobs


@pytest.mark.slurm
def test_an_idle_local_source_steals_from_a_throttled_slurm_source(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p", extra={"compute": FAST_FAILOVER})
    project.sweep_config(24, "--sleep", "1")
    result = project.hsm("run", "--sources", "local:2,slurm:1", "--poll-interval", "0.3", "--strategy", "round_robin",
                         timeout=240)
    assert "✓ Sweep completed successfully: 24 tasks" in result.stderr, result.stderr
    sweep = Path(result.stdout.strip())
    index = read_index(sweep)
    on = Counter(t["source"] for t in index["tasks"].values())
    stolen = [t for t, e in index["tasks"].items() if any(h["outcome"] == "stolen" for h in e.get("history", []))]
    # Round robin gave each source 12; local, with twice the slots, took work from Slurm's queue.
    assert on["local"] >= 14 and stolen, on
    for tid in stolen:
        status = yaml.safe_load((sweep / "tasks" / tid / "status.yaml").read_text())
        assert status["attempt"] == index["tasks"][tid]["attempt"] and status["source"] == index["tasks"][tid]["source"]


@pytest.mark.ssh
def test_a_host_without_the_program_is_disabled_at_its_first_task_and_the_task_runs_elsewhere(
        project: SshProject, tmp_path: Path) -> None:
    # The hosts see this machine's files except their own home: a program under this /root
    # is missing on server2, so its tasks exit 127 (command not found) there.
    here = Path.home() / ".cache" / f"hsm-it-{tmp_path.name}"
    here.mkdir(parents=True, exist_ok=True)
    program = here / "train"
    program.write_text("#!/bin/sh\nsleep 0.2\n")
    program.chmod(0o755)
    try:
        project.config(extra={"compute": FAST_FAILOVER})
        project.write("sweeps/sweep_config.yaml", f"grid:\n  i: {list(range(8))}\ncommand: \"{program} {{i}}\"\n")
        result = project.ok("run", "--sources", "local:2,ssh:server2:2", "--poll-interval", "0.3",
                            "--strategy", "round_robin")
    finally:
        shutil.rmtree(here, ignore_errors=True)
    assert "✓ Sweep completed successfully: 8 tasks" in result.stderr, result.stderr
    assert "Disabling source 'server2': its tasks cannot start there (exit code 127" in result.stderr
    index = assert_each_task_completed_once(project, Path(result.stdout.strip()))
    assert {e["source"] for e in index["tasks"].values()} == {"local"}
    moved = [e for e in index["tasks"].values() if e.get("history")]
    assert moved and all(e["history"][0]["source"] == "server2" and e["history"][0]["exit_code"] == 127 for e in moved)
    assert index["sources"]["server2"]["disabled_by"] == "error"


@pytest.mark.ssh
def test_a_host_whose_interpreter_is_missing_is_refused_at_the_start(project: SshProject) -> None:
    project.config(extra={"compute": FAST_FAILOVER, "compute_sources": {
        "server2": {"type": "ssh", "host": "server2", "python_interpreter": "/no/such/python3"}}})
    job_sweep(project, list(range(2)), sleep=0)
    result = project.hsm("run", "--sources", "local:2,server2:2")
    assert result.returncode == 1 and not result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("hsm: error: source 'server2' is not usable: "), result.stderr
    assert "/no/such/python3: not found" in result.stderr
