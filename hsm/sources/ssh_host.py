"""The half of the SSH source that runs on the host. Standard library only.

hsm does not install anything on an SSH host. Each call sends the text of this module
and a request, as one JSON document on the standard input of

    python3 -c BOOTSTRAP

which runs `main(request)`; the answer is one JSON document on standard output. The
runner itself (`runner.py`) is copied into the sweep's runner directory at submit, and
this module loads it from there. Actions:

    home     the login's home directory (to resolve `~` in configured paths)
    state    the project copy's git state, or the sha256 of the listed files
    start    check the project copy (when asked), queue a batch, start the runner
    poll     runner.probe; a runner that is gone while tasks wait is started again
    cancel   queue a cancel batch and stop the running task wrappers
    health   free disk at the project dir, load, CPUs, memory

The pure helpers here (exclusion patterns, file digests, git status parsing) are also
what hsm uses on this machine, so both sides describe a project the same way.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

# Run by `python3 -c` on the host: read {"program", "request"}, run main(request).
BOOTSTRAP = (
    "import json,sys;d=json.load(sys.stdin);g={'__name__':'hsm_ssh_host'};"
    "exec(compile(d['program'],'hsm_ssh_host','exec'),g);sys.exit(g['main'](d['request']))"
)

MISMATCH = 3  # exit code of `start` when the project copy differs
HOME_CHANGED = 4  # exit code of `start` when the paths were built for another home dir
CANCEL_GRACE = 10.0  # seconds a cancelled task gets to write its final status
WAITING = ("submitted", "queued")


# --- describing a project (shared with hsm/sync.py) ----------------------------------------


def excluded(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """True when `rel` (a /-separated path below the project root) or a directory above it matches.

    rsync's rules, simplified: a pattern ending in `/` matches directories only; one
    starting with `/` is anchored at the root; one with a `/` inside is matched against
    the end of the path; any other against the last name. `*` may cross a `/`.
    """
    parts = rel.split("/")
    for n in range(1, len(parts) + 1):
        for pattern in patterns:
            if _rule_matches(parts[:n], n < len(parts) or is_dir, pattern):
                return True
    return False


def _rule_matches(parts: list[str], is_dir: bool, pattern: str) -> bool:
    if pattern.endswith("/"):
        if not is_dir:
            return False
        pattern = pattern.rstrip("/")
    if not pattern:
        return False
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase("/".join(parts), pattern.lstrip("/"))
    if "/" in pattern:
        k = pattern.count("/") + 1
        return len(parts) >= k and fnmatch.fnmatchcase("/".join(parts[-k:]), pattern)
    return fnmatch.fnmatchcase(parts[-1], pattern)


def walk_files(root: str, patterns: list[str]) -> list[str]:
    """Every file and symlink below `root` not excluded, as sorted /-separated paths."""
    out: list[str] = []
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        keep = []
        for name in sorted(dirs):
            full = os.path.join(directory, name)
            if os.path.islink(full):
                files.append(name)  # a symlinked directory is copied as a link, not followed
            elif not excluded(prefix + name, True, patterns):
                keep.append(name)
        dirs[:] = keep
        for name in files:
            if not excluded(prefix + name, False, patterns):
                out.append(prefix + name)
    return sorted(out)


def digest(path: str) -> str | None:
    """sha256 of a file's bytes (of its target text for a symlink); None when it is missing."""
    try:
        if os.path.islink(path):
            return "link:" + hashlib.sha256(os.readlink(path).encode("utf-8", "surrogateescape")).hexdigest()
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def file_digests(root: str, files: list[str]) -> dict[str, str | None]:
    """{path: sha256 or None} for the given /-separated paths below `root`."""
    return {rel: digest(os.path.join(root, *rel.split("/"))) for rel in files}


def parse_git_status(text: str, prefix: str, patterns: list[str]) -> list[str]:
    """Paths below the project that differ from HEAD, from `git status --porcelain=v1 -z`.

    Paths in that output are relative to the repository's top; `prefix` is the project's
    place in it (`git rev-parse --show-prefix`). Untracked files count; excluded ones do not.
    """
    fields = text.split("\0")
    out: set[str] = set()
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        paths = [path]
        if "R" in code or "C" in code:
            paths.append(fields[i])  # the rename's or copy's origin
            i += 1
        for p in paths:
            if p.startswith(prefix):
                rel = p[len(prefix):]
                if rel and not excluded(rel, False, patterns):
                    out.add(rel)
    return sorted(out)


def git_state(root: str, patterns: list[str], run: Callable[[list[str]], tuple[int, str]]) -> dict[str, Any] | None:
    """{"commit", "dirty": {path: sha256 or None}} of the checkout at `root`; None when it is not one.

    `run(argv)` returns (exit code, stdout); a missing git counts as no checkout.
    """
    rc, out = run(["git", "-C", root, "rev-parse", "HEAD", "--show-prefix"])
    if rc != 0:
        return None
    lines = out.split("\n")
    commit = lines[0].strip()
    prefix = lines[1] if len(lines) > 1 else ""
    if not commit:
        return None
    rc, status = run(["git", "-C", root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."])
    if rc != 0:
        return None
    dirty = parse_git_status(status, prefix, patterns)
    return {"commit": commit, "dirty": file_digests(root, dirty)}


def matches(expected: dict[str, Any], observed: dict[str, Any]) -> bool:
    """True when the observed project copy is the expected one (git state, else files)."""
    if observed.get("mode") == "git":
        return observed.get("git") == expected.get("git")
    return observed.get("files") == expected.get("files")


def _run_here(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return proc.returncode, proc.stdout.decode("utf-8", "surrogateescape")


def project_state(root: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The project copy at `root`, described the way `expected` (this machine's) is.

    Git state when both sides are checkouts, else the digests of the expected files.
    """
    patterns = list(expected.get("excludes") or [])
    if expected.get("git") is not None:
        git = git_state(root, patterns, _run_here)
        if git is not None:
            return {"mode": "git", "git": git}
    why = "no git checkout here" if expected.get("git") is None else "no git checkout on the host"
    return {"mode": "files", "files": file_digests(root, list(expected.get("files") or {})), "why": why}


# --- the runner on this host ------------------------------------------------------------------


def _load_runner(runner_dir: str) -> Any:
    import importlib.util

    path = os.path.join(runner_dir, "runner.py")
    if not os.path.isfile(path):
        raise RuntimeError(f"{path}: no such file (the sweep was never submitted to this host, or its dir was removed)")
    spec = importlib.util.spec_from_file_location("hsm_runner", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _write_batch(runner_dir: str, kind: str, payload: dict[str, Any]) -> None:
    queue = os.path.join(runner_dir, "queue")
    os.makedirs(queue, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{kind}.json"
    tmp = os.path.join(queue, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(queue, name))


def _start_runner(runner_dir: str) -> None:
    # Its own session, no tie to this ssh session: it outlives the connection. A second
    # runner finds the lock taken and leaves at once, so starting one is always safe.
    with open(os.path.join(runner_dir, "runner.log"), "a", encoding="utf-8") as log:
        subprocess.Popen(
            [sys.executable, os.path.join(runner_dir, "runner.py"), "serve", runner_dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            cwd=runner_dir,
        )


# --- actions ------------------------------------------------------------------------------------


def action_home(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The login's home directory."""
    return {"home": os.path.expanduser("~")}, 0


def action_state(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The project copy, described like this machine's `expected` one (and the home, for hsm's cache)."""
    return {"observed": project_state(req["project_dir"], req["expected"]), "home": os.path.expanduser("~")}, 0


def action_start(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
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
    # The batch comes here, after the task files: a live runner never sees a task before its argv.
    _write_batch(runner_dir, "submit", req["batch"])
    _start_runner(runner_dir)
    return {"started": True, "observed": observed}, 0


def action_poll(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The runner's probe of the requested tasks; restart a runner that is gone while tasks wait."""
    runner = _load_runner(req["runner_dir"])
    answer = runner.probe(req)
    if not answer["runner_alive"] and any(t[2] in WAITING for t in req["tasks"]):
        # Tasks wait and nobody serves them (the host rebooted, the runner was killed).
        _start_runner(req["runner_dir"])
        answer["restarted"] = True
    return answer, 0


def action_cancel(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Queue a cancel batch, stop the running wrappers, kill what outlives the grace period."""
    runner_dir, tasks_dir = req["runner_dir"], req["tasks_dir"]
    if not os.path.isdir(runner_dir):
        return {"signalled": 0, "killed": 0}, 0
    runner = _load_runner(runner_dir)
    keys = [[t, int(a)] for t, a in req["tasks"]]
    _write_batch(runner_dir, "cancel", {"cancel": keys})
    # The runner may be gone while its tasks still run: stop them directly as well.
    signalled, killed = runner.stop_attempts(tasks_dir, [(t, a) for t, a in keys], float(req.get("grace", CANCEL_GRACE)))
    return {"signalled": signalled, "killed": killed}, 0


def action_health(req: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Free disk at the project dir (or its nearest existing parent), load, CPUs, memory."""
    path = req.get("project_dir") or os.path.expanduser("~")
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    st = os.statvfs(path)
    mem: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    mem[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "path": path,
        "free_bytes": st.f_bavail * st.f_frsize,
        "total_bytes": st.f_blocks * st.f_frsize,
        "load1": os.getloadavg()[0],
        "cpus": os.cpu_count() or 1,
        "mem_total": mem.get("MemTotal"),
        "mem_available": mem.get("MemAvailable"),
    }, 0


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


ACTIONS = {
    "home": action_home,
    "state": action_state,
    "start": action_start,
    "poll": action_poll,
    "cancel": action_cancel,
    "health": action_health,
}


def main(request: dict[str, Any]) -> int:
    """Run one action; print its answer as JSON; the exit code says how it went."""
    sys.dont_write_bytecode = True  # leave no __pycache__ next to runner.py
    # Paths may come as `~/x` (hsm did not know this home yet): the same place, spelled absolutely.
    for key in ("project_dir", "runner_dir", "tasks_dir"):
        if request.get(key):
            request[key] = _absolute(request[key])
    if isinstance(request.get("batch"), dict) and request["batch"].get("tasks_dir"):
        request["batch"]["tasks_dir"] = _absolute(request["batch"]["tasks_dir"])
    try:
        answer, code = ACTIONS[request["action"]](request)
    except Exception as exc:  # noqa: BLE001  (the caller gets one line, not a traceback)
        sys.stderr.write(f"hsm on {os.uname().nodename}: {request.get('action')}: {type(exc).__name__}: {exc}\n")
        return 1
    json.dump(answer, sys.stdout)
    return code
