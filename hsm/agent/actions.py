"""The actions a caller asks of the agent: one request in, one answer out.

Standard library only (see the package docstring). Each action takes the request (a
mapping decoded from JSON) and returns (answer, exit code):

    home      the login's home directory (to resolve `~` in configured paths)
    state     the project copy's git state, or the sha256 of the listed files
    start     check the project copy (when asked), queue a batch (its `gpus: auto` read from
              nvidia-smi -L here), start the runner
    poll      the runner's probe; a runner that is gone while tasks wait is started again
    cancel    queue a cancel batch and stop the running task wrappers
    revoke    take back attempts the runner has not started; say which had started
    health    free disk at the project dir, load, CPUs, memory
    statuses  the status files of job-array tasks (a login host's share of an HPC poll)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from .gpus import resolve as resolve_gpus
from .probe import probe, probe_statuses
from .project import matches, project_state
from .started import revoke_attempts
from .status import alive, read_status

MISMATCH = 3  # exit code of `start` when the project copy differs
HOME_CHANGED = 4  # exit code of `start` when the paths were built for another home dir
CANCEL_GRACE = 10.0  # seconds a cancelled task gets to write its final status
WAITING = ("submitted", "queued")

Answer = Tuple[Dict[str, Any], int]


BATCH_TASKS = 10_000  # tasks per queue file: the runner decodes one file at a time, which bounds its memory


def write_batch(runner_dir: str, kind: str, payload: dict[str, Any]) -> None:
    """Put a batch in a runner's queue: new files, each written whole and renamed into place.

    A batch of more than BATCH_TASKS tasks goes as several files, read in order (their names
    sort so), each with the batch's other fields.
    """
    queue = os.path.join(runner_dir, "queue")
    os.makedirs(queue, exist_ok=True)
    stem = f"{time.time_ns():020d}-{os.getpid()}-{kind}"
    tasks = payload.get("tasks") or []
    if len(tasks) <= BATCH_TASKS:
        _write_queue_file(queue, f"{stem}.json", payload)
        return
    for part, first in enumerate(range(0, len(tasks), BATCH_TASKS)):
        _write_queue_file(queue, f"{stem}-{part:05d}.json", {**payload, "tasks": tasks[first:first + BATCH_TASKS]})


def _write_queue_file(queue: str, name: str, payload: dict[str, Any]) -> None:
    tmp = os.path.join(queue, f".{name}.tmp")
    # Readable by its owner only: a batch may carry the submitter's environment.
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(payload))  # dumps: in one go, in C (dump streams it through Python)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(queue, name))


def agent_argv() -> list[str]:
    """How to start this agent again as a process: its zip application, or its own entry file."""
    here = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if here.endswith(".pyz") and os.path.isfile(here):
        return [sys.executable, here]
    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")]


def start_runner(runner_dir: str) -> None:
    """Start a runner for `runner_dir`, detached; one already serving it makes this one leave."""
    # Its own session, no tie to the caller (an ssh session, an hsm command): it outlives both.
    with open(os.path.join(runner_dir, "runner.log"), "a", encoding="utf-8") as log:
        subprocess.Popen(
            [*agent_argv(), "serve", runner_dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            cwd=runner_dir,
        )


def action_home(req: dict[str, Any]) -> Answer:
    """The login's home directory."""
    return {"home": os.path.expanduser("~")}, 0


def action_state(req: dict[str, Any]) -> Answer:
    """The project copy, described like this machine's `expected` one (and the home, for hsm's cache)."""
    return {"observed": project_state(req["project_dir"], req["expected"]), "home": os.path.expanduser("~")}, 0


def action_start(req: dict[str, Any]) -> Answer:
    """Check the copy (when asked), queue the batch, start the runner; exit MISMATCH on a differing copy."""
    home = os.path.expanduser("~")
    if req.get("home") and req["home"] != home:
        return {"home": home}, HOME_CHANGED
    expected = req.get("expected")
    observed = None
    if expected is not None:
        observed = project_state(req["project_dir"], expected)
        if not matches(expected, observed):
            return {"started": False, "observed": observed}, MISMATCH
    runner_dir = req["runner_dir"]
    gpus = resolve_gpus(req["batch"])  # the machine that runs the tasks says which GPUs it has
    # The batch comes here, after the task files: a live runner never sees a task before its argv.
    write_batch(runner_dir, "submit", req["batch"])
    start_runner(runner_dir)
    return {"started": True, "observed": observed, **gpus}, 0


def action_poll(req: dict[str, Any]) -> Answer:
    """The runner's probe of the requested tasks; restart a runner that is gone while tasks wait."""
    if not os.path.isdir(req["runner_dir"]):
        raise RuntimeError(f"{req['runner_dir']}: no such directory (the sweep was never submitted here, "
                           "or its directory was removed)")
    answer = probe(req)
    if not answer["runner_alive"] and any(t[2] in WAITING for t in req["tasks"]):
        # Tasks wait and nobody serves them (the host rebooted, the runner was killed).
        start_runner(req["runner_dir"])
        answer["restarted"] = True
    return answer, 0


def action_cancel(req: dict[str, Any]) -> Answer:
    """Queue a cancel batch, stop the running wrappers, kill what outlives the grace period."""
    runner_dir, tasks_dir = req["runner_dir"], req["tasks_dir"]
    if not os.path.isdir(runner_dir):
        return {"signalled": 0, "killed": 0}, 0
    keys = [(str(t), int(a)) for t, a in req["tasks"]]
    write_batch(runner_dir, "cancel", {"cancel": [list(k) for k in keys]})
    # The runner may be gone while its tasks still run: stop them directly as well.
    signalled, killed = stop_attempts(tasks_dir, keys, float(req.get("grace", CANCEL_GRACE)))
    return {"signalled": signalled, "killed": killed}, 0


def stop_attempts(tasks_dir: str, keys: list[tuple[str, int]], grace: float) -> tuple[int, int]:
    """Stop the running processes of these attempts; kill what outlives `grace` seconds.

    Used by a cancel in case the runner is gone while its tasks still run. The process in the
    status file alone gets TERM: a wrapper's trap stops the command and writes the final
    status, which a signal to its whole group could cut short; a command the runner started
    itself is ended as the wrapper would end it, and the runner records why. Returns
    (signalled, killed).
    """
    waiting: list[tuple[int, int | None]] = []
    for task, attempt in keys:
        status = read_status(Path(tasks_dir, task, "status.yaml"))
        if not status or status.get("attempt") != attempt or status.get("state") != "running":
            continue
        pid, start = status.get("pid"), status.get("pid_start")
        if isinstance(pid, int) and alive(pid, start):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            waiting.append((pid, start))
    signalled = len(waiting)
    deadline = time.monotonic() + grace
    while waiting and time.monotonic() < deadline:
        waiting = [(p, s) for p, s in waiting if alive(p, s)]
        time.sleep(0.05)
    for pid, _ in waiting:
        try:
            os.killpg(pid, signal.SIGKILL)  # it leads its own session: all of it
        except ProcessLookupError:
            pass
    return signalled, len(waiting)


def action_revoke(req: dict[str, Any]) -> Answer:
    """Take back the attempts not started yet: they never start; the others are left to run."""
    runner_dir = req["runner_dir"]
    keys = [(str(t), int(a)) for t, a in req["tasks"]]
    if not os.path.isdir(runner_dir):
        return {"revoked": [list(k) for k in keys], "started": []}, 0  # nothing was ever queued here
    revoked, started = revoke_attempts(Path(runner_dir), keys)
    return {"revoked": [list(k) for k in revoked], "started": [list(k) for k in started]}, 0


def action_health(req: dict[str, Any]) -> Answer:
    """Free disk at the project dir (or its nearest existing parent), load, CPUs, memory."""
    path = req.get("project_dir") or os.path.expanduser("~")
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    st = os.statvfs(path)
    mem = meminfo()
    return {
        "path": path,
        "free_bytes": st.f_bavail * st.f_frsize,
        "total_bytes": st.f_blocks * st.f_frsize,
        "load1": os.getloadavg()[0],
        "cpus": os.cpu_count() or 1,
        "mem_total": mem.get("MemTotal"),
        "mem_available": mem.get("MemAvailable"),
    }, 0


def meminfo() -> dict[str, int]:
    """MemTotal and MemAvailable of this machine in bytes (empty where /proc/meminfo is missing)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def action_statuses(req: dict[str, Any]) -> Answer:
    """The status files of job-array tasks (see `probe.probe_statuses`)."""
    return probe_statuses(req), 0


ACTIONS: dict[str, Callable[[dict[str, Any]], Answer]] = {
    "home": action_home,
    "state": action_state,
    "start": action_start,
    "poll": action_poll,
    "cancel": action_cancel,
    "revoke": action_revoke,
    "health": action_health,
    "statuses": action_statuses,
}


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def dispatch(action: str, request: dict[str, Any]) -> Answer:
    """Run one action. Paths may come as `~/x` (the caller did not know this home yet)."""
    for key in ("project_dir", "runner_dir", "tasks_dir"):
        if request.get(key):
            request[key] = _absolute(request[key])
    batch = request.get("batch")
    if isinstance(batch, dict) and batch.get("tasks_dir"):
        batch["tasks_dir"] = _absolute(batch["tasks_dir"])
    return ACTIONS[action](request)
