"""`hsm monitor watch`, `recent`, `source` and `errors`, run as real processes on real sweeps.

The views only read a sweep's files: each test also checks that they leave the sweep as it
was, work while another process holds the sweep lock, and print no escape code when their
output is not a terminal. The live view on a terminal is checked in a real one (tmux).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock
import pytest
import yaml

from tests.cli.hsmproc import ROOT, Project, hsm_argv, hsm_env, job_command, read_index, wait_for
from tests.cli.test_bad_input import assert_bad_input, snapshot

# x=2 fails with exit code 3.
FAILING = f'command: "{job_command("--fail-on 2")}"\nsweep:\n  grid:\n    x: [1, 2, 3, 4]\n'

# Each x fails its own way (x=3 succeeds): an import error, a host out of memory.
FAIL_PY = """\
import argparse, sys
x = argparse.ArgumentParser()
x.add_argument("--x", type=int)
x = x.parse_args().x
if x == 1:
    import no_such_module_for_hsm_tests
if x == 2:
    raise MemoryError("could not allocate the batch")
print("ok")
"""

RETRYING_CONFIG = """\
paths:
  training_script: train.py
compute:
  disk_min_free_gb: 0.05
  retry_attempts: 1
  retry_delay: 0
  retry_on_exit_codes: [3]
"""


def ok(p: Project, *args: str) -> str:
    result = p.hsm(*args, timeout=60)
    assert result.returncode == 0, f"hsm {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "\x1b" not in result.stdout, "escape codes in output that is not a terminal"
    return result.stdout


def run_sweep(p: Project, config: str, sources: str = "local:2", name: str = "sweeps/sweep_config.yaml") -> Path:
    """`hsm run` a sweep to the end; its directory."""
    p.sweep_config(config, name)
    result = p.hsm("run", "--config", name, "--sources", sources, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    sweep = Path(result.stdout.strip().splitlines()[-1])
    assert all(t["state"] in ("completed", "failed") for t in read_index(sweep)["tasks"].values())
    return sweep


def cell(text: str, metric: str) -> str:
    """The value of a `│ Metric │ Value │` row."""
    match = re.search(rf"│ {re.escape(metric)}\s*│ (.*?)\s*│", text)
    assert match, f"no row {metric!r} in:\n{text}"
    return match.group(1)


def start_running(p: Project, tasks: int = 2, sleep: float = 60) -> Path:
    """A sweep whose tasks are running on local (slots for all of them), driven by the steps."""
    p.sweep_config(f'command: "{job_command(f"--sleep {sleep}")}"\nsweep:\n  grid:\n    x: {list(range(1, tasks + 1))}\n')
    result = p.shell(f"hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:{tasks} | hsm-submit")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())

    def running() -> bool:
        assert p.hsm("poll", str(sweep)).returncode == 0
        return all(t["state"] == "running" for t in read_index(sweep)["tasks"].values())

    wait_for(running, 60, "the tasks to run", interval=0.2)
    return sweep


# --- watch -----------------------------------------------------------------------------------------


def test_watch_once_shows_a_finished_sweep_and_changes_nothing(project: Project) -> None:
    sweep = run_sweep(project, FAILING)
    before = snapshot(sweep)
    out = ok(project, "monitor", "watch", sweep.name, "--once")
    assert out.startswith(f"Sweep Monitor - {sweep.name} - Finished")
    assert "Live updates" not in out  # --once draws one frame
    assert "████████████████████████ 4/4 (100%)" in cell(out, "Progress")
    assert cell(out, "Completed") == "3 tasks" and cell(out, "Failed") == "1 task"
    assert cell(out, "Active") == "0 tasks" and cell(out, "Pending") == "0 tasks"
    assert cell(out, "Success Rate") == "75.0%" and cell(out, "ETA") == "done"
    assert re.search(r"│ local\s*│ 0/2\s*│ 3\s*│ 1\s*│ Not checked\s*│", out), out
    activity = out.split("Recent Activity:\n", 1)[1].splitlines()
    assert 0 < len(activity) <= 8
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in activity), activity
    assert any(re.search(r"completed task_00\d on local \(\d", line) for line in activity), activity
    assert any(line.endswith("] failed task_002 on local (exit code 3)") for line in activity), activity
    assert snapshot(sweep) == before


def test_watch_once_shows_a_running_sweep_and_ignores_the_lock(project: Project) -> None:
    sweep = start_running(project)
    with filelock.FileLock(str(sweep / ".hsm" / "lock")):  # as a step in the middle of its update would
        out = ok(project, "monitor", "watch", str(sweep), "--once")
    assert f"{sweep.name} - Running" in out
    assert "0/2 (0%)" in cell(out, "Progress")
    assert cell(out, "Active") == "2 tasks"
    assert cell(out, "ETA") == "unknown (no task finished yet)"
    assert re.search(r"│ local\s*│ 2/2\s*│ 0\s*│ 0\s*│", out), out
    assert re.search(r"\] started task_00[12] on local", out), out


def test_watch_without_a_sweep_shows_every_unfinished_one(project: Project) -> None:
    assert ok(project, "monitor", "watch", "--once").strip() == "No unfinished sweeps"
    finished = run_sweep(project, FAILING, name="sweeps/finished.yaml")
    assert ok(project, "monitor", "watch", "--once").strip() == "No unfinished sweeps"
    running = start_running(project)
    out = ok(project, "monitor", "watch", "--once")
    assert f"Sweep Monitor - {running.name} - Running" in out
    # both may be made in the same second: the running one is then the finished one's name + "_2"
    assert f"Sweep Monitor - {finished.name} -" not in out


def test_a_sweep_nobody_drives_is_stalled(project: Project) -> None:
    project.sweep_config(f'command: "{job_command()}"\nsweep:\n  grid:\n    x: [1, 2]\n')
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())
    assert cell(ok(project, "monitor", "watch", sweep.name, "--once"), "Status") == "Running"  # just assigned
    old = time.time() - 600
    os.utime(sweep / "task_mapping.yaml", (old, old))  # nothing recorded for ten minutes
    out = ok(project, "monitor", "watch", sweep.name, "--once")
    assert cell(out, "Status") == "Stalled (no task active, nothing recorded for 10 min)"
    assert cell(out, "Pending") == "2 tasks" and cell(out, "ETA") == "unknown (no task finished yet)"
    assert re.search(r"│ local\s*│ 0/2\s*│", out), out


def test_piped_watch_prints_plain_frames_until_ctrl_c(project: Project, tmp_path: Path) -> None:
    sweep = start_running(project)
    out_path, err_path = tmp_path / "watch.out", tmp_path / "watch.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(hsm_argv("monitor", "watch", sweep.name, "--refresh", "0.2"), cwd=project.root,
                                env=hsm_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            wait_for(lambda: out_path.read_text().count("Sweep Monitor") >= 3, 30, "three frames")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    text, errors = out_path.read_text(), err_path.read_text()
    assert "\x1b" not in text and "Traceback" not in errors, (text, errors)
    frames = text.split("\n\nSweep Monitor - ")
    assert len(frames) >= 3 and frames[0].startswith("Sweep Monitor - ")
    assert "Live updates every 0.2s - Ctrl-C to exit" in frames[1]


def test_an_unknown_sweep_is_bad_input(project: Project) -> None:
    assert_bad_input(project.hsm("monitor", "watch", "sweep_nope", "--once"), "sweep_nope")
    assert_bad_input(project.hsm("monitor", "errors", "sweep_nope"), "sweep_nope")
    assert_bad_input(project.hsm("monitor", "watch", "--once", "--refresh", "0"), "--refresh")


# --- recent, source --------------------------------------------------------------------------------


def test_recent_lists_the_newest_sweeps_first(project: Project) -> None:
    assert ok(project, "monitor", "recent").strip() == "No sweeps in the last 7 days"
    first = run_sweep(project, FAILING, name="sweeps/one.yaml")
    time.sleep(1.1)  # sweep ids and creation times have second precision
    second = start_running(project)
    out = ok(project, "monitor", "recent")
    assert out.index(second.name) < out.index(first.name)
    row = next(line for line in out.splitlines() if first.name in line)
    assert [c.strip() for c in row.strip("│").split("│")][2:] == ["4", "3", "1", "0", "Finished", "local"]
    assert re.search(rf"{second.name}.*│ 2\s*│ Running\s*│ local", out), out
    limited = ok(project, "monitor", "recent", "--limit", "1")
    assert second.name in limited and first.name not in limited
    assert_bad_input(project.hsm("monitor", "recent", "--days", "0"), "--days")


def test_source_shows_its_record_and_one_probe(project: Project) -> None:
    project.write("hsm_config.yaml", RETRYING_CONFIG)
    sweep = run_sweep(project, FAILING)  # task_002 fails twice: its first attempt is kept in history
    ok(project, "health", sweep.name)
    before = snapshot(sweep)
    out = ok(project, "monitor", "source", "local", sweep.name)
    assert out.startswith(f"local (local) Performance in {sweep.name}:")
    assert cell(out, "Tasks Submitted") == "5"
    assert cell(out, "Tasks Completed") == "3" and cell(out, "Tasks Failed") == "2"
    assert cell(out, "Success Rate") == "60.0%"
    assert re.fullmatch(r"\d+\.\ds", cell(out, "Average Task Duration"))
    assert cell(out, "Current Utilization") == "0/2 slots (0%)"
    assert re.fullmatch(r"\d+\.\d\d on \d+ CPUs? \((low|moderate|high|overloaded)\)", cell(out, "CPU Load"))
    assert re.fullmatch(r"\d+\.\dGB/\d+\.\dGB \(\d+%\)", cell(out, "Memory Usage"))
    assert cell(out, "Network Latency") == "n/a (this machine)"
    assert re.fullmatch(r"(just now|\d+ seconds? ago|1 minute ago) \((healthy|degraded)\)", cell(out, "Last Health Check"))
    assert snapshot(sweep) == before
    latest = ok(project, "monitor", "source", "local")  # the latest sweep that used it
    assert f"Performance in {sweep.name}:" in latest
    assert_bad_input(project.hsm("monitor", "source", "nope", sweep.name), "nope")
    assert_bad_input(project.hsm("monitor", "source", "nope"), "nope")


# --- errors ----------------------------------------------------------------------------------------


def test_errors_groups_the_failures_and_exports_them(project: Project, tmp_path: Path) -> None:
    project.write("fail.py", FAIL_PY)
    sweep = run_sweep(project, 'command: "{python} fail.py --x {x}"\nsweep:\n  grid:\n    x: [1, 2, 3]\n')
    before = snapshot(sweep)
    out = ok(project, "monitor", "errors", sweep.name)
    assert out.startswith(f"Error Analysis for {sweep.name}:")
    assert re.search(r"│ Import error\s*│ 1 task\s*│ local\s*│", out), out
    assert re.search(r"│ Host out of memory\s*│ 1 task\s*│ local\s*│", out), out
    assert re.search(r"│ local\s*│ task_001 \(Import error\); task_002 \(Host out of memory\)\s*│", out) or \
        re.search(r"│ local\s*│ task_002 \(Host out of memory\); task_001 \(Import error\)\s*│", out), out
    recommendations = out.split("Recommendations:\n", 1)[1].splitlines()
    assert len(recommendations) == 2 and all(r.startswith("- ") for r in recommendations), recommendations
    assert snapshot(sweep) == before

    details = ok(project, "monitor", "errors", sweep.name, "--tasks", "task_001,task_003")
    assert "task_001 (failed on local):" in details and "task_003 (completed on local):" in details
    assert "Category:   Import error" in details and "no_such_module_for_hsm_tests" in details
    assert "Host out of memory" not in details

    assert "No failed tasks." in ok(project, "monitor", "errors", sweep.name, "--tasks", "3")
    assert_bad_input(project.hsm("monitor", "errors", sweep.name, "--source", "nope"), "nope")
    assert_bad_input(project.hsm("monitor", "errors", sweep.name, "--tasks", "x:y"), "--tasks")

    exported = tmp_path / "errors_analysis.yaml"
    ok(project, "monitor", "errors", sweep.name, "--source", "local", "--export", str(exported))
    data = yaml.safe_load(exported.read_text())
    assert data["sweep_id"] == sweep.name
    assert {p["key"] for p in data["patterns"]} == {"import", "host_oom"}
    assert data["by_source"] == {"local": ["task_001", "task_002"]}
    ok(project, "monitor", "errors", sweep.name, "--export", str(tmp_path / "e.json"))
    as_json = json.loads((tmp_path / "e.json").read_text())
    assert [f["id"] for f in as_json["failed"]] == ["task_001", "task_002"]
    assert_bad_input(project.hsm("monitor", "errors", sweep.name, "--export", str(tmp_path / "no" / "x.yaml")), "--export")


# --- the live view on a terminal -------------------------------------------------------------------


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    """`tmux -L SOCKET`: a tmux server of this test's own, killed at the end."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed, and the live view is tested in a real terminal: apt-get install tmux")
    argv = ["tmux", "-L", f"hsm-test-{uuid.uuid4().hex[:8]}"]
    try:
        yield argv
    finally:
        subprocess.run([*argv, "kill-server"], capture_output=True, timeout=30, check=False)


def completed_on_screen(screen: str) -> int | None:
    match = re.search(r"│ Completed\s*│ (\d+) tasks?", screen)
    return int(match.group(1)) if match else None


def test_watch_redraws_a_terminal_in_place(project: Project, tmux: list[str], tmp_path: Path) -> None:
    project.sweep_config(f'command: "{job_command("--sleep 1.5")}"\nsweep:\n  grid:\n    x: {list(range(1, 19))}\n')
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 - closed in the finally
    run = subprocess.Popen(hsm_argv("run", "--config", "sweeps/sweep_config.yaml", "--sources", "local:2",
                                    "--poll-interval", "0.5"), cwd=project.root, env=hsm_env(),
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        sweep = wait_for(lambda: next(iter(project.outputs.glob("*/task_mapping.yaml")), None), 60, "the sweep").parent
        watch = shlex.join(["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "hsm", "monitor", "watch", sweep.name,
                            "--refresh", "1"])
        # When the view ends, the pane stays with its exit status, so a crash shows on the screen.
        started = subprocess.run([*tmux, "new-session", "-d", "-s", "watch", "-x", "120", "-y", "50", "-c",
                                  str(project.root), f"{watch}; echo WATCH EXITED $?; sleep 60"],
                                 capture_output=True, text=True, timeout=30, check=False)
        assert started.returncode == 0, started.stderr

        def screen() -> str:
            shot = subprocess.run([*tmux, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True,
                                  timeout=30, check=False)
            assert shot.returncode == 0, shot.stderr
            assert "WATCH EXITED" not in shot.stdout and "Traceback" not in shot.stdout, shot.stdout
            return shot.stdout

        last = [""]

        def screen_when(test: Callable[[str], object], what: str) -> str:
            def shown() -> str | None:
                last[0] = screen()
                return last[0] if test(last[0]) else None

            try:
                return wait_for(shown, 60, what, interval=0.3)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the screen:\n{last[0]}") from None

        expected = (f"Sweep Monitor - {sweep.name}", "Live updates every 1s - Ctrl-C to exit", "Overall Progress:",
                    "│ ETA", "Source Utilization:", "│ Source", "│ local", "Recent Activity:")
        # The sweep's tasks are assigned to local a moment after the sweep dir appears.
        first = screen_when(lambda s: completed_on_screen(s) is not None and all(t in s for t in expected),
                            "the whole view on the terminal")
        assert re.search(r"[█░]{24} \d+/18 \(\d+%\)", first), first
        count = completed_on_screen(first)
        assert count is not None
        later = screen_when(lambda s: (completed_on_screen(s) or 0) > count, "the completed count to grow on the screen")
        eta = screen_when(lambda s: re.search(r"│ ETA\s*│ (~.* remaining|done)", s), "an ETA on the screen")
        for shot in (first, later, eta):
            # Redrawn in place: one frame on the screen, never one below the other.
            assert shot.count("Sweep Monitor") == 1 and shot.count("Overall Progress:") == 1, shot
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait(timeout=10)
        log.close()
