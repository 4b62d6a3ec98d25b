"""The SSH transport: ssh and rsync to one host over one shared OpenSSH connection.

Every call to a host goes through one ControlMaster connection (`ControlMaster=auto`,
`ControlPersist`), so a command that talks to a host several times pays for the
connection once. `BatchMode=yes` means no prompt can hang hsm; host keys are checked as
the user's own ssh checks them: hsm adds no `StrictHostKeyChecking` option of its own.
ssh and rsync get the same options (`ssh_config`, `ssh_options`, key, port).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hsm import proc
from hsm.core.hostpaths import login_relative
from hsm.core.settings import Connection
from hsm.errors import SourceError

__all__ = ["SshTarget", "control_dir", "login_relative"]

CONNECT_TIMEOUT = 10
CONTROL_PERSIST = 60
ALIVE_INTERVAL = 3
ALIVE_COUNT = 3


def control_dir() -> Path:
    """Where the ControlMaster sockets live: short, private, per user.

    A Unix socket path may not exceed about 104 bytes, so this stays near the root and
    the socket name is ssh's own hash of the connection (%C).
    """
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    path = base / f"hsm-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


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
            raise SourceError(f"ssh {self.host}: {_last_line(result.stderr) or 'connection failed'}")
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
            raise SourceError(f"rsync with {self.host}: {result.describe()}")
        return result

    def close(self) -> None:
        """Ask the master connection to exit (it would anyway after ControlPersist seconds)."""
        proc.run(["ssh", *self.ssh_options(), "-O", "exit", self.host], timeout=10)

    def key_id(self) -> str:
        """A short stable name for this target (for file names)."""
        return hashlib.sha1(repr(self).encode()).hexdigest()[:10]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
