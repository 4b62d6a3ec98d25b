"""Tasks a runner starts itself, without a bash wrapper per task, with what task.sh would give them.

Standard library only (see the package docstring).

hsm's own task.sh costs about 5 ms of bash per task, more than a no-op task itself; when a
sweep uses it unchanged and activates no conda env, the source's batch says `direct` and the
runner does the wrapper's work in its own process: the same environment (HSM_* variables,
TMPDIR in the task's tmp/, the directory, PWD and OLDPWD the command would see after
task.sh's `cd`), the same stdout.log and stderr.log, and the same status.yaml, byte for byte
in form: `running` with the command's pid as soon as it is started, and the final status
when the runner has reaped it. A project's own templates/task.sh,
or a conda env to activate, keeps the wrapper.

What changes: the process in status.yaml is the command's (there is no wrapper), and its end
is written by the runner, so a runner killed hard while such tasks run leaves them to end
unrecorded (a poll then finds them `lost`, as it finds a wrapper killed hard).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, List, Sequence

# The placeholders of task.sh a runner needs to do its work: the batch's `direct` carries them.
SETTINGS = ("sweep_id", "project_dir", "source")
PADDING = "#" + " " * 320 + "\n"  # as task.sh pads a running status (see write_status there)


def settings_of(batch: Dict[str, Any]) -> Dict[str, str] | None:
    """The batch's `direct` settings, None when its tasks go through task.sh."""
    direct = batch.get("direct")
    if not isinstance(direct, dict) or not all(isinstance(direct.get(k), str) for k in SETTINGS):
        return None
    return {k: direct[k] for k in SETTINGS}


def quoted(value: str) -> str:
    """A YAML single-quoted scalar, as task.sh's `yq` writes strings."""
    return "'" + value.replace("'", "''") + "'"


def utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class DirectTask:
    """One attempt the runner started itself: what its status file says, and why it may end."""

    __slots__ = ("task", "attempt", "task_dir", "source", "job_id", "free_kb", "gpus", "pid", "pid_start",
                 "began", "stop_reason")

    def __init__(self, task: str, attempt: int, task_dir: str, source: str, env: Dict[str, str],
                 free_kb: int | None) -> None:
        self.task, self.attempt, self.task_dir, self.source = task, attempt, task_dir, source
        self.job_id = env.get("HSM_JOB_ID") or None
        self.free_kb = free_kb
        self.gpus = env.get("HSM_GPUS") or None
        self.pid, self.pid_start = os.getpid(), 0  # the runner's until the command runs
        self.began = time.time()
        self.stop_reason = ""  # cancelled, disk: set when the runner stops it

    def text(self, lines: Sequence[str]) -> str:
        """status.yaml with these state lines, in task.sh's order."""
        head = (f"schema: 1\ntask_id: {quoted(self.task)}\nattempt: {self.attempt}\nsource: {quoted(self.source)}\n"
                f"host: {quoted(os.uname().nodename)}\npid: {self.pid}\npid_start: {self.pid_start}\n"
                f"start: {utc(self.began)}\n")
        if self.job_id:
            head += f"job_id: {quoted(self.job_id)}\n"
        if self.free_kb is not None:
            head += f"disk_free_kb: {self.free_kb}\n"
        body = "".join(line + "\n" for line in lines)
        if self.gpus:
            body += f"gpus: {self.gpus}\n"
        return head + body

    def write_running(self) -> None:
        write_status(os.path.join(self.task_dir, "status.yaml"), self.text(["state: running"]) + PADDING)

    def write_final(self, state: str, exit_code: int, reason: str) -> None:
        now = time.time()
        ms = max(0, int(round((now - self.began) * 1000)))
        lines = [f"state: {state}", f"exit_code: {exit_code}"]
        if reason:
            lines.append(f"reason: {quoted(reason)}")
        lines += [f"end: {utc(now)}", f"duration: {ms // 1000}.{ms % 1000:03d}"]
        write_status(os.path.join(self.task_dir, "status.yaml"), self.text(lines))

    def finish(self, returncode: int) -> str:
        """Write the final status of a command that exited with `returncode` (Popen's: -N for
        signal N); its state."""
        exit_code = 128 - returncode if returncode < 0 else returncode  # as bash's `wait` reports it
        if self.stop_reason == "cancelled":
            state, reason = "cancelled", "cancelled"
        elif self.stop_reason:
            state, reason = "failed", self.stop_reason
        elif exit_code == 0:
            state, reason = "completed", ""
        else:
            state, reason = "failed", "exit_code"
        self.write_final(state, exit_code, reason)
        return state


def write_status(path: str, text: str) -> None:
    """Replace the status file whole (a new inode: see status.file_mark); on a disk too full for
    a new file, write over the padded running status in place, as task.sh does."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    try:
        with open(path, "r+b") as fh:
            data = text.encode("utf-8")
            fh.write(data)
            fh.truncate(len(data))
    except OSError:
        pass


def keep_earlier_attempt(task_dir: str, attempt: int) -> None:
    """Move an earlier attempt's status and logs to attempts/N/ (where hsm has not already), as task.sh does."""
    path = os.path.join(task_dir, "status.yaml")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            prev = next((line[len("attempt: "):].strip() for line in fh if line.startswith("attempt:")), "")
    except OSError:
        return
    if not prev or prev == str(attempt):
        return
    keep = os.path.join(task_dir, "attempts", prev)
    os.makedirs(keep, exist_ok=True)
    for name in ("status.yaml", "stdout.log", "stderr.log"):
        try:
            os.replace(os.path.join(task_dir, name), os.path.join(keep, name))
        except FileNotFoundError:
            pass


def task_environment(env: Dict[str, str], settings: Dict[str, str], task_dir: str, attempt: int,
                     argv0: str) -> Dict[str, str]:
    """The environment task.sh gives the command, from the one the wrapper would have started with."""
    out = dict(env)
    for name in ("HSM_JOB_ID", "HSM_RUNNER", "HSM_DISK_FREE_KB", "HSM_DISK_WATCHED"):
        out.pop(name, None)
    tmp = f"{task_dir}/tmp"
    out.update({
        "HSM_TASK_ID": task_dir.rsplit("/", 1)[-1], "HSM_TASK_DIR": task_dir, "HSM_SWEEP_ID": settings["sweep_id"],
        "HSM_OUTPUT_DIR": f"{task_dir}/results", "HSM_ATTEMPT": str(attempt), "HSM_SOURCE": settings["source"],
        "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp,
        # What bash exports to a command it runs after `cd project_dir`.
        "PWD": settings["project_dir"], "OLDPWD": os.getcwd(),
    })
    out.setdefault("SHLVL", "0")
    found = argv0 if "/" in argv0 else shutil.which(argv0, path=out.get("PATH", os.defpath))
    if found:
        out["_"] = found
    return out


def spawn(argv: List[str], task_dir: str, cwd: str, env: Dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the command with its logs; a name that is no program (a shell builtin, a typo) goes to
    bash, which runs it or says why not in stderr.log with the exit code task.sh would give (127, 126)."""
    with open(os.path.join(task_dir, "stdout.log"), "wb") as out, open(os.path.join(task_dir, "stderr.log"), "wb") as err:
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env,
                                    start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            if getattr(exc, "filename", None) == cwd:
                raise
            return subprocess.Popen(["bash", "-c", '"$@"', "bash", *argv], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd=cwd, env=env, start_new_session=True)


def start_direct(job: DirectTask, argv: List[str], env: Dict[str, str], settings: Dict[str, str], min_free_kb: int,
                 log: Callable[[str], None]) -> subprocess.Popen[bytes] | None:
    """Start the command of a direct task as task.sh would; None, with its final status written,
    when it cannot start (too little disk, a project dir it cannot enter, logs it cannot write)."""
    keep_earlier_attempt(job.task_dir, job.attempt)
    if job.free_kb is not None and job.free_kb < min_free_kb:
        with open(os.path.join(job.task_dir, "stderr.log"), "w", encoding="utf-8") as fh:
            fh.write(f"hsm: task not started: {job.free_kb} KB free on the disk of {job.task_dir}, "
                     f"{min_free_kb} KB required (disk_min_free_gb)\n")
        job.write_final("failed", 1, "disk")
        return None
    try:
        return spawn(argv, job.task_dir, settings["project_dir"],
                     task_environment(env, settings, job.task_dir, job.attempt, argv[0]))
    except OSError as exc:
        log(f"could not start {job.task} attempt {job.attempt}: {exc}")
        job.write_final("failed", 1, "exit_code")
        return None
