#!/usr/bin/env python3
"""1000 no-op tasks: `hsm run --sources local:2` against GNU parallel -j2 and xargs -P2.

Target: hsm is no slower than GNU parallel -j2 on the same commands: the median over five
runs (the default --repeat) of hsm's wall time / parallel's, each run timing both back to back,
is at most 1.0.

What runs:

  xargs -P2 true            the floor: starting N processes, no shell
  xargs -P2 bash -c true    N processes, each a bash running the command
  GNU parallel -j2          the same N commands, each run by parallel through bash -c
                            (PARALLEL_SHELL=bash), which is how hsm runs a task: through
                            a bash wrapper (templates/task.sh) that then runs the command
  hsm run --sources local:2 a temp project whose sweep has N combinations and
                            `command: "true"`, no hsm_config.yaml (defaults); timed from
                            start to exit of the command (expand, assign, submit, the
                            detached runner working through the queue, polls); with hsm's
                            own task.sh the runner starts each command itself and writes
                            its status (docs/design.md, "The task wrapper")

and, for the record, what a bash wrapper per task would cost:

  task.sh alone, xargs -P2  the wrapper hsm rendered for that sweep, run directly on the
                            same N task dirs by xargs -P2 (no Python in the loop), with the
                            HSM_DISK_* environment the runner gives it when the template
                            reads it (free disk measured, floor watched by the runner)

Usage:
  python3 benchmarks/local_vs_parallel.py [--tasks 1000] [--jobs 2] [--repeat 5]

GNU parallel must be installed (Debian/Ubuntu: `apt-get update && apt-get install -y parallel`);
without it the script measures the rest and says so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_HSM,
    filesystem,
    fmt_s,
    hsm_version,
    loadavg,
    machine,
    median,
    reap_leftovers,
    remove_tree,
    table,
    timed,
    wait_runner_gone,
)

TARGET_RATIO = 1.0


def write_project(root: Path, n: int) -> Path:
    """A project with no hsm_config.yaml and a sweep of `n` no-op tasks."""
    (root / "sweeps").mkdir(parents=True)
    values = ", ".join(str(i) for i in range(n))
    config = root / "sweeps" / "sweep_config.yaml"
    config.write_text(
        "# benchmark: n no-op tasks\n"
        'command: "true"\n'
        "grid:\n"
        f"  i: [{values}]\n",
        encoding="utf-8",
    )
    return config


def hsm_phases(sweep: Path, t0_wall: float, t_end_wall: float) -> dict[str, float] | None:
    """Where the wall time of `hsm run` went, from file mtimes in the sweep dir.

    start -> last task handed over (expand, assign, submit: the last queue batch written, or the
    last argv file for an hsm that wrote one per task), first -> last final status.yaml, last
    final status -> hsm exit (poll and detection latency).
    """
    tasks = sweep / "tasks"
    argv_m, status_m = [], []
    for entry in os.scandir(tasks):
        for name, times in (("argv", argv_m), ("status.yaml", status_m)):
            try:
                times.append(os.stat(os.path.join(entry.path, name)).st_mtime)
            except FileNotFoundError:
                continue
    argv_m += [p.stat().st_mtime for p in (sweep / ".hsm" / "runners").glob("*/queue/*submit*.json")]
    if not argv_m or not status_m:
        return None
    return {
        "until submitted": max(argv_m) - t0_wall,
        "first task done": min(status_m) - t0_wall,
        "task span": max(status_m) - min(status_m),
        "tail": t_end_wall - max(status_m),
    }


def run_hsm(hsm: str, n: int, jobs: int, work: Path) -> tuple[float, float, dict | None, Path, list[str]]:
    project = work / f"hsm-project-{time.time_ns()}"
    write_project(project, n)
    os.sync()  # not timed: flush what earlier runs left dirty
    t0_wall = time.time()
    t = timed([hsm, "run", "--sources", f"local:{jobs}"], cwd=project, timeout=600)
    t_end_wall = time.time()
    sweep = Path(t.stdout.strip().splitlines()[-1])
    if not sweep.is_absolute():
        sweep = project / sweep
    wait_runner_gone(sweep)
    leftovers = reap_leftovers(sweep)
    return t.seconds, t.cpu, hsm_phases(sweep, t0_wall, t_end_wall), sweep, leftovers


def run_wrapper_alone(sweep: Path, jobs: int) -> tuple[float, float] | None:
    """The rendered task.sh, run by xargs on every task dir of `sweep` (attempt 99)."""
    wrappers = list((sweep / ".hsm" / "runners").glob("*/task.sh"))
    if not wrappers:
        return None
    dirs = "\n".join(sorted(str(p) for p in (sweep / "tasks").iterdir())) + "\n"
    env = None
    text = wrappers[0].read_text(encoding="utf-8")
    if "HSM_DISK_FREE_KB" in text:
        # As the runner starts it: free disk measured by the runner, the floor watched by it
        # (and the TMPDIR removed by it, where the wrapper leaves that to the runner).
        st = os.statvfs(sweep)
        env = {**os.environ, "HSM_DISK_FREE_KB": str(st.f_bavail * st.f_frsize // 1024), "HSM_DISK_WATCHED": "1",
               "HSM_RUNNER": "1"}
    # The command: as arguments to a wrapper that takes them (the runner passes the batch's
    # argv), else from each task's argv file, as an earlier hsm wrote it.
    command = ["true"] if '"${@:3}"' in text else []
    t = timed(["xargs", f"-P{jobs}", "-I{}", "bash", str(wrappers[0]), "{}", "99", *command], stdin_text=dirs, env=env,
              capture=False)
    time.sleep(0.2)
    reap_leftovers(sweep)
    return t.seconds, t.cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1000, help="number of no-op tasks (default 1000)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel slots for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each tool; the median is reported (default 5)")
    ap.add_argument("--hsm", default=str(DEFAULT_HSM), help=f"hsm executable (default {DEFAULT_HSM})")
    ap.add_argument("--no-wrapper", action="store_true", help="skip the task.sh-alone measurement")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--tmpdir", default=None,
                    help="where the temporary project goes (default: $TMPDIR or /tmp; /dev/shm takes the disk out)")
    args = ap.parse_args()
    n, j = args.tasks, args.jobs

    parallel = shutil.which("parallel")
    if parallel is None:
        print("GNU parallel is not installed: `apt-get update && apt-get install -y parallel` "
              "(or your system's package manager); measuring the rest.", file=sys.stderr)

    print(f"# local_vs_parallel: {n} no-op tasks, {j} at a time, repeat {args.repeat}")
    print(f"# {_dt.datetime.now().isoformat(timespec='seconds')}  {machine()}")
    print(f"# hsm: {hsm_version(args.hsm)}")
    if parallel:
        print(f"# {timed([parallel, '--will-cite', '--version']).stdout.splitlines()[0]}")

    work = Path(tempfile.mkdtemp(prefix="hsm-bench-local-", dir=args.tmpdir))
    print(f"# working in {work} ({filesystem(work)})")
    results: dict[str, list[float]] = {}
    phases: list[dict] = []
    leftovers_total: list[str] = []
    wrapper_times: list[float] = []
    wrapper_cpu: list[float] = []
    driver_cpu: list[float] = []
    loads: list[str] = []
    try:
        numbers = "".join(f"{i}\n" for i in range(n))
        commands = "true\n" * n
        env_parallel = {**os.environ, "PARALLEL_SHELL": shutil.which("bash") or "/bin/bash"}
        for _ in range(args.repeat):
            loads.append(loadavg())
            results.setdefault("xargs", []).append(
                timed(["xargs", f"-P{j}", "-n1", "true"], stdin_text=numbers, capture=False).seconds)
            tb = timed(["xargs", f"-P{j}", "-n1", "bash", "-c", "true"], stdin_text=numbers, capture=False)
            results.setdefault("xargs-bash", []).append(tb.seconds)
            results.setdefault("xargs-bash-cpu", []).append(tb.cpu)
            if parallel:
                results.setdefault("parallel", []).append(
                    timed([parallel, "--will-cite", f"-j{j}"], stdin_text=commands, env=env_parallel,
                          capture=False).seconds)
            seconds, cpu, ph, sweep, leftovers = run_hsm(args.hsm, n, j, work)
            results.setdefault("hsm", []).append(seconds)
            driver_cpu.append(cpu)
            if ph:
                phases.append(ph)
            leftovers_total += leftovers
            if not args.no_wrapper:
                w = run_wrapper_alone(sweep, j)
                if w is not None:
                    wrapper_times.append(w[0])
                    wrapper_cpu.append(w[1])
    finally:
        if args.keep:
            print(f"# kept {work}")
        else:
            remove_tree(work)

    t_x = median(results["xargs"])
    t_xb = median(results["xargs-bash"])
    t_p = median(results["parallel"]) if "parallel" in results else None
    t_h = median(results["hsm"])
    t_w = median(wrapper_times) if wrapper_times else None

    def row(name: str, t: float | None) -> list[str]:
        if t is None:
            return [name, "-", "-", "-", "-"]
        return [
            name,
            fmt_s(t),
            f"{1000 * t / n:.2f}",
            f"{1000 * (t - t_x) / n:+.2f}",
            f"{t / t_p:.2f}x" if t_p else "-",
        ]

    rows = [
        row(f"xargs -P{j} true (floor)", t_x),
        row(f"xargs -P{j} bash -c true", t_xb),
        row(f"GNU parallel -j{j} (bash -c true)", t_p),
        row(f"hsm run --sources local:{j}", t_h),
    ]
    if t_w is not None:
        rows.append(row(f"  task.sh wrapper alone, xargs -P{j}", t_w))
    print()
    print(table(["tool", "wall s", "ms/task", "over floor ms/task", "vs parallel"], rows))
    print()
    print("ms/task = wall / tasks (with", j, "slots, one slot spends", j, "x that per task);"
          " 'over floor' = (wall - xargs floor) / tasks")
    if t_p:
        # Each repeat runs both tools back to back, so its ratio shares that moment's load.
        ratios = [h / p for h, p in zip(results["hsm"], results["parallel"])]
        ratio = median(ratios)
        verdict = "MEETS" if ratio <= TARGET_RATIO else "MISSES"
        print(f"hsm / parallel per repeat: {', '.join(f'{r:.2f}x' for r in ratios)}")
        print(f"hsm / parallel, median of {len(ratios)}: {ratio:.2f}x   target <= {TARGET_RATIO}x   "
              f"-> {verdict} the target")
        print(f"per-task overhead of hsm: {1000 * (t_h - t_p) / n:.2f} ms over parallel, "
              f"{1000 * (t_h - t_x) / n:.2f} ms over the xargs floor (wall, {j} slots)")
        print(f"hsm would need <= {TARGET_RATIO * t_p:.2f} s here")
    if phases:
        ph = {k: median([p[k] for p in phases]) for k in phases[0]}
        print(f"hsm run phases (from file mtimes): expand+assign+submit until the last task was handed over "
              f"{ph['until submitted']:.2f} s; first task finished at {ph['first task done']:.2f} s; "
              f"first->last task finished {ph['task span']:.2f} s; last task finished -> hsm exit {ph['tail']:.2f} s")
    print(f"CPU time of the hsm command itself (the driver: expand, assign, submit, polls; not the detached "
          f"runner and its tasks): {median(driver_cpu):.2f} s = {1000 * median(driver_cpu) / n:.1f} ms per task")
    if t_w is not None:
        print(f"task.sh wrapper alone: {t_w:.2f} s wall = {100 * t_w / t_h:.0f}% of the hsm run; "
              f"{1000 * t_w * j / n:.1f} ms of slot time and {1000 * median(wrapper_cpu) / n:.1f} ms CPU per task "
              f"(bash -c true: {1000 * median(results['xargs-bash-cpu']) / n:.1f} ms CPU)")
    if leftovers_total:
        kinds: dict[str, int] = {}
        for c in leftovers_total:
            kind = "bash task.sh (a wrapper or its disk-monitor subshell)" if "task.sh" in c else c
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"WARNING: {len(leftovers_total)} processes of the hsm tasks outlived the run (killed by pid): "
              + ", ".join(f"{v}x '{k}'" for k, v in kinds.items()))
    print(f"load average (1/5 min) before each repeat: {', '.join(loads)}")
    if args.repeat > 1:
        for k, v in results.items():
            if k.endswith("-cpu"):
                continue
            print(f"  all runs {k}: {', '.join(fmt_s(x) for x in v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
