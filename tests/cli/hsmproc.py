"""Run the hsm CLI as real processes against real project directories.

Shared by tests/cli and tests/integration/test_local.py: a project on disk (hsm_config.yaml,
a training script, a small job script), the CLI started with `python -m hsm` or the bin/
wrappers, bounded waits, and a clean-up that stops the runners and tasks a test started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin"

FINAL = ("completed", "failed", "cancelled")
RANK = {"pending": 0, "assigned": 1, "submitted": 2, "queued": 3, "running": 4,
        "completed": 5, "failed": 5, "cancelled": 5}

HSM_CONFIG = """\
paths:
  training_script: train.py
compute:
  disk_min_free_gb: 0.05
"""

TRAIN_PY = """\
import sys
print("train", *sys.argv[1:])
"""

# A task that records what it saw and did: its environment, its pid, start/end times in a
# shared event log, a line on each output stream; it sleeps and exits as asked.
JOB_PY = """\
import argparse, json, os, sys, time

p = argparse.ArgumentParser()
p.add_argument("--x", default="")
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fail-on", default=None)
p.add_argument("--code", type=int, default=3)
p.add_argument("--log", default=None)
a = p.parse_args()
task = os.environ.get("HSM_TASK_ID", "?")
out = os.environ.get("HSM_OUTPUT_DIR")

def event(kind):
    if a.log:
        fd = os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{kind} {task} {time.time():.6f}\\n".encode())
        os.close(fd)

if out:
    os.makedirs(out, exist_ok=True)
    keys = ("HSM_TASK_ID", "HSM_TASK_DIR", "HSM_SWEEP_ID", "HSM_OUTPUT_DIR", "TMPDIR", "PWD")
    with open(os.path.join(out, "env.json"), "w") as fh:
        json.dump({**{k: os.environ.get(k) for k in keys},
                   "tmpdir_is_dir": os.path.isdir(os.environ.get("TMPDIR", ""))}, fh)
    with open(os.path.join(out, "pid"), "w") as fh:
        fh.write(str(os.getpid()))
event("start")
print(f"stdout of {task} x={a.x}", flush=True)
print(f"stderr of {task} x={a.x}", file=sys.stderr, flush=True)
time.sleep(a.sleep)
event("end")
sys.exit(a.code if a.fail_on is not None and a.x == a.fail_on else 0)
"""


def hsm_env(**extra: str) -> dict[str, str]:
    """The environment for hsm run from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HSM_PYTHON"] = sys.executable
    env.pop("HSM_LOG_LEVEL", None)
    env.update(extra)
    return env


def hsm_argv(*args: str) -> list[str]:
    """`python -m hsm ARGS`."""
    return [sys.executable, "-m", "hsm", *map(str, args)]


def run_hsm(args: Sequence[str], cwd: Path, *, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m hsm ARGS` to completion; stdin is empty unless `input` is given."""
    return subprocess.run(
        hsm_argv(*args), cwd=cwd, env=hsm_env(), input=input if input is not None else "",
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def start_hsm(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.Popen:
    """Start `python -m hsm ARGS` without waiting for it."""
    return subprocess.Popen(
        hsm_argv(*args), cwd=cwd, env=hsm_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def run_shell(script: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a bash script with bin/ first on PATH."""
    env = hsm_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["bash", "-c", f"set -o pipefail\n{script}"], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call `predicate` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def read_index(sweep_dir: Path) -> dict[str, Any]:
    """task_mapping.yaml, read with yaml.safe_load."""
    data = yaml.safe_load((sweep_dir / "task_mapping.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("tasks"), dict), data
    return data


def read_param_table(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """task_params.jsonl, read with json: each task's parameters, in task order."""
    rows = [json.loads(line) for line in (sweep_dir / "task_params.jsonl").read_text(encoding="utf-8").splitlines()]
    return {row["task_id"]: row["params"] for row in rows}


def task_entries(task_dir: Path) -> list[str]:
    """What hsm left in a task's directory: every entry but what the task itself wrote
    (results/, metrics.json)."""
    return sorted(p.name for p in task_dir.iterdir() if p.name not in ("results", "metrics.json"))


def read_status(task_dir: Path) -> dict[str, Any] | None:
    """A task's status.yaml, read with yaml.safe_load; None when there is none yet."""
    try:
        text = (task_dir / "status.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{task_dir}/status.yaml: {text!r}"
    return data


def started_lines(sweep_dir: Path, source: str = "local") -> list[str]:
    """The `S TASK ATTEMPT` lines of a runner's `started` file."""
    path = sweep_dir / ".hsm" / "runners" / source / "started"
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("S ")]


def proc_start(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int | None, start: int | None = None) -> bool:
    """True while process `pid` (started at `start`, when given) is running."""
    if not pid:
        return False
    now = proc_start(int(pid))
    return now is not None and (not start or now == int(start))


@dataclass
class Project:
    """A project directory with hsm_config.yaml, train.py and job.py."""

    root: Path

    @property
    def outputs(self) -> Path:
        return self.root / "sweeps" / "outputs"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def sweep_config(self, text: str, name: str = "sweeps/sweep_config.yaml") -> Path:
        return self.write(name, text)

    def hsm(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_hsm(args, self.root, input=input, timeout=timeout)

    def start(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        return start_hsm(args, self.root, **kwargs)

    def shell(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_shell(script, self.root, timeout=timeout)

    def output_entries(self) -> list[str]:
        """Everything in the outputs directory, hidden entries included."""
        return sorted(p.name for p in self.outputs.iterdir()) if self.outputs.exists() else []

    def expand(self, *args: str) -> Path:
        """`hsm expand ARGS`; the sweep dir it printed."""
        result = self.hsm("expand", *args)
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.strip())

    def status(self, sweep: Path | str) -> dict[str, Any]:
        result = self.hsm("status", str(sweep), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def poll_until_final(self, sweep: Path, timeout: float = 60) -> dict[str, Any]:
        """`hsm poll` until every task is final; the last index."""

        def done() -> dict[str, Any] | None:
            result = self.hsm("poll", str(sweep))
            assert result.returncode == 0, result.stderr
            index = read_index(sweep)
            return index if all(t["state"] in FINAL for t in index["tasks"].values()) else None

        return wait_for(done, timeout, f"every task of {sweep.name} to finish", interval=0.1)

    def stop_leftovers(self) -> None:
        """Stop the runners and task processes this project's sweeps started."""
        if not self.outputs.exists():
            return
        for runner_dir in self.outputs.glob("*/.hsm/runners/*"):
            try:
                pid, start = (int(x) for x in (runner_dir / "runner.pid").read_text().split()[:2])
            except (OSError, ValueError):
                pid = start = 0
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                lines = (runner_dir / "started").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if len(parts) >= 5 and parts[0] == "P" and alive(int(parts[3]), int(parts[4])):
                    try:
                        os.killpg(int(parts[3]), signal.SIGKILL)  # the task wrapper leads its session
                    except ProcessLookupError:
                        pass


def make_project(root: Path, hsm_config: str | None = HSM_CONFIG) -> Project:
    """A project in `root`: hsm_config.yaml (unless None), train.py, job.py."""
    root.mkdir(parents=True, exist_ok=True)
    project = Project(root)
    if hsm_config is not None:
        project.write("hsm_config.yaml", hsm_config)
    project.write("train.py", TRAIN_PY)
    project.write("job.py", JOB_PY)
    return project


def job_command(*extra: str) -> str:
    """A `command:` template running job.py with the parameter x."""
    return " ".join(["{python} job.py --x {x}", *extra])
