"""A file system with one-second timestamps, as Lustre and many NFS servers keep them.

ext4 made with 128-byte inodes has no room for nanoseconds: `stat` shows `.000000000`
and two writes within one second leave the same mtime. The `coarse_dir` fixture gives
each test a fresh directory on such a file system, loop-mounted once per session (as
root, like the test bed's namespaces). When it cannot be made the test fails, saying
why: a sweep that was meant to run there must not quietly run elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE = Path(os.environ.get("HSM_COARSE_FS_DIR", "/var/tmp/hsm-coarse-fs"))
# The job scripts' disk pre-check needs its configured free space (3 GB by default); the
# image is sparse, so its size costs nothing until written.
SIZE = "5G"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _unmount(mountpoint: Path) -> None:
    # Lazily when busy: a runner or task the test left behind may still hold a file there.
    if os.path.ismount(mountpoint) and _run(["umount", str(mountpoint)]).returncode != 0:
        _run(["umount", "-l", str(mountpoint)])


class CoarseFsError(Exception):
    """The file system could not be made; the message says why."""


def _mount() -> Path:
    if os.geteuid() != 0:
        raise CoarseFsError("needs root to loop-mount a file system")
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            raise CoarseFsError(f"{tool} is not installed (Debian: e2fsprogs, mount)")
    image, mountpoint = BASE / "img", BASE / "mnt"
    _unmount(mountpoint)  # left by an earlier session that was killed
    BASE.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(exist_ok=True)
    image.unlink(missing_ok=True)
    for argv in (["truncate", "-s", SIZE, str(image)],
                 ["mkfs.ext4", "-q", "-F", "-I", "128", str(image)],
                 ["mount", "-o", "loop", str(image), str(mountpoint)]):
        result = _run(argv)
        if result.returncode != 0:
            raise CoarseFsError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()}")
    probe = mountpoint / ".probe"
    probe.write_text("x", encoding="ascii")
    if os.stat(probe).st_mtime_ns % 1_000_000_000:
        raise CoarseFsError(f"{mountpoint} keeps sub-second timestamps; expected whole seconds")
    probe.unlink()
    return mountpoint


@pytest.fixture(scope="session")
def coarse_fs() -> Iterator[Path]:
    """The mount point of a session-wide ext4 with one-second timestamps."""
    try:
        mountpoint = _mount()
    except CoarseFsError as exc:
        pytest.fail(f"no file system with one-second timestamps: {exc}", pytrace=False)
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint)
        (BASE / "img").unlink(missing_ok=True)


@pytest.fixture
def coarse_dir(coarse_fs: Path) -> Path:
    """A fresh directory on the one-second file system."""
    path = coarse_fs / uuid.uuid4().hex[:12]
    path.mkdir()
    return path
