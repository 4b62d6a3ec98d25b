"""The directory of ssh's control sockets is this user's alone, or it is not used."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsm import transport
from hsm.errors import SourceError

OTHER_UID = 65534  # nobody


@pytest.fixture
def bases(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A temp dir and a home of the test's own (no runtime dir), as control_dir sees them: short
    paths under /tmp, as a socket's must be."""
    root = Path(tempfile.mkdtemp(prefix="cd", dir="/tmp"))
    tmp, home = root / "t", root / "h"
    tmp.mkdir()
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    try:
        yield tmp, home
    finally:
        shutil.rmtree(root)


def planted(path: Path, uid: int, mode: int) -> Path:
    path.mkdir()
    os.chmod(path, mode)
    os.chown(path, uid, -1)
    return path


def test_a_new_control_dir_is_private(bases: tuple[Path, Path]) -> None:
    tmp, _ = bases
    path = transport.control_dir()
    assert path == tmp / f"hsm-ssh-{os.getuid()}"
    assert oct(path.stat().st_mode & 0o777) == "0o700" and path.stat().st_uid == os.getuid()
    assert transport.control_dir() == path  # the same one every time: connections are shared


def test_a_dir_planted_by_another_user_is_passed_over(bases: tuple[Path, Path], caplog) -> None:
    assert os.getuid() == 0, "planting a directory of another user needs root (the suite runs as root)"
    tmp, home = bases
    trap = planted(tmp / f"hsm-ssh-{os.getuid()}", OTHER_UID, 0o777)
    path = transport.control_dir()
    assert path == home / ".cache" / f"hsm-ssh-{os.getuid()}"
    assert list(trap.iterdir()) == []
    assert f"not using {trap} for ssh's control sockets: it belongs to uid {OTHER_UID}" in caplog.text


def test_a_link_or_an_open_dir_is_passed_over(bases: tuple[Path, Path]) -> None:
    tmp, home = bases
    elsewhere = planted(tmp / "elsewhere", os.getuid(), 0o700)
    (tmp / f"hsm-ssh-{os.getuid()}").symlink_to(elsewhere)
    (home / ".cache").mkdir(parents=True)
    planted(home / ".cache" / f"hsm-ssh-{os.getuid()}", os.getuid(), 0o777)
    with pytest.raises(SourceError) as refused:
        transport.control_dir()
    message = str(refused.value)
    assert "is a symbolic link" in message and "has mode 777: others may use it" in message
    assert "XDG_RUNTIME_DIR" in message
