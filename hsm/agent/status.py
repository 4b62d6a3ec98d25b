"""A task's own record, as the wrapper writes it, and the identity of processes.

Standard library only (see the package docstring).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def proc_start(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when it is gone.

    A pid with the start time it had when it was recorded is the same process; this is
    what tells a live task from a recycled pid. A zombie counts as gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int | None, start: int | None) -> bool:
    """True when process `pid` is running and is the one that started at `start`."""
    if not pid:
        return False
    now = proc_start(pid)
    return now is not None and (not start or now == start)


def free_kb(path: str) -> int:
    """Free disk for an unprivileged user at `path`, in KB (0 when it cannot be read)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize // 1024


def read_status(path: Path) -> dict[str, Any] | None:
    """Read a status.yaml written by task.sh: flat `key: value` lines."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        out[key] = _scalar(value.strip())
    return out


def _scalar(value: str) -> Any:
    if len(value) >= 2 and value[0] == "[" and value[-1] == "]":  # a flat list, e.g. `gpus: [0, 1]`
        inner = value[1:-1].strip()
        return [_scalar(item.strip()) for item in inner.split(",")] if inner else []
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if value in ("null", "~", ""):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def file_mark(path: str | Path) -> list[int] | None:
    """What tells one version of a status file from another: [inode, size, mtime_ns]; None when missing.

    The mtime alone cannot: file systems keep it at one-second resolution (Lustre, many NFS
    servers, ext4 with small inodes) and a task may write `running` and its final status
    within one tick. Every status write is a new file renamed over the old one, made while
    the old one still exists, so the next version always has another inode whatever the
    clock says (and a final status is longer than a running one as well).
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]
