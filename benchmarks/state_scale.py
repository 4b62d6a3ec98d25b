#!/usr/bin/env python3
"""State at scale: `hsm expand`, `hsm status` and an idle `hsm poll` on 10,000 and 100,000 tasks.

Design targets (docs: design.md section 6): on 100,000 tasks expand <= 10 s, status <= 2 s,
a poll that finds nothing new <= 2 s; on 10,000 tasks each <= 1 s.

For each size N, in a temporary project (no hsm_config.yaml):

  expand         a sweep config whose grid has N combinations, `command: "sleep 1000"`
  status         `hsm status SWEEP` and `hsm status SWEEP --json`, with every task pending
  assign         `--sources local:1`                         (not a target; for the record)
  submit         every task to the local runner, capped at 1  (not a target; for the record)
  poll #1        turns the N delivered tasks into queued / 1 running and writes the index
  poll (idle)    the timed one: the state is steady (one task sleeping, N-1 queued, no
                 status file changed since poll #1), so it must find nothing new; the script
                 checks that task_mapping.yaml was not rewritten
  status         again, on the submitted sweep (every task has a source and an attempt)
  cancel         cleans up (for the record)

Peers, on the same sweep directory, for scale:

  python3 -c pass                    interpreter start
  hsm --version                      hsm's start (imports), the floor of any hsm command
  find tasks -name params.yaml | wc  the directory walk floor
  python3 json.load(task_mapping)    reading the index, the floor of status and poll
  os.stat of N status.yaml (Python)  what a poll that looks at every task's file costs
  mkdir + 1 small file, N times      the file system floor of expand's layout (Python loop)

Usage:
  python3 benchmarks/state_scale.py [--sizes 10000,100000] [--repeat 3]

The cheap commands run --repeat times and the median is reported. On a 2-core VM the
100,000-task size takes several minutes, most of it in `hsm submit` and in removing the
temporary tree; `--sizes 10000` takes well under a minute.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
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

TARGETS = {  # size -> step -> seconds
    10_000: {"expand": 1.0, "status": 1.0, "status --json": 1.0, "poll (idle)": 1.0},
    100_000: {"expand": 10.0, "status": 2.0, "status --json": 2.0, "poll (idle)": 2.0},
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


def repeat(argv: list[str], times: int, cwd: Path) -> tuple[float, list[float]]:
    runs = [timed(argv, cwd=cwd).seconds for _ in range(times)]
    return median(runs), runs


STAT_ALL = (
    "import os,sys\n"
    "base=sys.argv[1]\n"
    "for d in os.listdir(base):\n"
    "    try: os.stat(base+'/'+d+'/status.yaml')\n"
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


def bench_size(hsm: str, n: int, times: int, work: Path, fs_floor: bool) -> list[dict]:
    rows: list[dict] = []

    def add(step: str, seconds: float, note: str = "", runs: list[float] | None = None) -> None:
        rows.append({"n": n, "step": step, "seconds": seconds, "target": TARGETS.get(n, {}).get(step),
                     "note": note, "runs": runs})
        target = TARGETS.get(n, {}).get(step)
        mark = "" if target is None else ("  ok" if seconds <= target else f"  MISS (target {target:g} s)")
        print(f"  {n:>7} {step:<38} {seconds:8.2f} s{mark}  {note}", flush=True)

    project = work / f"project-{n}"
    project.mkdir()
    config = project / "sweep_config.yaml"
    write_config(config, n)
    outputs = project / "outputs"
    sweep = outputs / f"bench_{n}"
    print(f"# {n} tasks (load {loadavg()})", flush=True)

    # Flush what earlier steps (or the previous size's removal) left dirty, so the creation
    # of N directories is not charged for someone else's writeback. Not timed.
    os.sync()
    t = timed([hsm, "expand", str(config), "--outputs", str(outputs), "--sweep-id", sweep.name], cwd=project)
    add("expand", t.seconds)
    count = sum(1 for _ in (sweep / "tasks").iterdir())
    if count != n:
        print(f"  expected {n} task dirs, found {count}", file=sys.stderr)
        raise SystemExit(1)

    s, runs = repeat([hsm, "status", str(sweep)], times, project)
    add("status", s, "all pending", runs)
    s, runs = repeat([hsm, "status", str(sweep), "--json"], times, project)
    add("status --json", s, "all pending", runs)

    add("assign --sources local:1", timed([hsm, "assign", str(sweep), "--sources", "local:1"], cwd=project).seconds)
    add("submit", timed([hsm, "submit", str(sweep)], cwd=project).seconds, "N argv files + 1 queue batch")
    add("poll #1 (records N-1 queued)", timed([hsm, "poll", str(sweep)], cwd=project).seconds)

    index = sweep / "task_mapping.yaml"
    before = digest(index)
    runs = []
    progress = ""
    for _ in range(times):
        t = timed([hsm, "poll", str(sweep)], cwd=project)
        runs.append(t.seconds)
        progress = (t.stderr.strip().splitlines() or [""])[-1]
    unchanged = digest(index) == before
    add("poll (idle)", median(runs), f"index unchanged: {'yes' if unchanged else 'NO'}; {progress}", runs)

    s, runs = repeat([hsm, "status", str(sweep)], times, project)
    add("status", s, "submitted: 1 running, N-1 queued", runs)
    s, runs = repeat([hsm, "status", str(sweep), "--json"], times, project)
    add("status --json", s, "submitted: 1 running, N-1 queued", runs)

    add("cancel", timed([hsm, "cancel", str(sweep)], cwd=project).seconds, "(cleanup)")
    wait_runner_gone(sweep)
    reap_leftovers(sweep)

    # Peers
    s, runs = repeat([sys.executable, "-c", "pass"], times, project)
    add("peer: python3 -c pass", s, "interpreter start", runs)
    s, runs = repeat([hsm, "--version"], times, project)
    add("peer: hsm --version", s, "hsm start-up, floor of every step", runs)
    s, runs = repeat(["bash", "-c", f"find {sweep / 'tasks'} -name params.yaml | wc -l"], times, project)
    add("peer: find tasks -name params.yaml|wc", s, "directory walk", runs)
    s, runs = repeat([sys.executable, "-c", "import json,sys; json.load(open(sys.argv[1]))", str(index)], times, project)
    add("peer: python3 json.load(index)", s, f"index {index.stat().st_size / 1e6:.1f} MB", runs)
    s, runs = repeat([sys.executable, "-c", STAT_ALL, str(sweep / "tasks")], times, project)
    add("peer: python3 os.stat N status.yaml", s, "a poll that stats every task", runs)
    if fs_floor:
        scratch = work / f"fs-floor-{n}"
        os.sync()
        t = timed([sys.executable, "-c", FS_FLOOR, str(scratch), str(n)], cwd=work)
        add("peer: python3 N x (mkdir + write)", t.seconds, "file system floor of expand")
        remove_tree(scratch)
    started = time.perf_counter()
    remove_tree(project)
    print(f"  (removed the {n}-task tree in {time.perf_counter() - started:.1f} s)", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated task counts (default 10000,100000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each cheap command; median reported (default 3)")
    ap.add_argument("--hsm", default=str(DEFAULT_HSM), help=f"hsm executable (default {DEFAULT_HSM})")
    ap.add_argument("--no-fs-floor", action="store_true", help="skip the mkdir+write file system floor")
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
    rows: list[dict] = []
    started = time.perf_counter()
    try:
        for n in sizes:
            rows += bench_size(args.hsm, n, args.repeat, work, not args.no_fs_floor)
    finally:
        if args.keep:
            print(f"# kept {work}")
        else:
            remove_tree(work)

    print()
    out = []
    for r in rows:
        target = r["target"]
        verdict = "" if target is None else ("ok" if r["seconds"] <= target else "MISS")
        out.append([f"{r['n']:,}", r["step"], fmt_s(r["seconds"]), "" if target is None else f"<= {target:g}",
                    verdict, r["note"]])
    print(table(["tasks", "step", "wall s", "target s", "result", "note"], out))
    misses = [r for r in rows if r["target"] is not None and r["seconds"] > r["target"]]
    print()
    print(f"{len(misses)} of {sum(1 for r in rows if r['target'] is not None)} targets missed"
          + (": " + ", ".join(f"{r['step']} at {r['n']:,} ({r['seconds']:.2f} s > {r['target']:g} s)" for r in misses)
             if misses else ""))
    if args.repeat > 1:
        print("all runs (s): " + "; ".join(
            f"{r['n']} {r['step']}: {', '.join(f'{x:.2f}' for x in r['runs'])}" for r in rows if r["runs"]))
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
