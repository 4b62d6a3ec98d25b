"""Taking work back from a real local runner, and the environment a lingering runner gives tasks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from hsm.config import load_project
from hsm.core.index import ref_of
from hsm.sources import make_source
from hsm.sweep import Sweep
from tests.cli.hsmproc import Project, alive, hsm_env, read_index, read_status, wait_for
from tests.integration.conftest_local import local_project  # noqa: F401  (the `project` fixture)


def test_a_revoke_racing_the_runner_never_both_starts_and_takes_back_an_attempt(project: Project) -> None:
    project.sweep_config(f"grid:\n  i: {list(range(300))}\ncommand: \"sleep 0.01\"\n")
    sweep = Path(project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2 | hsm-submit").stdout.strip())
    s = Sweep.open(sweep)
    tasks = s.read_index()["tasks"]
    source = make_source("local", s.read_index()["sources"]["local"], s, load_project(project.root / "hsm_config.yaml"))
    # While the runner works through the queue from the front, take every attempt back at once.
    wait_for(lambda: read_status(sweep / "tasks" / "task_001"), 30, "the runner to start")
    asked = [ref_of(t, e) for t, e in tasks.items()]
    answer = source.revoke(asked)
    assert sorted(answer.revoked + answer.started) == sorted(r.id for r in asked)
    assert answer.started and answer.revoked, answer  # 300 tasks of 10 ms on two slots take seconds
    wait_for(lambda: not alive(*runner_pid(sweep)), 60, "the runner to leave")
    lines = (sweep / ".hsm" / "runners" / "local" / "started").read_text().splitlines()
    began = {tuple(line.split()[1:3]) for line in lines if line.startswith("S ")}
    taken = {tuple(line.split()[1:3]) for line in lines if line.startswith("R ")}
    assert not began & taken
    assert taken == {(t, "1") for t in answer.revoked}
    assert {(t, "1") for t in answer.started} <= began
    for tid in answer.revoked:
        assert read_status(sweep / "tasks" / tid) is None, tid  # never started
    for tid in answer.started:
        assert (read_status(sweep / "tasks" / tid) or {}).get("state") == "completed", tid


def runner_pid(sweep: Path) -> tuple[int | None, int | None]:
    try:
        pid, start = (int(x) for x in (sweep / ".hsm" / "runners" / "local" / "runner.pid").read_text().split()[:2])
    except (OSError, ValueError):
        return None, None
    return pid, start


def test_a_lingering_runner_runs_each_attempt_with_its_submitters_environment(project: Project) -> None:
    project.write("env_job.py", "import os, sys, time\n"
                                "open(os.path.join(os.environ['HSM_OUTPUT_DIR'], 'mark'), 'w').write(os.environ['MARK'])\n"
                                "time.sleep(float(sys.argv[2]))\n"
                                "sys.exit(int(os.environ['CODE']) if sys.argv[1] == 'b' else 0)\n")
    project.sweep_config("sweep:\n  paired:\n    - x: [a, b]\n      sleep: [8, 0]\n"
                         "command: \"{python} env_job.py {x} {sleep}\"\n")

    def hsm(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hsm", *args], cwd=project.root, env=hsm_env(**env),
                              capture_output=True, text=True, timeout=120, check=False)

    sweep = Path(hsm("expand", "sweeps/sweep_config.yaml").stdout.strip())
    hsm("assign", str(sweep), "--sources", "local:2")
    assert hsm("submit", str(sweep), MARK="first", CODE="3").returncode == 0
    wait_for(lambda: hsm("poll", str(sweep)) and read_index(sweep)["tasks"]["task_002"]["state"] == "failed", 30,
             "task_002 to fail")
    first_runner = runner_pid(sweep)
    assert alive(*first_runner)  # task_001 keeps it busy
    done = hsm("complete", str(sweep), "--retry-failed", "--sources", "local:2", "--poll-interval", "0.2",
               MARK="second", CODE="0")
    assert done.returncode == 0, done.stderr
    assert (sweep / "tasks" / "task_002" / "results" / "mark").read_text() == "second"
    assert (sweep / "tasks" / "task_001" / "results" / "mark").read_text() == "first"
    # The same runner ran both attempts: the environment came with the batch, not with the runner.
    runner_log = (sweep / ".hsm" / "runners" / "local" / "runner.log").read_text()
    assert runner_log.count("serving") == 1, runner_log
    queue = sweep / ".hsm" / "runners" / "local" / "queue"
    assert all(oct(os.stat(f).st_mode & 0o777) == "0o600" for f in queue.iterdir()), "batches carry the environment"
    assert yaml.safe_load((sweep / "task_mapping.yaml").read_text())["tasks"]["task_002"]["attempt"] == 2
