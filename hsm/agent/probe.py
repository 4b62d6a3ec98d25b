"""What a poll learns from status files. Standard library only (see the package docstring).

    probe            the tasks of a runner source (local or SSH host), with the runner's record
    probe_statuses   the tasks of job arrays (Slurm, PBS), here or on a login host
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .runner import runner_alive
from .started import Proc, attempt_live, read_started
from .status import alive, file_mark, read_status

TAIL_LINES = 30
TAIL_BYTES = 8192


def stderr_tail(task_dir: str) -> list[str]:
    """The last lines of a task's stderr.log ([] when there is none): a failure's evidence travels
    home with the poll that sees it, before the next collection brings the whole log."""
    try:
        with open(os.path.join(task_dir, "stderr.log"), "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace").splitlines()[-TAIL_LINES:]
    except OSError:
        return []


def with_tail(status: dict[str, Any], task_dir: str) -> dict[str, Any]:
    """`status`, with its stderr's tail when the attempt ended other than completed."""
    if status.get("state") in ("failed", "cancelled"):
        status["stderr_tail"] = stderr_tail(task_dir)
    return status


def _observation(status: dict[str, Any], mark: list[int] | None, task_dir: str) -> dict[str, Any]:
    obs = {k: v for k, v in status.items() if k not in ("schema", "task_id", "source")}
    obs["seen"] = mark
    return with_tail(obs, task_dir)


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """What this host knows of each requested task attempt.

    Request: {"runner_dir": DIR, "tasks_dir": DIR, "tasks": [[id, attempt, state, seen], ...]}
    with the task's state in the index and `seen`, the mark (`file_mark`) of the status file
    already folded into it. Answer: {"runner_alive": bool, "tasks": {id: observation}}, with
    an observation for every task whose state moved. A task whose process vanished without a
    final status is failed with reason `lost`.
    """
    runner_dir = Path(request["runner_dir"])
    tasks_dir = str(request["tasks_dir"])
    is_alive = runner_alive(runner_dir)
    # An attempt the runner has not started has no status file yet: read the runner's
    # record first and look at the files of started attempts only. This keeps an idle
    # poll of a long queue to one file read instead of a stat per queued task.
    started = read_started(runner_dir / "started")
    out: dict[str, Any] = {}
    begun = []
    for asked in request["tasks"]:
        if (asked[0], asked[1]) in started:
            begun.append(asked)
        elif is_alive and asked[2] == "submitted":
            out[asked[0]] = {"state": "queued", "attempt": asked[1]}
    # Latest started first: a task seen running here was then running together with every
    # task seen running after it (those started earlier and had not ended yet), so one probe
    # never reports more tasks running than the runner's slots. (Only the started are sorted:
    # a queue of a million waits behind a few.)
    order = {key: n for n, key in enumerate(started)}
    begun.sort(key=lambda t: -order[(t[0], t[1])])
    for task, attempt, state, seen in begun:
        observed = _observe_started(f"{tasks_dir}/{task}", attempt, state, seen,
                                    started[(task, attempt)], is_alive, runner_dir)
        if observed is not None:
            out[task] = observed
    return {"runner_alive": is_alive, "tasks": out}


def _observe_started(task_dir: str, attempt: int, state: str, seen: Any, proc: Proc | None,
                     runner_is_alive: bool, runner_dir: Path) -> dict[str, Any] | None:
    """The observation of one started attempt, None when nothing moved.

    The file is read every time and what it says is compared with the index: only started,
    unfinished attempts come here (a runner's few slots and what ended since the last poll),
    so this costs a handful of small reads, and no timestamp is trusted to say "unchanged".
    The mark is taken before the read, so the content is never older than the mark kept
    with it.
    """
    path = Path(task_dir, "status.yaml")
    mark = file_mark(path)
    status = read_status(path) if mark is not None else None
    if status is not None and status.get("attempt") == attempt:
        gone = status.get("state") == "running" and not alive(status.get("pid"), status.get("pid_start"))
        if gone and proc is None:
            # `started` was read before the attempt's P line was written; the runner writes that
            # line before the running status, so it is there now (and may name the runner).
            proc = read_started(runner_dir / "started").get((Path(task_dir).name, attempt))
        if gone and not (proc is not None and attempt_live(proc)):
            # Gone without a final status, unless it wrote one just now (or the runner that
            # started it directly is alive: it writes the status once it has reaped it).
            mark = file_mark(path)
            status = read_status(path) or status
            if status.get("state") == "running":
                return with_tail({"state": "failed", "reason": "lost", "attempt": attempt, "seen": mark,
                                  "host": status.get("host"), "start": status.get("start")}, task_dir)
        if status.get("state") != state or mark != seen:
            return _observation(status, mark, task_dir)
        return None
    # Started, but no status of this attempt yet.
    if (proc is not None and attempt_live(proc)) or (proc is None and runner_is_alive):
        return None  # the wrapper is starting up, or the runner has not written a direct task's status yet
    mark = file_mark(path)
    status = read_status(path)
    if status is not None and status.get("attempt") == attempt:
        return _observation(status, mark, task_dir)
    return with_tail({"state": "failed", "reason": "lost", "attempt": attempt}, task_dir)


def probe_statuses(request: dict[str, Any]) -> dict[str, Any]:
    """The status files of the requested task attempts; standard library only (it also runs on a login host).

    Request: {"tasks_dir": DIR, "job_ids": bool, "tasks": [[id, attempt, seen], ...]}, `seen`
    being the file's mark (`runner.file_mark`: inode, size, mtime) already folded into the
    index. Answer per task: `status` and `mark` when this attempt's status file is another
    version than the one seen, `unchanged` when it is the same, and `job_id`, the id of the
    job that ran this attempt, when asked. Each status write is a new file renamed into
    place, so a new version has a new mark even when the clock has not moved.
    """
    out: dict[str, Any] = {}
    for tid, attempt, seen in request["tasks"]:
        task_dir = os.path.join(request["tasks_dir"], tid)
        path = os.path.join(task_dir, "status.yaml")
        entry: dict[str, Any] = {}
        status = None
        mark = file_mark(path)  # before the read: the content is never older than the mark
        if mark is not None and mark == seen:
            entry["unchanged"] = True
        elif mark is not None:
            status = read_status(Path(path))
            if status is not None and status.get("attempt") == attempt:
                entry["status"] = with_tail(status, task_dir)
                entry["mark"] = mark
        if request.get("job_ids"):
            job = job_id(task_dir, attempt, status if mark is not None else {})
            if job:
                entry["job_id"] = job
        out[tid] = entry
    return out


def job_id(task_dir: str, attempt: int, status: dict[str, Any] | None) -> str | None:
    """The id of the job that ran this attempt: the wrapper writes it into status.yaml (from the
    job script's HSM_JOB_ID); a job script of an earlier hsm wrote it into a `job_id` file
    ("ATTEMPT JOBID"). `status` is the status file as read already (None: read it here)."""
    if status is None:
        status = read_status(Path(task_dir, "status.yaml")) or {}
    if status.get("attempt") == attempt and status.get("job_id"):
        return str(status["job_id"])
    try:
        with open(os.path.join(task_dir, "job_id"), encoding="utf-8") as fh:
            words = fh.read().split()
    except OSError:
        return None
    return words[1] if len(words) >= 2 and words[0] == str(attempt) else None
