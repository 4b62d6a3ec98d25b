#!/usr/bin/env python3
"""Failover figures on the test bed: work stealing, and completions while a host is frozen.

  stealing   24 tasks of `sleep 1` over `local:2` and a Slurm source throttled to 1 slot
             (round robin: 12 each), with this checkout's hsm and with a baseline hsm
             (--baseline REV: a git worktree of that revision; default: the last revision
             before work stealing). The floor is 24 tasks over 3 slots: 8 s plus the start.
  frozen     30 tasks of `sleep 2` over `local:2`, `ssh:server1:2`, `ssh:server2:2`; once
             server2 runs two tasks it is frozen (`testbed freeze server2`), or not (the
             control run). A watcher reads the index every 50 ms and notes when each task
             is recorded completed; each task writes the time it ended. Reported: the median
             and maximum delay from a task's end to its record, for tasks on local and
             server1, with and without the fault, and the run's wall time.

Usage (the test bed must be up: `tests/testbed/testbed up`):
  python3 benchmarks/failover.py [--only stealing|frozen] [--baseline REV] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, fmt_s, loadavg, machine, median, table, testbed_env

BASELINE = "e7d8b25"  # main before failover (work stealing, health in the loop)
TESTBED = REPO / "tests" / "testbed" / "testbed"
JOB = """\
import json, os, sys, time
time.sleep(float(sys.argv[1]))
with open(os.path.join(os.environ["HSM_OUTPUT_DIR"], "end.json"), "w") as fh:
    json.dump({"end": time.time()}, fh)
"""


def checkout(rev: str, where: Path) -> Path:
    """A worktree of `rev` (its hsm runs from source through PYTHONPATH)."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev],
                   capture_output=True, check=True)
    return where


def project(root: Path, env: dict[str, str], remote: str | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "job.py").write_text(JOB)
    config = {"paths": {"python_interpreter": sys.executable},
              "compute": {"disk_min_free_gb": 0.05, "health_check_interval": 1, "unreachable_grace": 8}}
    if remote:
        config["ssh"] = {"ssh_config": env["HSM_TESTBED_SSH_CONFIG"], "project_dir": remote}
    (root / "hsm_config.yaml").write_text(json.dumps(config))
    return root


def sweep_config(root: Path, n: int, sleep: float) -> None:
    (root / "sweeps").mkdir(exist_ok=True)
    grid = json.dumps(list(range(n)))
    (root / "sweeps" / "sweep_config.yaml").write_text(
        f"grid:\n  i: {grid}\ncommand: \"{{python}} job.py {sleep}\"\n")


def hsm_run(code: Path, root: Path, env: dict[str, str], *args: str, timeout: float = 900) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hsm", "run", *args], cwd=root, timeout=timeout,
                          env={**env, "PYTHONPATH": str(code)}, capture_output=True, text=True)
    return time.perf_counter() - started, proc.returncode, proc.stderr


def stealing(code: Path, env: dict[str, str], base: Path) -> tuple[float, int]:
    root = project(base / f"steal-{time.monotonic_ns()}", env)
    sweep_config(root, 24, 1)
    seconds, rc, err = hsm_run(code, root, env, "--sources", "local:2,slurm:1", "--strategy", "round_robin",
                               "--poll-interval", "0.5")
    if rc != 0:
        print(err[-2000:], file=sys.stderr)
    return seconds, rc


class Watcher(threading.Thread):
    """Notes when each task is first recorded completed in the index."""

    def __init__(self, outputs: Path) -> None:
        super().__init__(daemon=True)
        self.outputs, self.recorded, self.stop = outputs, {}, threading.Event()

    def run(self) -> None:
        import yaml

        while not self.stop.is_set():
            for mapping in self.outputs.glob("*/task_mapping.yaml"):
                try:
                    tasks = yaml.load(mapping.read_text(), Loader=yaml.CSafeLoader)["tasks"]
                except Exception:
                    continue
                now = time.time()
                for tid, t in tasks.items():
                    if t["state"] == "completed" and tid not in self.recorded:
                        self.recorded[tid] = (now, t["source"])
            time.sleep(0.05)


def frozen(code: Path, env: dict[str, str], base: Path, fault: bool) -> dict[str, float]:
    import yaml

    remote = f"~/hsm-bench/{time.monotonic_ns()}"
    root = project(base / f"frozen-{fault}-{time.monotonic_ns()}", env, remote)
    sweep_config(root, 30, 2)
    watcher = Watcher(root / "sweeps" / "outputs")
    watcher.start()
    froze = threading.Event()

    def freeze_when_busy() -> None:
        deadline = time.monotonic() + 120
        while fault and time.monotonic() < deadline:
            for mapping in (root / "sweeps" / "outputs").glob("*/task_mapping.yaml"):
                tasks = yaml.safe_load(mapping.read_text())["tasks"]
                if sum(1 for t in tasks.values() if t.get("source") == "server2" and t["state"] == "running") >= 2:
                    subprocess.run([str(TESTBED), "freeze", "server2"], check=True, capture_output=True)
                    froze.set()
                    return
            time.sleep(0.1)

    trigger = threading.Thread(target=freeze_when_busy, daemon=True)
    trigger.start()
    try:
        seconds, rc, err = hsm_run(code, root, env, "--sources", "local:2,ssh:server1:2,ssh:server2:2",
                                   "--poll-interval", "0.5")
    finally:
        if froze.is_set():
            subprocess.run([str(TESTBED), "thaw", "server2"], capture_output=True)
        watcher.stop.set()
    if rc != 0:
        print(err[-2000:], file=sys.stderr)
    sweep = next((root / "sweeps" / "outputs").iterdir())
    delays = []
    for tid, (at, source) in watcher.recorded.items():
        end = sweep / "tasks" / tid / "results" / "end.json"
        if source in ("local", "server1") and end.exists():
            delays.append(at - json.loads(end.read_text())["end"])
    return {"wall": seconds, "rc": rc, "median": median(delays), "max": max(delays), "n": len(delays)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("stealing", "frozen"))
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    env = testbed_env()
    print(f"{machine()}; load {loadavg()}")
    base = Path(tempfile.mkdtemp(prefix="hsm-failover-bench-"))
    try:
        if args.only in (None, "stealing"):
            old = checkout(args.baseline, base / "baseline")
            rows = []
            for _ in range(args.repeat):
                new_s, new_rc = stealing(REPO, env, base)
                old_s, old_rc = stealing(old, env, base)
                rows.append([fmt_s(new_s), new_rc, fmt_s(old_s), old_rc, f"{new_s / old_s:.0%}"])
            print("\n24 x sleep 1 over local:2 + slurm:1 (round robin); floor 8 s + start")
            print(table(["hsm (this)", "rc", f"hsm ({args.baseline})", "rc", "this / baseline"], rows))
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True)
        if args.only in (None, "frozen"):
            rows = []
            for _ in range(args.repeat):
                for fault in (False, True):
                    r = frozen(REPO, env, base, fault)
                    rows.append(["server2 frozen" if fault else "no fault", fmt_s(r["wall"]), r["rc"],
                                 f"{r['median']:.2f} s", f"{r['max']:.2f} s", r["n"]])
            print("\n30 x sleep 2 over local:2 + server1:2 + server2:2: completions on local and server1, "
                  "task end -> recorded in the index")
            print(table(["run", "wall", "rc", "median delay", "max delay", "tasks"], rows))
    finally:
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
        for host in env["HSM_TESTBED_HOSTS"].split():
            subprocess.run(["ssh", "-F", env["HSM_TESTBED_SSH_CONFIG"], host, "rm -rf ~/hsm-bench"], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
