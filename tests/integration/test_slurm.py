"""The HPC source against the test bed's real Slurm: throttled arrays, outcomes, counted calls, login host.

The helpers here are shared with test_pbs.py: the same checks run against both schedulers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hsm.config import load_project
from hsm.sources import make_source
from hsm.sources.base import TaskRef
from hsm.sources.hpc import HpcSource
from hsm.sweep import Sweep

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("completed", "failed", "cancelled")

# A task that logs its start and end to a shared file, sleeps, and exits as asked.
JOB_PY = """\
import argparse, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=int)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fail-on", type=int, default=None)
p.add_argument("--code", type=int, default=3)
p.add_argument("--log", default=None)
a = p.parse_args()
def event(kind):
    if a.log:
        fd = os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{kind} {os.environ['HSM_TASK_ID']} {time.time():.6f}\\n".encode())
        os.close(fd)
event("start")
print("result", a.x * 10, flush=True)
with open(os.path.join(os.environ["HSM_OUTPUT_DIR"], "result.txt"), "w") as fh:
    fh.write(str(a.x * 10))
time.sleep(a.sleep)
event("end")
sys.exit(a.code if a.fail_on == a.x else 0)
"""


class HpcProject:
    """A project directory driven with the hsm CLI as real processes."""

    def __init__(self, root: Path, sources: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"paths": {"training_script": "job.py"}, "compute": {"disk_min_free_gb": 0.05}}
        if sources:
            config["compute_sources"] = sources
        config.update(extra or {})
        # These tests check what one poll does, so every poll may ask the scheduler; the budget
        # of status calls (scheduler_poll_interval) is tested on its own, with its default too.
        config["hpc"] = {"scheduler_poll_interval": 0, **(config.get("hpc") or {})}
        (root / "hsm_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        (root / "job.py").write_text(JOB_PY, encoding="utf-8")
        (root / "sweeps").mkdir(exist_ok=True)

    @property
    def events(self) -> Path:
        return self.root / "events.log"

    def sweep_config(self, n: int, *args: str) -> None:
        """A sweep of `n` tasks (x = 1..n) running job.py with `args`."""
        command = " ".join(["{python} job.py --x {x} --log", str(self.events), *args])
        text = yaml.safe_dump({"grid": {"x": list(range(1, n + 1))}, "command": command})
        (self.root / "sweeps" / "sweep_config.yaml").write_text(text, encoding="utf-8")

    def hsm(self, *args: str, calls: Path | None = None, timeout: float = 300, check: bool = True,
            input: str = "", env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **(env_extra or {})}
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("HSM_CALL_LOG", None)
        if calls is not None:
            env["HSM_CALL_LOG"] = str(calls)
        proc = subprocess.run([sys.executable, "-m", "hsm", *args], cwd=self.root, env=env, input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"hsm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc

    def submitted(self, sources: str, *extra: str, calls: Path | None = None) -> Path:
        """expand, assign, submit; the sweep dir."""
        sweep = Path(self.hsm("expand", "sweeps/sweep_config.yaml").stdout.strip())
        self.hsm("assign", str(sweep), "--sources", sources)
        self.hsm("submit", str(sweep), *extra, calls=calls)
        return sweep

    def poll_until_final(self, sweep: Path, timeout: float = 180, calls_dir: Path | None = None,
                         env_extra: dict[str, str] | None = None) -> dict[str, Any]:
        """`hsm poll` until every task is final; with `calls_dir`, each poll logs its calls to its own file."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            n += 1
            self.hsm("poll", str(sweep), calls=(calls_dir / f"poll_{n:03d}.jsonl") if calls_dir else None,
                     env_extra=env_extra)
            index = read_index(sweep)
            if all(t["state"] in FINAL for t in index["tasks"].values()):
                return index
            assert time.monotonic() < deadline, f"tasks not final after {timeout} s: {states(index)}"
            time.sleep(0.5)

    def sweeps(self) -> list[Path]:
        outputs = self.root / "sweeps" / "outputs"
        return sorted(p for p in outputs.iterdir() if p.is_dir()) if outputs.is_dir() else []


def read_index(sweep: Path) -> dict[str, Any]:
    return yaml.safe_load((sweep / "task_mapping.yaml").read_text(encoding="utf-8"))


def states(index: dict[str, Any]) -> dict[str, str]:
    return {tid: t["state"] for tid, t in index["tasks"].items()}


def read_status(task_dir: Path) -> dict[str, Any] | None:
    try:
        return yaml.safe_load((task_dir / "status.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def calls(path: Path) -> list[dict[str, Any]]:
    """The program calls hsm made, one JSON line each (HSM_CALL_LOG)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def count(log: list[dict[str, Any]], program: str) -> int:
    return sum(1 for c in log if c["program"] == program)


def max_overlap(events: Path) -> tuple[int, int]:
    """(most tasks running at once, tasks started) from the tasks' start/end lines."""
    points = []
    for line in events.read_text(encoding="utf-8").splitlines():
        kind, _task, stamp = line.split()
        points.append((float(stamp), 0 if kind == "end" else 1))
    running = peak = 0
    for _, delta in sorted(points):
        running += 1 if delta else -1
        peak = max(peak, running)
    return peak, sum(1 for _, d in points if d)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def running_tasks(sweep: Path) -> list[str]:
    out = []
    for d in sorted((sweep / "tasks").glob("task_*")):
        status = read_status(d)
        if status and status.get("state") == "running":
            out.append(d.name)
    return out


def cancel_leftovers(projects: list[HpcProject], system: str = "slurm") -> None:
    """Cancel whatever jobs the projects' sweeps still have, so the next test finds a free node."""
    arrays = set()
    for project in projects:
        for sweep in project.sweeps():
            for t in read_index(sweep)["tasks"].values():
                job = t.get("job")
                if job and t["state"] not in FINAL:
                    arrays.add(job.split("_")[0].split("[")[0])
    if arrays:
        subprocess.run(["scancel", *sorted(arrays)], capture_output=True, timeout=60)


@pytest.fixture
def projects(tmp_path: Path, testbed) -> Iterator[list[HpcProject]]:
    """Projects made by the test; their jobs are cancelled at teardown."""
    made: list[HpcProject] = []
    yield made
    cancel_leftovers(made)


def new_project(made: list[HpcProject], root: Path, **kwargs) -> HpcProject:
    project = HpcProject(root, **kwargs)
    made.append(project)
    return project


# --- the tests -------------------------------------------------------------------------------------


def throttled_sweep_completes(project: HpcProject, spec: str, n: int = 40, limit: int = 4) -> Path:
    """The shared check: n short tasks, never more than `limit` running at once, all completed."""
    project.sweep_config(n, "--sleep", "0.5")
    result = project.hsm("run", "--sources", spec, "--poll-interval", "1", timeout=300)
    sweep = Path(result.stdout.strip())
    index = read_index(sweep)
    assert set(states(index).values()) == {"completed"}, states(index)
    peak, started = max_overlap(project.events)
    assert started == n
    assert 1 < peak <= limit, f"{peak} tasks ran at once (limit {limit})"
    for tid, t in index["tasks"].items():
        assert t["job"] and t["exit_code"] == 0 and t["host"]
        status = read_status(sweep / "tasks" / tid)
        assert (status["state"], status["attempt"]) == ("completed", 1)
        x = int(yaml.safe_load((sweep / "tasks" / tid / "params.yaml").read_text())["x"])
        assert (sweep / "tasks" / tid / "results" / "result.txt").read_text() == str(x * 10)
    return sweep


def test_a_40_task_sweep_never_runs_more_than_n_at_once(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    sweep = throttled_sweep_completes(project, "slurm:4", n=40, limit=4)
    scripts = list((sweep / "scripts" / "job_scripts").glob("chunk_*.sh"))
    assert len(scripts) == 1 and "#SBATCH --array=0-39%4" in scripts[0].read_text()
    assert "--no-requeue" in scripts[0].read_text()


def test_quick_tasks_on_one_second_timestamps_all_complete(projects, coarse_dir: Path) -> None:
    # Lustre and many NFS servers keep whole-second mtimes: a task's running and final status
    # files often share one. Every task must still be seen to end.
    project = new_project(projects, coarse_dir / "p")
    project.sweep_config(60, "--sleep", "0.2")
    result = project.hsm("run", "--sources", "slurm:8", "--poll-interval", "1", timeout=300)
    sweep = Path(result.stdout.strip())
    index = read_index(sweep)
    assert set(states(index).values()) == {"completed"}, states(index)
    assert len(index["tasks"]) == 60
    for tid, entry in index["tasks"].items():
        status_file = sweep / "tasks" / tid / "status.yaml"
        status = read_status(sweep / "tasks" / tid)
        # Folded from the task's own final status (not guessed from the queue after a grace period).
        raw = yaml.load(status_file.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        assert status["state"] == "completed" and (entry["end"], entry["duration"]) == (raw["end"], float(raw["duration"]))
        assert os.stat(status_file).st_mtime_ns % 1_000_000_000 == 0


def test_counted_calls_chunks_submits_and_polls(projects, tmp_path: Path) -> None:
    # The older `hpc:` section alone makes `--sources hpc` work and sets the array size.
    project = new_project(projects, tmp_path / "p", extra={"hpc": {"system": "slurm", "max_array_size": 7}})
    n, limit = 20, 3
    project.sweep_config(n, "--sleep", "0.3")
    submit_log = tmp_path / "submit.jsonl"
    sweep = project.submitted(f"hpc:{limit}", calls=submit_log)
    submit_calls = calls(submit_log)
    assert count(submit_calls, "sbatch") == -(-n // 7) == 3, submit_calls
    assert count(submit_calls, "squeue") == 1  # the look for jobs a crashed submit left
    index = read_index(sweep)
    arrays = {t["job"].split("_")[0] for t in index["tasks"].values()}
    assert len(arrays) == 3
    # Indices start at 0 in every chunk: the chunk's task list maps them.
    assert sorted(int(t["job"].split("_")[1]) for t in index["tasks"].values()) == \
        sorted(list(range(7)) * 2 + list(range(6)))

    polls = tmp_path / "polls"
    polls.mkdir()
    project.poll_until_final(sweep, calls_dir=polls)
    logs = [calls(p) for p in sorted(polls.iterdir())]
    assert len(logs) >= 2
    for log in logs:
        # the queue is asked about the tasks whose status files have not said they ended
        assert count(log, "squeue") <= 1, log
        assert count(log, "sacct") <= 1, log
        assert {c["program"] for c in log} <= {"squeue", "sacct"}, log
    assert set(states(read_index(sweep)).values()) == {"completed"}
    # The chunks wait for each other, so the throttle holds for the whole source.
    peak, started = max_overlap(project.events)
    assert started == n and peak <= limit


def test_walltime_and_exit_code(projects, tmp_path: Path) -> None:
    sources = {"cluster": {"type": "hpc", "system": "slurm", "max_parallel_tasks": 4,
                           "default_walltime": "00:01:00", "timeout_warning": 55}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    sweeps = project.root / "sweeps"
    (sweeps / "long.yaml").write_text(yaml.safe_dump(
        {"grid": {"x": [1]}, "command": "{python} job.py --x {x} --sleep 600"}), encoding="utf-8")
    (sweeps / "quick.yaml").write_text(yaml.safe_dump(
        {"grid": {"x": [1, 2, 3]}, "command": "{python} job.py --x {x} --sleep 0.2 --fail-on 2 --code 3"}),
        encoding="utf-8")
    long = Path(project.hsm("expand", "sweeps/long.yaml").stdout.strip())
    quick = Path(project.hsm("expand", "sweeps/quick.yaml").stdout.strip())
    for sweep in (long, quick):
        project.hsm("assign", str(sweep), "--sources", "cluster")
        project.hsm("submit", str(sweep))

    index = project.poll_until_final(quick, timeout=60)
    assert [index["tasks"][t]["state"] for t in ("task_001", "task_002", "task_003")] == \
        ["completed", "failed", "completed"]
    assert (index["tasks"]["task_002"]["reason"], index["tasks"]["task_002"]["exit_code"]) == ("exit_code", 3)
    assert read_status(quick / "tasks" / "task_002")["exit_code"] == 3

    # Slurm tells the wrapper (USR1) before the limit; it records `timeout`.
    index = project.poll_until_final(long, timeout=150)
    task = index["tasks"]["task_001"]
    assert (task["state"], task["reason"]) == ("failed", "timeout"), task
    status = read_status(long / "tasks" / "task_001")
    assert (status["state"], status["reason"]) == ("failed", "timeout")


def test_node_failure_fails_running_tasks_with_node_fail(projects, tmp_path: Path, testbed) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(3, "--sleep", "600")
    sweep = project.submitted("slurm:4")
    wait_for(lambda: len(running_tasks(sweep)) == 3, 60, "three running tasks")
    try:
        testbed.fault("node-down")
        index = project.poll_until_final(sweep, timeout=90)
    finally:
        testbed.fault("node-up")
    for tid, t in index["tasks"].items():
        assert (t["state"], t["reason"]) == ("failed", "node_fail"), (tid, t)


def test_cancel_stops_running_and_pending_tasks(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(6, "--sleep", "600")
    sweep = project.submitted("slurm:2")
    wait_for(lambda: len(running_tasks(sweep)) == 2, 60, "two running tasks")
    running = running_tasks(sweep)
    log = tmp_path / "cancel.jsonl"
    result = project.hsm("cancel", str(sweep), calls=log)
    assert result.stdout.strip() == str(sweep)
    assert count(calls(log), "scancel") == 1
    index = read_index(sweep)
    assert set(states(index).values()) == {"cancelled"}, states(index)

    def stopped(task: str) -> bool:
        # The wrapper records the cancel, unless the signal killed its command before it heard.
        status = read_status(sweep / "tasks" / task)
        return status["state"] == "cancelled" or (status["state"] == "failed" and status["exit_code"] > 128)

    wait_for(lambda: all(stopped(t) for t in running), 30, "the running tasks to stop")
    arrays = sorted({t["job"].split("_")[0] for t in index["tasks"].values()})
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays), "-o", "%T"],
                         capture_output=True, text=True, timeout=30).stdout.split()
    assert out and set(out) == {"CANCELLED"}, out
    assert not (sweep / "tasks" / "task_006" / "status.yaml").exists()


def test_a_failing_squeue_changes_nothing(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p", extra={"hpc": {"command_timeout": 3}})
    project.sweep_config(2, "--sleep", "12")
    sweep = project.submitted("slurm:2")
    # Running, by their status files: only the scheduler can tell whether their jobs still are.
    wait_for(lambda: all((read_status(sweep / "tasks" / t) or {}).get("state") == "running"
                         for t in ("task_001", "task_002")), 60, "both tasks to start")
    before = states(read_index(sweep))
    assert set(before.values()) <= {"submitted", "queued"}
    # squeue exits nonzero (a broken config), or gives no answer in time (it looks for a config
    # elsewhere for about a minute when there is none).
    broken = tmp_path / "broken.conf"
    broken.write_text("NotAKey=1\n", encoding="utf-8")
    for conf, rc in ((broken, 1), (tmp_path / "no-such.conf", None)):
        log = tmp_path / f"{conf.stem}.jsonl"
        result = project.hsm("poll", str(sweep), calls=log, env_extra={"SLURM_CONF": str(conf)})
        assert "did not answer" in result.stderr, result.stderr
        assert [(c["program"], c["rc"]) for c in calls(log)] == [("squeue", rc)]
        assert states(read_index(sweep)) == before
    index = project.poll_until_final(sweep, timeout=30)
    assert set(states(index).values()) == {"completed"}


# A task wrapper killed before it could record anything final: it leaves `running` behind.
SILENT_WRAPPER = """#!/usr/bin/env bash
printf 'schema: 1\nattempt: %s\nstate: running\nhost: %s\n' "$2" "$HOSTNAME" > "$1/status.yaml"
exit 3
"""


@pytest.mark.parametrize("accounting", [True, False], ids=["sacct", "accounting-disabled"])
def test_a_job_that_ends_without_a_final_status_is_judged_by_the_scheduler(
        projects, tmp_path: Path, testbed, accounting: bool) -> None:
    sources = {"cluster": {"type": "hpc", "system": "slurm", "max_parallel_tasks": 2, "lost_grace": 2}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    (project.root / "templates").mkdir()
    (project.root / "templates" / "task.sh").write_text(SILENT_WRAPPER, encoding="utf-8")
    project.sweep_config(2)
    env = {}
    if not accounting:
        conf = tmp_path / "slurm.conf"
        conf.write_text("".join(line for line in testbed.slurm_conf.read_text().splitlines(keepends=True)
                                if not line.startswith("AccountingStorage")), encoding="utf-8")
        env["SLURM_CONF"] = str(conf)
    sweep = project.submitted("cluster")
    polls = tmp_path / "polls"
    polls.mkdir()
    index = project.poll_until_final(sweep, timeout=60, calls_dir=polls, env_extra=env)
    for tid, t in index["tasks"].items():
        # Not completed: the job failed, and squeue (or sacct) says so.
        assert (t["state"], t["reason"]) == ("failed", "exit_code"), (tid, t)
        assert t.get("exit_code") == (3 if accounting else None), (tid, t)
        # The task's own status agrees with the index, and keeps what the wrapper last said.
        status = read_status(sweep / "tasks" / tid)
        assert (status["state"], status["reason"], status["observed_state"]) == ("failed", "exit_code", "running")
    sacct = [c for p in polls.iterdir() for c in calls(p) if c["program"] == "sacct"]
    assert sacct and all(c["rc"] == (0 if accounting else 1) for c in sacct)
    for p in polls.iterdir():
        assert count(calls(p), "sacct") <= 1


def test_a_crash_after_submitting_does_not_submit_twice(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(3, "--sleep", "0.2")
    sweep_dir = Path(project.hsm("expand", "sweeps/sweep_config.yaml").stdout.strip())
    project.hsm("assign", str(sweep_dir), "--sources", "slurm:2")
    # Reserve as `hsm submit` does, then submit and "crash" before anything is recorded.
    sweep = Sweep.open(sweep_dir)
    with sweep.update() as u:
        for entry in u.tasks.values():
            entry.update(state="submitted", attempt=1)
        u.changed = True
        sources = dict(u.index["sources"])
    source = make_source("slurm", sources["slurm"], sweep, load_project(project.root / "hsm_config.yaml"))
    assert isinstance(source, HpcSource)

    def crash(fields: dict) -> None:
        raise KeyboardInterrupt("crash between sbatch and the record")

    refs = [TaskRef(tid, 1, "submitted") for tid in sorted(read_index(sweep_dir)["tasks"])]
    with pytest.raises(KeyboardInterrupt):
        source.submit(refs, crash)
    assert not any(t.get("job") for t in read_index(sweep_dir)["tasks"].values())

    log = tmp_path / "again.jsonl"
    project.hsm("submit", str(sweep_dir), calls=log)
    assert count(calls(log), "sbatch") == 0, calls(log)
    index = project.poll_until_final(sweep_dir, timeout=60)
    assert set(states(index).values()) == {"completed"}
    assert len({t["job"].split("_")[0] for t in index["tasks"].values()}) == 1
    assert len(project.events.read_text().splitlines()) == 6  # each task started and ended once


def test_dependency_holds_the_arrays_until_the_job_ends(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    gated_at = time.time()
    gate = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 4"],
                          capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    project.sweep_config(2, "--sleep", "0.1")
    sweep = project.submitted("slurm:2", "--dependency", f"afterok:{gate}")
    array = read_index(sweep)["tasks"]["task_001"]["job"].split("_")[0]
    shown = subprocess.run(["scontrol", "show", "job", array], capture_output=True, text=True, timeout=30).stdout
    assert f"Dependency=afterok:{gate}" in shown, shown
    assert not (sweep / "tasks" / "task_001" / "status.yaml").exists()
    index = project.poll_until_final(sweep, timeout=60)
    assert set(states(index).values()) == {"completed"}
    first_start = min(float(line.split()[2]) for line in project.events.read_text().splitlines())
    assert first_start >= gated_at + 4


def test_health_asks_sinfo_once(projects, tmp_path: Path) -> None:
    project = new_project(projects, tmp_path / "p")
    project.sweep_config(1)
    sweep = Path(project.hsm("expand", "sweeps/sweep_config.yaml").stdout.strip())
    project.hsm("assign", str(sweep), "--sources", "slurm:2")
    log = tmp_path / "health.jsonl"
    result = project.hsm("health", str(sweep), calls=log)
    assert "slurm: healthy" in result.stderr, result.stderr
    assert [c["program"] for c in calls(log)] == ["sinfo"]


def test_the_same_sweep_through_the_login_host(projects, tmp_path: Path, testbed) -> None:
    cluster_side = tmp_path / "cluster_sweeps"
    sources = {"cluster": {"type": "hpc", "system": "slurm", "max_parallel_tasks": 4, "host": testbed.login,
                           "ssh_config": str(testbed.ssh_config), "sweeps_dir": str(cluster_side)}}
    project = new_project(projects, tmp_path / "p", sources=sources)
    n = 12
    project.sweep_config(n, "--sleep", "0.3")
    submit_log = tmp_path / "submit.jsonl"
    sweep = project.submitted("cluster", calls=submit_log)
    programs = [c["program"] for c in calls(submit_log)]
    assert "sbatch" not in programs and programs.count("rsync") == 1, programs
    remote = cluster_side / sweep.name
    assert (remote / "scripts" / "task_cluster.sh").is_file()
    polls = tmp_path / "polls"
    polls.mkdir()
    index = project.poll_until_final(sweep, timeout=120, calls_dir=polls)
    installs = 0
    for log in (calls(p) for p in polls.iterdir()):
        # One status call and one probe of the status files; the first call to a host that
        # lacks this hsm's agent copies it there first (one rsync, and the call again).
        agent_copies = [c for c in log if c["program"] == "rsync" and any("hsm-agent-" in a for a in c["argv"])]
        installs += len(agent_copies)
        assert {c["program"] for c in log} <= {"ssh", "rsync"} and 1 <= len(log) - 2 * len(agent_copies) <= 3, log
    assert installs <= 1
    assert set(states(index).values()) == {"completed"}
    peak, started = max_overlap(project.events)
    assert started == n and peak <= 4
    # The tasks ran in the cluster-side copy; nothing is here until it is collected.
    assert (remote / "tasks" / "task_001" / "results" / "result.txt").read_text() == "10"
    assert not (sweep / "tasks" / "task_001" / "status.yaml").exists()
    collect_log = tmp_path / "collect.jsonl"
    result = project.hsm("collect", str(sweep), calls=collect_log)
    assert f"{n} tasks" in result.stderr, result.stderr
    assert [c["program"] for c in calls(collect_log)] == ["rsync"]
    for i in range(1, n + 1):
        task = sweep / "tasks" / f"task_{i:03d}"
        assert read_status(task)["state"] == "completed"
        assert (task / "results" / "result.txt").read_text() == str(i * 10)
        assert (task / "stdout.log").read_text().startswith(f"result {i * 10}")
        assert not (task / "tmp").exists()  # the task's scratch space stays on the cluster
    again = tmp_path / "again.jsonl"
    project.hsm("collect", str(sweep), calls=again)
    assert calls(again) == []  # everything finished is home already
