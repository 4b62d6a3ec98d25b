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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hsm import proc
from hsm.errors import BadInput, SourceError

CONNECT_TIMEOUT = 10
CONTROL_PERSIST = 60


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
    def from_options(cls, host: str, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                     where: str = "source") -> "SshTarget":
        """Build a target from a source's options, with the project's `ssh:` section as defaults."""
        merged = {**(defaults or {}), **{k: v for k, v in options.items() if v is not None}}
        port = merged.get("ssh_port", merged.get("port"))
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise BadInput(f"{where}: ssh_port: expected a port number, got {port!r}")
        extra = merged.get("ssh_options") or []
        if isinstance(extra, str):
            extra = [extra]
        if not isinstance(extra, list) or not all(isinstance(o, str) and "=" in o for o in extra):
            raise BadInput(f"{where}: ssh_options: expected a list of 'Name=value' options, got {extra!r}")
        config = merged.get("ssh_config")
        key = merged.get("ssh_key")
        return cls(
            host=host,
            port=port,
            key=os.path.expanduser(str(key)) if key else None,
            config_file=os.path.expanduser(str(config)) if config else None,
            options=tuple(extra),
        )

    def ssh_options(self) -> list[str]:
        """The ssh options shared by every call, without the host."""
        opts: list[str] = []
        if self.config_file:
            opts += ["-F", self.config_file]
        opts += [
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={control_dir()}/%C",
            "-o", f"ControlPersist={CONTROL_PERSIST}",
        ]
        if self.port:
            opts += ["-p", str(self.port)]
        if self.key:
            opts += ["-i", self.key]
        for option in self.options:
            opts += ["-o", option]
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


def login_relative(path: str) -> str:
    """`~/x` as `x`, `~` as `.`: the names rsync and a command started by ssh use below the home dir."""
    if path == "~" or path == "~/":
        return "."
    if path.startswith("~/"):
        return path[2:].lstrip("/") or "."
    return path


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
