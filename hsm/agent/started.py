"""A runner's `started` file: which task attempts began, in which process, and which were taken back.

Standard library only (see the package docstring). One line per event, appended under an
flock by the runner (and by `revoke_attempts`):

    S TASK ATTEMPT [GPU_IDS]        about to start (written before the start: never started twice)
    P TASK ATTEMPT PID START        started: the process that ran it (its wrapper) and its start time
    P TASK ATTEMPT PID START RPID RSTART
                                    started by the runner RPID itself (no wrapper: `direct.py`),
                                    which writes the attempt's final status when PID ends
    R TASK ATTEMPT                  taken back before it started: it never starts

START and RSTART are start times in clock ticks since boot (`status.proc_start`): a pid with
the start time it had when recorded is the same process.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Dict, Optional, Tuple

from .status import alive

Key = Tuple[str, int]
# (pid, start) of the process that runs the attempt, then (pid, start) of the runner that
# started it when that runner records its end itself; None while only its S line is written.
Proc = Tuple[int, ...]
Started = Dict[Key, Optional[Proc]]


def parse_started(lines: list[str], started: Started, revoked: set[Key], gpus: object = None) -> None:
    """Fold lines of a `started` file: S and P lines into `started` (an S line's GPU ids into
    `gpus`, a `GpuBook`), R lines into `revoked`."""
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "S":
            started.setdefault((parts[1], int(parts[2])), None)
            if gpus is not None and len(parts) >= 4:
                gpus.note((parts[1], int(parts[2])), parts[3])  # type: ignore[attr-defined]
        elif len(parts) >= 5 and parts[0] == "P":
            started[(parts[1], int(parts[2]))] = tuple(int(p) for p in parts[3:7])
        elif len(parts) >= 3 and parts[0] == "R":
            revoked.add((parts[1], int(parts[2])))


def read_started(path: Path) -> Started:
    """Task attempts a runner has started: (task, attempt) -> its `Proc`, or None."""
    started: Started = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return started
    parse_started(lines, started, set())
    return started


def process_alive(proc: Proc) -> bool:
    """True while the process that runs the attempt is alive (a zombie is not)."""
    return alive(proc[0], proc[1])


def attempt_live(proc: Proc) -> bool:
    """True while the attempt may still get a final status: its process is alive, or the runner
    that started it directly is (it writes the status once it has reaped the process)."""
    return process_alive(proc) or (len(proc) >= 4 and alive(proc[2], proc[3]))


def revoke_attempts(runner_dir: Path, keys: list[Key]) -> tuple[list[Key], list[Key]]:
    """Take back attempts the runner has not started: (revoked, started).

    Under the lock on `started` that the runner holds while it decides to start a task,
    an `R` line is written for each attempt not started yet, so it never starts: revoking
    and starting are atomic with respect to each other, whether or not a runner is alive.
    """
    path = runner_dir / "started"
    revoked: list[Key] = []
    began: list[Key] = []
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.seek(0)
            started: Started = {}
            parse_started(fh.read().splitlines(), started, set())
            for key in keys:
                (began if key in started else revoked).append(key)
            if revoked:
                fh.write("".join(f"R {task} {attempt}\n" for task, attempt in revoked))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return revoked, began
