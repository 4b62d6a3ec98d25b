"""Probing a configured source without a sweep: its health, and a test of its connection.

A source object (`hsm.sources`) belongs to a sweep: its paths are the sweep's. The project's
sources are asked here the same way, with the same single call (the agent's `health`
action on this machine or over ssh, the scheduler's health command here or on its login
host), where the project, not a sweep, says where things are. The connection test adds
what a first submit would need: the host's Python and the project's copy there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hsm import proc
from hsm.config import ProjectConfig
from hsm.core.health import classify_health
from hsm.core.hostpaths import login_relative
from hsm.core.settings import HpcSettings, SourceConfig, SshSettings
from hsm.errors import HsmError, SourceError

HEALTH_TIMEOUT = 30.0  # seconds, as the sources' own health calls
AGENT_MINIMUM = (3, 7)  # the agent runs on any Python from 3.7


@dataclass
class Check:
    """One source's connection test: passed or not, and one line saying what was found."""

    name: str
    type: str
    ok: bool
    details: str


def unhealthy(details: str) -> dict[str, Any]:
    """A probe that could not be made or was answered with a failure."""
    return {"status": "unhealthy", "details": details, "ok": False}


def probe(source: SourceConfig, project: ProjectConfig) -> dict[str, Any]:
    """One health call to a configured source: {"status", "details", "ok"}."""
    try:
        if source.type == "local":
            return _local_health(project)
        if isinstance(source.settings, SshSettings):
            return _ssh_health(source.settings, project)
        if isinstance(source.settings, HpcSettings):
            return _hpc_health(source.settings)
    except HsmError as exc:
        return unhealthy(str(exc))
    return unhealthy(f"type '{source.type}' cannot be probed")


def _local_health(project: ProjectConfig) -> dict[str, Any]:
    from hsm.sources.runner_based import InProcessAgent

    _, info = InProcessAgent().call("health", {"project_dir": str(project.root)}, timeout=HEALTH_TIMEOUT)
    return classify_health(info, project.compute)


def _ssh_health(host: SshSettings, project: ProjectConfig) -> dict[str, Any]:
    from hsm.sources.ssh import call_host
    from hsm.transport import SshTarget

    # `~/x` when relative to the login's home: the agent expands it there.
    request = {"project_dir": host.project_path(str(project.root))}
    target = SshTarget.from_connection(host.connection)
    _, info = call_host(target, host.agent_python(), "health", request, timeout=HEALTH_TIMEOUT)
    return classify_health(info, project.compute)


def _hpc_call(cfg: HpcSettings, argv: list[str], timeout: float) -> proc.Result:
    """A scheduler command here, or on the login host (only ssh's own failure raises)."""
    if cfg.connection is None:
        return proc.run(argv, timeout=timeout)
    from hsm.transport import SshTarget

    return SshTarget.from_connection(cfg.connection).run(argv, timeout=timeout, check=False)


def _hpc_health(cfg: HpcSettings) -> dict[str, Any]:
    from hsm.sources.detect import detect_scheduler
    from hsm.sources.hpc.scheduler import scheduler

    system = cfg.system or detect_scheduler()
    if system is None:
        return unhealthy("no scheduler: system is not set and neither sbatch nor qsub is on PATH")
    hooks = scheduler(system)
    try:
        answer = _hpc_call(cfg, hooks.health_argv(), min(cfg.command_timeout, HEALTH_TIMEOUT))
    except SourceError as exc:
        return unhealthy(str(exc))
    return hooks.health_of(answer, cfg.queue)


# --- the connection test ---------------------------------------------------------------------------


def connection_check(source: SourceConfig, project: ProjectConfig) -> Check:
    """Test a source's connection: what a submit there needs, in as few calls as it takes."""
    try:
        if source.type == "local":
            ok, details = _test_local(project)
        elif isinstance(source.settings, SshSettings):
            ok, details = _test_ssh(source.settings, project)
        elif isinstance(source.settings, HpcSettings):
            ok, details = _test_hpc(source.settings)
        else:
            ok, details = False, f"type '{source.type}' cannot be tested"
    except HsmError as exc:
        ok, details = False, str(exc)
    return Check(source.name, source.type, ok, details)


def python_version(text: str) -> tuple[int, ...] | None:
    """(3, 11, 7) from `Python 3.11.7` as `python --version` prints it; None when not found."""
    match = re.search(r"Python (\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def _version_line(result: proc.Result, python: str, where: str) -> tuple[bool, str]:
    version = python_version(result.stdout + result.stderr)
    if not result.ok or version is None:
        return False, f"{python} does not run {where}: {result.describe()}"
    shown = ".".join(map(str, version))
    if version[:2] < AGENT_MINIMUM:
        return False, f"{python} is Python {shown} {where}; hsm needs 3.7 or newer"
    return True, f"Python {shown}"


def _test_local(project: ProjectConfig) -> tuple[bool, str]:
    python = project.python_interpreter
    ok, version = _version_line(proc.run([python, "--version"], timeout=HEALTH_TIMEOUT), python, "here")
    if not ok:
        return False, version
    health = _local_health(project)
    return True, f"{version} at {python}; {health['details']}"


def _test_ssh(host: SshSettings, project: ProjectConfig) -> tuple[bool, str]:
    """Reachable, its Python runs, the project dir is there (or will be pushed), the agent answers."""
    from hsm.transport import SshTarget

    target = SshTarget.from_connection(host.connection)
    python = host.agent_python()
    ok, version = _version_line(target.run([python, "--version"], timeout=HEALTH_TIMEOUT, check=False),
                                python, f"on {target.host}")
    if not ok:
        return False, version
    project_dir = host.project_path(str(project.root))
    found = target.run(["test", "-d", login_relative(project_dir)], timeout=HEALTH_TIMEOUT, check=False)
    if found.ok:
        copy = f"project dir {project_dir} exists"
    elif host.sync_mode == "push":
        copy = f"project dir {project_dir} not there yet (sync: push copies it at the first submit)"
    else:
        return False, f"reachable, {version}, but project dir {project_dir} does not exist (sync: verify)"
    health = _ssh_health(host, project)
    return True, f"reachable, {version}, {copy}; {health['details']}"


def _test_hpc(cfg: HpcSettings) -> tuple[bool, str]:
    """The scheduler answers, and knows the configured partition or queue."""
    health = _hpc_health(cfg)
    if not health["ok"]:
        return False, str(health["details"])
    queue = f"; partition/queue {cfg.queue} exists" if cfg.queue else ""
    host = f" on {cfg.connection.host}" if cfg.connection else ""
    return True, f"scheduler answers{host}: {health['details']}{queue}"
