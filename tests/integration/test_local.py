"""The local source against real processes: run, limits, detachment, cancel, loss, races, Ctrl-C."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import yaml

from tests.cli.hsmproc import (
    FINAL,
    RANK,
    ROOT,
    Project,
    alive,
    hsm_argv,
    hsm_env,
    job_command,
    read_index,
    read_status,
    started_lines,
    task_entries,
    wait_for,
)
from tests.integration.conftest_local import local_project  # noqa: F401  (the `project` fixture)


def sweep_of(project: Project, xs: list[object], *extra: str) -> Path:
    values = ", ".join(str(x) for x in xs)
    return project.sweep_config(f"grid:\n  x: [{values}]\ncommand: \"{job_command(*extra)}\"\n")


def only_sweep(project: Project) -> Path:
    """The one sweep dir of the project (a half-built one, still hidden, does not count)."""
    entries = [e for e in project.output_entries() if not e.startswith(".")]
    assert len(entries) == 1, project.output_entries()
    return project.outputs.resolve() / entries[0]


def submit_sweep(project: Project, sources: str) -> Path:
    """expand, assign and submit; the sweep dir. The driver is gone when this returns."""
    result = project.shell(f"hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources {sources} | hsm-submit")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def task_dirs(sweep: Path) -> list[Path]:
    """Every task's directory, in task order: those the runner has not started do not exist yet.
    None while the sweep is still being built (its index is not there yet)."""
    if not (sweep / "task_mapping.yaml").is_file():
        return []
    return [sweep / "tasks" / tid for tid in read_index(sweep)["tasks"]]


def use_wrapper(project: Project) -> None:
    """The project's own task.sh (a copy of hsm's): its tasks go through the wrapper rather than
    being started by the runner itself."""
    project.write("templates/task.sh", (ROOT / "templates" / "task.sh").read_text(encoding="utf-8"))


def running_tasks(sweep: Path) -> list[Path]:
    """Task dirs whose own status says running and whose command wrote its pid."""
    out = []
    for d in task_dirs(sweep):
        status = read_status(d)
        if status and status.get("state") == "running" and (d / "results" / "pid").is_file():
            out.append(d)
    return out


# --- hsm run -------------------------------------------------------------------------------------


def test_the_tasks_see_the_callers_pythonpath_exactly(project: Project) -> None:
    # A PYTHONPATH relative to where hsm was started: the detached runner starts in its own
    # directory and finds its code by its own path, and adds nothing to what tasks see.
    project.write("show_env.py", "import os\nprint(os.environ.get('PYTHONPATH'))\n")
    project.sweep_config('grid:\n  x: [1, 2]\ncommand: "{python} show_env.py"\n')
    relative = os.path.relpath(ROOT, project.root)
    env = {**hsm_env(), "PYTHONPATH": relative}
    result = subprocess.run(hsm_argv("run", "--sources", "local:2", "--poll-interval", "0.2"), cwd=project.root,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())
    for task in ("task_001", "task_002"):
        assert (sweep / "tasks" / task / "stdout.log").read_text().strip() == relative


def test_run_exits_0_when_every_task_completes(project: Project) -> None:
    sweep_of(project, [1, 2, 3], "--sleep 0.1")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr
    sweep = only_sweep(project)
    assert result.stdout == f"{sweep}\n"
    assert "Traceback" not in result.stderr
    assert "✓ Sweep completed successfully: 3 tasks" in result.stderr
    table = [line for line in result.stderr.splitlines() if line.startswith("│")]
    assert any("Source" in line and "completed" in line for line in table), result.stderr
    assert any(re.search(r"│ local\s+│ local\s+│\s+3 │\s+3 │", line) for line in table), result.stderr
    assert any(re.search(r"│ total\s+│\s+│\s+3 │\s+3 │", line) for line in table), result.stderr
    states = {tid: t["state"] for tid, t in read_index(sweep)["tasks"].items()}
    assert states == {"task_001": "completed", "task_002": "completed", "task_003": "completed"}


def test_run_exits_1_when_a_task_fails(project: Project) -> None:
    sweep_of(project, [1, 2, 3], "--sleep 0.1", "--fail-on 2", "--code 3")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 1, result.stderr
    sweep = only_sweep(project)
    assert result.stdout == f"{sweep}\n"
    assert "Traceback" not in result.stderr
    assert "1 failed" in result.stderr
    table = [line for line in result.stderr.splitlines() if line.startswith("│")]
    assert any("completed" in line and "failed" in line for line in table), result.stderr
    assert any(re.search(r"│ total\s+│\s+│\s+2 │\s+1 │\s+3 │", line) for line in table), result.stderr

    tasks = read_index(sweep)["tasks"]
    assert [tasks[t]["state"] for t in ("task_001", "task_002", "task_003")] == ["completed", "failed", "completed"]
    assert (tasks["task_002"]["exit_code"], tasks["task_002"]["reason"]) == (3, "exit_code")
    status = read_status(sweep / "tasks" / "task_002")
    assert (status["state"], status["exit_code"], status["reason"]) == ("failed", 3, "exit_code")
    rows = {t["id"]: t for t in project.status(sweep)["tasks"]}
    assert (rows["task_002"]["state"], rows["task_002"]["exit_code"]) == ("failed", 3)


def test_default_command_runs_the_training_script_with_overrides(project: Project) -> None:
    project.sweep_config("grid:\n  lr: [0.1, 0.01]\n  model:\n    depth: [2]\n")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr
    sweep = only_sweep(project)
    out = (sweep / "tasks" / "task_002" / "stdout.log").read_text()
    assert out.startswith("train lr=0.01 model.depth=2"), out


def test_never_more_than_n_tasks_at_once(project: Project) -> None:
    sweep_of(project, list(range(1, 7)), "--sleep 0.4", "--log events.log")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr
    events = []
    for line in (project.root / "events.log").read_text().splitlines():
        kind, task, stamp = line.split()
        events.append((float(stamp), 0 if kind == "end" else 1, task))
    assert sorted(t for _, k, t in events if k == 1) == [f"task_00{i}" for i in range(1, 7)]
    assert sorted(t for _, k, t in events if k == 0) == [f"task_00{i}" for i in range(1, 7)]
    running, peak = 0, 0
    for _, kind, _ in sorted(events):  # an end at the same instant counts before a start
        running += 1 if kind == 1 else -1
        peak = max(peak, running)
    assert peak == 2, f"peak concurrency {peak}"


# --- the runner without hsm ----------------------------------------------------------------------


def test_tasks_complete_after_the_driver_exits(project: Project) -> None:
    sweep_of(project, [1, 2, 3, 4], "--sleep 0.5")
    sweep = submit_sweep(project, "local:2")
    # `hsm submit` has exited; the tasks are not all done yet.
    assert not all((read_status(d) or {}).get("state") == "completed" for d in task_dirs(sweep))

    def all_completed() -> bool:
        return all((read_status(d) or {}).get("state") == "completed" for d in task_dirs(sweep))

    wait_for(all_completed, 60, "the runner to finish every task with no hsm running")
    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    tasks = read_index(sweep)["tasks"]
    assert {t["state"] for t in tasks.values()} == {"completed"}, tasks
    assert sorted(started_lines(sweep)) == [f"S task_00{i} 1" for i in range(1, 5)]


def test_cancel_stops_running_tasks_and_queued_ones_never_start(project: Project) -> None:
    sweep_of(project, [1, 2, 3, 4], "--sleep 30")
    sweep = submit_sweep(project, "local:2")
    running = wait_for(lambda: (r := running_tasks(sweep)) and len(r) == 2 and r, 60, "two running tasks")
    queued = [d for d in task_dirs(sweep) if d not in running]
    children = [int((d / "results" / "pid").read_text()) for d in running]
    wrappers = [(read_status(d)["pid"], read_status(d)["pid_start"]) for d in running]
    assert all(alive(pid) for pid in children) and all(alive(*w) for w in wrappers)

    result = project.hsm("cancel", sweep.name, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{sweep}\n"

    wait_for(lambda: not any(alive(pid) for pid in children), 15, "the cancelled commands to exit")
    assert not any(alive(*w) for w in wrappers)
    tasks = read_index(sweep)["tasks"]
    assert {tid: t["state"] for tid, t in tasks.items()} == {d.name: "cancelled" for d in task_dirs(sweep)}
    for d in running:
        assert read_status(d)["state"] == "cancelled"

    time.sleep(1.5)  # the runner scans its queue every 0.2 s: a queued task would have started
    for d in queued:
        assert read_status(d) is None, f"{d.name} started after the cancel: {read_status(d)}"
        assert not (d / "results" / "pid").exists(), f"{d.name} ran after the cancel"
        assert not d.exists(), f"{d.name} never started, yet has a directory"
    assert sorted(started_lines(sweep)) == sorted(f"S {d.name} 1" for d in running)
    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    assert {t["state"] for t in read_index(sweep)["tasks"].values()} == {"cancelled"}


def test_cancel_of_running_tasks_records_and_counts_them_cancelled(project: Project) -> None:
    sweep_of(project, [1, 2], "--sleep 30")
    sweep = submit_sweep(project, "local:2")
    wait_for(lambda: len(running_tasks(sweep)) == 2, 60, "two running tasks")
    result = project.hsm("cancel", str(sweep), timeout=60)
    assert result.returncode == 0, result.stderr
    tasks = read_index(sweep)["tasks"]
    assert {t["state"] for t in tasks.values()} == {"cancelled"}, tasks
    assert f"Cancelled 2 tasks of {sweep.name}" in result.stderr, result.stderr
    assert "cancel: 2 tasks cancelled" in (sweep / "logs" / "sweep.log").read_text()


def test_a_vanished_task_is_failed_as_lost(project: Project) -> None:
    # A wrapper killed with its command; a task the runner started itself is lost when the runner
    # dies too (test_direct_tasks.py).
    use_wrapper(project)
    sweep_of(project, [1], "--sleep 30")
    sweep = submit_sweep(project, "local:1")
    (task,) = wait_for(lambda: running_tasks(sweep), 60, "the task to run")
    status = read_status(task)
    child = int((task / "results" / "pid").read_text())
    os.killpg(int(status["pid"]), signal.SIGKILL)  # the wrapper leads its own process group
    wait_for(lambda: not alive(status["pid"], status["pid_start"]) and not alive(child), 10, "the task to die")
    assert read_status(task)["state"] == "running"  # it left no final status

    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    entry = read_index(sweep)["tasks"]["task_001"]
    assert (entry["state"], entry["reason"]) == ("failed", "lost"), entry
    row = project.status(sweep)["tasks"][0]
    assert (row["state"], row["reason"]) == ("failed", "lost")


def test_task_environment_logs_and_status(project: Project) -> None:
    sweep_of(project, [1, 2], "--sleep 0.2")
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr
    sweep = only_sweep(project)
    for x, task in enumerate(task_dirs(sweep), start=1):
        tid = task.name
        env = yaml.safe_load((task / "results" / "env.json").read_text())
        assert env["HSM_TASK_ID"] == tid
        assert Path(env["HSM_TASK_DIR"]).resolve() == task.resolve()
        assert env["HSM_SWEEP_ID"] == sweep.name
        assert Path(env["HSM_OUTPUT_DIR"]).resolve() == (task / "results").resolve()
        assert Path(env["TMPDIR"]).resolve().is_relative_to(task.resolve()), env["TMPDIR"]
        assert env["tmpdir_is_dir"]
        # What hsm leaves in a finished task's directory: four files (TMPDIR, left empty, is gone).
        assert task_entries(task) == ["params.yaml", "status.yaml", "stderr.log", "stdout.log"]
        assert yaml.safe_load((task / "params.yaml").read_text()) == {"x": x}
        assert (task / "stdout.log").read_text() == f"stdout of {tid} x={x}\n"
        assert (task / "stderr.log").read_text() == f"stderr of {tid} x={x}\n"
        status = read_status(task)
        assert status["state"] == "completed" and status["exit_code"] == 0 and status["attempt"] == 1
        assert status["host"] == socket.gethostname()
        assert isinstance(status["pid"], int) and status["pid"] > 1
        start, end = (_when(status[k]) for k in ("start", "end"))
        assert start <= end
        assert isinstance(status["duration"], float) and 0.2 <= status["duration"] < 60


def _when(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")


# --- concurrent commands on one sweep ------------------------------------------------------------


class StateWatcher(threading.Thread):
    """Reads the state files over and over while commands run: each must always parse, and no
    task's state may ever move backwards between two reads of task_mapping.yaml."""

    def __init__(self, sweep: Path) -> None:
        super().__init__(daemon=True)
        self.sweep = sweep
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.reads = 0
        self.last: dict[str, str] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                tasks = read_index(self.sweep)["tasks"]
                for tid, entry in tasks.items():
                    before = self.last.get(tid)
                    if before is not None and RANK[entry["state"]] < RANK[before]:
                        self.problems.append(f"{tid} moved back from {before} to {entry['state']}")
                    self.last[tid] = entry["state"]
                for d in sorted((self.sweep / "tasks").glob("task_*")):
                    read_status(d)
                self.reads += 1
            except Exception as exc:
                self.problems.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)


def test_concurrent_polls_and_submit_keep_state_whole(project: Project) -> None:
    # Twelve tasks of 0.1-1.0 s on three slots: states keep changing through several rounds.
    sleeps = [0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.4, 0.6, 0.8, 1.0, 0.15, 0.35]
    sweep_of(project, sleeps, "--sleep {x}")
    sweep = project.expand("sweeps/sweep_config.yaml")
    assigned = project.hsm("assign", str(sweep), "--sources", "local:3")
    assert assigned.returncode == 0, assigned.stderr
    watcher = StateWatcher(sweep)
    watcher.start()
    rounds = 0
    try:
        deadline = time.monotonic() + 120
        while True:
            rounds += 1
            procs = [project.start("poll", str(sweep)) for _ in range(8)] + [project.start("submit", str(sweep))]
            for proc in procs:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
                assert out == f"{sweep}\n"
            tasks = read_index(sweep)["tasks"]
            if rounds >= 3 and all(t["state"] in FINAL for t in tasks.values()):
                break
            assert time.monotonic() < deadline, f"not done after {rounds} rounds: {tasks}"
    finally:
        watcher.stop.set()
        watcher.join(10)
    assert watcher.problems == [], watcher.problems[:10]
    assert watcher.reads > 0

    tasks = read_index(sweep)["tasks"]
    assert {t["state"] for t in tasks.values()} == {"completed"}, tasks
    assert all(t["attempt"] == 1 for t in tasks.values())
    for d in task_dirs(sweep):
        status = read_status(d)
        assert status["state"] == "completed" and status["attempt"] == 1
    assert sorted(started_lines(sweep)) == sorted(f"S {tid} 1" for tid in tasks)

    source_log = (sweep / "logs" / "sources" / "local.log").read_text().splitlines()
    submitted = [line.split()[-1] for line in source_log if "INFO - submitted " in line]
    assert sorted(submitted) == sorted(tasks), "each task is submitted exactly once"
    moves = [m.groups() for m in (re.search(r"INFO - (task_\d+) (\w+) -> (\w+) on local", line) for line in source_log) if m]
    assert len(moves) == len(set(moves)), "a transition was recorded twice"
    for tid in tasks:
        chain = [(a, b) for t, a, b in moves if t == tid]
        assert chain, f"no transition recorded for {tid}"
        assert all(RANK[b] > RANK[a] for a, b in chain), chain
        assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1)), chain
        assert chain[0][0] == "submitted" and chain[-1][1] == "completed", chain
    sweep_log = (sweep / "logs" / "sweep.log").read_text()
    for tid in tasks:
        assert len(re.findall(rf"{tid} \w+ -> completed", sweep_log)) == 1


# --- Ctrl-C ---------------------------------------------------------------------------------------


def interrupt(driver, when) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Wait for `when`, send SIGINT to the driver's process group; its output."""
    try:
        wait_for(when, 60, "the moment to press Ctrl-C", interval=0.005)
        os.killpg(driver.pid, signal.SIGINT)
        return driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_ctrl_c_stops_only_the_driver_and_resume_finishes(project: Project) -> None:
    sweep_of(project, [1, 2, 3, 4], "--sleep 1.5")
    # Its own process group, so the SIGINT reaches what a terminal's Ctrl-C would reach.
    driver = project.start("run", "--sources", "local:2", "--poll-interval", "0.2", start_new_session=True)
    first_run: list[float] = []

    def a_while_after_the_first_task_runs() -> bool:
        if not first_run:
            if [e for e in project.output_entries() if not e.startswith(".")] and running_tasks(only_sweep(project)):
                first_run.append(time.monotonic())
            return False
        return time.monotonic() - first_run[0] > 0.5

    _out, err = interrupt(driver, a_while_after_the_first_task_runs)
    sweep = only_sweep(project)
    assert driver.returncode == 130, err
    assert "Traceback" not in err
    assert f"hsm run --resume {sweep.name}" in err, err
    assert f"hsm cancel {sweep.name}" in err, err

    # The tasks go on without the driver.
    running = running_tasks(sweep)
    assert running, "no task was running any more when the driver stopped"
    for task in running:
        status = read_status(task)
        assert alive(status["pid"], status["pid_start"]), status
    wait_for(lambda: all((read_status(t) or {}).get("state") == "completed" for t in running), 30,
             "the running tasks to complete without the driver")

    resumed = project.hsm("run", "--resume", sweep.name, "--poll-interval", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == f"{sweep}\n"
    tasks = read_index(sweep)["tasks"]
    assert {t["state"] for t in tasks.values()} == {"completed"}, tasks
    assert sorted(started_lines(sweep)) == [f"S task_00{i} 1" for i in range(1, 5)]


def test_ctrl_c_while_the_runner_starts_stops_the_driver(project: Project) -> None:
    sweep_of(project, [1, 2, 3, 4], "--sleep 1")
    driver = project.start("run", "--sources", "local:2", "--poll-interval", "0.2", start_new_session=True)
    batch_seen: list[float] = []

    def just_after_the_submit_batch() -> bool:
        # The batch is written right before the runner is started: press Ctrl-C while it starts.
        if not batch_seen:
            if list(project.outputs.glob("sweep_*/.hsm/runners/local/queue/*.json")):
                batch_seen.append(time.monotonic())
            return False
        return time.monotonic() - batch_seen[0] > 0.08

    _out, err = interrupt(driver, just_after_the_submit_batch)
    sweep = only_sweep(project)
    assert driver.returncode == 130, f"the driver went on after Ctrl-C (exit {driver.returncode}):\n{err}"
    assert f"hsm run --resume {sweep.name}" in err, err
    assert "Traceback" not in err, err


def test_a_task_signalled_again_while_it_stops_still_records_why(project: Project) -> None:
    # More than one SIGTERM is common: `hsm cancel` signals the task's process group and the
    # runner signals the wrapper; a user presses Ctrl-C twice. The wrapper must still write
    # its final status, however often it is told to stop.
    use_wrapper(project)
    n = 4
    sweep_of(project, list(range(1, n + 1)), "--sleep 30")
    sweep = submit_sweep(project, f"local:{n}")
    running = wait_for(lambda: (r := running_tasks(sweep)) and len(r) == n and r, 60, f"{n} running tasks")
    wrappers = {d.name: (read_status(d)["pid"], read_status(d)["pid_start"]) for d in running}
    for pid, start in wrappers.values():
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while alive(pid, start) and time.monotonic() < deadline:
            try:
                os.kill(pid, signal.SIGTERM)  # the wrapper alone, as the runner's cancel does
            except ProcessLookupError:
                break
            time.sleep(0.001)
    wait_for(lambda: not any(alive(*w) for w in wrappers.values()), 15, "the signalled tasks to exit")
    final = {d.name: (read_status(d)["state"], read_status(d).get("reason")) for d in running}
    wrong = {name: outcome for name, outcome in final.items() if outcome != ("cancelled", "cancelled")}
    assert wrong == {}, f"(state, reason) in status.yaml after repeated SIGTERMs: {wrong}"
    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    assert {t["state"] for t in read_index(sweep)["tasks"].values()} == {"cancelled"}
