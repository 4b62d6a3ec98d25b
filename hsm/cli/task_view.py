"""`hsm status SWEEP --task TASK_ID`: one task, every attempt it made, and where each one's files are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from hsm.commands import attempts
from hsm.commands.errors import read_tail
from hsm.errors import BadInput
from hsm.paramtable import ParamTable
from hsm.sweep import Sweep

TAIL_SHOWN = 8


def task_data(sweep: Sweep, tid: str) -> dict[str, Any]:
    """The task's parameters, its state in the index and each of its attempts."""
    index = sweep.read_index()
    entry = index["tasks"].get(tid)
    if entry is None:
        raise BadInput(f"{sweep.id} has no task {tid!r} (tasks are named like {next(iter(index['tasks']), 'task_001')})")
    return {"id": tid, "state": entry["state"], "reason": entry.get("reason"),
            "params": ParamTable(sweep.paths).get(tid),
            "attempts": attempts.history(sweep, tid, entry)}


def task_text(data: dict[str, Any]) -> str:
    """The task as a person reads it: parameters, a table of attempts, each failure's stderr tail."""
    lines = [f"Task {data['id']}: {data['state']}" + (f" ({data['reason']})" if data.get("reason") else ""),
             "Parameters: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in data["params"].items())]
    rows = [[a.get("attempt"), a.get("source"), a.get("host"), a.get("outcome"), a.get("reason"), a.get("exit_code"),
             a.get("start"), a.get("end"), a.get("duration")] for a in data["attempts"]]
    if rows:
        lines.append(tabulate(rows, headers=["Attempt", "Source", "Host", "Outcome", "Reason", "Exit", "Start",
                                             "End", "Duration (s)"], tablefmt="simple_outline"))
    else:
        lines.append("No attempt yet.")
    for a in data["attempts"]:
        files = a.get("files", {})
        if files:
            where = Path(next(iter(files.values()))).parent
            lines.append(f"Attempt {a.get('attempt')}: {where}/{{{', '.join(files)}}}")
        stderr = files.get("stderr.log") or files.get("stderr_tail.log")
        if a.get("outcome") in ("failed", "cancelled") and stderr:
            tail = read_tail(Path(stderr), TAIL_SHOWN)
            if tail:
                lines.append(f"  last lines of stderr (attempt {a.get('attempt')}):")
                lines += [f"    {line}" for line in tail]
    return "\n".join(lines)
