"""Shipping the agent (`hsm.agent`) to a host and calling it there.

The agent travels one way: as a zip application built on this machine from the installed
`hsm/agent/` (`~/.cache/hsm/hsm-agent-HASH.pyz`, HASH naming its content), copied once to
the same name in the login's `~/.cache/hsm/` on each host. It runs one way:

    ssh HOST sh -c '...' PYTHON .cache/hsm/hsm-agent-HASH.pyz ACTION   < request (JSON)

When the host does not have that version yet the call exits 97 without running anything;
hsm then copies the file (one rsync) and calls again. A new version lands beside the old
one, so a runner started by an older hsm keeps its own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipapp
from pathlib import Path
from typing import Any

from hsm.errors import SourceError
from hsm.transport import SshTarget

NOT_INSTALLED = 97  # exit code of the call when the host lacks this version of the agent
# Runs the agent if this version is there; the arguments are python, the agent, the action.
_LAUNCH = 'py=$1 agent=$2 action=$3; [ -f "$agent" ] || exit 97; exec "$py" "$agent" "$action"'
CALL_TIMEOUT = 120.0  # seconds any one agent call may take

_AGENT_DIR = Path(__file__).resolve().parent / "agent"
_PACKAGE_INIT = Path(__file__).resolve().parent / "__init__.py"


def _sources() -> list[tuple[str, bytes]]:
    """The files of the zip application: (name inside it, content), in a stable order."""
    files = [("hsm/__init__.py", _PACKAGE_INIT.read_bytes())]
    files += [(f"hsm/agent/{p.name}", p.read_bytes()) for p in sorted(_AGENT_DIR.glob("*.py"))]
    return files


def bundle_name() -> str:
    """`hsm-agent-HASH.pyz`, HASH from the content of the agent's files."""
    digest = hashlib.sha256()
    for name, data in _sources():
        digest.update(name.encode() + b"\0" + data + b"\0")
    return f"hsm-agent-{digest.hexdigest()[:16]}.pyz"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hsm"


def local_bundle() -> Path:
    """The zip application of this hsm's agent on this machine, built when missing."""
    target = _cache_dir() / bundle_name()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".hsm-agent-", dir=target.parent))
    try:
        for name, data in _sources():
            path = staging / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        built = staging / "agent.pyz"
        zipapp.create_archive(staging / "src", built, main="hsm.agent.main:run")
        os.replace(built, target)  # whole or not at all: another hsm may be building it too
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remote_bundle() -> str:
    """Where the agent lives on a host, relative to the login's home."""
    return f".cache/hsm/{bundle_name()}"


def install(target: SshTarget, timeout: float = CALL_TIMEOUT) -> None:
    """Copy this hsm's agent to the host (one rsync)."""
    target.rsync([str(local_bundle())], target.remote_path(remote_bundle()), options=["--mkpath"], timeout=timeout)


def call(target: SshTarget, python: str, action: str, request: dict[str, Any], *,
         timeout: float = CALL_TIMEOUT, ok_codes: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
    """Run one agent action on the host; (exit code, answer). SourceError when it fails."""
    argv = ["sh", "-c", _LAUNCH, "hsm-agent", python, remote_bundle(), action]
    payload = json.dumps(request)
    result = target.run(argv, input=payload, timeout=timeout, check=False)
    if result.returncode == NOT_INSTALLED:
        install(target, timeout=timeout)
        result = target.run(argv, input=payload, timeout=timeout, check=False)
    if result.returncode not in ok_codes:
        tail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise SourceError(f"{target.host}: {action}: {tail}")
    try:
        return result.returncode, json.loads(result.stdout)
    except ValueError:
        raise SourceError(f"{target.host}: {action}: unreadable answer {result.stdout[:200]!r}") from None
