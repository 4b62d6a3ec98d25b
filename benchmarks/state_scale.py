#!/usr/bin/env python3
"""State at scale: `hsm expand`, `submit`, `status` and an idle `hsm poll` on 10,000, 100,000 and
1,000,000 tasks, with each command's peak RSS; and the files a finished task's directory holds.

Targets (see benchmarks/README.md): on 100,000 tasks expand <= 3 s, submit <= 10 s, status <= 1 s,
a poll that finds nothing new <= 1 s (status --json <= 2 s); on 1,000,000 tasks expand <= 30 s,
status <= 5 s; on 10,000 tasks expand, status and the idle poll <= 1 s each.

For each size N, in a temporary project (no hsm_config.yaml):

  expand         a sweep config whose grid has N combinations, `command: "sleep 1000"`
  status         `hsm status SWEEP` and `hsm status SWEEP --json`, with every task pending
  assign         `--sources local:1`                         (not a target; for the record)
  submit         every task to the local runner, capped at 1
  poll #1        turns the N delivered tasks into queued / 1 running and writes the index
  poll (idle)    the timed one: the state is steady (one task sleeping, N-1 queued, no
                 status file changed since poll #1), so it must find nothing new; the script
                 checks that task_mapping.yaml was not rewritten
  status         again, on the submitted sweep (every task has a source and an attempt)
  cancel         cleans up (for the record)
  hsm run        the driver on a second sweep of the same N tasks (`--sources local:1`): its
                 peak RSS from the start through expand, assign, submit, the poll that first
                 sees a task running and about RUN_POLLS more (one task sleeping, N-1 queued),
                 when it is stopped with Ctrl-C (SIGINT) and the sweep cancelled; its wall time
                 is that of the whole drive, for the record

Peers, on the same sweep directory, for scale:

  python3 -c pass                    interpreter start
  hsm --version                      hsm's start (imports), the floor of any hsm command
  find tasks -name params.yaml | wc  the directory walk (task dirs exist once their task started)
  python3 json.load(task_mapping)    reading the index, the floor of status and poll
  python3 read of task_params.jsonl  reading the parameter table, what submit and export start from
  os.stat of N status.yaml (Python)  what a poll that looks at every task's file costs
  mkdir + 1 small file, N times      the file system floor of a layout with a dir per task at
                                     expand (up to --fs-floor-max tasks: 1M dirs take minutes)

Then, once: a few real tasks run to the end on `local:2` (each writes metrics.json and a file in
results/), and the entries of each finished task's directory are counted, leaving out what the
task wrote itself.

Usage:
  python3 benchmarks/state_scale.py [--sizes 10000,100000,1000000] [--repeat 3]

The cheap commands run --repeat times and the median is reported; peak RSS is the largest of
the runs. On a 2-core VM the 1,000,000-task size takes a few minutes, most of it in submit,
the first poll, cancel and the `hsm run` of the second sweep; `--sizes 10000` takes well under
a minute.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_HSM,
    GNU_TIME,
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

TARGETS = {  # size -> step -> seconds
    10_000: {"expand": 1.0, "status": 1.0, "status --json": 1.0, "poll (idle)": 1.0},
    100_000: {"expand": 3.0, "submit": 10.0, "status": 1.0, "status --json": 2.0, "poll (idle)": 1.0},
    1_000_000: {"expand": 30.0, "status": 5.0},
}


def grid_for(n: int) -> list[tuple[str, list[str]]]:
    """Grid parameters whose product is `n`: a realistic mix of floats, strings and ints."""
    factors = []
    rest = n
    while rest % 10 == 0 and rest > 1:
        factors.append(10)
        rest //= 10
    if rest > 1:
        factors.append(rest)
    names = ["lr", "optimizer", "model.hidden_dim", "seed", "batch_size", "dropout", "wd", "p7", "p8", "p9"]
    params = []
    for i, size in enumerate(factors):
        name = names[i] if i < len(names) else f"p{i}"
        if name == "lr":
            values = [f"{10 ** -(1 + k / 3):.6g}" for k in range(size)]
        elif name == "optimizer":
            values = [f"'opt{k}'" for k in range(size)]
        elif name == "dropout":
            values = [f"{k / (size + 1):.3f}" for k in range(size)]
        else:
            values = [str(16 * (k + 1)) for k in range(size)]
        params.append((name, values))
    return params


def write_config(path: Path, n: int) -> None:
    lines = [f"# benchmark: {n} combinations", 'command: "sleep 1000"', "grid:"]
    for name, values in grid_for(n):
        lines.append(f"  {name}: [{', '.join(values)}]")
    lines += ["metadata:", "  description: state_scale benchmark"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def repeat(argv: list[str], times: int, cwd: Path) -> tuple[float, list[float], int]:
    """The median wall time of `times` runs, every run's, and the largest peak RSS (KB)."""
    runs = [timed(argv, cwd=cwd, rss=True) for _ in range(times)]
    return median([t.seconds for t in runs]), [t.seconds for t in runs], max(t.max_rss_kb for t in runs)


STAT_ALL = (
    "import json,os,sys\n"
    "base=sys.argv[1]\n"
    "for tid in json.load(open(sys.argv[2]))['tasks']:\n"
    "    try: os.stat(base+'/'+tid+'/status.yaml')\n"
    "    except FileNotFoundError: pass\n"
)
FS_FLOOR = (
    "import os,sys\n"
    "base,n=sys.argv[1],int(sys.argv[2])\n"
    "os.mkdir(base)\n"
    "for i in range(n):\n"
    "    d=f'{base}/task_{i:06d}'\n"
    "    os.mkdir(d)\n"
    "    with open(d+'/params.yaml','w') as fh: fh.write('lr: 0.1\\noptimizer: opt1\\nseed: 16\\n')\n"
)
READ_TABLE = "import json,sys\nfor line in open(sys.argv[1]): json.loads(line)\n"


class Rows:
    """The measured rows of one run, printed as they come."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, n: int, step: str, seconds: float, note: str = "", runs: list[float] | None = None,
            rss_kb: int = 0) -> None:
        target = TARGETS.get(n, {}).get(step)
        self.rows.append({"n": n, "step": step, "seconds": seconds, "target": target, "note": note, "runs": runs,
                          "rss_mb": rss_kb / 1024})
        mark = "" if target is None else ("  ok" if seconds <= target else f"  MISS (target {target:g} s)")
        print(f"  {n:>9,} {step:<38} {seconds:8.2f} s {rss_kb / 1024:7.0f} MB{mark}  {note}", flush=True)

    def timed(self, n: int, step: str, argv: list[str], cwd: Path, note: str = "") -> object:
        t = timed(argv, cwd=cwd, rss=True)
        self.add(n, step, t.seconds, note, rss_kb=t.max_rss_kb)
        return t

    def repeated(self, n: int, step: str, argv: list[str], cwd: Path, times: int, note: str = "") -> None:
        seconds, runs, rss = repeat(argv, times, cwd)
        self.add(n, step, seconds, note, runs, rss)


def bench_size(hsm: str, n: int, times: int, work: Path, fs_floor: bool, out: Rows) -> None:
    project = work / f"project-{n}"
    project.mkdir()
    config = project / "sweep_config.yaml"
    write_config(config, n)
    outputs = project / "outputs"
    sweep = outputs / f"bench_{n}"
    print(f"# {n:,} tasks (load {loadavg()})", flush=True)

    # Flush what earlier steps (or the previous size's removal) left dirty, so the creation
    # of the sweep is not charged for someone else's writeback. Not timed.
    os.sync()
    out.timed(n, "expand", [hsm, "expand", str(config), "--outputs", str(outputs), "--sweep-id", sweep.name], project)
    index = sweep / "task_mapping.yaml"
    # One line per task in the index (counted, not parsed: this process stays small).
    with open(index, encoding="utf-8") as fh:
        count = sum(1 for line in fh if line.startswith(' "'))
    if count != n:
        print(f"  expected {n} tasks in the index, found {count}", file=sys.stderr)
        raise SystemExit(1)

    out.repeated(n, "status", [hsm, "status", str(sweep)], project, times, "all pending")
    out.repeated(n, "status --json", [hsm, "status", str(sweep), "--json"], project, times, "all pending")
    out.timed(n, "assign --sources local:1", [hsm, "assign", str(sweep), "--sources", "local:1"], project)
    os.sync()
    out.timed(n, "submit", [hsm, "submit", str(sweep)], project, "1 queue batch (argv per task), no file per task")
    out.timed(n, "poll #1 (records N-1 queued)", [hsm, "poll", str(sweep)], project)

    before = digest(index)
    polls = [timed([hsm, "poll", str(sweep)], cwd=project, rss=True) for _ in range(times)]
    unchanged = digest(index) == before
    progress = (polls[-1].stderr.strip().splitlines() or [""])[-1]
    out.add(n, "poll (idle)", median([t.seconds for t in polls]), f"index unchanged: {'yes' if unchanged else 'NO'}; "
            f"{progress}", [t.seconds for t in polls], max(t.max_rss_kb for t in polls))

    out.repeated(n, "status", [hsm, "status", str(sweep)], project, times, "submitted: 1 running, N-1 queued")
    out.repeated(n, "status --json", [hsm, "status", str(sweep), "--json"], project, times,
                 "submitted: 1 running, N-1 queued")
    dirs = sum(1 for _ in (sweep / "tasks").iterdir())
    out.timed(n, "cancel", [hsm, "cancel", str(sweep)], project, "(cleanup)")
    wait_runner_gone(sweep)
    reap_leftovers(sweep)
    run_rss(hsm, n, project, median([t.seconds for t in polls]), out)
    peers(hsm, n, times, work, sweep, dirs, fs_floor, out)
    started = time.perf_counter()
    remove_tree(project)
    print(f"  (removed the {n:,}-task tree in {time.perf_counter() - started:.1f} s)", flush=True)


RUN_POLLS = 3  # polls of `hsm run` after its submit, before it is stopped


def run_rss(hsm: str, n: int, project: Path, idle_poll: float, out: Rows) -> None:
    """Peak RSS of `hsm run` on an N-task sweep: expand, assign, submit, the first poll that sees
    the task running, RUN_POLLS more polls (each the interval of 1 s and an idle poll's time), Ctrl-C."""
    config, outputs = project / "sweep_config.yaml", project / "outputs-run"
    sweep = outputs / f"run_{n}"
    with open(project / "run.log", "w") as err, tempfile.NamedTemporaryFile("r") as peak:
        argv = [hsm, "run", "--config", str(config), "--sources", "local:1", "--poll-interval", "1", "--no-progress",
                "--outputs", str(outputs), "--sweep-id", sweep.name]
        if GNU_TIME:
            argv = [GNU_TIME, "-f", "%M", "-o", peak.name, *argv]
        started = time.perf_counter()
        # Its own process group, so Ctrl-C reaches hsm (GNU time ignores it and reports the peak).
        proc = subprocess.Popen(argv, cwd=project, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            seen = wait_running(sweep / "task_mapping.yaml", proc, deadline=time.monotonic() + 1800)
            if seen:
                time.sleep(RUN_POLLS * (1 + idle_poll))
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        seconds = time.perf_counter() - started
        words = peak.read().split()
    rss_kb = int(words[-1]) if words and words[-1].isdigit() else 0
    what = f"expand..submit, polls until {RUN_POLLS} after the first saw a task running, Ctrl-C" if seen else \
        "NO task was seen running before the deadline"
    out.add(n, "hsm run (peak RSS)", seconds, what + ("" if GNU_TIME else "; no GNU time: RSS not measured"),
            rss_kb=rss_kb)
    timed([hsm, "cancel", str(sweep)], cwd=project, check=False)
    wait_runner_gone(sweep)
    reap_leftovers(sweep)


def wait_running(index: Path, proc: subprocess.Popen, deadline: float) -> bool:
    """Wait until the index records a running task (a poll after the submit saw it); False when
    the driver ended or the deadline passed first."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with open(index, encoding="utf-8") as fh:
                if any('"state": "running"' in line for line in fh):
                    return True
        except OSError:
            pass
        time.sleep(1.0)
    return False


def peers(hsm: str, n: int, times: int, work: Path, sweep: Path, dirs: int, fs_floor: bool, out: Rows) -> None:
    """The peers, on the same sweep directory."""
    index, table_file = sweep / "task_mapping.yaml", sweep / "task_params.jsonl"
    out.repeated(n, "peer: python3 -c pass", [sys.executable, "-c", "pass"], sweep, times, "interpreter start")
    out.repeated(n, "peer: hsm --version", [hsm, "--version"], sweep, times, "hsm start-up, floor of every step")
    out.repeated(n, "peer: find tasks -name params.yaml|wc", ["bash", "-c", f"find {sweep / 'tasks'} -name params.yaml"
                                                             " | wc -l"], sweep, times,
                 f"directory walk ({dirs:,} task dirs: the started tasks)")
    out.repeated(n, "peer: python3 json.load(index)", [sys.executable, "-c", "import json,sys; json.load(open(sys.argv[1]))",
                                                      str(index)], sweep, times,
                 f"index {index.stat().st_size / 1e6:.1f} MB")
    out.repeated(n, "peer: python3 read task_params.jsonl", [sys.executable, "-c", READ_TABLE, str(table_file)], sweep,
                 times, f"parameter table {table_file.stat().st_size / 1e6:.1f} MB, json.loads per line")
    out.repeated(n, "peer: python3 os.stat N status.yaml", [sys.executable, "-c", STAT_ALL, str(sweep / "tasks"),
                                                           str(index)], sweep, times, "a poll that stats every task")
    if fs_floor:
        scratch = work / f"fs-floor-{n}"
        os.sync()
        out.timed(n, "peer: python3 N x (mkdir + write)", [sys.executable, "-c", FS_FLOOR, str(scratch), str(n)], work,
                  "file system floor of a dir per task at expand")
        remove_tree(scratch)


TASK_PY = """\
import json, os, sys
print("stdout of", os.environ["HSM_TASK_ID"])
print("stderr of", os.environ["HSM_TASK_ID"], file=sys.stderr)
with open(os.path.join(os.environ["HSM_TASK_DIR"], "metrics.json"), "w") as fh:
    json.dump({"x": float(sys.argv[1])}, fh)
with open(os.path.join(os.environ["HSM_OUTPUT_DIR"], "model.txt"), "w") as fh:
    fh.write("weights")
"""
WRITTEN_BY_THE_TASK = ("metrics.json", "results")


def files_per_task(hsm: str, work: Path, tasks: int = 4) -> dict[str, object]:
    """Run `tasks` real tasks to the end on local:2; what their directories hold but what they wrote."""
    project = work / "project-files"
    project.mkdir()
    (project / "task.py").write_text(TASK_PY, encoding="utf-8")
    config = project / "sweep_config.yaml"
    values = ", ".join(str(i) for i in range(1, tasks + 1))
    config.write_text(f'command: "{{python}} task.py {{x}}"\ngrid:\n  x: [{values}]\n', encoding="utf-8")
    t = timed([hsm, "run", "--config", str(config), "--sources", "local:2", "--poll-interval", "0.2", "--no-progress"],
              cwd=project)
    sweep = Path(t.stdout.strip().splitlines()[-1])
    listed = {d.name: sorted(p.name for p in d.iterdir() if p.name not in WRITTEN_BY_THE_TASK)
              for d in sorted((sweep / "tasks").iterdir())}
    remove_tree(project)
    counts = [len(names) for names in listed.values()]
    return {"tasks": len(listed), "most": max(counts), "least": min(counts),
            "names": sorted({name for names in listed.values() for name in names})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    help="comma-separated task counts (default 10000,100000,1000000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each cheap command; median reported (default 3)")
    ap.add_argument("--hsm", default=str(DEFAULT_HSM), help=f"hsm executable (default {DEFAULT_HSM})")
    ap.add_argument("--no-fs-floor", action="store_true", help="skip the mkdir+write file system floor")
    ap.add_argument("--fs-floor-max", type=int, default=100_000,
                    help="largest size the mkdir+write floor runs at (default 100000: a million dirs take minutes)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--tmpdir", default=None,
                    help="where the temporary project goes (default: $TMPDIR or /tmp; /dev/shm takes the disk out)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(f"# state_scale: sizes {sizes}, repeat {args.repeat}")
    work = Path(tempfile.mkdtemp(prefix="hsm-bench-state-", dir=args.tmpdir))
    print(f"# {_dt.datetime.now().isoformat(timespec='seconds')}  {machine()}")
    print(f"# hsm: {hsm_version(args.hsm)}")
    print(f"# working in {work} ({filesystem(work)})")
    out = Rows()
    started = time.perf_counter()
    try:
        files = files_per_task(args.hsm, work)
        for n in sizes:
            bench_size(args.hsm, n, args.repeat, work, not args.no_fs_floor and n <= args.fs_floor_max, out)
    finally:
        if args.keep:
            print(f"# kept {work}")
        else:
            remove_tree(work)
    report(out.rows, files, args.repeat)
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")
    return 0


def report(rows: list[dict], files: dict[str, object], times: int) -> None:
    """The table of every row, the targets missed, every run, the files per finished task."""
    print()
    lines = []
    for r in rows:
        target = r["target"]
        verdict = "" if target is None else ("ok" if r["seconds"] <= target else "MISS")
        lines.append([f"{r['n']:,}", r["step"], fmt_s(r["seconds"]), "" if target is None else f"<= {target:g}",
                      verdict, f"{r['rss_mb']:.0f}", r["note"]])
    print(table(["tasks", "step", "wall s", "target s", "result", "peak RSS MB", "note"], lines))
    misses = [r for r in rows if r["target"] is not None and r["seconds"] > r["target"]]
    print()
    print(f"{len(misses)} of {sum(1 for r in rows if r['target'] is not None)} targets missed"
          + (": " + ", ".join(f"{r['step']} at {r['n']:,} ({r['seconds']:.2f} s > {r['target']:g} s)" for r in misses)
             if misses else ""))
    if times > 1:
        print("all runs (s): " + "; ".join(
            f"{r['n']} {r['step']}: {', '.join(f'{x:.2f}' for x in r['runs'])}" for r in rows if r["runs"]))
    print(f"files per finished local task ({files['tasks']} tasks run to the end; what they wrote themselves, "
          f"{', '.join(WRITTEN_BY_THE_TASK)}, left out): {files['least']}-{files['most']}: {', '.join(files['names'])}"
          if files["least"] != files["most"] else
          f"files per finished local task ({files['tasks']} tasks run to the end; what they wrote themselves, "
          f"{', '.join(WRITTEN_BY_THE_TASK)}, left out): {files['most']}: {', '.join(files['names'])}")


if __name__ == "__main__":
    sys.exit(main())
