#!/usr/bin/env python3
"""Results at scale: `hsm export`, `hsm aggregate`, `hsm monitor watch --once` and `hsm monitor errors`
on finished sweeps of 1,000, 10,000 and 100,000 tasks, beside what a user writes without them.

For each size N, in a temporary project (no hsm_config.yaml): `hsm expand` a grid of N
combinations; then the sweep is made finished the way a run leaves it, without running
anything: every task's index entry completed (5 % failed, with an stderr.log holding an
ImportError, recorded by `hsm aggregate`'s own error pass), a metrics.json per task with a
nested key, and a few log lines per task. Then, timed (median of --repeat):

  hsm export --format csv        one row per task, parameters and metrics as columns
  pandas loop (peer)             what a user writes instead: for each task dir, yaml.safe_load
                                 params.yaml and json.load metrics.json, pandas.DataFrame, to_csv
  hsm aggregate --metric acc     logs/sweep_aggregated.log, error lists, metrics.csv,
                                 performance_analysis.yaml and the three HTML reports
  hsm monitor watch --once       one frame of the live view (reads the index and log tails)
  hsm status                     for scale: the summary every view starts from
  hsm monitor errors             the error analysis on screen

Usage:
  python3 benchmarks/results_scale.py [--sizes 1000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import DEFAULT_HSM, fmt_s, hsm_version, loadavg, machine, median, remove_tree, table, timed

from hsm.sweep import Sweep

PEER = """\
import json, sys, yaml, pandas
from pathlib import Path
rows = []
for task in sorted(Path(sys.argv[1], "tasks").iterdir()):
    row = {"task_id": task.name, **yaml.safe_load((task / "params.yaml").read_text())}
    try:
        metrics = json.loads((task / "metrics.json").read_text())
    except OSError:
        metrics = {}
    row.update(pandas.json_normalize(metrics).iloc[0].to_dict() if metrics else {})
    rows.append(row)
pandas.DataFrame(rows).to_csv(sys.argv[2], index=False)
"""


def grid_config(n: int) -> str:
    """A grid of n combinations (n = 10^k or 10^k x small): lr x seed."""
    seeds = n // 10 if n >= 10 else 1
    return yaml.safe_dump({"grid": {"lr": [10.0 ** -i for i in range(1, n // seeds + 1)],
                                    "seed": list(range(seeds))}, "command": "true"})


def finish_sweep(sweep: Path) -> None:
    """Make the expanded sweep look finished: index states, metrics.json, stderr and log lines."""
    index = yaml.safe_load((sweep / "task_mapping.yaml").read_text())
    lines = []
    for n, (tid, entry) in enumerate(index["tasks"].items()):
        failed = n % 20 == 7
        start, end = f"2026-12-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z", f"2026-12-01T11:{n // 60 % 60:02d}:{n % 60:02d}Z"
        entry.update(state="failed" if failed else "completed", source="local", attempt=1, host="node",
                     start=start, end=end, duration=3600.0, exit_code=1 if failed else 0,
                     reason="exit_code" if failed else None)
        task = sweep / "tasks" / tid
        if failed:
            (task / "stderr.log").write_text("Traceback (most recent call last):\nModuleNotFoundError: "
                                             "No module named 'torchx'\n")
        else:
            (task / "metrics.json").write_text(json.dumps({"acc": 0.5 + (n % 97) / 200, "loss": {"train": 1.0 / (n + 1)}}))
        lines.append(f"[2026-12-01 10:00:00] INFO - {tid} running -> {entry['state']} on local\n")
    index["sources"] = {"local": {"type": "local", "max_parallel": 4}}
    Sweep.open(sweep).write_index(index)  # as hsm writes it, so reading it costs what it costs hsm
    (sweep / "logs" / "sources" / "local.log").write_text("".join(lines))


def bench_size(hsm: str, n: int, times: int, work: Path) -> list[list[str]]:
    project = work / f"p{n}"
    (project / "sweeps").mkdir(parents=True)
    (project / "sweeps" / "sweep_config.yaml").write_text(grid_config(n))
    sweep = Path(timed([hsm, "expand", "sweeps/sweep_config.yaml"], cwd=project).stdout.strip())
    finish_sweep(sweep)
    steps = [
        ("hsm export --format csv", [hsm, "export", str(sweep), "--format", "csv", "--output", str(work / "x.csv")]),
        ("pandas loop (peer)", [sys.executable, "-c", PEER, str(sweep), str(work / "peer.csv")]),
        ("hsm aggregate --metric acc", [hsm, "aggregate", str(sweep), "--metric", "acc"]),
        ("hsm monitor watch --once", [hsm, "monitor", "watch", str(sweep), "--once"]),
        ("hsm status", [hsm, "status", str(sweep)]),
        ("hsm monitor errors", [hsm, "monitor", "errors", str(sweep)]),
    ]
    rows = []
    for name, argv in steps:
        runs = [timed(argv, cwd=project).seconds for _ in range(times)]
        rows.append([f"{n:,}", name, fmt_s(median(runs)), " ".join(fmt_s(r) for r in runs)])
    sizes = {p.name: p.stat().st_size for p in (sweep / "reports").glob("*.html")}
    rows.append([f"{n:,}", "report sizes", "", ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes.items()))])
    remove_tree(project)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hsm", default=str(DEFAULT_HSM))
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    print(f"# results_scale: {machine()}, load {loadavg()}")
    print(f"# hsm: {hsm_version(args.hsm)}")
    work = Path(tempfile.mkdtemp(prefix="hsm-bench-results-", dir=args.tmpdir))
    try:
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            rows += bench_size(args.hsm, n, args.repeat, work)
        print(table(["tasks", "command", "median s", "runs"], rows))
    finally:
        remove_tree(work)
    os.sync()


if __name__ == "__main__":
    main()
