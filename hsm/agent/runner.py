"""The detached runner: works through one source's queue, at most N tasks at once.

Standard library only (see the package docstring). Started as `AGENT serve RUNNER_DIR`.
A runner directory holds:

    task.sh        the rendered task wrapper (templates/task.sh)
    queue/         batch files written by `hsm submit` and `hsm cancel`, read in name order;
                   a submit batch lists each attempt with its argv and params.yaml text: the
                   record of what it runs (the runner makes the task's directory at its start)
    started        append-only: one line per task attempt before and after it is started
                   (`S`, with the GPU ids it gets if any, and `P`), or taken back before it
                   started (`R`, see `revoke_attempts`); GPU ids are shared out from it (gpus.py)
    runner.pid     "PID START" of the live runner (removed when it exits)
    runner.log     what the runner did
    lock           flock held by the live runner: at most one runner per directory

Each task runs through task.sh, or, when its batch says `direct` (hsm's own wrapper, no conda
env), is started by the runner itself, which records its status as task.sh would (direct.py).

The runner keeps running after hsm exits and leaves when its queue is empty. A second
runner started while one is alive exits at once, so `hsm submit` can always start one.
A task attempt written in `started` is never started again, so a runner that crashed and
was restarted does not run a task twice.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .direct import DirectTask, settings_of, start_direct
from .gpus import GpuBook, ids_text
from .slot import Slot
from .started import Started, parse_started
from .status import alive, free_kb, proc_start

LINGER = 3.0  # seconds an idle runner waits for more work before it leaves
QUEUE_SCAN = 0.2  # seconds between looks at the queue while tasks run
STOP_GRACE = 10.0  # seconds a runner told to stop gives its tasks to end before it kills them


def _log(fh: Any, message: str) -> None:
    fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}\n")
    fh.flush()


# An attempt waiting to start: task, attempt, tasks dir, environment, argv, params.yaml text and
# the batch's `direct` settings (argv and params None: the wrapper reads the files hsm put in the
# task's directory, as for a batch of an earlier hsm; direct None: task.sh runs it). Kept small:
# a runner may hold a million of them, and they share their batch's environment and settings.
Pending = Tuple[str, int, str, Optional[Dict[str, str]], Optional[Tuple[str, ...]], Optional[str],
                Optional[Dict[str, str]]]


def starting(start: list[Any]) -> tuple[tuple[str, ...] | None, str | None]:
    """A batch entry's argv and params.yaml text ({"argv": [...], "params_yaml": TEXT} after the
    task and attempt); the arguments interned, as tasks share most of them."""
    spec = start[0] if start and isinstance(start[0], dict) else {}
    argv = tuple(sys.intern(str(a)) for a in spec["argv"]) if spec.get("argv") else None
    text = spec.get("params_yaml")
    return argv, (str(text) if text is not None else None)


def write_params(task_dir: str, text: str) -> None:
    """The task's params.yaml (a copy of its line in the sweep's parameter table, for people and
    the training script), unless there: written whole and renamed into place."""
    path = os.path.join(task_dir, "params.yaml")
    if os.path.exists(path):  # a retry: the parameters of a task never change
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def runner_alive(runner_dir: Path) -> bool:
    """True when a runner is serving `runner_dir` now."""
    try:
        pid, start = (int(x) for x in (runner_dir / "runner.pid").read_text().split()[:2])
    except (OSError, ValueError):
        return False
    return alive(pid, start)


class Runner:
    """Works through the queue of one runner directory."""

    def __init__(self, runner_dir: Path) -> None:
        self.dir = runner_dir
        self.queue_dir = runner_dir / "queue"
        self.seen: set[str] = set()
        self.pending: deque[Pending] = deque()
        self.running: dict[int, Slot] = {}
        self.revoked: set[tuple[str, int]] = set()
        self.tasks_dir = ""  # where the tasks of the latest batch live (watched for free disk)
        self.max_parallel = 1
        # Free-disk floor and check interval of the sweep: the runner watches the disk for
        # all its tasks at once, instead of a monitor process in every task.
        self.disk: dict[str, int] = {}
        self.disk_signalled: set[int] = set()
        self.lock_fd: int | None = None
        self.identity = f"{os.getpid()} {proc_start(os.getpid()) or 0}"  # on the P lines of direct tasks
        # Open for the runner's whole life, which is this object's.
        self.log = open(runner_dir / "runner.log", "a", encoding="utf-8")  # noqa: SIM115
        self.started_fh = open(runner_dir / "started", "a+", encoding="utf-8")  # noqa: SIM115
        self.started: Started = {}
        self.started_read = 0  # how far `started` has been read
        self.gpus = GpuBook()  # the GPU ids of the latest batch, and which attempts hold which
        self.catch_up()

    def catch_up(self) -> None:
        """Read what was appended to `started` since the last read (other runners' starts, revokes)."""
        self.started_fh.seek(self.started_read)
        text = self.started_fh.read()
        complete = text[: text.rfind("\n") + 1]
        self.started_read += len(complete.encode("utf-8"))
        parse_started(complete.splitlines(), self.started, self.revoked, self.gpus)

    def acquire(self) -> bool:
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self.lock_fd = fd
        tmp = self.dir / f".runner.pid.{os.getpid()}"
        tmp.write_text(f"{self.identity}\n")
        os.replace(tmp, self.dir / "runner.pid")
        # Another runner may have started tasks since this one read the file.
        self.catch_up()
        return True

    def release(self) -> None:
        try:
            os.unlink(self.dir / "runner.pid")
        except FileNotFoundError:
            pass
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def scan(self) -> bool:
        """Read queue files not seen yet; True when there were any."""
        try:
            names = sorted(n for n in os.listdir(self.queue_dir) if n.endswith(".json") and n not in self.seen)
        except FileNotFoundError:
            return False
        for name in names:
            self.seen.add(name)
            try:
                batch = json.loads((self.queue_dir / name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                _log(self.log, f"skipping unreadable queue file {name}: {exc}")
                continue
            if "max_parallel" in batch:
                self.max_parallel = max(1, int(batch["max_parallel"]))
            if isinstance(batch.get("disk"), dict):
                self.disk = {k: int(v) for k, v in batch["disk"].items()}
            self.gpus.configure(batch)
            tasks_dir = batch.get("tasks_dir", "")
            if tasks_dir:
                self.tasks_dir = tasks_dir
            env = batch.get("env") if isinstance(batch.get("env"), dict) else None
            direct = settings_of(batch)
            for task, attempt, *start in batch.get("tasks", []):
                key = (task, int(attempt))
                if key not in self.started and key not in self.revoked:
                    argv, params_yaml = starting(start)
                    self.pending.append((task, int(attempt), tasks_dir, env, argv, params_yaml,
                                         direct if argv else None))
            cancel = [(t, int(a)) for t, a in batch.get("cancel", [])]
            if cancel:
                self.cancel(set(cancel))
        return bool(names)

    def cancel(self, keys: set[tuple[str, int]]) -> None:
        self.revoked |= keys
        self.pending = deque(p for p in self.pending if (p[0], p[1]) not in keys)
        for pid, slot in list(self.running.items()):
            if (slot.task, slot.attempt) in keys:
                _log(self.log, f"cancel {slot.task} attempt {slot.attempt} (pid {pid})")
                slot.stop("cancelled")

    def stop_all(self) -> None:
        """Cancel everything, give the running tasks STOP_GRACE seconds to end and record why, then
        kill the process groups of those still running: a runner told to stop always ends."""
        self.cancel({(s.task, s.attempt) for s in self.running.values()} | {(p[0], p[1]) for p in self.pending})
        deadline = time.monotonic() + STOP_GRACE
        for slot in list(self.running.values()):
            slot.end_by(deadline, lambda message: _log(self.log, message))
        self.reap()

    def claim_next(self) -> list[Pending]:
        """The attempts to start now, each written in `started` first (under its lock, so a
        revoke either comes before and the attempt never starts, or after and sees it started)."""
        chosen: list[Pending] = []
        fcntl.flock(self.started_fh.fileno(), fcntl.LOCK_EX)
        try:
            self.catch_up()
            held = self.gpus.held(self.started) if self.gpus.gpus else []
            while self.pending and len(self.running) + len(chosen) < self.max_parallel:
                waiting = self.pending.popleft()
                task, attempt = waiting[0], waiting[1]
                key = (task, attempt)
                if key in self.started or key in self.revoked:
                    continue
                ids = self.gpus.take(key, held) if self.gpus.gpus else ()
                if ids is None:  # too few GPU ids free: it waits for a task to end
                    self.pending.appendleft(waiting)
                    break
                # Written before the start, so a restarted runner never starts it again.
                self.started_fh.write(f"S {task} {attempt}{' ' + ids_text(ids) if ids else ''}\n")
                self.started[key] = None
                chosen.append(waiting)
            self.started_fh.flush()
        finally:
            fcntl.flock(self.started_fh.fileno(), fcntl.LOCK_UN)
        return chosen

    def start_next(self) -> None:
        if not self.pending or len(self.running) >= self.max_parallel:
            return
        for task, attempt, tasks_dir, env, argv, params_yaml, direct in self.claim_next():
            task_dir = os.path.join(tasks_dir, task)
            try:
                for sub in ("results", "tmp"):
                    os.makedirs(os.path.join(task_dir, sub), exist_ok=True)
                if params_yaml is not None:
                    write_params(task_dir, params_yaml)
                # The environment of the command that submitted the attempt, when it sent one.
                env = dict(env if env is not None else os.environ)
                env["HSM_RUNNER"] = "1"  # the wrapper leaves its TMPDIR to this runner (`reap`)
                self.gpus.environment((task, attempt), env)
                # Measured here for all tasks: the wrapper checks this figure against its minimum
                # instead of running df, and leaves the watching of the floor to this runner.
                free = free_kb(task_dir) if self.disk else None
                job = DirectTask(task, attempt, task_dir, direct["source"], env, free) if direct and argv else None
                if job is not None and direct is not None and argv:
                    proc = start_direct(job, list(argv), env, direct, self.disk.get("min_free_kb", 0),
                                        lambda message: _log(self.log, message))
                else:
                    if free is not None:
                        env.update({"HSM_DISK_FREE_KB": str(free),
                                    "HSM_DISK_WATCHED": "1" if self.disk.get("interval", 0) > 0 else "0"})
                    proc = subprocess.Popen(
                        ["bash", str(self.dir / "task.sh"), task_dir, str(attempt), *(argv or ())],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                        start_new_session=True, env=env,
                    )
            except OSError as exc:
                _log(self.log, f"could not start {task} attempt {attempt}: {exc}")
                proc = None
            if proc is None:  # not started (why is in its status when it has one)
                self.gpus.release((task, attempt))
                continue
            start = proc_start(proc.pid) or 0
            supervisor = f" {self.identity}" if job is not None else ""
            self.started_fh.write(f"P {task} {attempt} {proc.pid} {start}{supervisor}\n")
            self.started_fh.flush()
            self.started[(task, attempt)] = (proc.pid, start)
            self.running[proc.pid] = Slot(proc, task, attempt, task_dir, job)
            if job is not None:
                job.pid, job.pid_start = proc.pid, start
                # At once, as task.sh does, even for a task of a few milliseconds: the padded file
                # is what the final status is written over when the disk fills meanwhile.
                try:
                    job.write_running()
                except OSError as exc:
                    _log(self.log, f"could not write the running status of {task} attempt {attempt}: {exc}")

    def watch_disk(self, tasks_dir: str) -> None:
        """Stop every running task (failed, reason disk) when free disk is below the floor."""
        floor = self.disk.get("floor_kb", 0)
        if not self.running or not floor:
            return
        free = free_kb(tasks_dir)
        if free >= floor:
            return
        for pid, slot in self.running.items():
            if pid not in self.disk_signalled:
                _log(self.log, f"disk below floor ({free} KB < {floor} KB): stopping {slot.task} attempt {slot.attempt}")
                self.disk_signalled.add(pid)
                slot.stop("disk")

    def reap(self) -> bool:
        """Forget finished tasks, writing the final status of direct ones and removing the TMPDIR
        they left empty; True when a slot came free."""
        ended = []
        for pid, slot in list(self.running.items()):
            code = slot.proc.poll()
            if code is not None:
                del self.running[pid]
                ended.append((slot, code))
        if not ended:
            return False
        # A task may have ended because of a cancel: `hsm cancel` writes its batch before it
        # signals, so reading the queue now tells a cancelled direct task from a failed one,
        # and keeps a revoked task from starting.
        self.scan()
        for slot, code in ended:
            if slot.direct is not None:
                if code != 0 and (slot.task, slot.attempt) in self.revoked:
                    slot.direct.stop_reason = slot.direct.stop_reason or "cancelled"
                slot.direct.finish(code)
            try:
                os.rmdir(os.path.join(slot.task_dir, "tmp"))  # one inode less per task; scratch left there stays
            except OSError:
                pass
        return True

    def serve(self) -> int:
        if not self.acquire():
            return 0
        _log(self.log, f"runner {os.getpid()} serving {self.dir}")
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        # A handler (not the default) so SIGCHLD wakes select(); children get the default back.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        idle_since: float | None = None
        last_scan = 0.0
        last_disk = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if stop:
                    self.stop_all()
                    return 0
                if now - last_scan >= QUEUE_SCAN or not self.pending:
                    self.scan()
                    last_scan = now
                if self.reap():
                    last_scan = now
                self.start_next()
                interval = self.disk.get("interval", 0)
                if interval > 0 and now - last_disk >= interval and self.running:
                    last_disk = now
                    self.watch_disk(self.tasks_dir)
                if not self.running and not self.pending:
                    idle_since = idle_since or now
                    if now - idle_since >= LINGER:
                        self.release()
                        # A batch written after the last scan but before the release
                        # would be missed by a runner that saw this one alive: look again.
                        if self.scan() and self.pending and self.acquire():
                            idle_since = None
                            continue
                        _log(self.log, f"runner {os.getpid()} leaving: queue empty")
                        return 0
                else:
                    idle_since = None
                timeout = QUEUE_SCAN if self.running or self.pending else min(QUEUE_SCAN, LINGER)
                try:
                    select.select([wake_r], [], [], timeout)
                    while os.read(wake_r, 512):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
        finally:
            self.release()
