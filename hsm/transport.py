"""The SSH transport: ssh and rsync to one host over one shared OpenSSH connection.

Every call to a host goes through one ControlMaster connection (`ControlMaster=auto`,
`ControlPersist`), so a command that talks to a host several times pays for the
connection once. `BatchMode=yes` means no prompt can hang hsm; host keys are checked as
the user's own ssh checks them: hsm adds no `StrictHostKeyChecking` option of its own.
ssh and rsync get the same options (`ssh_config`, `ssh_options`, key, port).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hsm import proc
from hsm.core.hostpaths import login_relative
from hsm.core.settings import Connection
from hsm.errors import SourceError

__all__ = ["SshTarget", "control_dir", "login_relative"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
CONTROL_PERSIST = 60
ALIVE_INTERVAL = 3
ALIVE_COUNT = 3


# A Unix socket path holds at most 107 bytes, and ssh makes the socket as "%C" (40 characters)
# plus a 17-character temporary suffix before it renames it.
MAX_CONTROL_DIR = 48


def control_dir() -> Path:
    """Where the ControlMaster sockets live: short, private, per user.

    The socket name is ssh's own hash of the connection (%C). The first of the runtime dir,
    the temp dir and ~/.cache whose `hsm-ssh-UID` is private to this user is used: a directory
    that another user made first (or a link to one) could hold a socket planted to stand in
    for a host, so it is passed over with a warning, never used.
    """
    passed = []
    for base in _control_bases():
        path = base / f"hsm-ssh-{os.getuid()}"
        if len(str(path)) > MAX_CONTROL_DIR:
            passed.append(f"{path} is too long for a socket path")
            continue
        try:
            base.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            passed.append(f"{path}: {exc.strerror or exc}")
            continue
        problem = private_dir_problem(path)
        if problem is None:
            return path
        passed.append(f"{path} {problem}")
        log.warning("not using %s for ssh's control sockets: it %s", path, problem)
    raise SourceError("no private directory for ssh's control sockets: " + "; ".join(passed)
                      + " (remove it, or set XDG_RUNTIME_DIR to a directory only you can write)")


def _control_bases() -> list[Path]:
    bases = [Path(os.environ["XDG_RUNTIME_DIR"])] if os.environ.get("XDG_RUNTIME_DIR") else []
    return [*bases, Path(tempfile.gettempdir()), Path.home() / ".cache"]


def private_dir_problem(path: Path) -> str | None:
    """Why `path` is not a directory only this user can use (None when it is one).

    One that others could write to is not trusted even when it is this user's: what is in
    it may not be.
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.getuid():
        return f"belongs to uid {st.st_uid}"
    if st.st_mode & 0o077:
        return f"has mode {stat.S_IMODE(st.st_mode):o}: others may use it"
    return None


@dataclass(frozen=True)
class SshTarget:
    """A host as ssh and rsync reach it."""

    host: str
    port: int | None = None
    key: str | None = None
    config_file: str | None = None
    options: tuple[str, ...] = field(default_factory=tuple)
    connect_timeout: int = CONNECT_TIMEOUT

    @classmethod
    def from_connection(cls, connection: Connection) -> SshTarget:
        """The target of checked connection settings (`~` in file names expanded here)."""
        return cls(
            host=connection.host,
            port=connection.port,
            key=os.path.expanduser(connection.key) if connection.key else None,
            config_file=os.path.expanduser(connection.config_file) if connection.config_file else None,
            options=tuple(connection.options),
        )

    def ssh_options(self) -> list[str]:
        """The ssh options shared by every call, without the host."""
        opts: list[str] = []
        if self.config_file:
            opts += ["-F", self.config_file]
        # The user's own options first: for each option ssh keeps the first value it is given.
        for option in self.options:
            opts += ["-o", option]
        opts += [
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={control_dir()}/%C",
            "-o", f"ControlPersist={CONTROL_PERSIST}",
            # A host that goes silent mid-connection is given up after about ALIVE_INTERVAL x
            # (ALIVE_COUNT + 1) seconds, unless the user's own options say otherwise.
            "-o", f"ServerAliveInterval={ALIVE_INTERVAL}",
            "-o", f"ServerAliveCountMax={ALIVE_COUNT}",
        ]
        if self.port:
            opts += ["-p", str(self.port)]
        if self.key:
            opts += ["-i", self.key]
        return opts

    def ssh_argv(self, remote_argv: Sequence[str]) -> list[str]:
        """argv of `ssh HOST -- CMD`: the remote command is quoted word by word for the remote shell."""
        return ["ssh", *self.ssh_options(), "--", self.host, shlex.join([str(a) for a in remote_argv])]

    def run(self, remote_argv: Sequence[str], *, input: str | None = None, timeout: float = 60.0,
            check: bool = True) -> proc.Result:
        """Run a command on the host; exit 255 (ssh's own failure) raises SourceError."""
        result = proc.run(self.ssh_argv(remote_argv), input=input, timeout=timeout)
        if result.returncode == 255:
            raise SourceError(f"ssh {self.host}: {cause_of(result.stderr) or 'connection failed'}")
        if check and not result.ok:
            raise SourceError(f"on {self.host}: {result.describe()}")
        return result

    def rsync_shell(self) -> str:
        """The `-e` argument of rsync: ssh with the same options."""
        return shlex.join(["ssh", *self.ssh_options()])

    def remote_path(self, path: str) -> str:
        """`HOST:PATH` for rsync; `~/x` is given as `x`, which rsync takes from the login's home.

        With `--protect-args` no remote shell word-splits or expands the path.
        """
        return f"{self.host}:{login_relative(path)}"

    def rsync(self, sources: Sequence[str], dest: str, *, options: Sequence[str] = (), timeout: float = 600.0,
              check: bool = True, input: str | None = None) -> proc.Result:
        """rsync over this target's ssh; raises SourceError when it fails. `input` feeds `--files-from=-`."""
        argv = ["rsync", "-a", "--protect-args", "-e", self.rsync_shell(), *options, *sources, dest]
        result = proc.run(argv, input=input, timeout=timeout)
        if check and not result.ok:
            raise SourceError(f"rsync with {self.host}: {cause_of(result.stderr) or result.describe()} "
                              f"(rsync exited {result.returncode})")
        return result

    def close(self) -> None:
        """Ask the master connection to exit (it would anyway after ControlPersist seconds)."""
        proc.run(["ssh", *self.ssh_options(), "-O", "exit", self.host], timeout=10)

    def key_id(self) -> str:
        """A short stable name for this target (for file names)."""
        return hashlib.sha1(repr(self).encode()).hexdigest()[:10]


# What ssh says when it cannot reach or enter a host: the cause, wherever it is in the output.
_SSH_CAUSES = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed", "Could not resolve hostname",
               "Connection refused", "Connection timed out", "No route to host", "Permission denied",
               "Network is unreachable", "Connection closed by", "kex_exchange_identification")
# rsync's own summary lines, which say only that the connection ended.
_RSYNC_NOISE = ("rsync error:", "rsync: connection unexpectedly closed", "rsync: [receiver]", "rsync: [sender]",
                "rsync: [Receiver]", "rsync: [sender] write error")


def cause_of(stderr: str) -> str:
    """The line of ssh's or rsync's error output that says why it failed ("" when there is none):
    ssh's own message first, else the last line that is not rsync's summary of the break."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if any(cause in line for cause in _SSH_CAUSES):
            return line
    told = [line for line in lines if not line.startswith(_RSYNC_NOISE)]
    return told[-1] if told else (lines[-1] if lines else "")
