"""Tasks the runner starts itself (hsm.agent.direct) against tasks run through task.sh.

With hsm's own task.sh and no conda env, a local or SSH runner starts each command itself
and writes its status. A project's own templates/task.sh keeps the wrapper: a copy of hsm's
own is the reference here, and each test runs the same sweep both ways and compares what the
task saw and what was recorded.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.cli.hsmproc import Project, alive, read_index, read_status, wait_for
from tests.integration.conftest_local import local_project  # noqa: F401  (the `project` fixture)
from tests.integration.test_local import running_tasks, submit_sweep, sweep_of, use_wrapper

DUMP_PY = """\
import json, os, sys
out = os.environ["HSM_OUTPUT_DIR"]
with open(os.path.join(out, "seen.json"), "w") as fh:
    json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:]}, fh)
case = sys.argv[1]
if case == "exit3":
    sys.exit(3)
if case in ("kill", "term"):
    os.kill(os.getpid(), signal.SIGKILL if case == "kill" else signal.SIGTERM)
print("case", case)
"""


def ran_direct(sweep: Path) -> bool:
    """True when the runner started the sweep's tasks itself (its P lines name it), False when
    wrappers ran them."""
    lines = [ln.split() for ln in (sweep / ".hsm" / "runners" / "local" / "started").read_text().splitlines()]
    kinds = {len(parts) for parts in lines if parts[0] == "P"}
    assert kinds in ({5}, {7}), lines
    return kinds == {7}


def run_sweep(project: Project, config: str) -> Path:
    before = set(project.output_entries())
    project.sweep_config(config)
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
    assert result.returncode in (0, 1), result.stderr
    (new,) = set(project.output_entries()) - before
    return project.outputs.resolve() / new


def normalized(sweep: Path, text: str) -> str:
    return text.replace(str(sweep), "SWEEP").replace(sweep.name, "SWEEP_ID")


def seen_by_tasks(sweep: Path) -> dict[str, dict]:
    out = {}
    for task in sorted((sweep / "tasks").iterdir()):
        seen = task / "results" / "seen.json"
        if seen.is_file():
            out[task.name] = json.loads(normalized(sweep, seen.read_text()))
    return out


def last_attempt(task: Path) -> Path:
    """Where the task's latest status is: its dir, or attempts/N/ once hsm has put the task back
    (a source disabled because its tasks cannot start there, say)."""
    if (task / "status.yaml").exists():
        return task
    return max((task / "attempts").iterdir(), key=lambda p: int(p.name))


def outcome(task: Path) -> tuple:
    task = last_attempt(task)
    status = read_status(task)
    return status["state"], status["exit_code"], status.get("reason"), (task / "stdout.log").read_text()


def status_keys(task: Path) -> list[str]:
    return [line.partition(":")[0] for line in (task / "status.yaml").read_text().splitlines()]


CASES = 'grid:\n  case: [ok, exit3, kill, term]\ncommand: "{python} dump.py {case}"\n'


def test_a_direct_task_sees_what_the_wrapper_gives_and_ends_the_same(project: Project) -> None:
    project.write("dump.py", "import signal\n" + DUMP_PY)
    direct = run_sweep(project, CASES)
    use_wrapper(project)
    wrapped = run_sweep(project, CASES)
    assert ran_direct(direct) and not ran_direct(wrapped)

    seen_direct, seen_wrapped = seen_by_tasks(direct), seen_by_tasks(wrapped)
    assert len(seen_direct) == 4 and seen_direct.keys() == seen_wrapped.keys()
    for tid in seen_direct:
        env_d, env_w = seen_direct[tid].pop("env"), seen_wrapped[tid].pop("env")
        differ = {k: (env_d.get(k), env_w.get(k)) for k in env_d.keys() | env_w.keys() if env_d.get(k) != env_w.get(k)}
        assert differ == {}, f"{tid}: environment, direct vs task.sh: {differ}"
        assert seen_direct[tid] == seen_wrapped[tid]  # cwd and argv

    for tid in seen_direct:
        d, w = direct / "tasks" / tid, wrapped / "tasks" / tid
        assert outcome(d) == outcome(w), tid
        assert status_keys(d) == status_keys(w), tid
        assert sorted(os.listdir(d)) == sorted(os.listdir(w)) == ["params.yaml", "results", "status.yaml",
                                                                   "stderr.log", "stdout.log"]
    expected = {"task_001": ("completed", 0, None), "task_002": ("failed", 3, "exit_code"),
                "task_003": ("failed", 137, "exit_code"), "task_004": ("failed", 143, "exit_code")}
    assert {tid: outcome(direct / "tasks" / tid)[:3] for tid in expected} == expected


@pytest.mark.parametrize("command, check", [
    # Not a program: bash says so in stderr.log, exit 127, as under task.sh.
    ("no-such-program-of-hsm {x}", lambda out, err: "no-such-program-of-hsm: command not found" in err),
    # A shell builtin with no program of its name runs as the wrapper would run it.
    ("type {x}", lambda out, err: out == "true is a shell builtin\n"),
])
def test_a_command_that_is_no_program_ends_as_under_the_wrapper(project: Project, command: str, check) -> None:
    config = f'grid:\n  x: ["true"]\ncommand: "{command}"\n'
    direct = run_sweep(project, config)
    use_wrapper(project)
    wrapped = run_sweep(project, config)
    assert ran_direct(direct) and not ran_direct(wrapped)
    d, w = (last_attempt(sweep / "tasks" / "task_001") for sweep in (direct, wrapped))
    assert outcome(d) == outcome(w)
    assert check((d / "stdout.log").read_text(), (d / "stderr.log").read_text()), (d / "stderr.log").read_text()


def test_a_running_direct_task_shows_its_command_in_status(project: Project) -> None:
    sweep_of(project, [1], "--sleep 30")
    sweep = submit_sweep(project, "local:1")
    (task,) = wait_for(lambda: running_tasks(sweep), 60, "the task to run")
    text = (task / "status.yaml").read_text()
    status = read_status(task)
    child = int((task / "results" / "pid").read_text())
    assert status["pid"] == child and alive(child, status["pid_start"])  # the command itself, no wrapper
    assert text.endswith("state: running\n#" + " " * 320 + "\n")  # padded, as task.sh writes it
    result = project.hsm("cancel", str(sweep), timeout=60)
    assert result.returncode == 0, result.stderr
    final = read_status(task)
    assert (final["state"], final["reason"], final["exit_code"]) == ("cancelled", "cancelled", 143)


def test_a_direct_task_killed_hard_is_failed_with_its_signal(project: Project) -> None:
    sweep_of(project, [1], "--sleep 30")
    sweep = submit_sweep(project, "local:1")
    (task,) = wait_for(lambda: running_tasks(sweep), 60, "the task to run")
    os.kill(read_status(task)["pid"], signal.SIGKILL)  # the OOM killer, say
    wait_for(lambda: read_status(task)["state"] != "running", 10, "the runner to record the end")
    status = read_status(task)
    assert (status["state"], status["exit_code"], status["reason"]) == ("failed", 137, "exit_code")


def test_a_direct_task_outliving_its_runner_runs_on_and_is_lost_when_it_ends(project: Project) -> None:
    sweep_of(project, [1], "--sleep 3")
    sweep = submit_sweep(project, "local:1")
    (task,) = wait_for(lambda: running_tasks(sweep), 60, "the task to run")
    runner_pid, runner_start = (int(x) for x in (sweep / ".hsm" / "runners" / "local" / "runner.pid").read_text().split())
    os.kill(runner_pid, signal.SIGKILL)
    wait_for(lambda: not alive(runner_pid, runner_start), 10, "the runner to die")
    status = read_status(task)
    assert alive(status["pid"], status["pid_start"])  # the command runs on, in its own session

    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    assert read_index(sweep)["tasks"]["task_001"]["state"] == "running"

    wait_for(lambda: not alive(status["pid"], status["pid_start"]), 30, "the command to end")
    time.sleep(0.2)
    assert read_status(task)["state"] == "running"  # nobody wrote its end
    polled = project.hsm("poll", str(sweep))
    assert polled.returncode == 0, polled.stderr
    entry = read_index(sweep)["tasks"]["task_001"]
    assert (entry["state"], entry.get("reason")) == ("failed", "lost"), entry


def test_a_runner_told_to_stop_kills_a_task_that_ignores_term_after_its_grace(project: Project) -> None:
    project.write("stubborn.py", "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                 "open(os.environ['HSM_OUTPUT_DIR'] + '/ready', 'w').close()\ntime.sleep(120)\n")
    project.sweep_config('grid:\n  x: [1]\ncommand: "{python} stubborn.py"\n')
    sweep = submit_sweep(project, "local:1")
    task = sweep / "tasks" / "task_001"
    wait_for(lambda: (task / "results" / "ready").exists(), 60, "the task to ignore TERM")
    runner_pid, runner_start = (int(x) for x in (sweep / ".hsm" / "runners" / "local" / "runner.pid").read_text().split())
    began = time.monotonic()
    os.kill(runner_pid, signal.SIGTERM)
    wait_for(lambda: not alive(runner_pid, runner_start), 30, "the runner to stop")
    took = time.monotonic() - began
    assert 9 < took < 20, took  # the grace (10 s), then a kill
    status = read_status(task)
    assert (status["state"], status["reason"], status["exit_code"]) == ("cancelled", "cancelled", 137)
    assert not alive(status["pid"], status["pid_start"])
