"""Helpers shared by the benchmark scripts (not a test module: nothing here asserts).

The scripts time the real `hsm` command line, started as a subprocess, with
`time.perf_counter` around each call.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HSM = REPO / "bin" / "hsm"


@dataclass
class Timing:
    """One timed command."""

    argv: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the command and the children it waited for
    max_rss_kb: int = 0  # peak resident set size of the command (or of its largest waited-for child)


def gnu_time() -> str | None:
    """GNU time, if installed: it forks the command it measures, so the command's peak RSS is its own."""
    path = shutil.which("time") or "/usr/bin/time"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return path if "GNU" in version.stdout + version.stderr else None


GNU_TIME = gnu_time()


def timed(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
          stdin_text: str | None = None, check: bool = True, capture: bool = True,
          timeout: float = 3600.0, rss: bool = False) -> Timing:
    """Run `argv` to completion and return its wall time (perf_counter around the run), its CPU
    time and, with `rss`, its peak RSS.

    The peak RSS comes from GNU time (`-f %M`) when it is installed: a child of this process
    starts with this process's pages counted as its own (Linux carries the parent's high-water
    mark into a child's at exec), so `os.wait4`'s figure, the fallback, is never below this
    benchmark's own peak. Output goes to temporary files (stdout to /dev/null with `capture`
    False), not pipes: a pipe would make the call wait for every process that inherited it, not
    only for `argv`. A command still running after `timeout` seconds is killed and the benchmark
    stops, saying so.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.TemporaryFile("w+") as given, tempfile.NamedTemporaryFile("r") as peak:
        if rss and GNU_TIME:
            argv = [GNU_TIME, "-f", "%M", "-o", peak.name, *argv]
        given.write(stdin_text or "")
        given.seek(0)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=given if stdin_text is not None else subprocess.DEVNULL,
                                stdout=out if capture else subprocess.DEVNULL, stderr=err, text=True)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if status and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and seconds >= timeout:
            sys.stderr.write(f"still running after {timeout:g} s, killed: {' '.join(map(str, argv))}\n")
            raise SystemExit(1)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        words = peak.read().split()
        max_rss = int(words[-1]) if rss and GNU_TIME and words and words[-1].isdigit() else usage.ru_maxrss
    if check and proc.returncode != 0:
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(map(str, argv))}\n{stderr[-2000:]}\n")
        raise SystemExit(1)
    cpu = usage.ru_utime + usage.ru_stime
    return Timing([str(a) for a in argv], seconds, proc.returncode, stdout, stderr, cpu, max_rss)


def median(values: list[float]) -> float:
    return statistics.median(values)


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def machine() -> str:
    """A one-line description of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // 1024 // 1024} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    return f"{os.cpu_count()} cores ({model or 'unknown CPU'}){mem}, Python {sys.version.split()[0]}"


def hsm_version(hsm: str) -> str:
    """Which hsm is measured: its checkout, commit, and whether hsm/ or templates/ differ from it."""
    root = Path(hsm).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "hsm", "templates"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        return f"{root} (not a git checkout)"
    return f"{root} at {head}" + (f", with uncommitted changes to {', '.join(changed)}" if changed else "")


def filesystem(path: Path) -> str:
    """The type of the file system `path` is on (from /proc/mounts, longest matching mount point)."""
    best, kind = "", "unknown"
    real = str(path.resolve())
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                mount = fields[1]
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, kind = mount, f"{fields[2]} on {fields[0]}"
    except OSError:
        pass
    return kind


def wait_runner_gone(sweep_dir: Path, timeout: float = 30.0) -> bool:
    """Wait until no hsm runner serves any source of the sweep (they linger a few seconds).

    Both the runner.pid files and the runner processes themselves (a runner removes its
    pid file a moment before it exits).
    """
    deadline = time.monotonic() + timeout
    runners = sweep_dir / ".hsm" / "runners"
    needle = str(runners.resolve()).encode()
    while time.monotonic() < deadline:
        if not any(runners.glob("*/runner.pid")) and not _runner_processes(needle):
            return True
        time.sleep(0.1)
    return False


def _runner_processes(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        # `AGENT serve RUNNER_DIR` (python -m hsm.agent, or the agent's zip application)
        if state != b"Z" and b"\0serve\0" in cmdline and needle in cmdline:
            found.append(int(entry))
    return found


def processes_of(sweep_dir: Path) -> list[int]:
    """Pids of live processes that belong to tasks of `sweep_dir`.

    Matched by HSM_TASK_DIR in the environment (programs the task started) or by the sweep
    path in the command line (the wrapper and its subshells: a forked subshell keeps the
    environment the wrapper was started with, without HSM_TASK_DIR).
    """
    prefix = str(sweep_dir.resolve()) + "/"
    needle_env = f"HSM_TASK_DIR={prefix}".encode()
    needle_cmd = prefix.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state == b"Z":
            continue
        if needle_cmd in cmdline or any(item.startswith(needle_env) for item in env.split(b"\0")):
            found.append(int(entry))
    return found


def reap_leftovers(sweep_dir: Path) -> list[str]:
    """Kill (by pid) processes that tasks of `sweep_dir` left behind; return their command lines.

    Only processes of that sweep directory (which the benchmark created) are touched.
    """
    leftovers = []
    for pid in processes_of(sweep_dir):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if not cmdline:
                continue  # exiting
            os.kill(pid, signal.SIGTERM)
            leftovers.append(cmdline)
        except (OSError, ProcessLookupError):
            continue
    return leftovers


def remove_tree(path: Path) -> None:
    """Remove a temporary tree (rm -rf is as fast as anything on a big tree)."""
    if path.exists():
        if shutil.which("rm"):
            subprocess.run(["rm", "-rf", str(path)], check=False)
        else:
            shutil.rmtree(path, ignore_errors=True)


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain left/right aligned text table (numbers right-aligned)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def cell(i: int, value: str) -> str:
        text = str(value)
        numeric = bool(re.fullmatch(r"[+-]?[0-9.,]+[x%s]?", text.strip()))
        return text.rjust(widths[i]) if numeric else text.ljust(widths[i])

    lines = ["  ".join(cell(i, h) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(cell(i, v) for i, v in enumerate(row)).rstrip())
    return "\n".join(lines)


def testbed_env() -> dict[str, str]:
    """This environment with the test bed's (`tests/testbed/testbed env`): its Slurm, its ssh config."""
    testbed = REPO / "tests" / "testbed" / "testbed"
    text = subprocess.run([str(testbed), "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    for line in text.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip('"')
    return env
