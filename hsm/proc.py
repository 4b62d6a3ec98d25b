"""The one place where hsm runs other programs, through plumbum.

Every call takes an argv list (never a shell string), has a timeout, is logged, and
returns or raises with argv, exit code, stdout and stderr. When the environment names a
file in HSM_CALL_LOG, each call appends one JSON line to it: tests count ssh, rsync,
sbatch and squeue calls this way, against the real programs.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsm.errors import SourceError

log = logging.getLogger("hsm.proc")


@dataclass(frozen=True)
class Result:
    """What a finished program left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One line: the command, its exit code and the last line of its error output."""
        tail = (self.stderr.strip().splitlines() or self.stdout.strip().splitlines() or [""])[-1]
        return f"{shlex.join(self.argv)} exited {self.returncode}" + (f": {tail}" if tail else "")


def _record(argv: Sequence[str], seconds: float, returncode: int | None) -> None:
    path = os.environ.get("HSM_CALL_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        record = {"program": os.path.basename(argv[0]), "argv": list(argv), "seconds": round(seconds, 4), "rc": returncode}
        fh.write(json.dumps(record) + "\n")


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> Result:
    """Run a program to completion; with `check`, raise SourceError when it fails.

    Its input and output go through temporary files, not pipes: a process the program
    leaves behind holding them (ssh's ControlMaster, a daemon) cannot keep this call
    waiting, and the timeout holds whatever the program does.
    """
    # plumbum is imported here, not at the top: it costs ~0.1 s, and most hsm commands
    # (status, a local poll) never start a program.
    from plumbum import local
    from plumbum.commands.processes import CommandNotFound

    argv = [str(a) for a in argv]
    started = time.monotonic()
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        if input is not None:
            fin.write(input.encode("utf-8"))
            fin.seek(0)
        try:
            command: Any = local[argv[0]][argv[1:]]
            with local.cwd(str(cwd) if cwd else local.cwd), local.env(**(dict(env) if env else {})):
                child = command.popen(stdin=fin if input is not None else subprocess.DEVNULL, stdout=fout, stderr=ferr)
        except (OSError, CommandNotFound) as exc:
            _record(argv, time.monotonic() - started, None)
            what = "program not found" if isinstance(exc, CommandNotFound) else str(exc)
            raise SourceError(f"{shlex.join(argv)}: {what}") from None
        try:
            rc = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            _record(argv, time.monotonic() - started, None)
            raise SourceError(f"{shlex.join(argv)}: no answer within {timeout:g} s") from None
        out, err = (_text(f) for f in (fout, ferr))
    _record(argv, time.monotonic() - started, rc)
    result = Result(tuple(argv), rc, out, err)
    log.debug("%s -> %s", shlex.join(argv), rc)
    if check and not result.ok:
        raise SourceError(result.describe())
    return result


def _text(fh: Any) -> str:
    fh.seek(0)
    return fh.read().decode("utf-8", "replace")


def spawn_detached(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start a program in its own session that outlives hsm; its output goes to `log_path`.

    subprocess directly: plumbum's Popen waits for the child when it is garbage
    collected, which would block here and swallow a Ctrl-C meant for the caller.
    """
    argv = [str(a) for a in argv]
    started = time.monotonic()
    try:
        with open(log_path, "a", encoding="utf-8") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
                env={**os.environ, **(env or {})},
            )
    except OSError as exc:
        _record(argv, time.monotonic() - started, None)
        raise SourceError(f"{shlex.join(argv)}: {exc.strerror or exc}") from None
    _record(argv, time.monotonic() - started, None)
    return child.pid
