#!/usr/bin/env python3
"""How often hsm calls the scheduler and ssh, beside submitit and GNU parallel on the same work.

Shared clusters rate-limit their controller and admins count every `squeue`; a login node's
sshd counts connections. In one run, on the test bed (`tests/testbed/testbed up`):

  slurm   200 tasks of `sleep 1` (task 100 exits 3), 8 at a time, as one Slurm array:
          `hsm run --sources hpc:8` (default scheduler_poll_interval, 30 s), against submitit
          (`AutoExecutor.map_array` of a function that sleeps 1 s, slurm_array_parallelism=8,
          then every job's result). Wall time; calls of squeue, sacct, sbatch, sinfo,
          scontrol and scancel, in all and per minute; for hsm, how long after its end the
          failed task was recorded (sweep.log against its status.yaml, 1 s resolution).
  ssh     100 tasks of `sleep 0.5` on server1, 2 at a time: `hsm run --sources ssh:server1:2`
          (default --poll-interval, 10 s), against GNU parallel `-j2 -S server1`, with and
          without `--controlmaster`. Wall time; ssh calls in all and per minute.

Every call is counted the same way for hsm and its peer: the programs are found first in a
directory of wrappers that log their name and time, then run the real program.

Usage:
  tests/testbed/testbed up && python3 benchmarks/scheduler_calls.py [--only slurm|ssh]

Needs submitit (`pip install submitit`, a benchmark dependency only) and GNU parallel
(`apt-get install -y parallel`); without one, its peer is left out, saying so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, testbed_env

SLURM = ("squeue", "sacct", "sbatch", "sinfo", "scontrol", "scancel")

TASK_PY = """\
import sys, time
x = int(sys.argv[1])
time.sleep(1)
sys.exit(3 if x == 100 else 0)
"""

SUBMITIT_PY = """\
import sys, time
import submitit

def task(x):
    time.sleep(1)
    if x == 100:
        raise RuntimeError("task 100 fails")
    return x

executor = submitit.AutoExecutor(folder=sys.argv[1])
executor.update_parameters(timeout_min=10, slurm_array_parallelism=8)
jobs = executor.map_array(task, range(1, 201))
failed = 0
for job in jobs:
    try:
        job.result()
    except Exception:
        failed += 1
print("failed", failed)
"""


def counting_path(shims: Path, programs: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """`env` with a PATH whose first directory holds a logging wrapper for each program."""
    shims.mkdir(parents=True, exist_ok=True)
    for name in programs:
        real = shutil.which(name, path=env["PATH"])
        if real is None:
            continue
        script = shims / name
        script.write_text(f'#!/bin/sh\necho "{name} $(date +%s.%N)" >> "$CALL_LOG"\nexec {real} "$@"\n')
        script.chmod(0o755)
    return {**env, "PATH": f"{shims}{os.pathsep}{env['PATH']}"}


def counted(log: Path) -> Counter[str]:
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time and result of `argv`; its output goes to files, not pipes: an ssh master it
    leaves running (ControlPersist) would hold a pipe open, and the wait would never end."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:  # reported as such; the other measurements go on
            return time.perf_counter() - began, subprocess.CompletedProcess(argv, -1, "", f"did not end in {timeout:.0f} s")
        seconds = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        return seconds, subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


def report_delay(sweep: Path, task: str) -> float | None:
    """Seconds from the task's end (its status.yaml) to the line recording it in sweep.log."""
    import datetime as dt

    import yaml

    status = yaml.safe_load((sweep / "tasks" / task / "status.yaml").read_text())
    end = dt.datetime.fromisoformat(str(status["end"]).replace("Z", "+00:00"))
    for line in (sweep / "logs" / "sweep.log").read_text().splitlines():
        if task in line and "-> failed" in line:
            return (dt.datetime.strptime(line[1:20], "%Y-%m-%d %H:%M:%S").astimezone() - end).total_seconds()
    return None


def hsm_slurm(base: Path, env: dict[str, str]) -> dict[str, object]:
    root = base / "hsm-slurm"
    (root / "sweeps").mkdir(parents=True)
    (root / "task.py").write_text(TASK_PY)
    (root / "hsm_config.yaml").write_text("hpc: {system: slurm}\ncompute: {disk_min_free_gb: 0.05}\n")
    (root / "sweeps" / "sweep_config.yaml").write_text(
        "command: '{python} task.py {x}'\ngrid:\n  x: [" + ", ".join(str(i) for i in range(1, 201)) + "]\n")
    log = base / "hsm-slurm.calls"
    env = {**counting_path(base / "shims", SLURM, env), "CALL_LOG": str(log), "PYTHONPATH": str(REPO)}
    seconds, done = run([sys.executable, "-m", "hsm", "run", "--sources", "hpc:8", "--no-progress"], root, env)
    sweep = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    delay = report_delay(sweep, "task_100") if sweep and done.returncode == 1 else None
    return {"seconds": seconds, "rc": done.returncode, "calls": counted(log), "delay": delay,
            "error": done.stderr.strip().splitlines()[-1:] if done.returncode not in (0, 1) else None}


def submitit_slurm(base: Path, env: dict[str, str]) -> dict[str, object] | None:
    try:
        import submitit  # noqa: F401
    except ImportError:
        return None
    root = base / "submitit"
    root.mkdir()
    (root / "sweep.py").write_text(SUBMITIT_PY)
    log = base / "submitit.calls"
    env = {**counting_path(base / "shims", SLURM, env), "CALL_LOG": str(log)}
    seconds, done = run([sys.executable, "sweep.py", str(root / "jobs")], root, env)
    return {"seconds": seconds, "rc": done.returncode, "calls": counted(log),
            "error": done.stderr.strip().splitlines()[-1:] if done.returncode else None}


def hsm_ssh(base: Path, env: dict[str, str]) -> dict[str, object]:
    root = base / "hsm-ssh"
    (root / "sweeps").mkdir(parents=True)
    (root / "hsm_config.yaml").write_text(
        f"ssh: {{ssh_config: {env['HSM_TESTBED_SSH_CONFIG']}, project_dir: hsm-bench-calls}}\n"
        "compute: {disk_min_free_gb: 0.05}\n")
    (root / "sweeps" / "sweep_config.yaml").write_text(
        "command: 'sleep 0.5'\ngrid:\n  x: [" + ", ".join(str(i) for i in range(1, 101)) + "]\n")
    log = base / "hsm-ssh.calls"
    env = {**counting_path(base / "shims", ("ssh", "rsync"), env), "CALL_LOG": str(log), "PYTHONPATH": str(REPO)}
    seconds, done = run([sys.executable, "-m", "hsm", "run", "--sources", "ssh:server1:2", "--no-progress"], root, env)
    return {"seconds": seconds, "rc": done.returncode, "calls": counted(log),
            "error": done.stderr.strip().splitlines()[-1:] if done.returncode else None}


def parallel_ssh(base: Path, env: dict[str, str], controlmaster: bool) -> dict[str, object] | None:
    if shutil.which("parallel") is None:
        return None
    log = base / f"parallel-{controlmaster}.calls"
    shims = base / "shims"
    env = {**counting_path(shims, ("ssh",), env), "CALL_LOG": str(log)}
    argv = ["parallel", "--will-cite", "-j2", "-S", "server1", "--ssh", f"{shims / 'ssh'} -F {env['HSM_TESTBED_SSH_CONFIG']}"]
    argv += ["--controlmaster"] if controlmaster else []
    # -N0: each of the 100 arguments makes a job but is not appended to it (`sleep 0.5 7` would
    # sleep 7.5 s), as hsm's command names no parameter either.
    seconds, done = run([*argv, "-N0", "sleep", "0.5", ":::", *[str(i) for i in range(1, 101)]], base, env)
    return {"seconds": seconds, "rc": done.returncode, "calls": counted(log),
            "error": done.stderr.strip().splitlines()[-1:] if done.returncode else None}


def show(title: str, rows: list[tuple[str, dict[str, object] | None]], programs: tuple[str, ...]) -> None:
    print(f"\n{title}")
    print(f"  {'':28} {'wall s':>8} " + " ".join(f"{p:>9}" for p in programs) + f" {'calls/min':>10}")
    for name, row in rows:
        if row is None:
            print(f"  {name:28} (not installed: left out)")
            continue
        calls = row["calls"]
        assert isinstance(calls, Counter)
        seconds = float(row["seconds"])  # type: ignore[arg-type]
        total = sum(calls[p] for p in programs)
        print(f"  {name:28} {seconds:8.1f} " + " ".join(f"{calls[p]:9d}" for p in programs)
              + f" {total / seconds * 60:10.1f}" + (f"   exit {row['rc']}: {row['error']}" if row.get("error") else ""),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("slurm", "ssh"))
    args = parser.parse_args()
    env = testbed_env()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="hsm-calls-") as tmp:
        base = Path(tmp)
        if args.only in (None, "slurm"):
            hsm_row = hsm_slurm(base, env)
            peer = submitit_slurm(base, env)
            show("Slurm: 200 x sleep 1, 8 at a time", [("hsm run --sources hpc:8", hsm_row), ("submitit map_array", peer)],
                 SLURM)
            if peer is not None:
                ratio = float(hsm_row["seconds"]) / float(peer["seconds"])  # type: ignore[arg-type]
                print(f"  wall time hsm / submitit: {ratio:.3f}")
            print(f"  the failed task recorded {hsm_row['delay']} s after its end (1 s resolution)")
        if args.only in (None, "ssh"):
            rows = [("hsm run --sources ssh:server1:2", hsm_ssh(base, env)),
                    ("GNU parallel -j2 -S server1", parallel_ssh(base, env, False)),
                    ("GNU parallel --controlmaster", parallel_ssh(base, env, True))]
            show("SSH: 100 x sleep 0.5 on server1, 2 at a time", rows, ("ssh", "rsync"))
    subprocess.run(["ssh", "-F", env["HSM_TESTBED_SSH_CONFIG"], "server1", "rm -rf ~/hsm-bench-calls"],
                   capture_output=True, timeout=60)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
